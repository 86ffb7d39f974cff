//! The API described in OpenAPI 3.1, generated from the handlers' annotations:
//! `GET /api/openapi.json`, and a page to read it at `GET /docs` whose assets are compiled
//! into the binary (it works with no network).

use crate::error::Refusal;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Required, SecurityRequirement};
use utoipa::OpenApi;

/// Every error answer, as the wire crate defines it.
pub use gateway_wire::ErrorBody;

/// What the document holds besides its operations (which come from the route table,
/// `api::table`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "4RUNR Gateway",
        description = "A gateway through which AI agents call external tools without holding their credentials. Every error is JSON `{error, code}` with a stable code.",
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The document before the route table adds its operations.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Completes the document: the security schemes, the admin key on every operation of
/// `admin_paths` (the management group of the route table; the others declare their own),
/// operation ids unique across the document, and a parameter for each `{name}` of a path.
pub fn finish(api: &mut utoipa::openapi::OpenApi, admin_paths: &[String]) {
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
        let admin = admin_paths.contains(path);
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
            // Handlers are named for what they do within their module (`list`, `get`):
            // the tag makes the id unique in the document (`plugins_list`).
            if let (Some(id), Some(tag)) = (
                &operation.operation_id,
                operation.tags.as_ref().and_then(|t| t.first()),
            ) {
                operation.operation_id = Some(format!("{tag}_{id}"));
            }
            let mut refusals: Vec<Refusal> = own_refusals(path).to_vec();
            if admin {
                refusals.extend_from_slice(ADMIN_REFUSALS);
            }
            if operation.request_body.is_some() && path != PROXY_PATH {
                refusals.extend_from_slice(BODY_REFUSALS);
            }
            if !parameters.is_empty() {
                refusals.push(Refusal::InvalidPath);
            }
            list_refusals(&mut operation.responses, &refusals);
            if admin {
                operation.security = Some(vec![SecurityRequirement::new(
                    "admin_key",
                    Vec::<String>::new(),
                )]);
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

const PROXY_PATH: &str = "/api/proxy-request";

/// What every management operation may answer besides its own refusals.
const ADMIN_REFUSALS: &[Refusal] = &[
    Refusal::Unauthorized,
    Refusal::InvalidText,
    Refusal::StoreUnavailable,
];

/// What an operation with a JSON body may answer while reading it.
const BODY_REFUSALS: &[Refusal] = &[
    Refusal::MalformedJson,
    Refusal::InvalidBody,
    Refusal::MissingBody,
    Refusal::UnreadableBody,
    Refusal::InvalidText,
    Refusal::ValidationFailed,
    Refusal::PayloadTooLarge,
    Refusal::UnsupportedMediaType,
    Refusal::BodyTimeout,
];

/// The refusals the two agent operations answer, as their modules list them.
fn own_refusals(path: &str) -> &'static [Refusal] {
    match path {
        PROXY_PATH => crate::api::proxy::REFUSALS,
        crate::api::tokens::GENERATE_TOKEN_PATH => crate::api::tokens::GENERATE_REFUSALS,
        _ => &[],
    }
}

/// Adds a response per status of `refusals` that the operation does not document itself,
/// naming the codes it carries.
fn list_refusals(responses: &mut utoipa::openapi::Responses, refusals: &[Refusal]) {
    let mut by_status: std::collections::BTreeMap<u16, Vec<&str>> = Default::default();
    for refusal in refusals {
        let codes = by_status.entry(refusal.status()).or_default();
        if !codes.contains(&refusal.code()) {
            codes.push(refusal.code());
        }
    }
    for (status, codes) in by_status {
        let description = format!("Error codes: {}.", codes.join(", "));
        let body = utoipa::openapi::ContentBuilder::new()
            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
            .build();
        responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                utoipa::openapi::ResponseBuilder::new()
                    .description(description)
                    .content("application/json", body)
                    .into()
            });
    }
}

/// The `{name}` segments of a path template.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// `GET /api/openapi.json`: the handler answering `document`, serialised once.
pub fn serve(
    document: utoipa::openapi::OpenApi,
) -> impl Fn() -> std::future::Ready<axum::response::Response> + Clone + Send + Sync + 'static {
    let body = axum::body::Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
    move || {
        let response = (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.clone(),
        );
        std::future::ready(axum::response::IntoResponse::into_response(response))
    }
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
