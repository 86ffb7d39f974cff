//! `gateway plugin check` and `gateway plugin test`, run as the real binary.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
}

fn write_request(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("req.json");
    std::fs::write(
        &path,
        r#"{"correlation_id":"c1","agent_id":"a1","agent_name":"n","agent_role":"scraper","tool":"serpapi","action":"search","params":"{\"q\":\"x\"}","intent":null,"token_tools":["serpapi"],"token_permissions":["read"],"now_ms":1767225600000,"seed":7}"#,
    )
    .unwrap();
    path
}

#[test]
fn check_describes_a_valid_plugin_and_refuses_garbage() {
    let out = gateway()
        .args(["plugin", "check"])
        .arg(root().join("policies-wasm/spec-policy.wasm"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "world:     policy",
        "contract:  gateway:plugin@2.0.0",
        "sha256:",
        "exports gateway:plugin/policy@2.0.0",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"nope").unwrap();
    let out = gateway()
        .args(["plugin", "check"])
        .arg(&garbage)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid WebAssembly component"));
}

#[test]
fn test_prints_the_decision_with_the_given_config() {
    let dir = tempfile::tempdir().unwrap();
    let request = write_request(dir.path());
    let config = dir.path().join("cfg.json");
    std::fs::write(&config, r#"{"scopes":["serpapi:search"]}"#).unwrap();
    let out = gateway()
        .args(["plugin", "test"])
        .arg(root().join("policies-wasm/spec-policy.wasm"))
        .arg("--request")
        .arg(&request)
        .arg("--config")
        .arg(&config)
        .arg("--timeout-ms")
        .arg("100")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["answer"]["decision"], "allow");
    assert!(report["micros"].as_f64().unwrap() > 0.0);

    // As `config_from = "policies"` hands them: a role's document, then an agent's, whose
    // intent wins over the role's and is not the request's.
    std::fs::write(
        &config,
        r#"[{"scopes":["serpapi:search"],"intent":"research"},{"intent":"outreach"}]"#,
    )
    .unwrap();
    let request_text = std::fs::read_to_string(&request).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&request_text).unwrap();
    record["intent"] = "research".into();
    std::fs::write(&request, record.to_string()).unwrap();
    let out = gateway()
        .args(["plugin", "test"])
        .arg(root().join("policies-wasm/spec-policy.wasm"))
        .arg("--request")
        .arg(&request)
        .arg("--config")
        .arg(&config)
        .arg("--timeout-ms")
        .arg("100")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["answer"]["code"], "intent_mismatch", "{report}");
}

#[test]
fn test_exits_non_zero_on_each_hostile_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let request = write_request(dir.path());
    for (fixture, failure) in [
        ("loop-forever", "timeout"),
        ("sleep-forever", "timeout"),
        ("grow-memory", "memory"),
        ("always-trap", "trap"),
        ("bad-answer", "invalid"),
    ] {
        let timeout = if failure == "timeout" { "10" } else { "100" };
        let out = gateway()
            .args(["plugin", "test"])
            .arg(root().join(format!("target/plugin-fixtures/{fixture}.wasm")))
            .arg("--request")
            .arg(&request)
            .arg("--timeout-ms")
            .arg(timeout)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{fixture}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["failure"], failure, "{fixture}");
    }
}

#[test]
fn test_runs_the_response_filter_on_the_shipped_examples() {
    let examples = root().join("sdk/examples");
    let run = |plugin: &std::path::Path| {
        gateway()
            .args(["plugin", "test"])
            .arg(plugin)
            .arg("--request")
            .arg(examples.join("request.json"))
            .arg("--config")
            .arg(examples.join("policy.json"))
            .arg("--response")
            .arg(examples.join("response.json"))
            .output()
            .unwrap()
    };
    let out = run(&root().join("policies-wasm/spec-policy.wasm"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["answer"]["decision"]["decision"], "allow_and_filter",
        "{report}"
    );
    assert_eq!(
        report["answer"]["filtered"]["results"][0]["contact"], "[REDACTED]",
        "{report}"
    );
    // A filter that fails is reported as the call's failure, and the exit code says so.
    let out = run(&root().join("target/plugin-fixtures/broken-filter.wasm"));
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failure"], "trap", "{report}");
}

/// `gateway plugin new` writes a crate that builds to a component outside this workspace,
/// passes `plugin check` and decides under `plugin test` with the example files it wrote.
#[test]
fn a_new_plugin_builds_checks_and_decides() {
    let dir = tempfile::tempdir().unwrap();
    let out = gateway()
        .args(["plugin", "new", "no-mail", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("cargo build --release --target wasm32-wasip2 --manifest-path"),
        "{printed}"
    );
    let crate_dir = dir.path().join("no-mail");
    // The workspace's versions of the SDK's dependencies: the build needs no registry.
    std::fs::copy(root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    // A target directory of its own: this test's cargo holds the workspace's.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("plugin-new");
    let build = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args([
            "build",
            "--release",
            "--offline",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/no_mail.wasm");

    let check = gateway()
        .args(["plugin", "check"])
        .arg(&wasm)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("plugin:    no-mail 0.1.0"), "{text}");

    let tried = gateway()
        .args(["plugin", "test"])
        .arg(&wasm)
        .arg("--request")
        .arg(crate_dir.join("request.json"))
        .arg("--config")
        .arg(crate_dir.join("config.json"))
        .arg("--timeout-ms")
        .arg("100")
        .output()
        .unwrap();
    assert!(
        tried.status.success(),
        "{}",
        String::from_utf8_lossy(&tried.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&tried.stdout).unwrap();
    assert_eq!(report["answer"]["code"], "tool_blocked", "{report}");
}
