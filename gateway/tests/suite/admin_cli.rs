//! `gateway agents|tokens|policies|plugins` against a running gateway: tables for people,
//! the server's JSON with `--json`, and the server's code and message on an error.

use crate::common::{Backend, Fixture, ADMIN_KEY};
use serde_json::Value;
use std::path::PathBuf;

/// What one command printed and how it exited.
struct Run {
    ok: bool,
    /// The exit status (`None` when killed by a signal).
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }
}

async fn gateway_cli(url: &str, key: &str, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(args)
        .env("GATEWAY_URL", url)
        .env("ADMIN_API_KEY", key)
        .env("DATA_DIR", "/nonexistent")
        .output()
        .await
        .expect("the gateway binary runs");
    Run {
        ok: output.status.success(),
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn fixture(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_manages_agents_tokens_policies_and_plugins_from_the_command_line() {
    let f = Fixture::start(Backend::Sqlite).await;
    let url = f.gateway.url("");
    let url = url.trim_end_matches('/');
    let cli = |args: &'static [&'static str]| gateway_cli(url, ADMIN_KEY, args);

    let created = gateway_cli(
        url,
        ADMIN_KEY,
        &["agents", "create", "scout", "--role", "scraper", "--json"],
    )
    .await;
    assert!(created.ok, "{}", created.stderr);
    let agent = created.json()["agent_id"].as_str().unwrap().to_string();
    assert!(created.json()["private_key"]
        .as_str()
        .unwrap()
        .contains("PRIVATE KEY"));

    let listed = cli(&["agents", "list"]).await;
    assert!(listed.ok, "{}", listed.stderr);
    let mut lines = listed.stdout.lines();
    assert!(lines.next().unwrap().starts_with("ID"), "{}", listed.stdout);
    let row = lines
        .find(|l| l.contains(&agent))
        .expect("the agent is listed");
    assert!(
        row.contains("scout") && row.contains("scraper") && row.contains("active"),
        "{row}"
    );

    let minted = gateway_cli(
        url,
        ADMIN_KEY,
        &["tokens", "mint", &agent, "--tools", "serpapi", "--json"],
    )
    .await;
    assert!(minted.ok, "{}", minted.stderr);
    let token = minted.json()["agent_token"].as_str().unwrap().to_string();
    let token_id = minted.json()["token_id"].as_str().unwrap().to_string();
    let seen = gateway_cli(url, ADMIN_KEY, &["tokens", "introspect", &token, "--json"]).await;
    assert_eq!(seen.json()["active"], true, "{}", seen.stdout);
    assert_eq!(seen.json()["tools"], serde_json::json!(["serpapi"]));
    let revoked = gateway_cli(url, ADMIN_KEY, &["tokens", "revoke", &token_id]).await;
    assert!(revoked.ok, "{}", revoked.stderr);
    let seen = gateway_cli(url, ADMIN_KEY, &["tokens", "introspect", &token, "--json"]).await;
    assert_eq!(seen.json()["reason"], "revoked");

    let suspended = gateway_cli(url, ADMIN_KEY, &["agents", "suspend", &agent]).await;
    assert!(suspended.ok, "{}", suspended.stderr);
    let shown = gateway_cli(url, ADMIN_KEY, &["agents", "show", &agent]).await;
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("STATUS") && l.ends_with("suspended")),
        "{}",
        shown.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        format!(r#"{{"name": "scout-scopes", "agentId": "{agent}", "spec": {{"scopes": ["serpapi:search"]}}}}"#),
    )
    .unwrap();
    let applied = gateway_cli(
        url,
        ADMIN_KEY,
        &["policies", "apply", policy.to_str().unwrap(), "--json"],
    )
    .await;
    assert!(applied.ok, "{}", applied.stderr);
    let policy_id = applied.json()["id"].as_str().unwrap().to_string();
    assert!(cli(&["policies", "list"])
        .await
        .stdout
        .contains("scout-scopes"));
    let deleted = gateway_cli(url, ADMIN_KEY, &["policies", "delete", &policy_id]).await;
    assert!(deleted.ok, "{}", deleted.stderr);
    assert!(!cli(&["policies", "list"])
        .await
        .stdout
        .contains("scout-scopes"));

    let wasm = fixture("target/plugin-fixtures/deny-all.wasm");
    let uploaded = gateway_cli(
        url,
        ADMIN_KEY,
        &[
            "plugins",
            "upload",
            "guard",
            &wasm,
            "--binding",
            r#"{"tools":["serpapi"]}"#,
        ],
    )
    .await;
    assert!(uploaded.ok, "{}", uploaded.stderr);
    assert!(
        uploaded
            .stdout
            .lines()
            .any(|l| l.starts_with("version") && l.ends_with(" 1")),
        "{}",
        uploaded.stdout
    );
    let plugins = cli(&["plugins", "list"]).await;
    assert!(
        plugins
            .stdout
            .lines()
            .any(|l| l.starts_with("guard") && l.contains("upload")),
        "{}",
        plugins.stdout
    );

    // An error answer: the server's status, code and message, and exit status 3; with
    // --json, the server's JSON answer.
    let refused = cli(&["plugins", "rollback", "guard"]).await;
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("409 no_previous_version"),
        "{}",
        refused.stderr
    );
    assert_eq!(refused.status, Some(3), "{}", refused.stderr);
    let as_json = cli(&["plugins", "--json", "rollback", "guard"]).await;
    let answer: Value = serde_json::from_str(as_json.stderr.trim())
        .unwrap_or_else(|e| panic!("{e}: {}", as_json.stderr));
    assert_eq!(answer["code"], "no_previous_version", "{answer}");
    assert_eq!(as_json.status, Some(3));
    // A failure here (nothing listens there) is 1, a usage error 2.
    let unreachable = gateway_cli(
        "http://127.0.0.1:9",
        "some-admin-key-0123456789",
        &["agents", "list"],
    )
    .await;
    assert_eq!(unreachable.status, Some(1), "{}", unreachable.stderr);
    let usage = cli(&["agents", "no-such-command"]).await;
    assert_eq!(usage.status, Some(2), "{}", usage.stderr);
    let wrong_key = gateway_cli(url, "not-the-admin-key-0123456789", &["agents", "list"]).await;
    assert!(!wrong_key.ok);
    assert!(wrong_key.stderr.contains("401"), "{}", wrong_key.stderr);
    assert!(
        !wrong_key.stderr.contains("not-the-admin-key"),
        "the key is never printed"
    );
    let bad_id = cli(&["agents", "show", "../tokens"]).await;
    assert!(
        !bad_id.ok && bad_id.stderr.contains("not a valid id"),
        "{}",
        bad_id.stderr
    );
}

#[tokio::test]
async fn management_help_lists_every_command_and_no_secret() {
    let help = gateway_cli(
        "http://127.0.0.1:9",
        "secret-admin-key-0123456789",
        &["--help"],
    )
    .await;
    for command in ["agents", "tokens", "policies", "plugins"] {
        assert!(help.stdout.contains(command), "{}", help.stdout);
    }
    for (group, commands) in [
        (
            "agents",
            &["create", "list", "show", "suspend", "activate"][..],
        ),
        ("tokens", &["mint", "introspect", "revoke", "list"][..]),
        ("policies", &["list", "apply", "delete"][..]),
        ("plugins", &["list", "upload", "rollback"][..]),
    ] {
        let help = gateway_cli(
            "http://127.0.0.1:9",
            "secret-admin-key-0123456789",
            &[group, "--help"],
        )
        .await;
        for command in commands {
            assert!(help.stdout.contains(command), "{group}: {}", help.stdout);
        }
        assert!(!help.stdout.contains("secret-admin-key"), "{}", help.stdout);
    }
    let unreachable = gateway_cli(
        "http://127.0.0.1:9",
        "secret-admin-key-0123456789",
        &["agents", "list"],
    )
    .await;
    assert!(
        !unreachable.ok && unreachable.stderr.contains("cannot reach"),
        "{}",
        unreachable.stderr
    );
}
