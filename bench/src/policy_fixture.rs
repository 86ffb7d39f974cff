//! The policy evaluation every plugin benchmark measures: the default scraper policy (quotas
//! raised so that every call takes the allow path) and an allowed request, in the host's and
//! the SDK's types.

use gateway::plugins::call_data::CallData;

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
pub fn request() -> CallData {
    let mut call = CallData::default();
    call.correlation_id = "bench".into();
    call.agent_id = "agent-1".into();
    call.agent_name = "scraper-1".into();
    call.agent_role = "scraper".into();
    call.tool = "http_fetch".into();
    call.action = "get".into();
    call.params = serde_json::json!({"url": "https://www.github.com/rust-lang"});
    call.token_tools = vec!["http_fetch".into()];
    call.token_permissions = vec!["read".into()];
    call.now_ms = NOW_MS;
    call.seed = 1;
    call
}

/// The same request in the SDK's types, for the native evaluation.
pub fn sdk_request(r: &CallData) -> gateway_sdk::RequestFields {
    gateway_sdk::RequestFields {
        correlation_id: r.correlation_id.clone(),
        agent_id: r.agent_id.clone(),
        agent_name: r.agent_name.clone(),
        agent_role: r.agent_role.clone(),
        tool: r.tool.clone(),
        action: r.action.clone(),
        params: r.params_text().to_string(),
        intent: r.intent.clone(),
        token_tools: r.token_tools.clone(),
        token_permissions: r.token_permissions.clone(),
        now_ms: r.now_ms,
        seed: r.seed,
    }
}
