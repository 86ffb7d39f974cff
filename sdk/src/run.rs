//! One export call, the same inside the gateway and in the native harness: the call's
//! configuration from the cache (parsed on first sight of its id), then the plugin's method.

use crate::{Chaos, ConfigCache, Decision, Fault, Host, LogLevel, Policy, Request};

/// Parses with `configure`, logging the problems of a configuration that does not parse
/// (once per configuration id: the failure is kept with it).
fn parse_logged<C>(
    host: &dyn Host,
    configure: impl FnOnce(&[String]) -> Result<C, Vec<String>>,
    documents: &[String],
) -> Result<C, Vec<String>> {
    let parsed = configure(documents);
    if let Err(problems) = &parsed {
        host.log(
            LogLevel::Error,
            &format!("configuration is not valid: {}", problems.join("; ")),
        );
    }
    parsed
}

/// `validate-config`: [`Policy::validate`].
pub fn validate<P: Policy>(document: String) -> Result<(), Vec<String>> {
    P::validate(&document)
}

/// `effective-config`: the documents through [`Policy::configure`] and [`Policy::describe`].
pub fn effective<P: Policy>(documents: &[String]) -> Result<String, Vec<String>> {
    P::configure(documents).map(|config| P::describe(&config))
}

/// `evaluate`. A configuration that does not parse denies (`policy_misconfigured`).
pub fn evaluate<P: Policy>(
    host: &dyn Host,
    configs: &ConfigCache<P::Config>,
    config_id: u64,
    fetch: impl FnOnce() -> Vec<String>,
    request: &Request,
) -> Decision {
    let parsed = configs.get(config_id, fetch, |d| parse_logged(host, P::configure, d));
    match &*parsed {
        Ok(config) => P::evaluate(host, config, request),
        Err(_) => Decision::deny(
            "policy_misconfigured",
            "The policy for this agent is not valid",
        ),
    }
}

/// `filter-response`. A configuration that does not parse filters nothing.
pub fn filter_response<P: Policy>(
    host: &dyn Host,
    configs: &ConfigCache<P::Config>,
    config_id: u64,
    fetch: impl FnOnce() -> Vec<String>,
    request: &Request,
    response_json: &str,
) -> Option<String> {
    let parsed = configs.get(config_id, fetch, |d| parse_logged(host, P::configure, d));
    match &*parsed {
        Ok(config) => P::filter_response(host, config, request, response_json),
        Err(_) => None,
    }
}

/// `inject`. A configuration that does not parse injects nothing.
pub fn inject<C: Chaos>(
    host: &dyn Host,
    configs: &ConfigCache<C::Config>,
    config_id: u64,
    fetch: impl FnOnce() -> Vec<String>,
    request: &Request,
) -> Fault {
    let parsed = configs.get(config_id, fetch, |d| parse_logged(host, C::configure, d));
    match &*parsed {
        Ok(config) => C::inject(host, config, request),
        Err(_) => Fault::None,
    }
}
