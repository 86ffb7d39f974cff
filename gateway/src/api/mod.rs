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
pub mod plugin_versions;
pub mod plugins;
pub mod policies;
pub mod proxy;
pub mod proxy_request_schema;
pub mod query;
pub mod run_to_end;
pub mod tokens;

use crate::auth::admin::require_admin;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The route table, the one declaration of every operation: each `routes!` entry is the
/// handler that serves it and, from its annotation, its place in the OpenAPI document.
/// The first group takes the admin key (and refuses a NUL in its path or query); the second
/// is open (generate-token checks its callers itself: admin key or agent signature).
fn table(state: &AppState) -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let upload_limit = || DefaultBodyLimit::max(plugins::MAX_UPLOAD_BODY);
    let management = OpenApiRouter::new()
        .routes(routes!(agents::create))
        .routes(routes!(agents::list))
        .routes(routes!(agents::get, agents::update))
        .routes(routes!(tokens::list))
        .routes(routes!(tokens::introspect))
        .routes(routes!(tokens::revoke))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::reload))
        .routes(routes!(plugins::evaluate))
        .routes(routes!(plugins::upload).layer(upload_limit()))
        .routes(routes!(plugin_versions::remove))
        .routes(routes!(plugin_versions::rollback))
        .routes(routes!(plugin_shadows::put).layer(upload_limit()))
        .routes(routes!(plugin_shadows::get, plugin_shadows::remove))
        .routes(routes!(plugin_shadows::promote))
        .routes(routes!(chaos::list))
        .routes(routes!(chaos::set))
        .routes(routes!(chaos::clear))
        .routes(routes!(policies::create, policies::list))
        .routes(routes!(policies::merged))
        .routes(routes!(policies::get, policies::update, policies::delete))
        .routes(routes!(policies::logs))
        .routes(routes!(proxy::status))
        .routes(routes!(proxy::logs))
        .routes(routes!(creds::list))
        .routes(routes!(creds::set))
        .routes(routes!(creds::activate))
        .routes(routes!(creds::active, creds::delete))
        .routes(routes!(creds::versions))
        // Inside the admin check: callers without the key learn nothing from it.
        .route_layer(middleware::from_fn(nul_guard::refuse_nul_in_uri))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    let open = OpenApiRouter::new()
        .routes(routes!(tokens::generate))
        .routes(routes!(proxy::proxy_request))
        .routes(routes!(health::health))
        .routes(routes!(health::api_health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics));
    (management, open)
}

/// All routes, and the OpenAPI document they make (served at `/api/openapi.json`).
pub fn routes(state: AppState) -> Router {
    let (router, document) = router_and_document(&state);
    router
        .route("/api/openapi.json", get(openapi::serve(document)))
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .with_state(state)
        .merge(openapi::docs_page())
}

/// The router and its document, from [`table`]: the management group's operations are the
/// ones documented with the admin key.
fn router_and_document(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (management, open) = table(state);
    let admin_paths: Vec<String> = management
        .get_openapi()
        .paths
        .paths
        .keys()
        .cloned()
        .collect();
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::base())
        .merge(management)
        .merge(open)
        .split_for_parts();
    openapi::finish(&mut document, &admin_paths);
    (router, document)
}
