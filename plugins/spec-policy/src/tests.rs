//! Every rule of the spec, through the SDK's mock host.

use crate::SpecPolicy;
use gateway_sdk::testing::PolicyHarness;
use gateway_sdk::{Decision, Request, RequestFields};
use serde_json::json;

/// 2026-01-05 (a Monday) 12:00 UTC.
const MONDAY_NOON_UTC: u64 = 1_767_614_400_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn fields(tool: &str, action: &str, params: serde_json::Value, now_ms: u64) -> RequestFields {
    RequestFields {
        correlation_id: "c1".into(),
        agent_id: "agent-1".into(),
        agent_name: "scraper-1".into(),
        agent_role: "scraper".into(),
        tool: tool.into(),
        action: action.into(),
        params: params.to_string(),
        now_ms,
        ..RequestFields::default()
    }
}

fn request(tool: &str, action: &str, params: serde_json::Value, now_ms: u64) -> RequestFields {
    fields(tool, action, params, now_ms)
}

/// The request the plugin reads, from its values.
fn req(fields: &RequestFields) -> Request<'static> {
    fields.clone().into()
}

fn harness(spec: &serde_json::Value) -> PolicyHarness<SpecPolicy> {
    PolicyHarness::new(&[&spec.to_string()])
}

fn evaluate(spec: serde_json::Value, fields: &RequestFields) -> Decision {
    harness(&spec).evaluate(&req(fields))
}

fn code(decision: &Decision) -> &str {
    match decision {
        Decision::Allow | Decision::AllowAndFilter => "allow",
        Decision::Deny { code, .. } => code,
    }
}

fn search() -> RequestFields {
    request("serpapi", "search", json!({"q": "rust"}), MONDAY_NOON_UTC)
}

#[test]
fn empty_spec_denies_everything() {
    assert_eq!(code(&evaluate(json!({}), &search())), "scope_not_allowed");
    let no_documents = PolicyHarness::<SpecPolicy>::new(&[]);
    assert_eq!(
        code(&no_documents.evaluate(&req(&search()))),
        "scope_not_allowed"
    );
}

#[test]
fn a_new_configuration_id_is_parsed_again() {
    let allow = json!({"scopes": ["serpapi:search"]});
    let deny = json!({"scopes": ["serpapi:searcX"]});
    let mut h = harness(&allow);
    assert_eq!(h.evaluate(&req(&search())), Decision::Allow);
    h.set_config(&[&deny.to_string()]);
    assert_eq!(code(&h.evaluate(&req(&search()))), "scope_not_allowed");
    h.set_config(&[&allow.to_string()]);
    assert_eq!(h.evaluate(&req(&search())), Decision::Allow);
}

#[test]
fn documents_merge_in_order_with_the_agents_last() {
    let role = json!({"scopes": ["serpapi:search"], "intent": "research"});
    let agent = json!({"scopes": ["http_fetch:get"], "intent": "outreach"});
    let h = PolicyHarness::<SpecPolicy>::new(&[&role.to_string(), &agent.to_string()]);
    let mut r = search();
    r.intent = Some("outreach".into());
    assert_eq!(h.evaluate(&req(&r)), Decision::Allow);
    r.intent = Some("research".into());
    assert_eq!(code(&h.evaluate(&req(&r))), "intent_mismatch");
    let effective: serde_json::Value = serde_json::from_str(&h.effective().unwrap()).unwrap();
    assert_eq!(
        effective["scopes"],
        json!(["serpapi:search", "http_fetch:get"])
    );
}

#[test]
fn validation_names_every_problem_and_accepts_a_good_document() {
    let validate = PolicyHarness::<SpecPolicy>::validate;
    assert!(validate(&json!({"scopes": ["serpapi:search"]}).to_string()).is_ok());
    let problems = validate(&json!({"scopes": ["serpapi:fly"]}).to_string()).unwrap_err();
    assert_eq!(
        problems,
        vec!["spec.scopes[0]: unknown tool:action \"serpapi:fly\""]
    );
    assert!(validate(&json!({"scopes": ["serpapi:*"]}).to_string()).is_ok());
    let problems = validate(&json!({"scopes": ["nothing:*"]}).to_string()).unwrap_err();
    assert_eq!(
        problems,
        vec!["spec.scopes[0]: unknown tool:action \"nothing:*\""]
    );
    let problems = validate("{\"scopes\": 5}").unwrap_err();
    assert!(problems[0].starts_with("spec: "), "{problems:?}");
}

#[test]
fn invalid_config_denies_without_trapping() {
    let h = PolicyHarness::<SpecPolicy>::new(&["not json"]);
    assert_eq!(code(&h.evaluate(&req(&search()))), "policy_misconfigured");
    let (_, logged) = &h.host.logs()[0];
    assert!(logged.starts_with("configuration is not valid"), "{logged}");
}

#[test]
fn scope_must_be_listed_and_reason_does_not_disclose_others() {
    let spec = json!({"scopes": ["serpapi:search"]});
    assert_eq!(evaluate(spec.clone(), &search()), Decision::Allow);
    let denied = evaluate(
        spec,
        &request("gmail_send", "send", json!({}), MONDAY_NOON_UTC),
    );
    let Decision::Deny { code, reason } = denied else {
        panic!()
    };
    assert_eq!(code, "scope_not_allowed");
    assert!(!reason.contains("serpapi"), "{reason}");
}

#[test]
fn intent_mismatch_is_denied_only_when_both_are_given() {
    let spec = json!({"scopes": ["serpapi:search"], "intent": "data_collection"});
    assert_eq!(evaluate(spec.clone(), &search()), Decision::Allow);
    let mut r = search();
    r.intent = Some("outreach".into());
    assert_eq!(code(&evaluate(spec.clone(), &r)), "intent_mismatch");
    r.intent = Some("data_collection".into());
    assert_eq!(evaluate(spec.clone(), &r), Decision::Allow);
    let by_param = request(
        "serpapi",
        "search",
        json!({"q": "x", "intent": "spam"}),
        MONDAY_NOON_UTC,
    );
    assert_eq!(code(&evaluate(spec, &by_param)), "intent_mismatch");
}

#[test]
fn a_missing_intent_is_denied_when_the_policy_requires_one() {
    let spec =
        json!({"scopes": ["serpapi:search"], "intent": "data_collection", "intentRequired": true});
    assert_eq!(code(&evaluate(spec.clone(), &search())), "intent_required");
    let mut r = search();
    r.intent = Some("data_collection".into());
    assert_eq!(evaluate(spec.clone(), &r), Decision::Allow);
    r.intent = Some("outreach".into());
    assert_eq!(code(&evaluate(spec, &r)), "intent_mismatch");
    let optional =
        json!({"scopes": ["serpapi:search"], "intent": "data_collection", "intentRequired": false});
    assert_eq!(evaluate(optional, &search()), Decision::Allow);
}

#[test]
fn an_intent_longer_than_a_reason_is_denied_with_the_reason_cut() {
    let spec = json!({"scopes": ["serpapi:search"], "intent": "data_collection"});
    let mut r = search();
    r.intent = Some("x".repeat(1_100));
    let Decision::Deny { code, reason } = evaluate(spec, &r) else {
        panic!("allowed")
    };
    assert_eq!(code, "intent_mismatch");
    assert!(reason.len() <= gateway_sdk::rules::MAX_MESSAGE_BYTES);
    assert!(gateway_sdk::rules::was_cut(&reason), "{reason}");
}

#[test]
fn max_request_size_counts_params_bytes() {
    let spec = json!({"scopes": ["serpapi:search"], "guards": {"maxRequestSize": 20}});
    assert_eq!(evaluate(spec.clone(), &search()), Decision::Allow);
    let big = request(
        "serpapi",
        "search",
        json!({"q": "x".repeat(50)}),
        MONDAY_NOON_UTC,
    );
    assert_eq!(code(&evaluate(spec, &big)), "request_too_large");
}

#[test]
fn domains_match_on_label_boundaries_for_every_http_fetch_action() {
    let spec = json!({"scopes": ["http_fetch:get", "http_fetch:head"],
        "guards": {"allowedDomains": ["google.com"], "blockedDomains": ["bad.google.com"]}});
    let fetch = |action: &str, url: &str| {
        code(&evaluate(
            spec.clone(),
            &request("http_fetch", action, json!({"url": url}), MONDAY_NOON_UTC),
        ))
        .to_string()
    };
    assert_eq!(fetch("get", "https://google.com/x"), "allow");
    assert_eq!(fetch("get", "https://www.google.com/x"), "allow");
    assert_eq!(fetch("head", "https://WWW.Google.COM./"), "allow");
    assert_eq!(
        fetch("get", "https://evilgoogle.com/"),
        "domain_not_allowed"
    );
    assert_eq!(
        fetch("head", "https://evilgoogle.com/"),
        "domain_not_allowed"
    );
    assert_eq!(
        fetch("get", "https://google.com.evil.net/"),
        "domain_not_allowed"
    );
    assert_eq!(fetch("get", "https://bad.google.com/"), "domain_blocked");
    assert_eq!(fetch("get", "https://x.bad.google.com/"), "domain_blocked");
    assert_eq!(fetch("get", "not a url"), "invalid_url");
    assert_eq!(fetch("get", "ftp://google.com/"), "invalid_url");
}

#[test]
fn time_window_uses_its_time_zone_and_can_span_midnight() {
    let spec = |start: &str, end: &str, tz: &str| {
        json!({"scopes": ["serpapi:search"],
        "guards": {"timeWindow": {"start": start, "end": end, "timezone": tz}}})
    };
    // 12:00 UTC = 07:00 in New York (EST, January).
    assert_eq!(
        code(&evaluate(
            spec("09:00", "17:00", "America/New_York"),
            &search()
        )),
        "outside_time_window"
    );
    assert_eq!(
        code(&evaluate(
            spec("06:00", "08:00", "America/New_York"),
            &search()
        )),
        "allow"
    );
    assert_eq!(
        code(&evaluate(spec("22:00", "02:00", "UTC"), &search())),
        "outside_time_window"
    );
    assert_eq!(
        code(&evaluate(spec("11:00", "02:00", "UTC"), &search())),
        "allow"
    );
    assert_eq!(
        code(&evaluate(spec("00:00", "12:00", "UTC"), &search())),
        "allow",
        "inclusive end"
    );
    assert_eq!(
        code(&evaluate(spec("09:00", "17:00", "Mars/Base"), &search())),
        "policy_misconfigured"
    );
}

#[test]
fn schedule_follows_daylight_saving_in_its_zone() {
    // New York moved to EDT on 2026-03-08. 13:30 UTC is 08:30 EST on Friday 2026-03-06 and
    // 09:30 EDT on Monday 2026-03-09.
    let spec = json!({"scopes": ["serpapi:search"], "schedule": {"timezone": "America/New_York",
        "allowedDays": [1, 2, 3, 4, 5], "allowedHours": {"start": 9, "end": 17}}});
    let friday_before = 1_772_803_800_000; // 2026-03-06T13:30:00Z
    let monday_after = friday_before + 3 * DAY; // 2026-03-09T13:30:00Z
    let sunday = friday_before + 2 * DAY;
    let at = |ms| {
        code(&evaluate(
            spec.clone(),
            &request("serpapi", "search", json!({}), ms),
        ))
        .to_string()
    };
    assert_eq!(at(friday_before), "outside_schedule");
    assert_eq!(at(monday_after), "allow");
    assert_eq!(
        at(sunday + 4 * HOUR),
        "outside_schedule",
        "Sunday is not allowed"
    );
}

#[test]
fn schedule_end_hour_is_allowed_until_59_and_hour_zero_counts() {
    let spec = |start: u32, end: u32| {
        json!({"scopes": ["serpapi:search"],
        "schedule": {"timezone": "UTC", "allowedHours": {"start": start, "end": end}}})
    };
    let at = |s, ms| code(&evaluate(s, &request("serpapi", "search", json!({}), ms))).to_string();
    let midnight = MONDAY_NOON_UTC - 12 * HOUR;
    assert_eq!(at(spec(0, 0), midnight + 59 * 60_000), "allow");
    assert_eq!(at(spec(0, 0), midnight + HOUR), "outside_schedule");
    assert_eq!(
        at(spec(1, 5), midnight),
        "outside_schedule",
        "start 0 is not ignored"
    );
    let disabled =
        json!({"scopes": ["serpapi:search"], "schedule": {"enabled": false, "allowedDays": []}});
    assert_eq!(at(disabled, midnight), "allow");
}

#[test]
fn fixed_quota_allows_limit_then_denies_until_the_window_resets() {
    let spec = json!({"scopes": ["serpapi:search"],
        "quotas": [{"action": "serpapi:search", "limit": 2, "window": "1h", "resetStrategy": "fixed"}]});
    let h = harness(&spec);
    let mut r = search();
    assert_eq!(h.evaluate(&req(&r)), Decision::Allow);
    assert_eq!(h.evaluate(&req(&r)), Decision::Allow);
    let Decision::Deny { code, reason } = h.evaluate(&req(&r)) else {
        panic!()
    };
    assert_eq!(code, "quota_exceeded");
    assert!(
        reason.contains("resets at 2026-01-05T13:00:00Z"),
        "{reason}"
    );
    r.now_ms += HOUR;
    assert_eq!(h.evaluate(&req(&r)), Decision::Allow);
}

#[test]
fn sliding_quota_counts_part_of_the_previous_window() {
    let spec = json!({"scopes": ["serpapi:search"],
        "quotas": [{"action": "serpapi:search", "limit": 4, "window": "1h"}]});
    let start = MONDAY_NOON_UTC; // aligned to the hour
    let h = harness(&spec);
    let mut r = search();
    r.now_ms = start;
    for _ in 0..4 {
        assert_eq!(h.evaluate(&req(&r)), Decision::Allow);
    }
    // A quarter into the next hour, 3/4 of the previous 4 calls still count: 3 + 1 <= 4.
    r.now_ms = start + HOUR + HOUR / 4;
    assert_eq!(h.evaluate(&req(&r)), Decision::Allow);
    assert_eq!(code(&h.evaluate(&req(&r))), "quota_exceeded");
}

#[test]
fn quota_is_not_consumed_by_denied_calls() {
    let spec = json!({"scopes": ["serpapi:search", "http_fetch:get"],
        "guards": {"allowedDomains": ["example.com"]},
        "quotas": [{"action": "http_fetch:get", "limit": 1, "window": "24h", "resetStrategy": "fixed"},
                   {"action": "http_fetch:get", "limit": 5, "window": "1h", "resetStrategy": "fixed"}]});
    let h = harness(&spec);
    let bad = request(
        "http_fetch",
        "get",
        json!({"url": "https://evil.com"}),
        MONDAY_NOON_UTC,
    );
    assert_eq!(code(&h.evaluate(&req(&bad))), "domain_not_allowed");
    let good = request(
        "http_fetch",
        "get",
        json!({"url": "https://example.com"}),
        MONDAY_NOON_UTC,
    );
    assert_eq!(h.evaluate(&req(&good)), Decision::Allow);
    assert_eq!(code(&h.evaluate(&req(&good))), "quota_exceeded");
    // The refused call gave back its unit of the hourly quota.
    let hourly = format!("quota:agent-1:http_fetch:get:1h:{}", MONDAY_NOON_UTC / HOUR);
    assert_eq!(h.host.counter(&hourly), 1);
}

#[test]
fn response_filters_redact_truncate_block_and_mask_pii() {
    let spec = json!({"scopes": ["serpapi:search"],
        "guards": {"piiFilters": ["email", "ssn"]},
        "responseFilters": {"redactFields": ["api_key"], "truncateFields": [{"field": "content", "maxLength": 5}],
                            "blockPatterns": ["Private_Key"]}});
    let h = harness(&spec);
    assert_eq!(h.evaluate(&req(&search())), Decision::AllowAndFilter);
    let response = json!({"api_key": "sk-1", "nested": [{"api_key": {"deep": 1}, "content": "0123456789"}],
        "note": "contains a PRIVATE_KEY here", "who": "mail bob@example.com, ssn 123-45-6789"});
    let filtered = h
        .filter_response(&req(&search()), &response.to_string())
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(&filtered).unwrap();
    assert_eq!(out["api_key"], "[REDACTED]");
    assert_eq!(out["nested"][0]["api_key"], "[REDACTED]");
    assert_eq!(out["nested"][0]["content"], "01234");
    assert_eq!(out["note"], "[BLOCKED]");
    assert_eq!(out["who"], "mail [EMAIL], ssn [SSN]");
}

#[test]
fn oversized_response_is_withheld() {
    let spec = json!({"scopes": ["serpapi:search"], "guards": {"maxResponseSize": 10}});
    let out = harness(&spec)
        .filter_response(
            &req(&search()),
            &json!({"data": "x".repeat(100)}).to_string(),
        )
        .unwrap();
    assert!(out.contains("\"withheld\":true"), "{out}");
}

#[test]
fn merge_unites_lists_and_lets_later_specs_win() {
    use crate::spec::{merge, PolicySpec};
    let role: PolicySpec =
        serde_json::from_value(json!({"scopes": ["serpapi:search"], "intent": "role",
        "guards": {"allowedDomains": ["a.com"], "maxRequestSize": 10},
        "quotas": [{"action": "serpapi:search", "limit": 1, "window": "1h"}]}))
        .unwrap();
    let agent: PolicySpec =
        serde_json::from_value(json!({"scopes": ["http_fetch:get", "serpapi:search"],
        "intent": "agent", "guards": {"allowedDomains": ["b.com"]},
        "quotas": [{"action": "serpapi:search", "limit": 2, "window": "1h"}]}))
        .unwrap();
    let m = merge(&[role, agent]);
    assert_eq!(m.scopes, vec!["serpapi:search", "http_fetch:get"]);
    assert_eq!(m.intent.as_deref(), Some("agent"));
    assert_eq!(m.guards.allowed_domains, vec!["a.com", "b.com"]);
    assert_eq!(m.guards.max_request_size, Some(10));
    assert_eq!(m.quotas.len(), 2);
}

#[test]
fn problems_name_each_bad_field() {
    let spec: crate::spec::PolicySpec = serde_json::from_value(json!({"scopes": ["serpapi:fly"],
        "guards": {"timeWindow": {"start": "25:00", "timezone": "Nowhere/City"}},
        "quotas": [{"action": "serpapi:search", "limit": 1, "window": "soon"}],
        "schedule": {"timezone": "UTC", "allowedDays": [7]}}))
    .unwrap();
    let problems = spec.problems().join("\n");
    for needle in [
        "scopes[0]",
        "timeWindow.start",
        "timeWindow.timezone",
        "quotas[0].window",
        "allowedDays",
    ] {
        assert!(problems.contains(needle), "{needle} in {problems}");
    }
}

#[test]
fn response_rules_are_recognised_and_without_them_responses_pass_unchanged() {
    let spec = |value: serde_json::Value| -> crate::spec::PolicySpec {
        serde_json::from_value(value).unwrap()
    };
    let plain = spec(json!({"scopes": ["serpapi:search"]}));
    assert!(!plain.has_response_rules());
    let body = r#"{"title":"kept"}"#;
    assert_eq!(crate::filters::apply(&plain, body), None);
    assert_eq!(
        harness(&json!({"scopes": ["serpapi:search"]})).evaluate(&req(&search())),
        Decision::Allow,
        "no filter call asked for"
    );
    for rules in [
        json!({"responseFilters": {"redactFields": ["title"]}}),
        json!({"responseFilters": {"blockPatterns": ["x"]}}),
        json!({"guards": {"piiFilters": ["email"]}}),
        json!({"guards": {"maxResponseSize": 10}}),
    ] {
        assert!(spec(rules.clone()).has_response_rules(), "{rules}");
    }
    let redacting = spec(json!({"responseFilters": {"redactFields": ["title"]}}));
    assert_eq!(
        crate::filters::apply(&redacting, body).as_deref(),
        Some(r#"{"title":"[REDACTED]"}"#)
    );
    // Rules that match nothing leave the response as it came: no rewrite to send back.
    let elsewhere = spec(json!({"responseFilters": {"redactFields": ["password"]}}));
    assert_eq!(crate::filters::apply(&elsewhere, body), None);
}

#[test]
fn quotas_on_one_window_count_each_call_once() {
    // A role's hourly limit and an agent's stricter one count the same calls.
    let role = json!({"scopes": ["serpapi:search"],
        "quotas": [{"action": "serpapi:search", "limit": 100, "window": "1h", "resetStrategy": "fixed"}]});
    let agent = json!({"quotas": [{"action": "serpapi:search", "limit": 2, "window": "1h"}]});
    let h = PolicyHarness::<SpecPolicy>::new(&[&role.to_string(), &agent.to_string()]);
    assert_eq!(h.evaluate(&req(&search())), Decision::Allow);
    assert_eq!(h.evaluate(&req(&search())), Decision::Allow);
    assert_eq!(code(&h.evaluate(&req(&search()))), "quota_exceeded");
    let key = format!("quota:agent-1:serpapi:search:1h:{}", MONDAY_NOON_UTC / HOUR);
    assert_eq!(h.host.counter(&key), 2, "one unit per allowed call");
}

#[test]
fn counters_that_cannot_count_deny_without_trapping() {
    let spec = json!({"scopes": ["serpapi:search"],
        "quotas": [{"action": "serpapi:search", "limit": 5, "window": "1h"}]});
    let mut r = search();
    r.agent_id = "a".repeat(2_000); // the counter key is over the host's limit
    let h = harness(&spec);
    assert_eq!(code(&h.evaluate(&req(&r))), "quota_unavailable");
}

#[test]
fn a_tool_wildcard_scope_allows_every_action_of_that_tool_only() {
    let spec = json!({"scopes": ["http_fetch:*"]});
    let head = request(
        "http_fetch",
        "head",
        json!({"url": "https://example.com"}),
        MONDAY_NOON_UTC,
    );
    assert_eq!(code(&evaluate(spec.clone(), &head)), "allow");
    assert_eq!(code(&evaluate(spec, &search())), "scope_not_allowed");
}
