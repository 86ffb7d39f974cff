//! Accepting and serving HTTP/1.1 connections within bounds: connections in all and per
//! client, the time headers and bodies may take, and the size of headers (see
//! [`ServerLimits`]). Each request carries its client's address (`ConnectInfo`) and a body
//! that fails once it falls behind its pace ([`body_deadline`]).
//!
//! On shutdown it drains as load balancers expect: `/ready` turns 503 at once while the
//! listener keeps accepting for a grace period (`SHUTDOWN_GRACE_MS`), then requests in flight
//! get at most `SHUTDOWN_DRAIN_MS` to finish.
//!
//! HTTP/1.1 only, as the original gateway served: every bound here is one hyper's HTTP/1
//! connection enforces, and load balancers speak HTTP/1.1 to their backends.

pub mod body_deadline;
pub mod connections;
mod limits;

pub use limits::ServerLimits;

use crate::metrics::server::ServerMetrics;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use body_deadline::{BodyPace, DeadlineBody};
use connections::{ConnectionGate, Refusal};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Most headers in one request.
const MAX_HEADERS: usize = 100;

/// Whether the gateway is draining: set when shutdown is requested, so that `/ready` turns
/// 503 while the listener still accepts (load balancers notice and stop sending). Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// True once shutdown was requested.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn start(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes. Then drains:
/// `draining` is set (`/ready` answers 503) while the listener keeps accepting for the
/// shutdown grace; then it stops accepting, lets connections finish their requests in flight
/// for at most the drain time, cuts off those still open, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ServerLimits,
    metrics: ServerMetrics,
    draining: Draining,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut acceptor = Acceptor::new(router, limits, metrics);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => acceptor.take(accepted).await,
            () = &mut shutdown => break,
        }
    }
    draining.start();
    let grace = limits.shutdown_grace();
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutdown requested: /ready answers 503; still accepting during the grace"
    );
    let grace_over = tokio::time::sleep(grace);
    tokio::pin!(grace_over);
    loop {
        tokio::select! {
            accepted = listener.accept() => acceptor.take(accepted).await,
            () = &mut grace_over => break,
        }
    }
    drop(listener);
    acceptor.drain(limits.shutdown_drain()).await;
    Ok(())
}

/// Accepts connections within the bounds and serves each on a task of its own.
struct Acceptor {
    router: Router,
    gate: Arc<ConnectionGate>,
    http: http1::Builder,
    pace: BodyPace,
    metrics: ServerMetrics,
    graceful: GracefulShutdown,
    connections: JoinSet<()>,
}

impl Acceptor {
    fn new(router: Router, limits: &ServerLimits, metrics: ServerMetrics) -> Self {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout())
            .max_buf_size((limits.max_header_bytes as usize).max(8192))
            .max_header_size(limits.max_header_bytes as usize)
            .max_headers(MAX_HEADERS);
        let pace = BodyPace {
            grace: limits.body_timeout(),
            min_rate: limits.body_min_rate,
            timeouts: metrics.timeouts.with_label_values(&["body"]),
        };
        Self {
            router,
            gate: ConnectionGate::new(limits.max_connections, limits.max_connections_per_client),
            http,
            pace,
            metrics,
            graceful: GracefulShutdown::new(),
            connections: JoinSet::new(),
        }
    }

    /// Serves an accepted connection, or refuses it.
    async fn take(&mut self, accepted: std::io::Result<(TcpStream, SocketAddr)>) {
        // Tasks of closed connections are reaped here, so the set holds open ones only.
        while self.connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => return accept_failed(e).await,
        };
        let slot = match self.gate.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                self.metrics
                    .connections_refused
                    .with_label_values(&[refusal.as_str()])
                    .inc();
                refuse(&stream, refusal);
                return;
            }
        };
        let service = hyper::service::service_fn({
            let router = self.router.clone();
            let pace = self.pace.clone();
            move |request: hyper::Request<Incoming>| {
                let mut request =
                    request.map(|body| Body::new(DeadlineBody::new(body, pace.clone())));
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            }
        });
        let connection = self
            .graceful
            .watch(self.http.serve_connection(TokioIo::new(stream), service));
        let metrics = self.metrics.clone();
        metrics.connections_open.inc();
        self.connections.spawn(async move {
            let _slot = slot;
            let _open = OpenConnection(&metrics.connections_open);
            if let Err(e) = connection.await {
                if e.is_timeout() {
                    metrics.timeouts.with_label_values(&["header"]).inc();
                } else {
                    tracing::debug!(error = %e, client = %peer, "connection ended with an error");
                }
            }
        });
    }

    /// Lets every connection finish its request in flight (idle ones close at once) for at
    /// most `drain`, then cuts off the rest.
    async fn drain(mut self, drain: Duration) {
        if tokio::time::timeout(drain, self.graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.connections.len(),
                drain_ms = drain.as_millis() as u64,
                "drain time over: cutting off the connections still open"
            );
            self.connections.abort_all();
        }
        while self.connections.join_next().await.is_some() {}
    }
}

/// Counts one open connection in `gateway_http_connections_open` while it lives (also when
/// its task is cut off).
struct OpenConnection<'a>(&'a prometheus::IntGauge);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Connections the kernel may hold, handshake done, until the gateway accepts them: a burst
/// of connections (a flood the gateway then refuses, or a load balancer's reconnects) waits
/// there instead of having its handshakes dropped and retried a second later. Linux caps it
/// at `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with a backlog of [`LISTEN_BACKLOG`].
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Answers a refused connection in one non-blocking write, then closes it.
fn refuse(stream: &TcpStream, refusal: Refusal) {
    let answer: &[u8] = match refusal {
        Refusal::Total => REFUSED_TOTAL,
        Refusal::PerClient => REFUSED_PER_CLIENT,
    };
    let _ = stream.try_write(answer);
}

/// 503 when every connection slot is taken.
const REFUSED_TOTAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\ncontent-length: 74\r\nretry-after: 1\r\nconnection: close\r\n\r\n\
{\"error\":\"The gateway has too many open connections\",\"code\":\"server_busy\"}";

/// 429 when the client holds its share of connections.
const REFUSED_PER_CLIENT: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
content-type: application/json\r\ncontent-length: 84\r\nretry-after: 1\r\nconnection: close\r\n\r\n\
{\"error\":\"Too many open connections from this client\",\"code\":\"too_many_connections\"}";

/// A failed accept: a connection that went away before it was accepted is skipped; anything
/// else (out of file descriptors, say) is logged and waited out briefly, so that the loop
/// does not spin while the condition lasts.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; pausing accepts for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The client address of a request served by [`serve`] (absent in handler unit tests).
pub fn client_address(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared_length(answer: &[u8]) -> usize {
        let text = std::str::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
        body.len()
    }

    #[test]
    fn refusal_answers_declare_their_json_body_length() {
        declared_length(REFUSED_TOTAL);
        declared_length(REFUSED_PER_CLIENT);
    }
}
