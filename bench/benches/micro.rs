//! Criterion micro-benchmarks: one `spec-policy` evaluation natively, as a WebAssembly
//! component with a reused instance and with a fresh instance per call; sealing and opening
//! a token; one whole `POST /api/proxy-request` pass through the gateway's router, in
//! process (no socket); one audit batch written to SQLite. Run with `cargo bench -p bench`
//! after `make plugins`.

use axum::body::Body;
use bench::gateway_under_test::{self, Options};
use bench::policy_fixture::{request, scraper_spec, sdk_request};
use criterion::{criterion_group, criterion_main, Criterion};
use gateway::catalog::{Permission, ToolName};
use gateway::crypto::token::{Claims, TokenSealer};
use gateway::plugins::counters::Counters;
use gateway::plugins::plugin_config::PluginConfig;
use gateway::plugins::sandbox::CallContext;
use gateway::plugins::{CallLimits, Invoker, Plugin, PluginEngine};
use gateway_sdk::testing::PolicyHarness;
use spec_policy::SpecPolicy;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn policy(c: &mut Criterion) {
    let bytes = std::fs::read(root().join("policies-wasm/spec-policy.wasm"))
        .expect("policies-wasm/spec-policy.wasm (run `make plugins`)");
    let plugin = Arc::new(
        Plugin::load(
            &PluginEngine::new().expect("an engine"),
            "spec-policy",
            &bytes,
        )
        .expect("a valid plugin"),
    );
    let spec = PluginConfig::single(&scraper_spec());
    let req = Arc::new(request());
    let limits = CallLimits {
        timeout: Duration::from_millis(100),
        ..CallLimits::default()
    };
    let counters = Counters::local();
    let context = || CallContext {
        plugin: Arc::from("spec-policy"),
        call: Arc::clone(&req),
        attempt: 0,
        config: spec.clone(),
        counters: counters.clone(),
    };
    let mut group = c.benchmark_group("spec_policy_evaluate");
    let harness = PolicyHarness::<SpecPolicy>::new(&[&scraper_spec()]);
    let native_req: gateway_sdk::Request = sdk_request(&req).into();
    group.bench_function("native", |b| {
        b.iter(|| harness.evaluate(black_box(&native_req)))
    });
    let rt = runtime();
    for (name, reuse) in [
        ("wasm_reused_instance", true),
        ("wasm_fresh_instance", false),
    ] {
        let invoker = Invoker::new(Arc::clone(&plugin), limits, reuse, 4);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let d = invoker.evaluate(context()).await;
                assert!(matches!(
                    d,
                    Ok(gateway::plugins::bindings::Decision::AllowAndFilter)
                ));
            })
        });
    }
    group.finish();
}

fn token(c: &mut Criterion) {
    let sealer = TokenSealer::new(b"bench-signing-secret-bench-signing-secret", None);
    let claims = Claims {
        jti: uuid::Uuid::new_v4(),
        sub: uuid::Uuid::new_v4(),
        name: "scraper-1".into(),
        role: "scraper".into(),
        tools: vec![ToolName::Serpapi, ToolName::HttpFetch],
        permissions: vec![Permission::Read],
        iat: 1_767_614_400,
        exp: 1_767_618_000,
    };
    let sealed = sealer.seal(&claims);
    let mut group = c.benchmark_group("token");
    group.bench_function("seal", |b| b.iter(|| sealer.seal(black_box(&claims))));
    group.bench_function("open", |b| {
        b.iter(|| sealer.open(black_box(&sealed)).expect("opens"))
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = gateway_under_test::temp_data_dir("micro").expect("a temporary folder");
    let options = Options::throughput(root().join("policies-wasm"), true);
    let (router, body) = rt.block_on(async {
        let app = gateway_under_test::build(&options, &dir)
            .await
            .expect("a gateway");
        let router = app.router.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(app.serve(listener, std::future::pending()));
        let body = gateway_under_test::openai_chat_body(&reqwest::Client::new(), &url)
            .await
            .expect("the bench agent");
        (router, body)
    });
    c.bench_function("proxy_request_in_process", |b| {
        b.to_async(&rt).iter(|| async {
            let request = axum::http::Request::post("/api/proxy-request")
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert!(response.status().is_success());
            axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap()
        })
    });
    let _ = std::fs::remove_dir_all(dir);
}

/// One audit batch as the writer sees it under full load: 4,096 request rows and 4,096
/// policy decision rows, written in one transaction to a SQLite file.
fn audit_batch(c: &mut Criterion) {
    use gateway::store::policies::PolicyLogRow;
    use gateway::store::request_logs::RequestLogRow;
    const ROWS: usize = 4096;
    let rt = runtime();
    let dir = gateway_under_test::temp_data_dir("micro-audit").expect("a temporary folder");
    let url = format!("sqlite://{}", dir.join("audit.db").display());
    let store = rt
        .block_on(async {
            let store = gateway::store::Store::connect(&url).await?;
            store.migrate().await?;
            Ok::<_, gateway::store::StoreError>(store)
        })
        .expect("a SQLite store with its tables");
    let mut next_id = 0u64;
    let mut batch = || {
        (0..ROWS)
            .map(|_| {
                next_id += 1;
                let now = 1_767_225_600_000 + next_id as i64;
                let request = RequestLogRow {
                    id: format!("0190a000-0000-7000-8000-{next_id:012x}"),
                    correlation_id: format!("c0ffee00-0000-4000-8000-{next_id:012x}"),
                    agent_id: Some("6f1c2a3e-4b5d-4e6f-8a7b-9c0d1e2f3a4b".into()),
                    tool: "openai".into(),
                    action: "chat".into(),
                    status_code: 200,
                    success: 1,
                    error_code: None,
                    response_time_ms: 0.4,
                    cached: 0,
                    policy_decision: Some("allow".into()),
                    chaos_fault: None,
                    sample_rate: None,
                    created_at: now,
                };
                let decision = PolicyLogRow {
                    id: format!("0190a000-0000-7000-9000-{next_id:012x}"),
                    policy_id: None,
                    agent_id: "6f1c2a3e-4b5d-4e6f-8a7b-9c0d1e2f3a4b".into(),
                    tool: "openai".into(),
                    action: "chat".into(),
                    decision: "allow".into(),
                    reason: None,
                    request_data: Some(format!(
                        "{{\"correlation_id\":\"c0ffee00-0000-4000-8000-{next_id:012x}\"}}"
                    )),
                    response_data: None,
                    created_at: now,
                };
                (request, decision)
            })
            .unzip::<_, _, Vec<_>, Vec<_>>()
    };
    let mut group = c.benchmark_group("audit");
    group.sample_size(30);
    group.bench_function("batch_4096_requests_4096_decisions_sqlite", |b| {
        b.iter_batched(
            &mut batch,
            |(requests, decisions)| {
                rt.block_on(store.insert_audit_batch(&requests, &decisions))
                    .expect("the batch is written")
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
    rt.block_on(store.close());
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, policy, token, pipeline, audit_batch);
criterion_main!(benches);
