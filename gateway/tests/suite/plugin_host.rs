//! The plugin host against real components: the hostile fixtures are contained and the next
//! call is served; the default plugins answer like their native code; reloads swap the live
//! set atomically and never let a broken file replace a working one.
//! Needs `make plugins` (which `make test` runs first).

use gateway::metrics::Metrics;
use gateway::plugins::bindings::{Decision, Fault};
use gateway::plugins::call_data::CallData;
use gateway::plugins::counters::Counters;
use gateway::plugins::plugin_config::PluginConfig;
use gateway::plugins::registry::{PluginRegistry, PolicyOutcome};
use gateway::plugins::sandbox::CallContext;
use gateway::plugins::{CallFailure, CallLimits, Invoker};
use gateway::plugins::{FailureKind, Plugin, World};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn built(dir: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make plugins`)", path.display()))
}

fn fixture(name: &str) -> Vec<u8> {
    built("target/plugin-fixtures", name)
}

fn default_plugin(name: &str) -> Vec<u8> {
    built("policies-wasm", name)
}

fn request(tool: &str, action: &str, params: &str) -> CallData {
    let mut call = CallData::default();
    call.correlation_id = "c1".into();
    call.agent_id = "agent-1".into();
    call.agent_name = "scraper-1".into();
    call.agent_role = "scraper".into();
    call.tool = tool.into();
    call.action = action.into();
    call.params = serde_json::from_str(params).expect("params are JSON");
    call.token_tools = vec![tool.into()];
    call.token_permissions = vec!["read".into()];
    call.now_ms = 1_767_614_400_000;
    call.seed = 7;
    call
}

/// A call's context with one configuration document (its call is set by the helpers below).
fn context(config: &str) -> CallContext {
    CallContext {
        plugin: Arc::from("test"),
        call: Arc::default(),
        attempt: 0,
        config: PluginConfig::single(config),
        counters: Counters::local(),
    }
}

fn with_call(context: CallContext, call: &CallData) -> CallContext {
    CallContext {
        call: Arc::new(call.clone()),
        ..context
    }
}

async fn evaluate(
    invoker: &Invoker,
    context: CallContext,
    call: &CallData,
) -> Result<Decision, CallFailure> {
    invoker.evaluate(with_call(context, call)).await
}

async fn inject(
    invoker: &Invoker,
    context: CallContext,
    call: &CallData,
) -> Result<Fault, CallFailure> {
    invoker.inject(with_call(context, call)).await
}

async fn filter_response(
    invoker: &Invoker,
    context: CallContext,
    call: &CallData,
    response: &str,
) -> Result<Option<String>, CallFailure> {
    invoker
        .filter_response(with_call(context, call), response)
        .await
}

/// Deadline for calls that must not time out: generous, because tests share two cores and
/// epoch deadlines count wall-clock time.
const RELAXED: Duration = Duration::from_secs(2);

fn invoker_with(bytes: &[u8], reuse: bool, timeout: Duration) -> Invoker {
    let plugin =
        Plugin::load(&crate::common::plugin_engine(), "test", bytes).expect("plugin loads");
    let limits = CallLimits {
        timeout,
        ..CallLimits::default()
    };
    Invoker::new(Arc::new(plugin), limits, reuse, 4)
}

fn invoker(bytes: &[u8], reuse: bool) -> Invoker {
    invoker_with(bytes, reuse, RELAXED)
}

#[tokio::test]
async fn each_hostile_fixture_is_contained_and_the_next_call_is_served() {
    let deny_all = invoker(&fixture("deny-all"), true);
    let cases = [
        ("loop-forever", FailureKind::Timeout),
        ("sleep-forever", FailureKind::Timeout),
        ("grow-memory", FailureKind::Memory),
        ("always-trap", FailureKind::Trap),
        ("bad-answer", FailureKind::Invalid),
    ];
    for (name, kind) in cases {
        for reuse in [false, true] {
            let timeout = if kind == FailureKind::Timeout {
                Duration::from_millis(20)
            } else {
                RELAXED
            };
            let hostile = invoker_with(&fixture(name), reuse, timeout);
            for attempt in 0..2 {
                let failure =
                    evaluate(&hostile, context("{}"), &request("serpapi", "search", "{}"))
                        .await
                        .expect_err("hostile plugin fails");
                assert_eq!(
                    failure.kind, kind,
                    "{name} reuse={reuse} attempt={attempt}: {failure}"
                );
            }
            let decision = evaluate(
                &deny_all,
                context("{}"),
                &request("serpapi", "search", "{}"),
            )
            .await
            .expect("next call is served");
            assert!(matches!(decision, Decision::Deny(ref d) if d.code == "deny_all"));
        }
    }
    let bad = invoker(&fixture("bad-answer"), false);
    let failure = filter_response(
        &bad,
        context("{}"),
        &request("serpapi", "search", "{}"),
        "{}",
    )
    .await
    .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Invalid);
}

#[tokio::test]
async fn plugin_check_reports_world_contract_and_digest() {
    let plugin = Plugin::load(
        &crate::common::plugin_engine(),
        "spec-policy",
        &default_plugin("spec-policy"),
    )
    .unwrap();
    assert_eq!(plugin.world, World::Policy);
    assert_eq!(plugin.info.name, "spec-policy");
    assert!(plugin
        .exports
        .iter()
        .any(|e| e == "gateway:plugin/policy@2.0.0"));
    assert!(plugin.info.stateless);
    assert_eq!(plugin.sha256.len(), 64);
    let chaos = Plugin::load(
        &crate::common::plugin_engine(),
        "chaos",
        &default_plugin("chaos"),
    )
    .unwrap();
    assert_eq!(chaos.world, World::Chaos);
    assert!(Plugin::load(
        &crate::common::plugin_engine(),
        "garbage",
        b"not wasm at all"
    )
    .is_err());
}

#[test]
fn a_plugin_importing_the_filesystem_is_refused_naming_the_import() {
    match Plugin::load(
        &crate::common::plugin_engine(),
        "reads-files",
        &fixture("reads-files"),
    ) {
        Err(gateway::plugins::LoadError::Import(name)) => {
            assert!(name.starts_with("wasi:filesystem/"), "{name}")
        }
        other => panic!("expected a refused import, got {other:?}"),
    }
    let loaded = Plugin::load(
        &crate::common::plugin_engine(),
        "spec-policy",
        &default_plugin("spec-policy"),
    )
    .unwrap();
    assert!(loaded
        .imports
        .iter()
        .any(|i| i.starts_with("gateway:plugin/host@")));
}

#[tokio::test]
async fn wasi_clock_and_random_are_the_calls_own() {
    for reuse in [false, true] {
        let observer = invoker(&fixture("clock-and-random"), reuse);
        let observe = |seed: u64| {
            let mut request = request("serpapi", "search", "{}");
            request.seed = seed;
            let observer = &observer;
            async move {
                match evaluate(observer, context("{}"), &request).await.unwrap() {
                    Decision::Deny(denial) => denial.reason,
                    other => panic!("{other:?}"),
                }
            }
        };
        let first = observe(7).await;
        assert_eq!(
            observe(7).await,
            first,
            "same request and seed, same answer"
        );
        assert!(
            first.starts_with("clock 1767614400000 1767614400000 random"),
            "the clock is the call's time: {first}"
        );
        assert_ne!(observe(8).await, first, "random numbers come from the seed");
    }
}

#[tokio::test]
async fn a_panicking_plugin_is_reported_by_its_message() {
    for reuse in [false, true] {
        let broken = invoker(&fixture("broken-filter"), reuse);
        let search = request("serpapi", "search", "{}");
        let failure = filter_response(&broken, context("{}"), &search, "{}")
            .await
            .expect_err("the filter panics");
        assert_eq!(failure.kind, FailureKind::Trap);
        assert!(
            failure.message.contains("the response filter broke"),
            "{failure}"
        );
        assert!(!failure.message.contains("backtrace"), "{failure}");
        // The instance is not reused after a trap: the next call is served (and asks for
        // its response to be filtered).
        assert_eq!(
            evaluate(&broken, context("{}"), &search).await.unwrap(),
            Decision::AllowAndFilter
        );
    }
}

#[tokio::test]
async fn a_plugin_cannot_touch_another_bindings_counters() {
    let spec = serde_json::json!({"scopes": ["serpapi:search"],
        "quotas": [{"action": "serpapi:search", "limit": 1, "window": "24h", "resetStrategy": "fixed"}]})
    .to_string();
    let counters = Counters::local();
    let call = |binding: &str, config: &str| CallContext {
        plugin: Arc::from(binding),
        counters: counters.clone(),
        ..context(config)
    };
    let thief = invoker(&fixture("quota-thief"), true);
    let policy = invoker(&default_plugin("spec-policy"), true);
    let search = request("serpapi", "search", r#"{"q":"x"}"#);
    // The thief adds 1,000 to the key spec-policy's daily quota uses, in its own namespace.
    assert_eq!(
        evaluate(&thief, call("quota-thief", "{}"), &search)
            .await
            .unwrap(),
        Decision::Allow
    );
    assert_eq!(
        evaluate(&policy, call("spec-policy", &spec), &search)
            .await
            .unwrap(),
        Decision::Allow,
        "the thief's additions are not spec-policy's"
    );
    let Decision::Deny(denial) = evaluate(&policy, call("spec-policy", &spec), &search)
        .await
        .unwrap()
    else {
        panic!("spec-policy's own quota still counts")
    };
    assert_eq!(denial.code, "quota_exceeded");
}

#[tokio::test]
async fn spec_policy_component_agrees_with_its_native_rules() {
    let spec = serde_json::json!({"scopes": ["serpapi:search", "http_fetch:get"],
        "guards": {"allowedDomains": ["google.com"]},
        "quotas": [{"action": "serpapi:search", "limit": 1, "window": "24h", "resetStrategy": "fixed"}]})
    .to_string();
    for reuse in [false, true] {
        let policy = invoker(&default_plugin("spec-policy"), reuse);
        let ctx = context(&spec);
        let search = request("serpapi", "search", r#"{"q":"x"}"#);
        assert_eq!(
            evaluate(&policy, ctx.clone(), &search).await.unwrap(),
            Decision::Allow
        );
        let Decision::Deny(denial) = evaluate(&policy, ctx.clone(), &search).await.unwrap() else {
            panic!("second search is over quota")
        };
        assert_eq!(denial.code, "quota_exceeded");
        let evil = request("http_fetch", "get", r#"{"url":"https://evilgoogle.com"}"#);
        let Decision::Deny(denial) = evaluate(&policy, ctx.clone(), &evil).await.unwrap() else {
            panic!()
        };
        assert_eq!(denial.code, "domain_not_allowed");
        let mail = request("gmail_send", "send", "{}");
        let Decision::Deny(denial) = evaluate(&policy, ctx, &mail).await.unwrap() else {
            panic!()
        };
        assert_eq!(denial.code, "scope_not_allowed");
    }
}

#[tokio::test]
async fn a_counter_key_over_the_host_limit_is_an_error_the_plugin_answers() {
    // spec-policy's quota key holds the scope: a 1,100-byte tool name makes it longer than
    // the host accepts, so `counters-add` returns `key-too-long` (no trap) and spec-policy
    // denies the call as one it cannot count.
    let long_tool = "t".repeat(1100);
    let scope = format!("{long_tool}:get");
    let spec = serde_json::json!({"scopes": [scope, "serpapi:search"],
        "quotas": [{"action": scope, "limit": 5, "window": "1h"},
                   {"action": "serpapi:search", "limit": 5, "window": "1h"}]})
    .to_string();
    for reuse in [false, true] {
        let policy = invoker(&default_plugin("spec-policy"), reuse);
        let Decision::Deny(denial) =
            evaluate(&policy, context(&spec), &request(&long_tool, "get", "{}"))
                .await
                .expect("the plugin answers")
        else {
            panic!("a call that cannot be counted is denied")
        };
        assert_eq!(denial.code, "quota_unavailable");
        let decision = evaluate(&policy, context(&spec), &request("serpapi", "search", "{}"))
            .await
            .expect("next call is served");
        assert_eq!(decision, Decision::Allow);
    }
}

#[tokio::test]
async fn chaos_component_is_deterministic_per_seed() {
    let chaos = invoker(&default_plugin("chaos"), true);
    let config = r#"{"rules":{"*":{"mode":"mock503","pct":50,"min_ms":300,"max_ms":1500}}}"#;
    let mut hits = 0;
    for seed in 0..200 {
        let mut r = request("serpapi", "search", "{}");
        r.seed = seed;
        let first = inject(&chaos, context(config), &r).await.unwrap();
        let again = inject(&chaos, context(config), &r).await.unwrap();
        assert_eq!(first, again);
        if let Fault::DelayThenError(e) = first {
            assert!((300..=1500).contains(&e.ms) && e.status == 503);
            hits += 1;
        }
    }
    assert!((60..=140).contains(&hits), "{hits} of 200 at 50 %");
}

fn registry(dir: &std::path::Path) -> Arc<PluginRegistry> {
    Arc::new(PluginRegistry::new(
        dir.to_path_buf(),
        crate::common::plugin_engine(),
        Counters::local(),
        Arc::new(Metrics::new()),
    ))
}

const DENY_ALL_MANIFEST: &str =
    "[[binding]]\nplugin = \"deny-all.wasm\"\ntools = [\"*\"]\ntimeout_ms = 100\n";
const SPEC_MANIFEST: &str =
    "[[binding]]\nplugin = \"spec-policy.wasm\"\ntools = [\"*\"]\ntimeout_ms = 100\n\
    config = { scopes = [\"serpapi:search\"] }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_the_set_without_failing_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deny-all.wasm"), fixture("deny-all")).unwrap();
    std::fs::write(
        dir.path().join("spec-policy.wasm"),
        default_plugin("spec-policy"),
    )
    .unwrap();
    std::fs::write(dir.path().join("plugins.toml"), DENY_ALL_MANIFEST).unwrap();
    let registry = registry(dir.path());
    registry.reload().await.unwrap();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let registry = Arc::clone(&registry);
        let stop = Arc::clone(&stop);
        workers.push(tokio::spawn(async move {
            let (mut allowed, mut denied) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let set = registry.current();
                match registry
                    .evaluate(&set, &Arc::new(request("serpapi", "search", "{}")), None)
                    .await
                {
                    PolicyOutcome::Allow { .. } => allowed += 1,
                    PolicyOutcome::Deny { .. } => denied += 1,
                    PolicyOutcome::Failed { binding, kind } => {
                        panic!("request failed in {binding}: {kind:?}")
                    }
                }
                tokio::task::yield_now().await;
            }
            (allowed, denied)
        }));
    }
    for round in 0..6 {
        let manifest = if round % 2 == 0 {
            SPEC_MANIFEST
        } else {
            DENY_ALL_MANIFEST
        };
        std::fs::write(dir.path().join("plugins.toml"), manifest).unwrap();
        registry.reload().await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut allowed, mut denied) = (0, 0);
    for w in workers {
        let (a, d) = w.await.unwrap();
        allowed += a;
        denied += d;
    }
    assert!(
        allowed > 0 && denied > 0,
        "both sets served: {allowed} allowed, {denied} denied"
    );
}

#[tokio::test]
async fn broken_file_keeps_the_previous_set_live() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deny-all.wasm"), fixture("deny-all")).unwrap();
    std::fs::write(dir.path().join("plugins.toml"), DENY_ALL_MANIFEST).unwrap();
    let registry = registry(dir.path());
    registry.reload().await.unwrap();
    let before = registry.current();

    std::fs::write(dir.path().join("deny-all.wasm"), b"\0asm garbage").unwrap();
    assert!(registry.reload().await.is_err());
    assert!(
        Arc::ptr_eq(&before, &registry.current()),
        "live set unchanged"
    );
    assert!(registry
        .last_error()
        .unwrap()
        .error
        .contains("deny-all.wasm"));
    let outcome = registry
        .evaluate(
            &registry.current(),
            &Arc::new(request("serpapi", "search", "{}")),
            None,
        )
        .await;
    assert!(matches!(outcome, PolicyOutcome::Deny { ref code, .. } if code == "deny_all"));

    std::fs::write(dir.path().join("plugins.toml"), "[[binding]]\nplugin = 42").unwrap();
    assert!(registry.reload().await.is_err());
    assert!(Arc::ptr_eq(&before, &registry.current()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_a_plugin_into_the_directory_makes_it_live() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    registry.reload().await.unwrap();
    let (_watcher, _task) = gateway::plugins::watch::spawn(Arc::clone(&registry)).unwrap();
    assert!(registry.current().bindings.is_empty());

    std::fs::write(dir.path().join("deny-all.wasm"), fixture("deny-all")).unwrap();
    std::fs::write(dir.path().join("plugins.toml"), DENY_ALL_MANIFEST).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while registry.current().bindings.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(registry.current().bindings[0].name, "deny-all");
}

#[test]
fn a_component_of_another_contract_version_is_refused_naming_both() {
    // The smallest 1.x component: it imports the 1.0.0 host interface.
    let old = wat::parse_str(
        r#"(component
             (import "gateway:plugin/host@1.0.0" (instance
               (export "now-ms" (func (result u64))))))"#,
    )
    .unwrap();
    let error = Plugin::load(&crate::common::plugin_engine(), "old", &old)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("gateway:plugin@1.0.0") && error.contains("gateway:plugin@2.0.0"),
        "{error}"
    );
    // A component of this contract that exports neither interface says which it expects.
    let empty = wat::parse_str("(component)").unwrap();
    let error = Plugin::load(&crate::common::plugin_engine(), "empty", &empty)
        .unwrap_err()
        .to_string();
    assert!(error.contains("gateway:plugin/policy@2.0.0"), "{error}");
}

/// An example of another language (`make plugin-examples`) decides as the Rust one on every
/// tool, and validates configurations alike; skipped, saying why, when its toolchain could
/// not be installed.
async fn decides_as_the_rust_example(file: &str, toolchain: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugin-fixtures")
        .join(file);
    let Ok(other) = std::fs::read(&path) else {
        eprintln!(
            "skipped: {} is not built (make plugin-examples could not install {toolchain})",
            path.display()
        );
        return;
    };
    let other = invoker(&other, true);
    let rust = invoker(&fixture("blocked-tools"), true);
    let config = r#"{"blocked_tools":["gmail_send","openai"]}"#;
    let mut denied = 0;
    for tool in ["gmail_send", "serpapi", "openai", "http_fetch"] {
        let call = request(tool, "get", "{}");
        let by_rust = evaluate(&rust, context(config), &call).await.unwrap();
        let by_other = evaluate(&other, context(config), &call).await.unwrap();
        assert_eq!(by_other, by_rust, "{file}: {tool}");
        denied += usize::from(matches!(by_rust, Decision::Deny(_)));
    }
    assert_eq!(denied, 2);
    for (document, valid) in [
        (r#"{"blocked_tools":["x"]}"#, true),
        (r#"{"blocked":["x"]}"#, false),
        ("not json", false),
    ] {
        for plugin in [&rust, &other] {
            let answer = plugin.validate_config(document).await.unwrap();
            assert_eq!(answer.is_ok(), valid, "{file}: {document}: {answer:?}");
        }
    }
}

#[tokio::test]
async fn the_python_example_decides_as_the_rust_one() {
    decides_as_the_rust_example("blocked-tools-py.wasm", "componentize-py").await;
}

#[tokio::test]
async fn the_javascript_example_decides_as_the_rust_one() {
    decides_as_the_rust_example("blocked-tools-js.wasm", "componentize-js").await;
}

/// A shadow candidate judges sampled calls beside the live policy without changing any
/// answer, and its agreement is counted: deny-all shadowing an allowing policy disagrees,
/// the same policy shadowing itself agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_candidate_is_counted_and_never_enforced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deny-all.wasm"), fixture("deny-all")).unwrap();
    std::fs::write(
        dir.path().join("spec-policy.wasm"),
        default_plugin("spec-policy"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("plugins.toml"),
        "[[binding]]\nname = \"next-denies\"\nplugin = \"spec-policy.wasm\"\ntools = [\"*\"]\n\
         timeout_ms = 100\nconfig = { scopes = [\"serpapi:search\"] }\n\
         shadow = \"deny-all.wasm\"\nshadow_percent = 100\n\
         [[binding]]\nname = \"next-agrees\"\nplugin = \"spec-policy.wasm\"\ntools = [\"*\"]\n\
         timeout_ms = 100\nconfig = { scopes = [\"serpapi:search\"] }\n\
         shadow = \"spec-policy.wasm\"\nshadow_percent = 100\n",
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let registry = Arc::new(PluginRegistry::new(
        dir.path().to_path_buf(),
        crate::common::plugin_engine(),
        Counters::local(),
        Arc::clone(&metrics),
    ));
    registry.reload().await.unwrap();
    const CALLS: u64 = 20;
    for seed in 0..CALLS {
        let mut call = request("serpapi", "search", "{}");
        call.seed = seed;
        let outcome = registry
            .evaluate(&registry.current(), &Arc::new(call), None)
            .await;
        assert!(
            matches!(outcome, PolicyOutcome::Allow { .. }),
            "the live answer stands: {outcome:?}"
        );
    }
    let count = |binding: &str, outcome: &str| {
        metrics
            .plugin_shadow_evaluations
            .with_label_values(&[binding, outcome])
            .get()
    };
    let settled = |binding: &str| {
        ["agree", "disagree", "error", "skipped"]
            .iter()
            .map(|o| count(binding, o))
            .sum::<u64>()
            == CALLS
    };
    // The shadow calls run in tasks of their own: wait (bounded) until all are counted.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(settled("next-denies") && settled("next-agrees")) {
        assert!(std::time::Instant::now() < deadline, "shadow calls counted");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(count("next-denies", "agree"), 0);
    assert!(count("next-denies", "disagree") > 0);
    assert_eq!(count("next-denies", "error"), 0);
    assert_eq!(count("next-agrees", "disagree"), 0);
    assert!(count("next-agrees", "agree") > 0);
}
