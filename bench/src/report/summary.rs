//! The run's summary: what the bench counted, what the gateway's counters say happened
//! (after − before), whether the two agree, and the verdicts the issue asks for (no 5xx,
//! every request accounted for, breakers opened and closed in a chaos run).

use crate::load::record::{Bucket, Percentiles, StepTotals};
use crate::load::runner::{ChaosEvents, MetricsSample, RunOutput};
use crate::metrics_text::{delta, family_delta, histogram_quantile, Snapshot};
use serde::Serialize;
use std::collections::BTreeMap;

/// The families whose change the summary lists.
pub const FAMILIES: &[&str] = &[
    "gateway_requests_total",
    "gateway_request_duration_seconds_count",
    "gateway_policy_denials_total",
    "gateway_cache_hits_total",
    "gateway_cache_misses_total",
    "gateway_retries_total",
    "gateway_breaker_fastfail_total",
    "gateway_rate_limited_total",
    "gateway_token_validations_total",
    "gateway_plugin_evaluations_total",
    "gateway_plugin_failures_total",
    "gateway_chaos_injections_total",
];

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// Scenario name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// UTC start time, RFC 3339.
    pub started_at: String,
    /// `--time-scale`.
    pub time_scale: f64,
    /// `--rate-scale`.
    pub rate_scale: f64,
    /// Seed of the mix.
    pub seed: u64,
    /// What was loaded (a started gateway, or the URL given).
    pub target: String,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// Planned length of the load, s.
    pub planned_s: f64,
    /// The chaos window as planned (from, until), s.
    pub chaos_window_s: Option<(f64, f64)>,
    /// The scheduled arrival rate: (s, iterations/s) at the start and at each stage's end.
    pub planned_rate: Vec<(f64, f64)>,
}

/// One (tool, action, status) row of the cross-check.
#[derive(Debug, Clone, Serialize)]
pub struct CrossCheckRow {
    /// Tool.
    pub tool: String,
    /// Action.
    pub action: String,
    /// HTTP status.
    pub status: u16,
    /// Responses the bench received.
    pub bench: u64,
    /// Change of `gateway_requests_total` for the same labels.
    pub gateway: u64,
}

/// The bench's counts against the gateway's counters.
#[derive(Debug, Clone, Serialize)]
pub struct CrossCheck {
    /// Every row equal, and the cache hits too.
    pub agrees: bool,
    /// One row per (tool, action, status) either side saw.
    pub rows: Vec<CrossCheckRow>,
    /// `X-Cache: HIT` answers the bench received.
    pub bench_cache_hits: u64,
    /// Change of `gateway_cache_hits_total`.
    pub gateway_cache_hits: u64,
}

/// What happened to the breakers.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerStory {
    /// Tools whose breaker was seen open (or half-open) in a sample.
    pub opened: Vec<String>,
    /// Every breaker was closed after the load.
    pub closed_at_end: bool,
}

/// The verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct Verdicts {
    /// No response had a 5xx status.
    pub no_5xx: bool,
    /// Every iteration started, every request got a response, and the counts agree.
    pub all_accounted: bool,
    /// Checks that failed (statuses outside a step's `expect`).
    pub failed_checks: u64,
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Set-up.
    pub run: RunInfo,
    /// Wall time of the load, s.
    pub elapsed_s: f64,
    /// Iterations the schedule asked for.
    pub iterations_scheduled: u64,
    /// Iterations started.
    pub iterations_started: u64,
    /// Iterations dropped (too many in flight).
    pub iterations_dropped: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests per second over the run.
    pub throughput_rps: f64,
    /// CPU time of a gateway the bench started (its threads only), µs per request.
    pub gateway_cpu_us_per_request: Option<f64>,
    /// Responses by status (0: no response).
    pub statuses: BTreeMap<u16, u64>,
    /// Requests without a response, by kind.
    pub transport_errors: BTreeMap<String, u64>,
    /// Latency of every request, ms (from its intended start).
    pub latency_ms: Percentiles,
    /// Totals per step.
    pub steps: Vec<StepTotals>,
    /// Change of each family over the run.
    pub gateway_delta: BTreeMap<String, f64>,
    /// The gateway's own duration percentiles over the run (bucket upper bounds), ms.
    pub gateway_duration_ms: BTreeMap<String, Option<f64>>,
    /// Bench against gateway.
    pub cross_check: CrossCheck,
    /// The chaos window as it happened.
    pub chaos: ChaosEvents,
    /// Breakers.
    pub breakers: BreakerStory,
    /// The verdicts.
    pub verdicts: Verdicts,
    /// Timeline buckets.
    pub timeline: Vec<Bucket>,
    /// Width of a bucket, s.
    pub bucket_s: f64,
    /// `/metrics` samples.
    pub samples: Vec<MetricsSample>,
}

/// Builds the summary of a finished run.
pub fn summarise(run: RunInfo, scheduled: u64, out: &RunOutput) -> Summary {
    let steps = out.recorder.steps();
    let mut statuses = BTreeMap::new();
    for step in &steps {
        for (status, n) in &step.statuses {
            *statuses.entry(*status).or_default() += n;
        }
    }
    let gateway_delta = FAMILIES
        .iter()
        .map(|f| (f.to_string(), family_delta(&out.before, &out.after, f)))
        .collect();
    let gateway_duration_ms = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)]
        .iter()
        .map(|(name, q)| {
            let v = histogram_quantile(
                &out.before,
                &out.after,
                "gateway_request_duration_seconds",
                *q,
            )
            .map(|seconds| seconds * 1000.0);
            (name.to_string(), v.filter(|v| v.is_finite()))
        })
        .collect();
    let cross_check = cross_check(out, &steps);
    let breakers = breaker_story(&out.samples, &out.after);
    let requests = out.recorder.requests();
    let verdicts = Verdicts {
        no_5xx: !statuses.keys().any(|s| *s >= 500),
        all_accounted: out.dropped == 0
            && out.transport_errors.is_empty()
            && cross_check.agrees
            && out.iterations == scheduled,
        failed_checks: out.recorder.failed(),
    };
    Summary {
        run,
        elapsed_s: out.elapsed.as_secs_f64(),
        iterations_scheduled: scheduled,
        iterations_started: out.iterations,
        iterations_dropped: out.dropped,
        requests,
        throughput_rps: requests as f64 / out.elapsed.as_secs_f64().max(1e-9),
        gateway_cpu_us_per_request: None,
        statuses,
        transport_errors: out.transport_errors.clone(),
        latency_ms: out.recorder.overall(),
        steps,
        gateway_delta,
        gateway_duration_ms,
        cross_check,
        chaos: out.chaos.clone(),
        breakers,
        verdicts,
        timeline: out.recorder.timeline(),
        bucket_s: out.recorder.bucket_width().as_secs_f64(),
        samples: out.samples.clone(),
    }
}

fn cross_check(out: &RunOutput, steps: &[StepTotals]) -> CrossCheck {
    let bench = out.recorder.by_tool_action_status();
    let mut gateway: BTreeMap<(String, String, u16), u64> = BTreeMap::new();
    for (labels, v) in delta(&out.before, &out.after, "gateway_requests_total") {
        let (Some(tool), Some(action), Some(code)) =
            (labels.get("tool"), labels.get("action"), labels.get("code"))
        else {
            continue;
        };
        let Ok(code) = code.parse() else { continue };
        if v != 0.0 {
            gateway.insert((tool.clone(), action.clone(), code), v.round() as u64);
        }
    }
    let keys: std::collections::BTreeSet<_> = bench.keys().chain(gateway.keys()).cloned().collect();
    let rows: Vec<CrossCheckRow> = keys
        .into_iter()
        .map(|key| CrossCheckRow {
            bench: bench.get(&key).copied().unwrap_or(0),
            gateway: gateway.get(&key).copied().unwrap_or(0),
            tool: key.0,
            action: key.1,
            status: key.2,
        })
        .collect();
    let bench_cache_hits = steps.iter().map(|s| s.cache_hits).sum();
    let gateway_cache_hits =
        family_delta(&out.before, &out.after, "gateway_cache_hits_total").round() as u64;
    CrossCheck {
        agrees: rows.iter().all(|r| r.bench == r.gateway) && bench_cache_hits == gateway_cache_hits,
        rows,
        bench_cache_hits,
        gateway_cache_hits,
    }
}

fn breaker_story(samples: &[MetricsSample], after: &Snapshot) -> BreakerStory {
    let mut opened: Vec<String> = samples
        .iter()
        .flat_map(|s| s.breaker_state.iter())
        .filter(|(_, state)| **state > 0.0)
        .map(|(tool, _)| tool.clone())
        .collect();
    opened.sort();
    opened.dedup();
    BreakerStory {
        opened,
        closed_at_end: after
            .series("gateway_breaker_state", &[])
            .all(|(_, v)| v == 0.0),
    }
}
