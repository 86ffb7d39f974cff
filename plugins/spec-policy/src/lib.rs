//! `spec-policy`: the gateway's default policy plugin. It evaluates the PolicySpec that the
//! gateway hands it as configuration (the merged spec of the request's agent and role):
//! scopes, intent, guards (request size, domains, time window), schedule and quotas, in that
//! order, and filters successful responses (redaction, truncation, blocked patterns, PII).
//!
//! It fixes the original gateway's defects: domains match on label boundaries for every
//! http_fetch action, time windows and schedules use their time zone, an hour of 0 counts,
//! quotas are consumed only when everything else allowed, and deny reasons do not disclose
//! the allowed scopes or domains.

pub mod clock;
mod domains;
mod filters;
pub mod quotas;
mod rules;
pub mod spec;

use gateway_sdk::{Decision, Host, PluginInfo, Policy, Request};
use spec::PolicySpec;

/// Talc instead of the WebAssembly target's default dlmalloc: the faster of the two at
/// this plugin's many small allocations (`bench plugins --reused-only`).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// The plugin.
pub struct SpecPolicy;

/// Parses documents as PolicySpecs, each problem named with the document's place.
fn parse_all(documents: &[String]) -> Result<Vec<PolicySpec>, Vec<String>> {
    let mut specs = Vec::with_capacity(documents.len());
    let mut problems = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        match serde_json::from_str::<PolicySpec>(document) {
            Ok(spec) => specs.push(spec),
            Err(e) if documents.len() == 1 => problems.push(format!("spec: {e}")),
            Err(e) => problems.push(format!("document {i}: spec: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems)
    }
}

impl Policy for SpecPolicy {
    /// The merged spec of the request's agent and role.
    type Config = PolicySpec;

    fn info() -> PluginInfo {
        PluginInfo::new("spec-policy", env!("CARGO_PKG_VERSION"), true)
    }

    /// Parses every document and merges them in order (an agent's own policies, last, win
    /// over its role's). Documents were validated when stored; an empty list is an empty
    /// spec, which denies every scope.
    fn configure(documents: &[String]) -> Result<PolicySpec, Vec<String>> {
        parse_all(documents).map(|specs| spec::merge(&specs))
    }

    /// One policy being stored: it must parse and every field must make sense.
    fn validate(document: &str) -> Result<(), Vec<String>> {
        let spec = parse_all(&[document.to_string()])?.remove(0);
        let problems: Vec<String> = spec
            .problems()
            .into_iter()
            .map(|p| format!("spec.{p}"))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn describe(config: &PolicySpec) -> String {
        serde_json::to_string(config).unwrap_or_else(|_| "null".into())
    }

    fn evaluate(host: &dyn Host, config: &PolicySpec, request: &Request) -> Decision {
        match rules::evaluate(host, config, request) {
            // The response filter has work only when the spec has response rules.
            Decision::Allow if config.has_response_rules() => Decision::AllowAndFilter,
            decision => decision,
        }
    }

    fn filter_response(
        _host: &dyn Host,
        config: &PolicySpec,
        _request: &Request,
        response_json: &str,
    ) -> Option<String> {
        filters::apply(config, response_json)
    }
}

#[cfg(feature = "export")]
gateway_sdk::export_policy!(SpecPolicy);

#[cfg(test)]
mod tests;
