//! `http_fetch.get` and `http_fetch.head`: outbound web requests, through the SSRF guard
//! ([`super::ssrf`]), redirects re-checked hop by hop ([`super::redirects`]), and with the
//! response body capped. A JSON answer is handed back parsed
//! only while its tree stays small ([`MAX_PARSED_VALUES`]); a larger one is handed back as
//! text, so that a body built to blow up when parsed (`[[],[],…]` takes ~12 times its size
//! as a tree) costs no more memory than its bytes.

use super::params::Fields;
use super::redirects::send_following;
use super::{ssrf, RedirectCheck, Tool, ToolError, Upstream};
use crate::catalog::{params::http_fetch, ActionSpec};
use serde_json::{json, Map, Value};
use std::time::Duration;
use url::Url;

/// The web fetch tool.
pub struct HttpFetch;

/// Most JSON values (scalars, arrays, objects) a fetched answer may hold to be handed back
/// parsed: its tree then holds at most ~96 bytes a value (~12 MiB) besides its text.
pub const MAX_PARSED_VALUES: usize = 131_072;

/// Counts the values of a JSON text from its structure (an upper bound for valid JSON:
/// opening brackets and separators outside strings, plus one), stopping past `limit`.
fn values_within(json: &[u8], limit: usize) -> bool {
    let mut values = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' | b',' => {
                values += 1;
                if values > limit {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// The answer's `data`: the parsed JSON when the content type says JSON, it parses and its
/// tree is within budget; otherwise the text.
fn answer_data(body: &[u8], content_type: Option<&str>) -> Value {
    let is_json = content_type.is_some_and(|c| c.contains("json"));
    if is_json && values_within(body, MAX_PARSED_VALUES) {
        if let Ok(json) = serde_json::from_slice::<Value>(body) {
            return json;
        }
    }
    Value::String(String::from_utf8_lossy(body).into_owned())
}

/// Parameters of a fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// What to fetch.
    pub url: Url,
    /// Per-attempt timeout (1–30 s, default 10 s).
    pub timeout: Duration,
    /// Largest body kept, in bytes (at most the gateway's cap).
    pub max_size: Option<u64>,
}

impl Tool for HttpFetch {
    type Params = Params;

    fn validate(&self, action: &ActionSpec, params: &Value) -> Result<Params, Vec<String>> {
        let mut f = Fields::of(action, params);
        let raw = f.text(&http_fetch::URL);
        // The catalog checked the scheme; what else makes a URL valid is the parser's.
        let url = match Url::parse(&raw) {
            Ok(url) if url.scheme() == "http" || url.scheme() == "https" => Some(url),
            Ok(_) => None,
            Err(_) if raw.is_empty() || !raw.contains("://") => None,
            Err(e) => {
                f.problem(format!("url: not a valid URL ({e})"));
                None
            }
        };
        let timeout = f.int_or_default(&http_fetch::TIMEOUT).unwrap_or(10_000);
        let max_size = f.int(&http_fetch::MAX_SIZE).map(|n| n as u64);
        let url = url.unwrap_or_else(|| Url::parse("http://invalid.invalid/").expect("valid"));
        f.finish(Params {
            url,
            timeout: Duration::from_millis(timeout as u64),
            max_size,
        })
    }

    fn mock(&self, action: &str, p: &Params) -> Value {
        let url = p.url.as_str();
        let mut v = json!({
            "url": url,
            "status": 200,
            "headers": { "content-type": "text/html" },
            "bytes": 120,
        });
        if action == "get" {
            v["body"] = json!(format!(
                "<html><head><title>mock</title></head><body><h1>{url}</h1><p>hello</p></body></html>"
            ));
        }
        v
    }

    async fn live(
        &self,
        action: &str,
        p: &Params,
        up: &Upstream,
        redirects: &dyn RedirectCheck,
    ) -> Result<Value, ToolError> {
        ssrf::check_url(&p.url, up.allow_private)
            .map_err(|r| ToolError::DestinationRefused(r.0))?;
        let method = if action == "head" {
            reqwest::Method::HEAD
        } else {
            reqwest::Method::GET
        };
        let response = send_following(
            &up.fetch_client,
            method,
            &p.url,
            p.timeout,
            up.allow_private,
            redirects,
        )
        .await?;
        let status = response.status();
        if status.is_server_error() {
            return Err(ToolError::Status {
                status: status.as_u16(),
                retry_after: super::upstream::retry_after(response.headers()),
            });
        }
        let final_url = response.url().to_string();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if action == "head" {
            let headers: Map<String, Value> = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), json!(v.to_str().ok()?))))
                .collect();
            return Ok(json!({ "status": status.as_u16(), "headers": headers, "url": final_url }));
        }
        let content_type = header("content-type");
        let content_length = header("content-length");
        let cap = p.max_size.unwrap_or(up.max_bytes).min(up.max_bytes);
        let body = Upstream::read_capped(response, cap).await?;
        let data = answer_data(&body, content_type.as_deref());
        Ok(json!({
            "status": status.as_u16(),
            "statusText": status.canonical_reason().unwrap_or(""),
            "headers": { "content-type": content_type, "content-length": content_length },
            "data": data,
            "url": final_url,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(name: &str) -> &'static ActionSpec {
        crate::catalog::find(crate::catalog::ToolName::HttpFetch, name).unwrap()
    }

    #[test]
    fn mock_head_has_no_body() {
        let p = HttpFetch
            .validate(action("head"), &json!({"url": "https://example.com/a"}))
            .unwrap();
        let head = HttpFetch.mock("head", &p);
        assert!(head.get("body").is_none());
        let get = HttpFetch.mock("get", &p);
        assert!(get["body"]
            .as_str()
            .unwrap()
            .contains("<h1>https://example.com/a</h1>"));
        assert_eq!(get["status"], 200);
    }

    #[test]
    fn json_is_parsed_within_its_budget_and_text_beyond_it() {
        let small = br#"{"a":[1,2,{"b":"x,[{"}]}"#;
        assert_eq!(
            answer_data(small, Some("application/json")),
            json!({"a": [1, 2, {"b": "x,[{"}]})
        );
        assert_eq!(
            answer_data(small, Some("text/plain")),
            json!(String::from_utf8_lossy(small))
        );
        let bomb = format!("[{}[]]", "[],".repeat(MAX_PARSED_VALUES));
        assert!(answer_data(bomb.as_bytes(), Some("application/json")).is_string());
        let escaped_quote = br#"["a\",",","b"]"#;
        assert!(values_within(escaped_quote, 3));
        assert!(!values_within(escaped_quote, 2));
    }

    #[test]
    fn refuses_bad_urls_and_timeouts() {
        for params in [
            json!({}),
            json!({"url": "not a url"}),
            json!({"url": "file:///etc/passwd"}),
            json!({"url": "https://example.com", "timeout": 5}),
            json!({"url": "https://example.com", "headers": {"a": 1}}),
        ] {
            assert!(
                HttpFetch.validate(action("get"), &params).is_err(),
                "{params}"
            );
        }
    }
}
