//! Every refusal of a proxied call, counted by the stage that refused it and its code in
//! `gateway_refusals_total{stage, code}`: the token (forged, expired, revoked, suspended
//! agent, a `token_id` naming another token, too many failed authentications), the
//! token's claims (tool or permission not granted), the rate limits, and the policies
//! (denied, failed, busy). Every pair exists at zero from start. `gateway_policy_denials_total`
//! keeps its own meaning (policy refusals by tool, action and code).

use crate::metrics::Metrics;

/// Each refusal's stage and code.
pub const REFUSALS: &[(&str, &str)] = &[
    ("token", "invalid_token"),
    ("token", "token_expired"),
    ("token", "token_revoked"),
    ("token", "agent_not_active"),
    ("token", "token_mismatch"),
    ("token", "too_many_auth_failures"),
    ("claims", "tool_not_granted"),
    ("claims", "permission_not_granted"),
    ("rate_limit", "rate_limited"),
    ("policy", "policy_denied"),
    ("policy", "policy_error"),
    ("policy", "plugin_busy"),
];

/// The stage that answers `code`, when `code` is a refusal.
pub fn stage_of(code: &str) -> Option<&'static str> {
    REFUSALS
        .iter()
        .find(|(_, known)| *known == code)
        .map(|(stage, _)| *stage)
}

/// Counts a call answered with `code`, when it is a refusal.
pub fn count(metrics: &Metrics, code: &str) {
    if let Some(stage) = stage_of(code) {
        metrics
            .proxy
            .refusals
            .with_label_values(&[stage, code])
            .inc();
    }
}

/// Creates every stage and code at zero.
pub fn create_series(metrics: &Metrics) {
    for (stage, code) in REFUSALS {
        metrics.proxy.refusals.with_label_values(&[stage, code]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_one_stage_and_other_codes_none() {
        assert_eq!(stage_of("tool_not_granted"), Some("claims"));
        assert_eq!(stage_of("token_mismatch"), Some("token"));
        assert_eq!(stage_of("upstream_error"), None);
        let mut codes: Vec<&str> = REFUSALS.iter().map(|(_, c)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), REFUSALS.len(), "each code once");
    }
}
