//! [`Turns`]: keeps the refreshes of one in-memory copy (agents and revocations, policies,
//! plugins, tool credentials, chaos rules) from overlapping. A copy is refreshed both by the
//! change feed (`crate::change_feed`) and at once after a local change.

/// Makes the refreshes of one in-memory copy take turns. Were two to overlap, the one that
/// read the database first could apply its older rows over the other's newer ones. Taking
/// turns, a refresh applies after every one begun before it.
#[derive(Debug, Default)]
pub struct Turns(tokio::sync::Mutex<()>);

impl Turns {
    /// Waits for this refresh's turn; it lasts as long as the guard.
    pub async fn take(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}
