//! Every refusal of a proxied call, counted by the stage that refused it and its code in
//! `gateway_refusals_total{stage, code}`. The pairs are the [`Refusal`]s that have a stage
//! (the token, its claims, the rate limits, the policies); every pair exists at zero from
//! start. `gateway_policy_denials_total` keeps its own meaning (policy refusals by tool,
//! action and code).

use crate::error::Refusal;
use crate::metrics::Metrics;

/// Counts a call answered with `refusal`, when its stage counts it.
pub fn count(metrics: &Metrics, refusal: Refusal) {
    if let Some(stage) = refusal.stage() {
        metrics
            .proxy
            .refusals
            .with_label_values(&[stage.as_str(), refusal.code()])
            .inc();
    }
}

/// Creates every stage and code at zero.
pub fn create_series(metrics: &Metrics) {
    for (stage, refusal) in Refusal::counted() {
        metrics
            .proxy
            .refusals
            .with_label_values(&[stage.as_str(), refusal.code()]);
    }
}
