//! Periodic refresh of in-memory state from the shared database (agent status and
//! revocations, active policies, uploaded plugins), so that every instance on one database
//! converges within about a second without querying it on the request path.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often each in-memory copy is refreshed.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Runs `refresh` every [`INTERVAL`] until the task is aborted. A failed refresh is logged
/// (naming `what`) and the last known state keeps serving.
pub fn every_interval<F, Fut, E>(what: &'static str, mut refresh: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Display,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = refresh().await {
                tracing::warn!(error = %e, "{what} refresh failed; serving the last known state");
            }
        }
    })
}
