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
