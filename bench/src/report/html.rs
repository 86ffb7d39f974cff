//! `report.html`: one self-contained page (inline SVG charts, inline CSS, no script, nothing
//! fetched) with throughput, latency percentiles, statuses and breaker states over time, the
//! chaos window shaded, and the summary's tables below.

use crate::load::record::Percentiles;
use crate::report::charts::{Chart, Line, PALETTE};
use crate::report::summary::Summary;
use std::collections::BTreeSet;

/// The page.
pub fn render(s: &Summary, summary_md: &str) -> anyhow::Result<String> {
    let x_max = s.elapsed_s.max(s.run.planned_s);
    let shade = match (s.chaos.set_at_s, s.chaos.cleared_at_s, s.run.chaos_window_s) {
        (Some(from), Some(until), _) => Some((from, until)),
        (Some(from), None, Some((_, until))) => Some((from, until)),
        (_, _, planned) => planned,
    };
    let per_s = |n: u64| n as f64 / s.bucket_s;
    let mid = |start: f64| start + s.bucket_s / 2.0;

    let throughput = Chart {
        title: "Throughput",
        y_label: "per second",
        x_max,
        lines: vec![
            Line {
                name: "responses/s".into(),
                points: s
                    .timeline
                    .iter()
                    .map(|b| (mid(b.start_s), per_s(b.requests)))
                    .collect(),
                color: PALETTE[0],
            },
            Line {
                name: "scheduled iterations/s".into(),
                points: s.run.planned_rate.clone(),
                color: PALETTE[7],
            },
        ],
        shade,
        log_y: false,
    };
    let latency = Chart {
        title: "Latency from the intended start",
        y_label: "ms (log scale)",
        x_max,
        lines: [
            ("p99", 3, (|p| p.p99) as fn(&Percentiles) -> f64),
            ("p95", 1, |p| p.p95),
            ("p50", 0, |p| p.p50),
        ]
        .into_iter()
        .map(|(name, color, value)| Line {
            name: name.into(),
            points: s
                .timeline
                .iter()
                .map(|b| (mid(b.start_s), value(&b.latency_ms)))
                .collect(),
            color: PALETTE[color],
        })
        .collect(),
        shade,
        log_y: true,
    };
    let codes: BTreeSet<u16> = s
        .timeline
        .iter()
        .flat_map(|b| b.statuses.keys().copied())
        .collect();
    let statuses = Chart {
        title: "Responses by status",
        y_label: "per second",
        x_max,
        lines: codes
            .iter()
            .enumerate()
            .map(|(i, code)| Line {
                name: if *code == 0 {
                    "no response".into()
                } else {
                    code.to_string()
                },
                points: s
                    .timeline
                    .iter()
                    .map(|b| {
                        (
                            mid(b.start_s),
                            per_s(b.statuses.get(code).copied().unwrap_or(0)),
                        )
                    })
                    .collect(),
                color: PALETTE[i % PALETTE.len()],
            })
            .collect(),
        shade,
        log_y: false,
    };
    let tools: BTreeSet<&String> = s
        .samples
        .iter()
        .flat_map(|m| m.breaker_state.keys())
        .collect();
    let breakers = Chart {
        title: "Circuit breakers (0 closed, 1 half-open, 2 open; lines offset per tool)",
        y_label: "state",
        x_max,
        lines: tools
            .iter()
            .enumerate()
            .map(|(i, tool)| Line {
                name: (*tool).clone(),
                // Each tool's line is lifted a little, so that tools in the same state do
                // not hide one another.
                points: s
                    .samples
                    .iter()
                    .map(|m| {
                        let state = m.breaker_state.get(*tool).copied().unwrap_or(0.0);
                        (m.at_s, state + BREAKER_LINE_OFFSET * i as f64)
                    })
                    .collect(),
                color: PALETTE[i % PALETTE.len()],
            })
            .collect(),
        shade,
        log_y: false,
    };
    let rate = |f: fn(&crate::load::runner::MetricsSample) -> f64| -> Vec<(f64, f64)> {
        s.samples
            .windows(2)
            .map(|w| {
                (
                    w[1].at_s,
                    (f(&w[1]) - f(&w[0])).max(0.0) / (w[1].at_s - w[0].at_s).max(1e-3),
                )
            })
            .collect()
    };
    let faults = Chart {
        title: "Breaker fast-fails and chaos injections",
        y_label: "per second",
        x_max,
        lines: vec![
            Line {
                name: "fast-fails/s".into(),
                points: rate(|m| m.fastfail_total),
                color: PALETTE[3],
            },
            Line {
                name: "chaos faults/s".into(),
                points: rate(|m| m.chaos_injections_total),
                color: PALETTE[4],
            },
        ],
        shade,
        log_y: false,
    };

    let mut charts = String::new();
    for chart in [&throughput, &latency, &statuses, &breakers, &faults] {
        charts.push_str("<figure>");
        charts.push_str(&chart.to_svg()?);
        charts.push_str("</figure>\n");
    }
    // The page has its own title: the summary's first heading would repeat it.
    let body = match summary_md.strip_prefix("# ") {
        Some(rest) => rest.split_once('\n').map_or("", |(_, after)| after),
        None => summary_md,
    };
    let mut tables = String::new();
    pulldown_cmark::html::push_html(
        &mut tables,
        pulldown_cmark::Parser::new_ext(body, pulldown_cmark::Options::ENABLE_TABLES),
    );
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Load report: {name}</title><style>{STYLE}</style></head><body>\n\
         <h1>Load report: {name}</h1>\n{charts}<section>{tables}</section>\n</body></html>\n",
        name = escape(&s.run.scenario),
    ))
}

/// Vertical offset between the breaker lines of two tools.
const BREAKER_LINE_OFFSET: f64 = 0.05;

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
figure{margin:1em 0}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}th{background:#f3f3f3}";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
