//! The HTTP API: every route, in one table, with the guard each group needs.
//! Handlers are thin: they read the request, call the domain and shape the reply.

pub mod agents;
pub mod chaos;
pub mod creds;
pub mod fallback;
pub mod health;
pub mod json;
pub mod message;
pub mod nul_guard;
pub mod openapi;
pub mod path_text;
pub mod plugin_admission;
pub mod plugin_shadows;
pub mod plugins;
pub mod policies;
pub mod proxy;
pub mod query;
pub mod readiness_log;
pub mod run_to_end;
pub mod time;
pub mod tokens;

use crate::auth::admin::require_admin;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post, put};
use axum::Router;

/// All routes. Management routes require the admin key and refuse a NUL in their path or
/// query; generate-token checks its callers itself (admin key or agent signature); health
/// and metrics are open.
pub fn routes(state: AppState) -> Router {
    let management = Router::new()
        .route("/api/create-agent", post(agents::create))
        .route("/api/agents", get(agents::list))
        .route("/api/agents/{id}", get(agents::get).patch(agents::update))
        .route("/api/admin/tokens", get(tokens::list))
        .route("/api/admin/tokens/introspect", post(tokens::introspect))
        .route("/api/admin/tokens/{token_id}/revoke", post(tokens::revoke))
        .route("/api/admin/plugins", get(plugins::list))
        .route("/api/admin/plugins/reload", post(plugins::reload))
        .route("/api/admin/plugins/evaluate", post(plugins::evaluate))
        .route(
            "/api/admin/plugins/{name}",
            put(plugins::upload)
                .layer(DefaultBodyLimit::max(plugins::MAX_UPLOAD_BODY))
                .delete(plugins::remove),
        )
        .route(
            "/api/admin/plugins/{name}/rollback",
            post(plugins::rollback),
        )
        .route(
            "/api/admin/plugins/{name}/shadow",
            put(plugin_shadows::put)
                .layer(DefaultBodyLimit::max(plugins::MAX_UPLOAD_BODY))
                .get(plugin_shadows::get)
                .delete(plugin_shadows::remove),
        )
        .route(
            "/api/admin/plugins/{name}/shadow/promote",
            post(plugin_shadows::promote),
        )
        .route("/api/admin/chaos", get(chaos::list))
        .route("/api/admin/chaos/tool", post(chaos::set))
        .route("/api/admin/chaos/tool/{tool}", delete(chaos::clear))
        .route("/api/policies", post(policies::create).get(policies::list))
        .route("/api/policies/merged/{agent_id}", get(policies::merged))
        .route(
            "/api/policies/{id}",
            get(policies::get)
                .patch(policies::update)
                .delete(policies::delete),
        )
        .route("/api/policy-logs", get(policies::logs))
        .route("/api/proxy/status", get(proxy::status))
        .route("/api/proxy/logs", get(proxy::logs))
        .route("/api/admin/creds", get(creds::list))
        .route("/api/admin/creds/set", post(creds::set))
        .route("/api/admin/creds/activate", post(creds::activate))
        .route(
            "/api/admin/creds/{key}",
            get(creds::active).delete(creds::delete),
        )
        .route("/api/admin/creds/{tool}/versions", get(creds::versions))
        // Inside the admin check: callers without the key learn nothing from it.
        .route_layer(middleware::from_fn(nul_guard::refuse_nul_in_uri))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    let open = Router::new()
        .route(tokens::GENERATE_TOKEN_PATH, post(tokens::generate))
        .route("/api/proxy-request", post(proxy::proxy_request))
        .route("/health", get(health::health))
        .route("/api/health", get(health::api_health))
        .route("/api/openapi.json", get(openapi::document))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics));
    management
        .merge(open)
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .with_state(state)
        .merge(openapi::docs_page())
}
