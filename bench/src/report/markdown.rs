//! `summary.md`: the summary as tables a reviewer reads in a terminal or a pull request.

use crate::report::summary::Summary;
use std::fmt::Write;

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "**NO**"
    }
}

fn statuses(map: &std::collections::BTreeMap<u16, u64>) -> String {
    map.iter()
        .map(|(s, n)| {
            if *s == 0 {
                format!("no response ×{n}")
            } else {
                format!("{s} ×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary in Markdown.
pub fn render(s: &Summary) -> String {
    let mut md = String::new();
    let r = &s.run;
    let _ = writeln!(md, "# Load report: {}\n", r.scenario);
    if !r.description.is_empty() {
        let _ = writeln!(md, "{}\n", r.description);
    }
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| started (UTC) | {} |", r.started_at);
    let _ = writeln!(md, "| target | {} |", r.target);
    let _ = writeln!(
        md,
        "| time scale / rate scale | {} / {} |",
        r.time_scale, r.rate_scale
    );
    let _ = writeln!(
        md,
        "| planned / elapsed | {:.1} s / {:.1} s |",
        r.planned_s, s.elapsed_s
    );
    let _ = writeln!(md, "| seed | {} |", r.seed);
    let _ = writeln!(md, "| machine | {} logical CPUs |", r.cpus);

    let v = &s.verdicts;
    let _ = writeln!(md, "\n## Verdicts\n");
    let _ = writeln!(md, "- no 5xx response: {}", yes(v.no_5xx));
    let _ = writeln!(
        md,
        "- every request accounted for: {} (iterations scheduled {}, started {}, dropped {}; requests without a response {}; counts equal to the gateway's: {})",
        yes(v.all_accounted),
        s.iterations_scheduled,
        s.iterations_started,
        s.iterations_dropped,
        s.transport_errors.values().sum::<u64>(),
        yes(s.cross_check.agrees)
    );
    let passed: u64 = s.steps.iter().map(|st| st.passed).sum();
    let _ = writeln!(md, "- checks: {passed} passed, {} failed", v.failed_checks);

    let l = &s.latency_ms;
    let _ = writeln!(md, "\n## Totals\n");
    let _ = writeln!(
        md,
        "{} requests, {:.1} req/s; latency from the intended start: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms.\n",
        s.requests, s.throughput_rps, l.p50, l.p95, l.p99, l.max
    );
    if let Some(cpu) = s.gateway_cpu_us_per_request {
        let _ = writeln!(
            md,
            "Gateway CPU (its threads only): {cpu:.1} µs per request.\n"
        );
    }
    let _ = writeln!(md, "Statuses: {}", statuses(&s.statuses));

    let _ = writeln!(md, "\n## Steps\n");
    let _ = writeln!(md, "| step | call | requests | passed | failed | statuses | cache hits | p50 ms | p95 ms | p99 ms |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---|---:|---:|---:|---:|");
    for st in &s.steps {
        let _ = writeln!(
            md,
            "| {} | {}.{} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            st.name,
            st.tool,
            st.action,
            st.requests,
            st.passed,
            st.failed,
            statuses(&st.statuses),
            st.cache_hits,
            st.latency_ms.p50,
            st.latency_ms.p95,
            st.latency_ms.p99
        );
    }

    let _ = writeln!(md, "\n## Gateway counters (after − before)\n");
    let _ = writeln!(md, "| family | change |\n|---|---:|");
    for (family, d) in &s.gateway_delta {
        let _ = writeln!(md, "| {family} | {d} |");
    }
    let q = |k: &str| {
        s.gateway_duration_ms
            .get(k)
            .copied()
            .flatten()
            .map_or("–".to_string(), |v| format!("≤ {v} ms"))
    };
    let _ = writeln!(
        md,
        "\nThe gateway's own `gateway_request_duration_seconds` over the run, in ms (bucket bounds): p50 {}, p95 {}, p99 {}.",
        q("p50"),
        q("p95"),
        q("p99")
    );

    let c = &s.cross_check;
    let _ = writeln!(
        md,
        "\n## Cross-check: the bench's responses against `gateway_requests_total`\n"
    );
    let _ = writeln!(
        md,
        "| tool | action | status | bench | gateway |\n|---|---|---:|---:|---:|"
    );
    for row in &c.rows {
        let mark = if row.bench == row.gateway { "" } else { " ≠" };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {}{mark} |",
            row.tool, row.action, row.status, row.bench, row.gateway
        );
    }
    let _ = writeln!(
        md,
        "\nCache hits: bench {} (`X-Cache: HIT`), gateway {} (`gateway_cache_hits_total`).",
        c.bench_cache_hits, c.gateway_cache_hits
    );

    if let Some((from, until)) = r.chaos_window_s {
        let ch = &s.chaos;
        let at = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{t:.1} s"));
        let _ = writeln!(md, "\n## Chaos window\n");
        let _ = writeln!(
            md,
            "Planned {from:.1} s – {until:.1} s; rule set at {}, cleared at {}.{}",
            at(ch.set_at_s),
            at(ch.cleared_at_s),
            ch.error
                .as_deref()
                .map(|e| format!(" Error: {e}."))
                .unwrap_or_default()
        );
        let _ = writeln!(
            md,
            "Breakers seen open or half-open: {}; all closed after the load: {}.",
            if s.breakers.opened.is_empty() {
                "none".to_string()
            } else {
                s.breakers.opened.join(", ")
            },
            yes(s.breakers.closed_at_end)
        );
    }
    md
}
