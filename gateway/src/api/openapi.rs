//! The API described in OpenAPI 3.1, generated from the handlers' annotations:
//! `GET /api/openapi.json`, and a page to read it at `GET /docs` whose assets are compiled
//! into the binary (it works with no network).

use axum::Json;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Required, SecurityRequirement};
use utoipa::{Modify, OpenApi};

/// Every error answer, as the wire crate defines it.
pub use gateway_wire::ErrorBody;

/// Routes anyone may call; every other one takes the admin key.
const OPEN_PATHS: &[&str] = &[
    "/api/generate-token",
    "/api/proxy-request",
    "/health",
    "/api/health",
    "/ready",
    "/metrics",
];

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "4RUNR Gateway",
        description = "A gateway through which AI agents call external tools without holding their credentials. Every error is JSON `{error, code}` with a stable code.",
    ),
    paths(
        crate::api::agents::create,
        crate::api::agents::list,
        crate::api::agents::get,
        crate::api::agents::update,
        crate::api::tokens::generate,
        crate::api::tokens::introspect,
        crate::api::tokens::revoke,
        crate::api::tokens::list,
        crate::api::plugins::list,
        crate::api::plugins::reload,
        crate::api::plugins::evaluate,
        crate::api::plugins::upload,
        crate::api::plugins::rollback,
        crate::api::plugins::remove,
        crate::api::plugin_shadows::put,
        crate::api::plugin_shadows::get,
        crate::api::plugin_shadows::promote,
        crate::api::plugin_shadows::remove,
        crate::api::chaos::list,
        crate::api::chaos::set,
        crate::api::chaos::clear,
        crate::api::policies::create,
        crate::api::policies::list,
        crate::api::policies::get,
        crate::api::policies::update,
        crate::api::policies::delete,
        crate::api::policies::merged,
        crate::api::policies::logs,
        crate::api::proxy::proxy_request,
        crate::api::proxy::status,
        crate::api::proxy::logs,
        crate::api::creds::list,
        crate::api::creds::set,
        crate::api::creds::activate,
        crate::api::creds::active,
        crate::api::creds::versions,
        crate::api::creds::delete,
        crate::api::health::health,
        crate::api::health::api_health,
        crate::api::health::ready,
        crate::api::health::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecurityAndParameters),
)]
pub struct ApiDoc;

/// Adds the security schemes, the admin key to every management operation, the agent's
/// credentials to the two agent operations, and a parameter for each `{name}` of a path.
struct SecurityAndParameters;

impl Modify for SecurityAndParameters {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description.to_string()))
                    .build(),
            )
        };
        components.add_security_scheme(
            "admin_key",
            bearer("`Authorization: Bearer <ADMIN_API_KEY>`: every management route."),
        );
        components.add_security_scheme(
            "agent_token",
            bearer("An agent token (`gw1.…`), as a bearer token or in the body's `agent_token`."),
        );
        components.add_security_scheme(
            "agent_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Agent-Signature",
                "RSA-PSS-SHA256 over `POST\\n/api/generate-token\\n<X-Agent-Timestamp>\\n<hex sha256 of the body>`, with X-Agent-Id and X-Agent-Timestamp.",
            ))),
        );
        for (path, item) in api.paths.paths.iter_mut() {
            let security = match path.as_str() {
                "/api/generate-token" => vec![
                    SecurityRequirement::new("admin_key", Vec::<String>::new()),
                    SecurityRequirement::new("agent_signature", Vec::<String>::new()),
                ],
                "/api/proxy-request" => {
                    vec![SecurityRequirement::new(
                        "agent_token",
                        Vec::<String>::new(),
                    )]
                }
                p if OPEN_PATHS.contains(&p) => Vec::new(),
                _ => vec![SecurityRequirement::new("admin_key", Vec::<String>::new())],
            };
            let parameters: Vec<Parameter> = path_parameters(path)
                .map(|name| {
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(utoipa::openapi::schema::Object::with_type(
                            utoipa::openapi::schema::Type::String,
                        )))
                        .build()
                })
                .collect();
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                if !security.is_empty() {
                    operation.security = Some(security.clone());
                }
                if !parameters.is_empty() {
                    operation
                        .parameters
                        .get_or_insert_with(Vec::new)
                        .extend(parameters.iter().cloned());
                }
            }
        }
    }
}

/// The `{name}` segments of a path template.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The `/docs` page (Swagger UI, compiled in) reading `/api/openapi.json`. The page links
/// its assets relative to the path it was asked at, so `/docs/` is served as `/docs` (it
/// would otherwise link `/docs//swagger-ui.css` and render blank).
pub fn docs_page() -> axum::Router {
    swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
        uri_prefix: "/docs",
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/api/openapi.json"),
        title: Some("4RUNR Gateway API"),
    })
    .layer(axum::middleware::map_request(without_trailing_slash))
}

async fn without_trailing_slash(mut request: axum::extract::Request) -> axum::extract::Request {
    if request.uri().path() == "/docs/" {
        *request.uri_mut() = axum::http::Uri::from_static("/docs");
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_are_read_off_the_template() {
        let names: Vec<&str> = path_parameters("/api/admin/plugins/{name}/shadow").collect();
        assert_eq!(names, ["name"]);
        assert_eq!(path_parameters("/api/agents").count(), 0);
    }
}
