//! Periodic refresh of in-memory state from the shared database (agent status and
//! revocations, active policies, uploaded plugins, tool credentials), so that every
//! instance on one database converges within about a second without querying it on the
//! request path; and [`Turns`], which keeps one copy's refreshes from overlapping.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often each in-memory copy is refreshed.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Makes the refreshes of one in-memory copy take turns. A copy is refreshed both by its
/// periodic task and at once after a local change; were they to overlap, the periodic one,
/// having read the database just before the change, could apply its older rows over the
/// change's own refresh. Taking turns, a refresh applies after every one begun before it.
#[derive(Debug, Default)]
pub struct Turns(tokio::sync::Mutex<()>);

impl Turns {
    /// Waits for this refresh's turn; it lasts as long as the guard.
    pub async fn take(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}

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
