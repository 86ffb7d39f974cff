//! Asking the live set: a request's policies (and a dry run of them), its chaos rules, its
//! response filters; each call in a slot of its binding, timed, counted, and a binding whose
//! uploaded version that keeps failing for several agents quarantined.

use super::super::bindings::{Decision, Fault};
use super::super::call_data::CallData;
use super::super::counters::Counters;
use super::super::manifest::FailMode;
use super::super::plugin_config::PluginConfig;
use super::super::sandbox::CallContext;
use super::super::{CallFailure, FailureKind, World};
use super::binding::{Binding, BindingSeries, PluginSet, Source};
use super::outcomes::{PolicyOutcome, ReloadFailure};
use super::shadow::Verdict;
use super::{PluginRegistry, QUARANTINE_AFTER_FAILURES, QUARANTINE_DISTINCT_AGENTS};
use crate::store::plugin_shadows::Disagreement;
use crate::store::policies::PolicyLogRow;
use chrono::Utc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

impl PluginRegistry {
    /// Runs `call` in a slot of `binding` (counted in `gateway_plugin_calls_in_flight`
    /// while it runs); the busy failure when no slot frees up within a call's wall limit.
    async fn in_slot<T>(
        &self,
        binding: &Binding,
        call: impl std::future::Future<Output = Result<T, CallFailure>>,
    ) -> Result<T, CallFailure> {
        let _running = binding
            .slots
            .take(
                binding.invoker.wall_limit(),
                &self.metrics.plugin_calls_in_flight,
            )
            .await?;
        call.await
    }

    fn call_context(
        &self,
        binding: &Binding,
        config: PluginConfig,
        call: &Arc<CallData>,
        counters: &Counters,
    ) -> CallContext {
        CallContext {
            plugin: Arc::clone(&binding.label),
            call: Arc::clone(call),
            attempt: 0,
            config,
            counters: counters.clone(),
        }
    }

    fn record_failure(&self, binding: &Binding, failure: &CallFailure, call: &CallData) {
        if failure.kind == FailureKind::Busy {
            // Overload, counted below: a line per refused call would flood the log.
            tracing::debug!(plugin = %binding.name, error = %failure.message, "plugin busy");
        } else {
            tracing::warn!(plugin = %binding.name, kind = failure.kind.as_str(), error = %failure.message,
                fail = ?binding.fail, agent_id = %call.agent_id, "plugin call failed");
        }
        self.metrics
            .plugin_failures
            .with_label_values(&[&binding.name, failure.kind.as_str()])
            .inc();
        self.series(binding).failure.inc();
        if failure.kind != FailureKind::Busy {
            let in_a_row = binding
                .health
                .failures_in_a_row
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            let now_ms = self.clock().now_ms();
            let met = binding
                .health
                .streak
                .lock()
                .fails(&call.agent_id, in_a_row, now_ms);
            if met {
                self.quarantine(binding, failure, call);
            }
        }
    }

    /// Quarantines an uploaded version that keeps failing for several agents, once per
    /// loaded version: an error line, `gateway_plugin_quarantines_total` (which the
    /// `GatewayPluginQuarantined` alert watches), `last_quarantine` in
    /// `GET /api/admin/plugins` and a `quarantine` row in the audit's policy log. The version
    /// is rolled back only when its binding sets `min_version`, and never below it: in the
    /// database, so that the change feed reloads every instance; the retired version keeps
    /// its bytes. Without a floor it stays live and its calls fail as its `fail` mode says,
    /// until an operator acts: no call an agent makes can bring an older version back.
    fn quarantine(&self, binding: &Binding, failure: &CallFailure, call: &CallData) {
        let (Source::Upload(version), Some(store)) = (binding.source, &self.store) else {
            return;
        };
        if binding.health.quarantined.swap(true, Ordering::Relaxed) {
            return;
        }
        let floor = binding.spec.min_version;
        let action = match floor {
            Some(floor) => format!(
                "rolled back to the version before it, if that is {floor} or later (min_version)"
            ),
            None => {
                "kept live, as no min_version allows a rollback: roll back or fix it by hand".into()
            }
        };
        let message = format!(
            "uploaded plugin {} version {version} failed {QUARANTINE_AFTER_FAILURES} calls in a row \
             from {QUARANTINE_DISTINCT_AGENTS} agents (last: {}: {}); {action}",
            binding.name,
            failure.kind.as_str(),
            failure.message
        );
        tracing::error!(plugin = %binding.name, version, "{message}");
        *self.last_quarantine.lock() = Some(ReloadFailure {
            at: Utc::now(),
            error: message.clone(),
        });
        self.metrics
            .plugin_quarantines
            .with_label_values(&[&binding.name])
            .inc();
        let event = PolicyLogRow {
            id: uuid::Uuid::now_v7().to_string(),
            policy_id: Some(binding.name.clone()),
            agent_id: call.agent_id.clone(),
            tool: call.tool.clone(),
            action: call.action.clone(),
            decision: "quarantine".into(),
            reason: Some(message),
            request_data: serde_json::to_string(&serde_json::json!({
                "correlation_id": call.correlation_id,
                "upload_version": version,
            }))
            .ok(),
            response_data: None,
            created_at: store.now_ms(),
        };
        let (store, name) = (store.clone(), binding.name.clone());
        tokio::spawn(async move {
            if let Err(e) = store.insert_audit_batch(&[], &[event]).await {
                tracing::error!(plugin = %name, error = %e, "quarantine: its audit row could not be written");
            }
            let Some(floor) = floor else {
                return;
            };
            match store
                .rollback_plugin_upload(&name, Some(version), Some(floor))
                .await
            {
                Ok(Some(rolled_back)) => {
                    tracing::warn!(plugin = %name, version = rolled_back.live, "quarantine: earlier version live again")
                }
                Ok(None) => {
                    tracing::warn!(plugin = %name, min_version = floor, "quarantine: no earlier version at or above min_version, or already rolled back; the failing version stays")
                }
                Err(e) => {
                    tracing::error!(plugin = %name, error = %e, "quarantine: the rollback failed")
                }
            }
        });
    }

    /// Notes a call of `binding` that answered.
    fn succeeded(binding: &Binding) {
        binding.health.failures_in_a_row.store(0, Ordering::Relaxed);
    }

    pub(super) fn series<'b>(&self, binding: &'b Binding) -> &'b BindingSeries {
        binding
            .series
            .get_or_init(|| BindingSeries::new(&self.metrics, &binding.name))
    }

    fn observe(&self, binding: &Binding, started: Instant) {
        self.series(binding)
            .duration
            .observe(started.elapsed().as_secs_f64());
    }

    /// Runs every policy bound to the call's tool and role. `policy_config` is the documents
    /// of bindings with `config_from = "policies"`.
    pub async fn evaluate(
        &self,
        set: &PluginSet,
        call: &Arc<CallData>,
        policy_config: Option<&PluginConfig>,
    ) -> PolicyOutcome {
        self.evaluate_counting(set, call, policy_config, &self.counters)
            .await
    }

    /// [`PluginRegistry::evaluate`] as a dry run: the policies read the real counters but
    /// their additions are forgotten, so asking consumes no quota.
    pub async fn evaluate_dry_run(
        &self,
        set: &PluginSet,
        call: &Arc<CallData>,
        policy_config: Option<&PluginConfig>,
    ) -> PolicyOutcome {
        let counters = self.counters.dry_run();
        self.evaluate_counting(set, call, policy_config, &counters)
            .await
    }

    async fn evaluate_counting(
        &self,
        set: &PluginSet,
        call: &Arc<CallData>,
        policy_config: Option<&PluginConfig>,
        counters: &Counters,
    ) -> PolicyOutcome {
        // A dry run's denials are answers to an operator, not denials of traffic.
        let denials = (!counters.is_dry_run()).then_some(&self.metrics.policy_denials);
        let mut filters = Vec::new();
        for (index, binding) in set.applicable_indexed(World::Policy, &call.tool, &call.agent_role)
        {
            let config = binding.config(policy_config, None);
            let started = Instant::now();
            let result = self
                .in_slot(
                    binding,
                    binding
                        .invoker
                        .evaluate(self.call_context(binding, config, call, counters)),
                )
                .await;
            self.observe(binding, started);
            if !counters.is_dry_run() {
                self.shadow(binding, &result, call, policy_config);
            }
            match result {
                Ok(Decision::Allow) => {
                    Self::succeeded(binding);
                    self.series(binding).allow.inc();
                }
                Ok(Decision::AllowAndFilter) => {
                    Self::succeeded(binding);
                    self.series(binding).allow.inc();
                    filters.push(index);
                }
                Ok(Decision::Deny(denial)) => {
                    Self::succeeded(binding);
                    self.series(binding).deny.inc();
                    if let Some(denials) = denials {
                        denials
                            .with_label_values(&[&call.tool, &call.action, &denial.code])
                            .inc();
                    }
                    return PolicyOutcome::Deny {
                        binding: binding.name.clone(),
                        code: denial.code,
                        reason: denial.reason,
                    };
                }
                Err(failure) => {
                    self.record_failure(binding, &failure, call);
                    if binding.fail == FailMode::Closed {
                        if let Some(denials) = denials {
                            denials
                                .with_label_values(&[&call.tool, &call.action, "policy_error"])
                                .inc();
                        }
                        return PolicyOutcome::Failed {
                            binding: binding.name.clone(),
                            kind: failure.kind,
                        };
                    }
                }
            }
        }
        PolicyOutcome::Allow { filters }
    }

    /// When `binding` has a shadow candidate that samples this call: judges the call with it
    /// in a task of its own (the answer is already `live`), with the binding's configuration
    /// and read-only counters, and counts whether it agrees; skipped (and counted so) when the
    /// process's shadow budget has no slot or no time left. Never waits, never fails.
    fn shadow(
        &self,
        binding: &Arc<Binding>,
        live: &Result<Decision, CallFailure>,
        call: &Arc<CallData>,
        policy_config: Option<&PluginConfig>,
    ) {
        let Some(shadow) = &binding.shadow else {
            return;
        };
        if !shadow.samples(call.seed) {
            return;
        }
        let series = shadow.series(&self.metrics, &binding.name);
        let Some(permit) = self.shadow_budget.try_start() else {
            series.skipped.inc();
            return;
        };
        let series = series.clone();
        let live = verdict(live);
        let context = CallContext {
            plugin: Arc::clone(&binding.label),
            call: Arc::clone(call),
            attempt: 0,
            config: binding.config(policy_config, None),
            counters: self.counters.dry_run(),
        };
        let binding = Arc::clone(binding);
        let log = self.disagreements.clone();
        let call = Arc::clone(call);
        let budget = Arc::clone(&self.shadow_budget);
        let clock = self.clock();
        tokio::spawn(async move {
            let _running = permit;
            let Some(shadow) = &binding.shadow else {
                return;
            };
            let started = Instant::now();
            let answer = shadow.invoker.evaluate(context).await;
            budget.charge(started.elapsed());
            let candidate = verdict(&answer);
            match &candidate {
                Verdict::Failed => return series.error.inc(),
                candidate if *candidate == live => return series.agree.inc(),
                _ => series.disagree.inc(),
            }
            tracing::info!(binding = %binding.name, correlation_id = %call.correlation_id, live = ?live, candidate = ?candidate, "shadow candidate disagrees");
            if let Some(log) = log {
                let (live, live_code) = live.parts();
                let (candidate, candidate_code) = candidate.parts();
                log.record(Disagreement {
                    name: binding.name.clone(),
                    candidate_sha256: shadow.invoker.plugin.sha256.clone(),
                    created_at: clock.now_ms(),
                    correlation_id: call.correlation_id.clone(),
                    agent_id: call.agent_id.clone(),
                    tool: call.tool.clone(),
                    action: call.action.clone(),
                    live: live.into(),
                    live_code,
                    candidate: candidate.into(),
                    candidate_code,
                });
            }
        });
    }

    /// Runs the chaos rules bound to the call's tool and role for upstream attempt number
    /// `attempt` (whose seed is the call's plus the attempt: each attempt draws afresh, and
    /// a run is reproducible); the first fault wins. Chaos fails open: a failing plugin
    /// injects nothing. `chaos_rules` is the configuration of bindings with
    /// `config_from = "chaos_rules"`.
    pub async fn inject(
        &self,
        set: &PluginSet,
        call: &Arc<CallData>,
        chaos_rules: &PluginConfig,
        attempt: u32,
    ) -> Option<Fault> {
        for binding in set.applicable(World::Chaos, &call.tool, &call.agent_role) {
            let config = binding.config(None, Some(chaos_rules));
            let started = Instant::now();
            let result = self
                .in_slot(
                    binding,
                    binding.invoker.inject(CallContext {
                        attempt,
                        ..self.call_context(binding, config, call, &self.counters)
                    }),
                )
                .await;
            self.observe(binding, started);
            match result {
                Ok(Fault::None) => {
                    Self::succeeded(binding);
                    self.series(binding).none.inc();
                }
                Ok(fault) => {
                    Self::succeeded(binding);
                    self.series(binding).fault.inc();
                    self.metrics
                        .chaos_injections
                        .with_label_values(&[&call.tool, fault_label(&fault)])
                        .inc();
                    return Some(fault);
                }
                Err(failure) => self.record_failure(binding, &failure, call),
            }
        }
        None
    }

    /// Runs the response filters of the bindings that asked for them (`filters`, from
    /// [`PolicyOutcome::Allow`]), in order, over a successful response. Returns the
    /// filtered JSON, or `None` when no filter changed it. A failing filter is skipped when
    /// the binding fails open, and withholds the response (`Err`) when it fails closed.
    pub async fn filter_response(
        &self,
        set: &PluginSet,
        filters: &[usize],
        call: &Arc<CallData>,
        policy_config: Option<&PluginConfig>,
        response: &serde_json::Value,
    ) -> Result<Option<String>, PolicyOutcome> {
        // The response as JSON text, written when a filter first needs it.
        let mut text: Option<String> = None;
        let mut changed = false;
        for binding in filters.iter().filter_map(|i| set.bindings.get(*i)) {
            let config = binding.config(policy_config, None);
            let current: &str = text.get_or_insert_with(|| response.to_string());
            let started = Instant::now();
            let result = self
                .in_slot(
                    binding,
                    binding.invoker.filter_response(
                        self.call_context(binding, config, call, &self.counters),
                        current,
                    ),
                )
                .await;
            self.observe(binding, started);
            match result {
                Ok(filtered) => {
                    Self::succeeded(binding);
                    self.series(binding).filtered.inc();
                    if let Some(filtered) = filtered {
                        text = Some(filtered);
                        changed = true;
                    }
                }
                Err(failure) => {
                    self.record_failure(binding, &failure, call);
                    if binding.fail == FailMode::Closed {
                        return Err(PolicyOutcome::Failed {
                            binding: binding.name.clone(),
                            kind: failure.kind,
                        });
                    }
                }
            }
        }
        Ok(text.filter(|_| changed))
    }
}

/// What a policy call said, for the shadow comparison.
fn verdict(result: &Result<Decision, CallFailure>) -> Verdict {
    match result {
        Ok(Decision::Allow | Decision::AllowAndFilter) => Verdict::Allow,
        Ok(Decision::Deny(denial)) => Verdict::Deny(denial.code.clone()),
        Err(_) => Verdict::Failed,
    }
}

/// Metric label of a fault.
pub fn fault_label(fault: &Fault) -> &'static str {
    match fault {
        Fault::None => "none",
        Fault::Delay(_) => "delay",
        Fault::Error(_) => "error",
        Fault::Timeout => "timeout",
        Fault::DelayThenError(_) => "delay_then_error",
    }
}
