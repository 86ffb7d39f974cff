//! The proxy pipeline: what `/api/proxy-request` does, in order, top to bottom. Each step
//! is a file of its own; [`run`] reads as this table.
//!
//! ```text
//!  1 input            parse + validate body                 400
//!  2 authenticate     open token, expiry, revoked, agent    403
//!  3 claims           tool ∈ tools, permission              403
//!  4 limits           rate limit (agent, agent+tool)        429 + Retry-After
//!  5 policy           policy plugins → allow / deny         403 {error:"Policy denied", reason}
//!  6 (upstream_call)  chaos plugin, per upstream attempt    injected delay / 5xx / timeout
//!  7 cache_lookup     cache lookup                          hit → 200
//!  8 upstream_call    breaker → bulkhead → retry → tool     502 / 503 / 504
//!  9 response_filter  policy response filters               redaction
//! 10 record           metrics + audit rows (queued)
//! ```

mod authenticate;
mod cache_lookup;
mod claims;
pub mod input;
mod limits;
mod policy;
mod record;
mod redirect_policy;
pub mod refusals;
mod response_filter;
pub mod services;
mod success;
mod trail;
mod upstream_call;

use crate::error::{ApiError, Refusal};
use crate::plugins::World;
use crate::state::AppState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use policy::AuditSubject;
use std::sync::Arc;
use std::time::Instant;
use trail::Trail;

pub use success::{Success, SuccessMetadata};
pub use trail::ProxyCallLog;

/// Runs one proxy request from `client` and answers it.
pub async fn handle(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let started = Instant::now();
    let correlation_id = trail::correlation_id(headers);
    let mut trail = Trail::default();
    let outcome = if state.proxy.is_shutting_down() {
        Err(ApiError::new(
            Refusal::ShuttingDown,
            "Service is shutting down",
        ))
    } else {
        // The deadline covers every step (token, limits, plugins, upstream), not only the
        // upstream call, which also knows it and answers in time on its own.
        let deadline = tokio::time::Instant::from_std(started) + state.proxy.deadline();
        let steps = run(state, headers, body, &correlation_id, &mut trail, started);
        match tokio::time::timeout_at(deadline, steps).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ApiError::new(
                Refusal::DeadlineExceeded,
                "The request did not complete within its deadline",
            )),
        }
    };
    record::finish(state, client, trail, correlation_id, outcome, started).await
}

/// Answers a proxy request from `client` whose body could not be read (too large, broken
/// stream).
pub async fn handle_unreadable(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    failure: ApiError,
) -> Response {
    let correlation_id = trail::correlation_id(headers);
    let outcome = Err(failure);
    record::finish(
        state,
        client,
        Trail::default(),
        correlation_id,
        outcome,
        Instant::now(),
    )
    .await
}

/// Steps 1–9.
async fn run(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    correlation_id: &str,
    trail: &mut Trail,
    started: Instant,
) -> Result<Response, ApiError> {
    let proxy = &state.proxy;
    let now = Utc::now();

    // 1. Parse and validate the body.
    let input = input::read(headers, body, &proxy.tools, &mut trail.named)?;
    let spec = input.spec;

    // 2. Open the token: seal, expiry, revocation, agent status.
    let claims =
        authenticate::authenticate(&state.tokens, &state.mirror, &input, now, trail).await?;

    // 3. The token's claims must grant the tool and the action's permission.
    claims::check(&claims, spec, &proxy.tools)?;

    // 4. Rate limits.
    limits::rate_limit(state, &claims, spec.tool, now.timestamp_millis(), trail).await?;

    // 5. Policy plugins.
    let set = state.plugins.current();
    let now_ms = now.timestamp_millis().max(0) as u64;
    let (tool, role) = (spec.tool.as_str(), claims.role.as_str());
    let agent_id = claims.sub.to_string();
    let subject = AuditSubject {
        correlation_id,
        agent_id: &agent_id,
        tool,
        action: spec.action,
        now_ms,
    };
    let policies_on = proxy.settings.policies_enabled;
    let chaos_on = !state.chaos_rules.is_empty();
    // The call as plugins read it: built only when a plugin is bound to it, and shared by
    // every plugin call, retry and redirect hop of the request.
    let call = ((policies_on && set.binds(World::Policy, tool, role))
        || (chaos_on && set.binds(World::Chaos, tool, role)))
    .then(|| {
        Arc::new(policy::plugin_call(
            correlation_id,
            &agent_id,
            &claims,
            &input,
            now_ms,
        ))
    });
    // `Some` exactly when the policy plugins run (FF_POLICY on); steps 5, 8 and 9 share it.
    let policy_config =
        policies_on.then(|| crate::policies::config_for(state, &set, tool, &agent_id, role));
    let filters = match &policy_config {
        Some(config) => {
            policy::judge(state, &set, call.as_ref(), config.as_ref(), &subject, trail).await?
        }
        None => Vec::new(),
    };

    // 6. Chaos: the plugin is asked per upstream attempt, in step 8, when rules are active.
    let chaos = match (&call, chaos_on) {
        (Some(call), true) => Some(upstream_call::Chaos {
            set: &set,
            plugins: &state.plugins,
            call,
            rules: state.chaos_rules.config(),
        }),
        _ => None,
    };

    // 7. Cache lookup.
    let cache_key = cache_lookup::key(&proxy.cache, spec, &input.params);
    let cached = match &cache_key {
        Some(key) => cache_lookup::lookup(&proxy.cache, &state.metrics, spec, key, trail).await,
        None => None,
    };

    // 8. Breaker → bulkhead → retry → tool, inside the request's deadline; a fetch's
    //    redirects are judged by its policy hop by hop.
    let redirect_policy = match (&policy_config, &call) {
        (Some(config), Some(call)) => Some(redirect_policy::PolicyRedirects {
            state,
            set: &set,
            call,
            config: config.clone(),
        }),
        _ => None,
    };
    let redirects: &dyn crate::tools::RedirectCheck = match &redirect_policy {
        Some(policy) => policy,
        None => &crate::tools::AnyRedirect,
    };
    let data = match cached {
        Some(hit) => hit,
        None => {
            let deadline = tokio::time::Instant::from_std(started) + proxy.deadline();
            let upstream = upstream_call::UpstreamCall {
                state,
                agent: claims.sub,
                spec,
                prepared: &input.prepared,
                chaos,
                redirects,
                deadline,
            };
            let fresh = Arc::new(upstream_call::call(upstream, &mut trail.chaos_fault).await?);
            if let Some(key) = cache_key {
                let ttl = proxy.cache_ttl(spec.tool);
                proxy.cache.put(key, Arc::clone(&fresh), ttl).await;
            }
            fresh
        }
    };

    // 9. Policy response filters.
    let data = match (&call, filters.is_empty()) {
        (Some(call), false) => {
            let config = policy_config.flatten();
            let step = response_filter::FilterStep {
                state,
                set: &set,
                filters: &filters,
                call,
                config: config.as_ref(),
                subject: &subject,
            };
            response_filter::filter_response(step, data, trail).await?
        }
        _ => data,
    };

    let metadata = SuccessMetadata {
        agent_id: claims.sub,
        agent_name: &claims.name,
        tool: spec.tool.as_str(),
        action: spec.action,
        response_time_ms: started.elapsed().as_secs_f64() * 1000.0,
        cached: trail.cached,
    };
    Ok(Json(Success {
        success: true,
        data: &data,
        metadata,
    })
    .into_response())
}
