//! The proxy pipeline: what `/api/proxy-request` does, in order, top to bottom.
//!
//! ```text
//!  1 parse + validate body                 400
//!  2 open token, expiry, revoked, agent    403
//!  3 claims: tool ∈ tools, permission      403
//!  4 rate limit (agent, agent+tool)        429 + Retry-After
//!  5 policy plugins → allow / deny         403 {error:"Policy denied", reason}
//!  6 chaos plugin (per upstream attempt)   injected delay / 5xx / timeout
//!  7 cache lookup                          hit → 200
//!  8 breaker → bulkhead → retry → tool     502 / 503 / 504
//!  9 policy response filters               redaction
//! 10 metrics + audit rows (queued)
//! ```

pub mod input;
mod redirect_policy;
pub mod refusals;
pub mod services;
mod upstream_call;

use crate::audit::sampling::Keep;
use crate::catalog::ToolName;
use crate::crypto::token::Claims;
use crate::error::ApiError;
use crate::error::Refusal;
use crate::plugins::call_data::CallData;
use crate::plugins::plugin::FailureKind;
use crate::plugins::plugin_config::PluginConfig;
use crate::plugins::registry::PolicyOutcome;
use crate::plugins::World;
use crate::resilience::cache;
use crate::resilience::rate_limit::{Limit, Scope};
use crate::state::AppState;
use crate::store::policies::PolicyLogRow;
use crate::store::request_logs::RequestLogRow;
use crate::tokens::{rotation_recommended, Rejection};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use input::{Named, ProxyInput};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const X_TOKEN_ROTATION_RECOMMENDED: HeaderName =
    HeaderName::from_static("x-token-rotation-recommended");
const X_TOKEN_EXPIRES_AT: HeaderName = HeaderName::from_static("x-token-expires-at");
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// What the audit row and metrics need to know about a request, filled in as it goes.
#[derive(Default)]
struct Trail {
    named: Named,
    agent_id: Option<String>,
    policy_decision: Option<&'static str>,
    chaos_fault: Option<&'static str>,
    cached: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Runs one proxy request from `client` and answers it.
pub async fn handle(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let started = Instant::now();
    let correlation_id = correlation_id(headers);
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
    finish(state, client, trail, correlation_id, outcome, started).await
}

/// Answers a proxy request from `client` whose body could not be read (too large, broken
/// stream).
pub async fn handle_unreadable(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    failure: ApiError,
) -> Response {
    let correlation_id = correlation_id(headers);
    finish(
        state,
        client,
        Trail::default(),
        correlation_id,
        Err(failure),
        Instant::now(),
    )
    .await
}

/// Adds the trail's headers and the correlation id, then step 10: metrics and audit row.
///
/// A refusal before the agent is known (a body that is not a call, a token that does not
/// open, expired or revoked) is the client's failed authentication: it counts against the
/// client address's limit (`AUTH_FAILURES_PER_MINUTE`), and past it is answered 429
/// `too_many_auth_failures` with no audit row, only counters. So an anonymous client
/// writes at most the limit's burst and then one row a second per address, and those rows
/// are the first the row bound prunes.
async fn finish(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    trail: Trail,
    correlation_id: String,
    outcome: Result<Response, ApiError>,
    started: Instant,
) -> Response {
    let outcome = match outcome {
        Err(failure)
            if trail.agent_id.is_none()
                && failure.status().is_client_error()
                && !failure.is_quiet() =>
        {
            match state.auth_failures.record(client, crate::store::now_ms()) {
                Ok(()) => Err(failure),
                Err(limited) => Err(limited),
            }
        }
        outcome => outcome,
    };
    let (mut response, code) = match outcome {
        Ok(response) => (response, None),
        // A refusal the client keeps provoking is counted, not audited one by one.
        Err(failure) if failure.is_quiet() => {
            count(state, &trail, failure.status(), started);
            refusals::count(&state.metrics, failure.refusal());
            return failure.into_response();
        }
        Err(failure) => {
            let refusal = failure.refusal();
            (failure.into_response(), Some(refusal))
        }
    };
    for (name, value) in &trail.headers {
        response.headers_mut().insert(name, value.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(X_CORRELATION_ID, v);
    }
    record(
        state,
        &trail,
        &correlation_id,
        response.status(),
        code,
        started,
    )
    .await;
    // The access line's fields, moved out of the finished trail (no copy per request).
    response.extensions_mut().insert(ProxyCallLog {
        correlation_id,
        agent_id: trail.agent_id,
        tool: trail.named.tool,
        action: trail.named.action,
    });
    response
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
    let claims = match state.tokens.validate(&input.token, now).await {
        Ok(claims) => claims,
        // Counted against the client's address in `finish`, as every refusal before the
        // agent is known.
        Err(rejection) => return Err(token_failure(rejection)),
    };
    trail.agent_id = Some(claims.sub.to_string());
    if let Some(token_id) = &input.token_id {
        check_provenance(state, &claims, token_id)?;
    }
    if rotation_recommended(&claims, now) {
        trail.headers.push((
            X_TOKEN_ROTATION_RECOMMENDED,
            HeaderValue::from_static("true"),
        ));
        let expires = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
        let expires = expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if let Ok(value) = HeaderValue::from_str(&expires) {
            trail.headers.push((X_TOKEN_EXPIRES_AT, value));
        }
    }

    // 3. The token's claims must grant the tool and the action's permission.
    check_claims(&claims, spec)?;
    if !proxy.tools.is_configured(spec.tool) {
        return Err(ApiError::new(
            Refusal::ToolNotConfigured,
            format!("{} not configured - no active credential found", spec.tool),
        ));
    }

    // 4. Rate limits.
    rate_limit(state, &claims, spec.tool, now.timestamp_millis(), trail).await?;

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
        Arc::new(plugin_call(
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
    let mut filters = Vec::new();
    if let Some(config) = &policy_config {
        let outcome = match &call {
            Some(call) => state.plugins.evaluate(&set, call, config.as_ref()).await,
            None => PolicyOutcome::Allow {
                filters: Vec::new(),
            },
        };
        // An allow is folded into the request's own audit row (`policy_decision`), which
        // says everything its row would: no policy row for it (the listing of decisions
        // reads it from there).
        if !matches!(outcome, PolicyOutcome::Allow { .. }) {
            audit_policy(state, &subject, &outcome).await;
        }
        match outcome {
            PolicyOutcome::Allow { filters: asked } => {
                trail.policy_decision = Some("allow");
                filters = asked;
            }
            PolicyOutcome::Deny { code, reason, .. } => {
                trail.policy_decision = Some("deny");
                return Err(ApiError::new(Refusal::PolicyDenied, "Policy denied")
                    .with_field("reason", reason)
                    .with_field("rule", code));
            }
            PolicyOutcome::Failed { kind, .. } => {
                trail.policy_decision = Some("error");
                return Err(policy_failure(kind));
            }
        }
    }

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
    let cache_key = (spec.cacheable && !matches!(proxy.cache, cache::ResponseCache::Off))
        .then(|| cache::key(spec.tool.as_str(), spec.action, &input.params));
    let mut data = None;
    if let Some(key) = &cache_key {
        let labels = [spec.tool.as_str(), spec.action];
        data = proxy.cache.get(key).await;
        let (family, header) = match data {
            Some(_) => (&state.metrics.proxy.cache_hits, "HIT"),
            None => (&state.metrics.proxy.cache_misses, "MISS"),
        };
        family.with_label_values(&labels).inc();
        trail
            .headers
            .push((X_CACHE, HeaderValue::from_static(header)));
        trail.cached = data.is_some();
    }

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
    let data = match data {
        Some(hit) => hit,
        None => {
            let deadline = tokio::time::Instant::from_std(started) + proxy.deadline();
            let fresh = Arc::new(
                upstream_call::call(
                    upstream_call::UpstreamCall {
                        state,
                        agent: claims.sub,
                        spec,
                        prepared: &input.prepared,
                        chaos,
                        redirects,
                        deadline,
                    },
                    &mut trail.chaos_fault,
                )
                .await?,
            );
            if let Some(key) = cache_key {
                proxy
                    .cache
                    .put(key, Arc::clone(&fresh), proxy.cache_ttl(spec.tool))
                    .await;
            }
            fresh
        }
    };

    // 9. Policy response filters.
    let data = match (&call, filters.is_empty()) {
        (Some(call), false) => {
            let config = policy_config.flatten();
            let step = FilterStep {
                state,
                set: &set,
                filters: &filters,
                call,
                config: config.as_ref(),
                subject: &subject,
            };
            filter_response(step, data, trail).await?
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

/// The body of a successful proxy request, serialised straight from the tool's answer
/// (no copy of it into a new JSON tree).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Success<'a> {
    /// Always true.
    success: bool,
    /// The tool's answer (after any response filter).
    #[schema(value_type = Object)]
    data: &'a Value,
    metadata: SuccessMetadata<'a>,
}

/// `metadata` of a successful proxy request.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SuccessMetadata<'a> {
    agent_id: uuid::Uuid,
    agent_name: &'a str,
    tool: &'a str,
    action: &'a str,
    response_time_ms: f64,
    cached: bool,
}

/// What the access log line says of a proxy call (a response extension).
#[derive(Debug, Clone)]
pub struct ProxyCallLog {
    /// The call's correlation id, as in its audit row and `X-Correlation-ID`.
    pub correlation_id: String,
    /// The calling agent, once its token was read.
    pub agent_id: Option<String>,
    /// Tool as sent.
    pub tool: String,
    /// Action as sent.
    pub action: String,
}

/// The client's `X-Correlation-ID` when valid, else the request's id (`X-Request-ID`, set
/// before any handler), so that the log's `request_id` and the audit row's `corrId` name
/// a call alike; a new id only when neither is usable.
fn correlation_id(headers: &HeaderMap) -> String {
    let valid = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                (1..=128).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            })
            .map(str::to_string)
    };
    valid(&X_CORRELATION_ID)
        .or_else(|| valid(&crate::app::REQUEST_ID))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn token_failure(rejection: Rejection) -> ApiError {
    match rejection {
        Rejection::Malformed
        | Rejection::BadSeal
        | Rejection::UnknownKey
        | Rejection::UnknownAgent => ApiError::new(Refusal::InvalidToken, "Invalid token"),
        Rejection::Expired => ApiError::new(Refusal::TokenExpired, "Token expired"),
        Rejection::Revoked => ApiError::new(Refusal::TokenRevoked, "Token has been revoked"),
        Rejection::AgentNotActive => ApiError::new(Refusal::AgentNotActive, "Agent is not active"),
    }
}

/// `token_id`, when sent, must name the presented token: another token's id is refused as
/// a mismatch, or as revoked when that token is.
fn check_provenance(state: &AppState, claims: &Claims, token_id: &str) -> Result<(), ApiError> {
    let named = uuid::Uuid::parse_str(token_id.trim()).ok();
    if named == Some(claims.jti) {
        return Ok(());
    }
    if named.is_some_and(|id| state.mirror.is_revoked(&id)) {
        return Err(token_failure(Rejection::Revoked));
    }
    Err(ApiError::new(
        Refusal::TokenMismatch,
        "Token proof verification failed",
    ))
}

fn check_claims(claims: &Claims, action: &crate::catalog::ActionSpec) -> Result<(), ApiError> {
    let tool = action.tool;
    if !claims.tools.contains(&tool) {
        return Err(ApiError::new(
            Refusal::ToolNotGranted,
            format!("Token does not grant the tool {tool}"),
        ));
    }
    if !claims.permissions.iter().any(|p| p.covers(action)) {
        return Err(ApiError::new(
            Refusal::PermissionNotGranted,
            format!(
                "Token does not grant {tool}.{}: it needs {}, {tool}:{} or {tool}:*",
                action.action, action.permission, action.action
            ),
        ));
    }
    Ok(())
}

async fn rate_limit(
    state: &AppState,
    claims: &Claims,
    tool: ToolName,
    now_ms: i64,
    trail: &mut Trail,
) -> Result<(), ApiError> {
    let settings = &state.proxy.settings;
    let mut limits = Vec::with_capacity(2);
    if settings.rate_limit_per_agent > 0 {
        limits.push(Limit {
            scope: Scope::Agent,
            key: claims.sub.to_string(),
            per_minute: settings.rate_limit_per_agent,
        });
    }
    if settings.rate_limit_per_agent_tool > 0 {
        limits.push(Limit {
            scope: Scope::AgentTool,
            key: format!("{}:{tool}", claims.sub),
            per_minute: settings.rate_limit_per_agent_tool,
        });
    }
    if limits.is_empty() {
        return Ok(());
    }
    let verdict = state.proxy.limiter.check(&limits, now_ms).await;
    let reset_secs = verdict.reset.as_millis().div_ceil(1000);
    trail
        .headers
        .push((X_RATELIMIT_LIMIT, HeaderValue::from(verdict.limit)));
    trail
        .headers
        .push((X_RATELIMIT_REMAINING, HeaderValue::from(verdict.remaining)));
    trail.headers.push((
        X_RATELIMIT_RESET,
        HeaderValue::from(u64::try_from(reset_secs).unwrap_or(u64::MAX)),
    ));
    if verdict.allowed {
        return Ok(());
    }
    state
        .metrics
        .proxy
        .rate_limited
        .with_label_values(&[verdict.scope.as_str()])
        .inc();
    let retry_after = verdict.retry_after.as_millis().div_ceil(1000).max(1) as u64;
    Err(ApiError::new(Refusal::RateLimited, "Rate limit exceeded")
        .with_field("retry_after", retry_after)
        .with_field("scope", verdict.scope.as_str())
        .with_header("retry-after", retry_after))
}

fn plugin_call(
    correlation_id: &str,
    agent_id: &str,
    claims: &Claims,
    input: &ProxyInput,
    now_ms: u64,
) -> CallData {
    CallData {
        correlation_id: correlation_id.to_string(),
        agent_id: agent_id.to_string(),
        agent_name: claims.name.clone(),
        agent_role: claims.role.clone(),
        tool: input.spec.tool.as_str().to_string(),
        action: input.spec.action.to_string(),
        params: input.params.clone(),
        intent: input.intent.clone(),
        token_tools: claims
            .tools
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
        token_permissions: claims.permissions.iter().map(|p| p.to_string()).collect(),
        now_ms,
        seed: rand::random(),
        ..CallData::default()
    }
}

/// What a policy log row says about the call it judged.
pub(crate) struct AuditSubject<'a> {
    /// Correlation id of the request.
    pub correlation_id: &'a str,
    /// The calling agent.
    pub agent_id: &'a str,
    /// Tool.
    pub tool: &'a str,
    /// Action.
    pub action: &'a str,
    /// When the call was judged, unix ms.
    pub now_ms: u64,
}

/// Step 9's inputs: the filters the policies asked for, and what they read.
struct FilterStep<'a> {
    state: &'a AppState,
    set: &'a crate::plugins::registry::PluginSet,
    filters: &'a [usize],
    call: &'a Arc<CallData>,
    config: Option<&'a PluginConfig>,
    subject: &'a AuditSubject<'a>,
}

/// Step 9. A filter that fails closed (or answers text that is not JSON) withholds the answer
/// as a policy failure in every record: the audit row's decision becomes `error`, a policy
/// log row names the binding, and the denial is counted, as for a failed evaluation.
async fn filter_response(
    step: FilterStep<'_>,
    data: Arc<Value>,
    trail: &mut Trail,
) -> Result<Arc<Value>, ApiError> {
    let state = step.state;
    let filtered = state
        .plugins
        .filter_response(step.set, step.filters, step.call, step.config, &data)
        .await;
    let parsed = match filtered {
        // Nothing was filtered: keep the parsed answer rather than parse it again.
        Ok(None) => return Ok(data),
        Ok(Some(text)) => serde_json::from_str(&text).map_err(|_| PolicyOutcome::Failed {
            binding: "response filter".into(),
            kind: FailureKind::Invalid,
        }),
        Err(outcome) => Err(outcome),
    };
    match parsed {
        Ok(value) => Ok(Arc::new(value)),
        Err(outcome) => {
            trail.policy_decision = Some("error");
            audit_policy(state, step.subject, &outcome).await;
            state
                .metrics
                .policy_denials
                .with_label_values(&[step.subject.tool, step.subject.action, "policy_error"])
                .inc();
            Err(match outcome {
                PolicyOutcome::Failed { kind, .. } => policy_failure(kind),
                _ => policy_error(),
            })
        }
    }
}

/// A policy plugin failed (fail closed): 403 without detail.
fn policy_error() -> ApiError {
    ApiError::new(Refusal::PolicyError, "Policy denied")
}

/// The answer to a fail-closed policy that did not decide: 503 `plugin_busy` when it was
/// not called for overload (every call slot of its binding stayed taken), else
/// [`policy_error`].
fn policy_failure(kind: FailureKind) -> ApiError {
    match kind {
        FailureKind::Busy => {
            ApiError::new(Refusal::PluginBusy, "The policy is busy; try again shortly")
                .with_field("retry_after", 1)
                .with_header("retry-after", 1)
        }
        _ => policy_error(),
    }
}

pub(crate) async fn audit_policy(
    state: &AppState,
    subject: &AuditSubject<'_>,
    outcome: &PolicyOutcome,
) {
    let (decision, reason, binding) = match outcome {
        PolicyOutcome::Allow { .. } => ("allow", None, None),
        PolicyOutcome::Deny {
            binding, reason, ..
        } => ("deny", Some(without_nul(reason)), Some(binding.clone())),
        PolicyOutcome::Failed { binding, kind } => (
            "error",
            Some(format!("plugin failure: {}", kind.as_str())),
            Some(binding.clone()),
        ),
    };
    state
        .proxy
        .audit
        .policy(PolicyLogRow {
            // Time-ordered ids: rows append to the primary key's index instead of landing at
            // random places in it.
            id: uuid::Uuid::now_v7().to_string(),
            policy_id: binding,
            agent_id: subject.agent_id.to_string(),
            tool: subject.tool.to_string(),
            action: subject.action.to_string(),
            decision: decision.into(),
            reason,
            request_data: serde_json::to_string(&CorrelationRef {
                correlation_id: subject.correlation_id,
            })
            .ok(),
            response_data: None,
            created_at: subject.now_ms as i64,
        })
        .await;
}

/// `request_data` of a policy log row.
#[derive(serde::Serialize)]
struct CorrelationRef<'a> {
    correlation_id: &'a str,
}

/// The metric label of a tool or action as sent: known names only, so that callers cannot
/// grow the label set.
fn label(named: &str, known: bool) -> &str {
    if known {
        named
    } else {
        "unknown"
    }
}

/// Step 10's metrics: the request counted by tool, action and status, and timed. Returns
/// its duration in ms.
fn count(state: &AppState, trail: &Trail, status: StatusCode, started: Instant) -> f64 {
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let tool = label(&trail.named.tool, trail.named.known_tool.is_some());
    let action = label(&trail.named.action, trail.named.known_action.is_some());
    let metrics = &state.metrics.proxy;
    metrics
        .requests
        .with_label_values(&[tool, action, status.as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[tool, action])
        .observe(elapsed_ms / 1000.0);
    elapsed_ms
}

/// Step 10: metrics and the request's audit row.
async fn record(
    state: &AppState,
    trail: &Trail,
    correlation_id: &str,
    status: StatusCode,
    refusal: Option<Refusal>,
    started: Instant,
) {
    let elapsed_ms = count(state, trail, status, started);
    if let Some(refusal) = refusal {
        refusals::count(&state.metrics, refusal);
    }
    let call = crate::audit::sampling::Call {
        success: status.is_success(),
        policy_refused: matches!(trail.policy_decision, Some("deny" | "error")),
        chaos_fault: trail.chaos_fault.is_some(),
        writes: trail
            .named
            .known_action
            .is_some_and(|a| a.permission == crate::catalog::Permission::Write),
    };
    let rate = state.proxy.settings.audit_sample_allowed;
    let sample_rate = match crate::audit::sampling::decide(rate, call, rand::random::<f64>) {
        Keep::Always => None,
        Keep::Sampled(rate) => Some(rate),
        Keep::Skipped => {
            state.metrics.audit.sampled_out.inc();
            return;
        }
    };
    state
        .proxy
        .audit
        .request(RequestLogRow {
            id: uuid::Uuid::now_v7().to_string(),
            correlation_id: correlation_id.to_string(),
            agent_id: trail.agent_id.clone(),
            tool: audit_name(&trail.named.tool),
            action: audit_name(&trail.named.action),
            status_code: i64::from(status.as_u16()),
            success: i64::from(status.is_success()),
            error_code: refusal.map(|r| r.code().to_string()),
            response_time_ms: elapsed_ms,
            cached: i64::from(trail.cached),
            policy_decision: trail.policy_decision.map(str::to_string),
            chaos_fault: trail.chaos_fault.map(str::to_string),
            sample_rate,
            created_at: Utc::now().timestamp_millis(),
        })
        .await;
}

/// Tool and action names as sent, made fit for the audit row: cut to 64 characters, and NUL
/// replaced by U+FFFD (PostgreSQL refuses NUL in text, and would refuse the whole batch).
fn audit_name(text: &str) -> String {
    let cut = match text.char_indices().nth(64) {
        Some((end, _)) => &text[..end],
        None => text,
    };
    without_nul(cut)
}

/// `text` with each NUL replaced by U+FFFD.
fn without_nul(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{fffd}")
    } else {
        text.to_owned()
    }
}
