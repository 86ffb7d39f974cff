//! `serpapi.search`: web search.

use super::params::Fields;
use super::{Tool, ToolError, Upstream};
use crate::catalog::{params::serpapi, ActionSpec, ToolName};
use serde_json::{json, Value};

/// The search tool.
pub struct Serpapi;

/// Parameters of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Query (`q` or `query`).
    pub q: String,
    /// Search engine (default `google`).
    pub engine: Option<String>,
    /// Location hint.
    pub location: Option<String>,
    /// Results wanted, 1–100 (default 10).
    pub num: Option<i64>,
    /// Offset of the first result.
    pub start: Option<i64>,
    /// `active` or `off`.
    pub safe: Option<String>,
}

/// Characters `encodeURIComponent` leaves alone: letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

impl Tool for Serpapi {
    type Params = Params;

    fn validate(&self, action: &ActionSpec, params: &Value) -> Result<Params, Vec<String>> {
        let f = Fields::of(action, params);
        let p = Params {
            q: f.text(&serpapi::Q),
            engine: f.optional_text(&serpapi::ENGINE),
            location: f.optional_text(&serpapi::LOCATION),
            num: f.int(&serpapi::NUM),
            start: f.int(&serpapi::START),
            safe: f.optional_text(&serpapi::SAFE),
        };
        f.finish(p)
    }

    fn mock(&self, _action: &str, p: &Params) -> Value {
        let count = p.num.unwrap_or(10).clamp(1, 10);
        let encoded = percent_encoding::utf8_percent_encode(&p.q, URI_COMPONENT).to_string();
        let results: Vec<Value> = (1..=count)
            .map(|i| {
                json!({
                    "title": format!("Result {i} for {}", p.q),
                    "url": format!("https://example.com/{encoded}/{i}"),
                })
            })
            .collect();
        json!({
            "source": "serpapi-mock",
            "query": p.q,
            "results": results,
            "ts": chrono::Utc::now().timestamp_millis(),
        })
    }

    async fn live(
        &self,
        _action: &str,
        p: &Params,
        up: &Upstream,
        _redirects: &dyn super::RedirectCheck,
    ) -> Result<Value, ToolError> {
        let key = up.credential(ToolName::Serpapi)?;
        let mut query: Vec<(&str, String)> = vec![
            (
                "engine",
                p.engine.clone().unwrap_or_else(|| "google".into()),
            ),
            ("q", p.q.clone()),
            ("num", p.num.unwrap_or(10).to_string()),
        ];
        if let Some(l) = &p.location {
            query.push(("location", l.clone()));
        }
        if let Some(s) = p.start {
            query.push(("start", s.to_string()));
        }
        if let Some(s) = &p.safe {
            query.push(("safe", s.clone()));
        }
        query.push(("api_key", key.to_string()));
        let request = up
            .client
            .get(format!("{}/search", up.bases.serpapi))
            .query(&query);
        up.send_json(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search() -> &'static ActionSpec {
        crate::catalog::find(ToolName::Serpapi, "search").unwrap()
    }

    #[test]
    fn accepts_q_or_query() {
        for params in [json!({"q": "rust"}), json!({"query": "rust"})] {
            assert_eq!(Serpapi.validate(search(), &params).unwrap().q, "rust");
        }
    }

    #[test]
    fn mock_matches_the_original_payload() {
        let p = Serpapi
            .validate(search(), &json!({"q": "a b", "num": 3}))
            .unwrap();
        let v = Serpapi.mock("search", &p);
        assert_eq!(v["source"], "serpapi-mock");
        assert_eq!(v["query"], "a b");
        assert_eq!(v["results"].as_array().unwrap().len(), 3);
        assert_eq!(v["results"][0]["title"], "Result 1 for a b");
        assert_eq!(v["results"][0]["url"], "https://example.com/a%20b/1");
        assert!(v["ts"].is_i64());
    }

    #[test]
    fn mock_caps_results_at_ten() {
        let p = Serpapi
            .validate(search(), &json!({"q": "x", "num": 50}))
            .unwrap();
        assert_eq!(
            Serpapi.mock("search", &p)["results"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
    }

    #[test]
    fn refuses_bad_parameters_listing_each() {
        let problems = Serpapi
            .validate(search(), &json!({"num": 0, "safe": "maybe"}))
            .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
