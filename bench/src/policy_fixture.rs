//! The policy evaluation every plugin benchmark measures: the default scraper policy (quotas
//! raised so that every call takes the allow path) and an allowed request, in the host's and
//! the SDK's types.

use gateway::plugins::bindings::Request;

/// 2026-01-05 (a Monday) 12:00 UTC: inside the scraper policy's window and schedule.
pub const NOW_MS: u64 = 1_767_614_400_000;

/// The default scraper policy with its quotas raised so every call takes the allow path.
pub fn scraper_spec() -> String {
    serde_json::json!({
        "scopes": ["serpapi:search", "http_fetch:get", "http_fetch:head"],
        "intent": "data_collection",
        "guards": {"maxRequestSize": 10000, "maxResponseSize": 1000000,
            "allowedDomains": ["google.com", "bing.com", "yahoo.com", "wikipedia.org", "linkedin.com",
                               "crunchbase.com", "github.com", "stackoverflow.com"],
            "blockedDomains": ["malicious-site.com", "phishing-example.com"],
            "timeWindow": {"start": "06:00", "end": "22:00", "timezone": "UTC"}},
        "quotas": [{"action": "http_fetch:get", "limit": 1_000_000_000u64, "window": "24h", "resetStrategy": "sliding"}],
        "schedule": {"enabled": true, "timezone": "UTC", "allowedDays": [0,1,2,3,4,5,6], "allowedHours": {"start": 6, "end": 22}},
        "responseFilters": {"redactFields": ["api_key", "password", "token"]}
    })
    .to_string()
}

/// An allowed `http_fetch.get` by a scraper, at [`NOW_MS`].
pub fn request() -> Request {
    Request {
        correlation_id: "bench".into(),
        agent_id: "agent-1".into(),
        agent_name: "scraper-1".into(),
        agent_role: "scraper".into(),
        tool: "http_fetch".into(),
        action: "get".into(),
        params: r#"{"url":"https://www.github.com/rust-lang"}"#.into(),
        intent: None,
        token_tools: vec!["http_fetch".into()],
        token_permissions: vec!["read".into()],
        now_ms: NOW_MS,
        seed: 1,
    }
}

/// The same request in the SDK's types, for the native evaluation.
pub fn sdk_request(r: &Request) -> gateway_sdk::Request {
    gateway_sdk::Request {
        correlation_id: r.correlation_id.clone(),
        agent_id: r.agent_id.clone(),
        agent_name: r.agent_name.clone(),
        agent_role: r.agent_role.clone(),
        tool: r.tool.clone(),
        action: r.action.clone(),
        params: r.params.clone(),
        intent: r.intent.clone(),
        token_tools: r.token_tools.clone(),
        token_permissions: r.token_permissions.clone(),
        now_ms: r.now_ms,
        seed: r.seed,
    }
}
