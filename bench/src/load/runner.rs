//! The open-model driver: one task starts each iteration at its scheduled time, whatever the
//! gateway is doing; an iteration runs its flow's steps in order (each timed from when it was
//! meant to start: the arrival for the first, the end of the previous step for the others);
//! a monitor samples `/metrics` for the breaker plots; the chaos window is set and cleared
//! through the admin API at its offsets.

use crate::load::mix::Mix;
use crate::load::record::{Outcome, Recorder, NO_RESPONSE};
use crate::load::scenario::{Scenario, Step};
use crate::load::schedule::Schedule;
use crate::load::setup::ReadyAgent;
use crate::metrics_text::Snapshot;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What a run needs besides the scenario.
pub struct Driver {
    /// HTTP client (timeout from the scenario).
    pub client: reqwest::Client,
    /// Base URL of the gateway.
    pub base: String,
    /// Admin key (chaos window, metrics).
    pub admin_key: String,
    /// Agents by scenario key.
    pub agents: BTreeMap<String, ReadyAgent>,
    /// Seed of the mix.
    pub seed: u64,
    /// Iterations in flight beyond which a new one is dropped (and counted).
    pub max_in_flight: usize,
    /// Width of a timeline bucket, and the metrics sampling period.
    pub bucket_width: Duration,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// One `/metrics` sample taken during the run.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSample {
    /// Offset from the start of the load, s.
    pub at_s: f64,
    /// `gateway_breaker_state` by tool (0 closed, 1 half-open, 2 open).
    pub breaker_state: BTreeMap<String, f64>,
    /// `gateway_breaker_fastfail_total`, all tools.
    pub fastfail_total: f64,
    /// `gateway_chaos_injections_total`, all labels.
    pub chaos_injections_total: f64,
}

/// When the chaos rule was really set and cleared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChaosEvents {
    /// Offset at which the rule was set, s.
    pub set_at_s: Option<f64>,
    /// Offset at which it was cleared, s.
    pub cleared_at_s: Option<f64>,
    /// An admin call that failed.
    pub error: Option<String>,
}

/// Everything the run saw.
pub struct RunOutput {
    /// Outcomes folded.
    pub recorder: Recorder,
    /// Iterations started.
    pub iterations: u64,
    /// Iterations not started because too many were in flight.
    pub dropped: u64,
    /// Requests that got no response, by error kind.
    pub transport_errors: BTreeMap<String, u64>,
    /// `/metrics` before the load, half-way, and after the last response.
    pub before: Snapshot,
    /// Half-way snapshot.
    pub during: Option<Snapshot>,
    /// After the last response.
    pub after: Snapshot,
    /// Raw pages of the three snapshots, to keep in the report folder.
    pub raw: [String; 3],
    /// The monitor's samples.
    pub samples: Vec<MetricsSample>,
    /// The chaos window as it happened.
    pub chaos: ChaosEvents,
    /// Wall time from the first scheduled start to the last response.
    pub elapsed: Duration,
}

struct Shared {
    recorder: Mutex<Recorder>,
    transport_errors: Mutex<BTreeMap<String, u64>>,
    in_flight: AtomicUsize,
    started: AtomicU64,
    finished: AtomicBool,
}

/// Fetches `/metrics`.
pub async fn fetch_metrics(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let response = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .context("GET /metrics")?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET /metrics answered {}",
        response.status()
    );
    Ok(response.text().await?)
}

/// Runs the scenario's load to the end and returns what it saw.
pub async fn run(scenario: &Scenario, driver: Driver) -> anyhow::Result<RunOutput> {
    let schedule = Schedule::new(&scenario.load);
    let steps: Vec<&Step> = scenario.steps().collect();
    let recorder = Recorder::new(
        steps
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.tool.clone(),
                    s.action.clone(),
                    s.expect.clone(),
                )
            })
            .collect(),
        driver.bucket_width,
    );
    let shared = Arc::new(Shared {
        recorder: Mutex::new(recorder),
        transport_errors: Mutex::new(BTreeMap::new()),
        in_flight: AtomicUsize::new(0),
        started: AtomicU64::new(0),
        finished: AtomicBool::new(false),
    });
    let driver = Arc::new(driver);
    let before_raw = fetch_metrics(&driver.client, &driver.base).await?;
    let before = Snapshot::parse(&before_raw)?;

    let bar = progress_bar(driver.progress, schedule.expected_iterations());
    let start = Instant::now() + Duration::from_millis(50);
    let total = schedule.duration();
    let monitor = tokio::spawn(monitor(
        Arc::clone(&driver),
        Arc::clone(&shared),
        start,
        total,
    ));
    let chaos = tokio::spawn(chaos_window(
        Arc::clone(&driver),
        scenario.chaos.clone(),
        start,
    ));
    let ticker = tokio::spawn(tick_progress(Arc::clone(&shared), bar.clone(), start));

    // Step indices per flow and for the probes, in `steps` order.
    let mut index = 0;
    let flows: Vec<Vec<usize>> = scenario
        .flows
        .iter()
        .map(|f| {
            let ids = (index..index + f.steps.len()).collect();
            index += f.steps.len();
            ids
        })
        .collect();
    let probes: Vec<usize> = (index..index + scenario.probes.len()).collect();
    let steps: Arc<Vec<Step>> = Arc::new(steps.into_iter().cloned().collect());

    let mut mix = Mix::new(
        &scenario.flows.iter().map(|f| f.weight).collect::<Vec<_>>(),
        driver.seed,
    );
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut dropped = 0;
    for (iteration, offset) in (0u64..).zip(schedule.arrivals()) {
        // Draw the iteration's path before its start, so the draws do not depend on timing.
        let flow = mix.pick();
        let mut plan: Vec<(usize, Value)> = Vec::new();
        for &id in flows[flow].iter().chain(&probes) {
            if mix.chance(steps[id].probability) {
                plan.push((id, render(&steps[id].params, mix.number(), iteration)));
            }
        }
        crate::clock::wait_until(start + offset).await;
        if shared.in_flight.load(Ordering::Relaxed) >= driver.max_in_flight {
            dropped += 1;
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        shared.started.fetch_add(1, Ordering::Relaxed);
        let (shared, driver, steps, done) = (
            Arc::clone(&shared),
            Arc::clone(&driver),
            Arc::clone(&steps),
            done_tx.clone(),
        );
        tokio::spawn(async move {
            let mut intended = start + offset;
            for (id, params) in plan {
                let step = &steps[id];
                let (status, cache_hit, error) = send(&driver, step, params).await;
                let ended = Instant::now();
                if let Some(kind) = error {
                    *shared
                        .transport_errors
                        .lock()
                        .unwrap()
                        .entry(kind)
                        .or_default() += 1;
                }
                shared.recorder.lock().unwrap().add(Outcome {
                    step: id,
                    intended_start: intended - start,
                    latency: ended - intended,
                    status,
                    cache_hit,
                });
                intended = ended;
            }
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(done);
        });
    }
    drop(done_tx);
    let _ = done_rx.recv().await; // every iteration has ended
    let elapsed = start.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    shared.finished.store(true, Ordering::Relaxed);
    let samples = monitor.await.unwrap_or_default();
    let chaos = chaos.await.unwrap_or_default();
    ticker.await.ok();
    let after_raw = fetch_metrics(&driver.client, &driver.base).await?;
    let after = Snapshot::parse(&after_raw)?;

    let shared =
        Arc::try_unwrap(shared).map_err(|_| anyhow::anyhow!("iterations still running"))?;
    let (during_raw, samples) = samples;
    let during = during_raw.as_deref().map(Snapshot::parse).transpose()?;
    Ok(RunOutput {
        recorder: shared.recorder.into_inner().unwrap(),
        iterations: shared.started.into_inner(),
        dropped,
        transport_errors: shared.transport_errors.into_inner().unwrap(),
        before,
        during,
        after,
        raw: [before_raw, during_raw.unwrap_or_default(), after_raw],
        samples,
        chaos,
        elapsed,
    })
}

/// Replaces `{rand}` and `{iteration}` in every string of `params`.
pub fn render(params: &Value, number: u32, iteration: u64) -> Value {
    match params {
        Value::String(s) if s.contains('{') => Value::String(
            s.replace("{rand}", &number.to_string())
                .replace("{iteration}", &iteration.to_string()),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| render(v, number, iteration)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, number, iteration)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Sends one step; returns (status, served from cache, transport error kind).
async fn send(driver: &Driver, step: &Step, params: Value) -> (u16, bool, Option<String>) {
    let body = json!({
        "agent_token": driver.agents[&step.agent].token,
        "tool": step.tool, "action": step.action, "params": params,
    });
    let result = driver
        .client
        .post(format!("{}/api/proxy-request", driver.base))
        .json(&body)
        .send()
        .await;
    let response = match result {
        Ok(r) => r,
        Err(e) => return (NO_RESPONSE, false, Some(error_kind(&e))),
    };
    let status = response.status().as_u16();
    let hit = response
        .headers()
        .get("x-cache")
        .is_some_and(|v| v == "HIT");
    match response.bytes().await {
        Ok(_) => (status, hit, None),
        Err(e) => (NO_RESPONSE, false, Some(error_kind(&e))),
    }
}

fn error_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "other".into()
    }
}

/// Samples `/metrics` every bucket width; keeps the page nearest to half-way.
async fn monitor(
    driver: Arc<Driver>,
    shared: Arc<Shared>,
    start: Instant,
    total: Duration,
) -> (Option<String>, Vec<MetricsSample>) {
    let mut samples = Vec::new();
    let mut during = None;
    let mut interval = tokio::time::interval_at(start, driver.bucket_width);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if shared.finished.load(Ordering::Relaxed) {
            return (during, samples);
        }
        let at = start.elapsed();
        let Ok(page) = fetch_metrics(&driver.client, &driver.base).await else {
            continue;
        };
        let Ok(snapshot) = Snapshot::parse(&page) else {
            continue;
        };
        samples.push(MetricsSample {
            at_s: at.as_secs_f64(),
            breaker_state: snapshot
                .series("gateway_breaker_state", &[])
                .filter_map(|(labels, v)| Some((labels.get("tool")?.clone(), v)))
                .collect(),
            fastfail_total: snapshot.sum("gateway_breaker_fastfail_total", &[]),
            chaos_injections_total: snapshot.sum("gateway_chaos_injections_total", &[]),
        });
        if during.is_none() && at >= total / 2 {
            during = Some(page);
        }
    }
}

/// Sets the chaos rule at `from` and clears it at `until`.
async fn chaos_window(
    driver: Arc<Driver>,
    window: Option<crate::load::scenario::ChaosWindow>,
    start: Instant,
) -> ChaosEvents {
    let mut events = ChaosEvents::default();
    let Some(window) = window else {
        return events;
    };
    tokio::time::sleep_until(start + window.from).await;
    let set = driver
        .client
        .post(format!("{}/api/admin/chaos/tool", driver.base))
        .bearer_auth(&driver.admin_key)
        .json(&window.rule)
        .send()
        .await;
    match set {
        Ok(r) if r.status().is_success() => events.set_at_s = Some(start.elapsed().as_secs_f64()),
        Ok(r) => {
            events.error = Some(format!("setting the chaos rule: {}", r.status()));
            return events;
        }
        Err(e) => {
            events.error = Some(format!("setting the chaos rule: {e}"));
            return events;
        }
    }
    tokio::time::sleep_until(start + window.until).await;
    let tool = window.rule["tool"].as_str().unwrap_or("*");
    let clear = driver
        .client
        .delete(format!(
            "{}/api/admin/chaos/tool/{}",
            driver.base,
            encode_tool(tool)
        ))
        .bearer_auth(&driver.admin_key)
        .send()
        .await;
    match clear {
        Ok(r) if r.status().is_success() => {
            events.cleared_at_s = Some(start.elapsed().as_secs_f64())
        }
        Ok(r) => events.error = Some(format!("clearing the chaos rule: {}", r.status())),
        Err(e) => events.error = Some(format!("clearing the chaos rule: {e}")),
    }
    events
}

/// `*` in a path segment, percent-encoded.
fn encode_tool(tool: &str) -> String {
    tool.replace('*', "%2A")
}

fn progress_bar(show: bool, iterations: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(iterations);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} iterations  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Updates the bar's position and message four times a second.
async fn tick_progress(shared: Arc<Shared>, bar: ProgressBar, start: Instant) {
    let mut last = (0u64, start);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (requests, failed, p99) = {
            let r = shared.recorder.lock().unwrap();
            (r.requests(), r.failed(), r.overall().p99)
        };
        let now = Instant::now();
        let rate = (requests - last.0) as f64 / (now - last.1).as_secs_f64().max(1e-3);
        last = (requests, now);
        bar.set_position(shared.started.load(Ordering::Relaxed));
        bar.set_message(format!(
            "{rate:>6.0} req/s  {failed} failed checks  p99 {p99:.1} ms  in flight {}",
            shared.in_flight.load(Ordering::Relaxed)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_placeholders_everywhere() {
        let params = json!({"q": "bench {rand}", "n": 3, "list": ["{iteration}", "x"], "nested": {"s": "{rand}-{iteration}"}});
        let out = render(&params, 42, 7);
        assert_eq!(
            out,
            json!({"q": "bench 42", "n": 3, "list": ["7", "x"], "nested": {"s": "42-7"}})
        );
    }
}
