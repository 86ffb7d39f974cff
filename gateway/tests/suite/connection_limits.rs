//! Hostile clients against the connection layer, on a real server: idle and slowloris
//! connections, stalled bodies and oversized headers. Attackers connect from 127.0.0.1; the
//! well-behaved client (a load balancer's health check, say) from 127.0.0.2.

use crate::common::{
    metric_value, secrets, settings, Backend, TestDatabase, TestGateway, SIGNING_SECRET,
};
use gateway::config::Settings;
use gateway::server::ServerLimits;
use reqwest::StatusCode;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The attackers' address and the well-behaved client's.
const ATTACKER: [u8; 4] = [127, 0, 0, 1];
const BYSTANDER: [u8; 4] = [127, 0, 0, 2];

/// Every test here ends by itself; this only turns a hang into a failure.
const TEST_BOUND: Duration = Duration::from_secs(120);

async fn gateway_with(limits: ServerLimits) -> (TestGateway, TestDatabase) {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let settings = Settings {
        server: ServerLimits {
            shutdown_grace_ms: 0,
            ..limits
        },
        ..settings(&database.url, database.data_dir())
    };
    let gateway = TestGateway::start_with(settings, secrets(SIGNING_SECRET)).await;
    (gateway, database)
}

fn address(gateway: &TestGateway) -> SocketAddr {
    gateway
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("socket address")
}

async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    socket.connect(to).await.expect("connect")
}

/// A client that connects from the bystander's address.
fn bystander_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(BYSTANDER))
        .build()
        .unwrap()
}

/// Everything the server sends until it closes the connection (a reset counts as a close).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn idle_connections_from_one_client_leave_others_served() {
    let per_client = 64;
    let attempts = 2_000;
    let (gw, _db) = gateway_with(ServerLimits {
        max_connections_per_client: per_client,
        header_timeout_ms: 600_000,
        ..ServerLimits::default()
    })
    .await;
    let to = address(&gw);
    let mut idle = Vec::with_capacity(attempts);
    for _ in 0..attempts {
        idle.push(connect_from(ATTACKER, to).await);
    }
    // The health check's connection is accepted after every attacker's (accepts are taken
    // in order), so when it answers, each attacker connection has been admitted or refused.
    let client = bystander_client();
    let health = client.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let metrics = gw.metrics_via(&client).await;
    let refused = metric_value(
        &metrics,
        "gateway_http_connections_refused_total{reason=\"per_client\"}",
    );
    assert_eq!(
        refused as usize,
        attempts - per_client as usize,
        "{metrics}"
    );
    let open = metric_value(&metrics, "gateway_http_connections_open");
    assert!(
        open <= f64::from(per_client) + 2.0,
        "open connections: {open}"
    );
    // A refused connection was told why, in the JSON envelope, and closed.
    let answer = read_until_closed(idle.last_mut().unwrap()).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains(r#""code":"too_many_connections""#),
        "{answer}"
    );
    drop(idle);
    gw.stop().await;
}

async fn a_full_gateway_refuses_new_connections_with_503() {
    let (gw, _db) = gateway_with(ServerLimits {
        max_connections: 8,
        header_timeout_ms: 600_000,
        ..ServerLimits::default()
    })
    .await;
    let to = address(&gw);
    // The bystander's connection is admitted first, then attackers fill the rest.
    let mut kept = connect_from(BYSTANDER, to).await;
    let mut held = Vec::new();
    for _ in 0..7 {
        held.push(connect_from(ATTACKER, to).await);
    }
    let mut late = connect_from(BYSTANDER, to).await;
    let answer = read_until_closed(&mut late).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":"server_busy""#), "{answer}");
    // Connections already admitted are still served while the gateway is full.
    kept.write_all(b"GET /metrics HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("gateway_http_connections_refused_total{reason=\"total\"} 1"),
        "{answer}"
    );
    drop(held);
    gw.stop().await;
}

async fn slowloris_headers_are_cut_off() {
    let count = 200;
    let (gw, _db) = gateway_with(ServerLimits {
        header_timeout_ms: 500,
        ..ServerLimits::default()
    })
    .await;
    let to = address(&gw);
    let mut slow = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = connect_from(ATTACKER, to).await;
        // Headers started and never finished.
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: gw\r\nx-slow: a")
            .await
            .unwrap();
        slow.push(stream);
    }
    let client = bystander_client();
    assert_eq!(
        client.get(gw.url("/health")).send().await.unwrap().status(),
        StatusCode::OK
    );
    for stream in &mut slow {
        // The server closes each one: reading ends (without the timeout, it would not).
        let answer = read_until_closed(stream).await;
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    gw.stop().await;
}

async fn a_stalled_body_is_answered_408_with_the_envelope() {
    let (gw, _db) = gateway_with(ServerLimits {
        body_timeout_ms: 300,
        body_min_rate: 0,
        ..ServerLimits::default()
    })
    .await;
    let to = address(&gw);
    for path in ["/api/proxy-request", "/api/create-agent"] {
        let mut stream = connect_from(ATTACKER, to).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
            crate::common::ADMIN_KEY
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.contains(r#""code":"body_timeout""#),
            "{path}: {answer}"
        );
    }
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_value(&metrics, "gateway_http_timeouts_total{phase=\"body\"}"),
        2.0
    );
    gw.stop().await;
}

async fn oversized_headers_are_refused_with_431() {
    let (gw, _db) = gateway_with(ServerLimits {
        max_header_bytes: 4_096,
        ..ServerLimits::default()
    })
    .await;
    let big = "a".repeat(8_000);
    let response = gw
        .client
        .get(gw.url("/health"))
        .header("x-big", big)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let small = gw.client.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(small.status(), StatusCode::OK);
    gw.stop().await;
}

on_sqlite_within!(
    super::TEST_BOUND;
    idle_connections_from_one_client_leave_others_served,
    a_full_gateway_refuses_new_connections_with_503,
    slowloris_headers_are_cut_off,
    a_stalled_body_is_answered_408_with_the_envelope,
    oversized_headers_are_refused_with_431,
);
