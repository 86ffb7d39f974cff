//! What the `gateway` command shows of its settings: help that explains them without
//! showing a secret-bearing value taken from the environment.

use std::process::Command;

#[test]
fn serve_help_hides_connection_strings_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["serve", "--help"])
        .env(
            "DATABASE_URL",
            "postgres://gw:db-password-1234@db.internal:5432/gw",
        )
        .env(
            "REDIS_URL",
            "redis://:redis-password-5678@cache.internal:6379",
        )
        .output()
        .expect("the gateway binary runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("DATABASE_URL") && help.contains("REDIS_URL"),
        "{help}"
    );
    for secret in [
        "db-password-1234",
        "redis-password-5678",
        "db.internal",
        "cache.internal",
    ] {
        assert!(!help.contains(secret), "--help shows {secret}");
    }
    for limit in [
        "HTTP_HEADER_TIMEOUT_MS",
        "HTTP_MAX_CONNECTIONS_PER_CLIENT",
        "CACHE_MAX_BYTES",
    ] {
        assert!(help.contains(limit), "--help does not document {limit}");
    }
}

/// The line a development start prints about the admin key, with the given environment.
fn key_line(data_dir: &std::path::Path, admin_key: Option<&str>) -> String {
    use std::io::{BufRead, BufReader};
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command
        .arg("serve")
        .current_dir(data_dir)
        .env("GATEWAY_ENV", "development")
        .env("DATA_DIR", data_dir)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data_dir.join("gw.db").display()),
        )
        .env("PLUGINS_DIR", data_dir.join("no-plugins"))
        .env("BIND", "127.0.0.1")
        .env("PORT", "0")
        .env_remove("KEK_BASE64")
        .env_remove("SIGNING_SECRET")
        .env_remove("SIGNING_SECRET_PREVIOUS")
        .env_remove("ADMIN_API_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(key) = admin_key {
        command.env("ADMIN_API_KEY", key);
    }
    let mut child = command.spawn().expect("the gateway binary runs");
    let stderr = child.stderr.take().expect("stderr");
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("development mode:"))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn the_admin_key_is_printed_only_by_the_start_that_generated_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = key_line(dir.path(), None);
    let kept = std::fs::read_to_string(dir.path().join("dev-secrets.env")).unwrap();
    let generated = kept
        .lines()
        .find_map(|l| l.strip_prefix("ADMIN_API_KEY="))
        .expect("a generated key kept");
    assert!(first.contains(generated), "{first}");
    let second = key_line(dir.path(), None);
    assert!(
        !second.is_empty() && !second.contains(generated),
        "{second}"
    );
    let other = tempfile::tempdir().unwrap();
    let given = "a-key-given-in-the-environment-0123";
    let from_env = key_line(other.path(), Some(given));
    assert!(
        !from_env.is_empty() && !from_env.contains(given),
        "{from_env}"
    );
}
