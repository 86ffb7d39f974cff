//! What the load saw: every request's outcome, folded into totals per step, per
//! (tool, action, status) for the cross-check with the gateway's counters, and a timeline of
//! fixed-width buckets (requests, statuses, latency percentiles) for the plots.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Status recorded when no HTTP response came back (timeout, refused connection).
pub const NO_RESPONSE: u16 = 0;

/// One request's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Index of the step in the scenario's step list.
    pub step: usize,
    /// When the request was meant to start, from the start of the load.
    pub intended_start: Duration,
    /// From the intended start to the end of the response.
    pub latency: Duration,
    /// HTTP status, or [`NO_RESPONSE`].
    pub status: u16,
    /// The gateway answered from its cache (`X-Cache: HIT`).
    pub cache_hit: bool,
}

/// Totals of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepTotals {
    /// Step name.
    pub name: String,
    /// Tool called.
    pub tool: String,
    /// Action called.
    pub action: String,
    /// Requests sent.
    pub requests: u64,
    /// Requests whose status was in the step's `expect` list.
    pub passed: u64,
    /// The others.
    pub failed: u64,
    /// Requests by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Answers served from the gateway's cache.
    pub cache_hits: u64,
    /// Latency percentiles, ms.
    pub latency_ms: Percentiles,
}

/// Latency percentiles in ms.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// One bucket of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Start of the bucket, s from the start of the load.
    pub start_s: f64,
    /// Requests that ended in it.
    pub requests: u64,
    /// Those requests by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Their latency percentiles.
    pub latency_ms: Percentiles,
}

struct Step {
    name: String,
    tool: String,
    action: String,
    expect: Vec<u16>,
}

/// Folds outcomes as they arrive.
pub struct Recorder {
    steps: Vec<Step>,
    per_step: Vec<(BTreeMap<u16, u64>, u64, Histogram<u64>)>,
    all: Histogram<u64>,
    failed: u64,
    bucket_width: Duration,
    timeline: Vec<(BTreeMap<u16, u64>, Histogram<u64>)>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

impl Recorder {
    /// A recorder for steps given as (name, tool, action, expected statuses).
    pub fn new(steps: Vec<(String, String, String, Vec<u16>)>, bucket_width: Duration) -> Self {
        let per_step = steps
            .iter()
            .map(|_| (BTreeMap::new(), 0, histogram()))
            .collect();
        Self {
            steps: steps
                .into_iter()
                .map(|(name, tool, action, expect)| Step {
                    name,
                    tool,
                    action,
                    expect,
                })
                .collect(),
            per_step,
            all: histogram(),
            failed: 0,
            bucket_width: bucket_width.max(Duration::from_millis(10)),
            timeline: Vec::new(),
        }
    }

    /// Adds one outcome.
    pub fn add(&mut self, o: Outcome) {
        let micros = (o.latency.as_micros() as u64).clamp(1, 600_000_000);
        if !self.steps[o.step].expect.contains(&o.status) {
            self.failed += 1;
        }
        let (statuses, hits, h) = &mut self.per_step[o.step];
        *statuses.entry(o.status).or_default() += 1;
        *hits += u64::from(o.cache_hit);
        h.record(micros)
            .expect("clamped into the histogram's range");
        self.all.record(micros).expect("clamped");
        let end = o.intended_start + o.latency;
        let index = (end.as_secs_f64() / self.bucket_width.as_secs_f64()) as usize;
        if self.timeline.len() <= index {
            self.timeline
                .resize_with(index + 1, || (BTreeMap::new(), histogram()));
        }
        let (statuses, h) = &mut self.timeline[index];
        *statuses.entry(o.status).or_default() += 1;
        h.record(micros).expect("clamped");
    }

    /// Totals per step, in the scenario's order.
    pub fn steps(&self) -> Vec<StepTotals> {
        self.steps
            .iter()
            .zip(&self.per_step)
            .map(|(step, (statuses, hits, h))| {
                let requests = statuses.values().sum();
                let passed = statuses
                    .iter()
                    .filter(|(s, _)| step.expect.contains(s))
                    .map(|(_, n)| n)
                    .sum();
                StepTotals {
                    name: step.name.clone(),
                    tool: step.tool.clone(),
                    action: step.action.clone(),
                    requests,
                    passed,
                    failed: requests - passed,
                    statuses: statuses.clone(),
                    cache_hits: *hits,
                    latency_ms: Percentiles::of(h),
                }
            })
            .collect()
    }

    /// Requests by (tool, action, status), answered ones only: what the gateway counted.
    pub fn by_tool_action_status(&self) -> BTreeMap<(String, String, u16), u64> {
        let mut out = BTreeMap::new();
        for (step, (statuses, _, _)) in self.steps.iter().zip(&self.per_step) {
            for (&status, &n) in statuses.iter().filter(|(s, _)| **s != NO_RESPONSE) {
                *out.entry((step.tool.clone(), step.action.clone(), status))
                    .or_default() += n;
            }
        }
        out
    }

    /// Latency percentiles of every request.
    pub fn overall(&self) -> Percentiles {
        Percentiles::of(&self.all)
    }

    /// Requests whose status failed their step's check.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Requests sent in all.
    pub fn requests(&self) -> u64 {
        self.all.len()
    }

    /// The timeline, one bucket per `bucket_width`.
    pub fn timeline(&self) -> Vec<Bucket> {
        self.timeline
            .iter()
            .enumerate()
            .map(|(i, (statuses, h))| Bucket {
                start_s: i as f64 * self.bucket_width.as_secs_f64(),
                requests: statuses.values().sum(),
                statuses: statuses.clone(),
                latency_ms: Percentiles::of(h),
            })
            .collect()
    }

    /// Width of a timeline bucket.
    pub fn bucket_width(&self) -> Duration {
        self.bucket_width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder {
        Recorder::new(
            vec![
                (
                    "search".into(),
                    "serpapi".into(),
                    "search".into(),
                    vec![200],
                ),
                (
                    "probe".into(),
                    "gmail_send".into(),
                    "send".into(),
                    vec![403],
                ),
            ],
            Duration::from_secs(1),
        )
    }

    fn outcome(step: usize, start_ms: u64, latency_ms: u64, status: u16) -> Outcome {
        Outcome {
            step,
            intended_start: Duration::from_millis(start_ms),
            latency: Duration::from_millis(latency_ms),
            status,
            cache_hit: false,
        }
    }

    #[test]
    fn checks_count_expected_statuses_per_step() {
        let mut r = recorder();
        r.add(outcome(0, 0, 2, 200));
        r.add(outcome(0, 10, 2, 502));
        r.add(outcome(1, 20, 1, 403));
        r.add(outcome(1, 30, 1, NO_RESPONSE));
        let steps = r.steps();
        assert_eq!(
            (steps[0].requests, steps[0].passed, steps[0].failed),
            (2, 1, 1)
        );
        assert_eq!(
            (steps[1].requests, steps[1].passed, steps[1].failed),
            (2, 1, 1)
        );
        // Requests without a response are not something the gateway counted.
        let by = r.by_tool_action_status();
        assert_eq!(by.values().sum::<u64>(), 3);
        assert_eq!(by[&("gmail_send".into(), "send".into(), 403)], 1);
        assert_eq!(r.requests(), 4);
        assert_eq!(r.failed(), 2);
    }

    #[test]
    fn the_timeline_buckets_by_end_time() {
        let mut r = recorder();
        r.add(outcome(0, 900, 200, 200)); // ends at 1.1 s
        r.add(outcome(0, 100, 100, 200)); // ends at 0.2 s
        r.add(outcome(0, 2_500, 10, 503)); // ends at 2.51 s
        let t = r.timeline();
        assert_eq!(t.len(), 3);
        assert_eq!(t.iter().map(|b| b.requests).collect::<Vec<_>>(), [1, 1, 1]);
        assert_eq!(t[2].statuses[&503], 1);
        assert!((t[1].latency_ms.p99 - 200.0).abs() < 0.5, "{:?}", t[1]);
    }
}
