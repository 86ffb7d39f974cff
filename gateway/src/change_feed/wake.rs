//! What wakes the change-feed follower: a PostgreSQL notification on `gateway_changes`
//! (sent by the feed's trigger when a change commits), or the poll interval, whichever comes
//! first. A lost listener connection is re-opened; until it is, the poll carries on.

use sqlx::postgres::PgListener;
use std::time::Duration;

/// The channel the triggers of migration 0010 notify.
const CHANNEL: &str = "gateway_changes";

/// The follower's alarm clock.
pub struct Wake {
    url: Option<String>,
    interval: Duration,
    listener: Option<PgListener>,
}

impl Wake {
    /// Wakes every `interval`, and at each notification when `url` (PostgreSQL) is given.
    pub fn new(url: Option<&str>, interval: Duration) -> Self {
        Self {
            url: url.map(str::to_string),
            interval,
            listener: None,
        }
    }

    /// Returns at the next notification or after the poll interval.
    pub async fn next(&mut self) {
        let Some(url) = &self.url else {
            tokio::time::sleep(self.interval).await;
            return;
        };
        if self.listener.is_none() {
            self.listener = listen(url, self.interval).await;
            if self.listener.is_none() {
                tokio::time::sleep(self.interval).await;
                return;
            }
            // Changes made while no listener was open are read by the catch-up this return
            // starts.
            return;
        }
        let Some(listener) = self.listener.as_mut() else {
            return;
        };
        match tokio::time::timeout(self.interval, listener.try_recv()).await {
            Err(_elapsed) => {}
            Ok(Ok(Some(_))) => {
                // Several changes often come together: one catch-up reads them all.
                while let Ok(Ok(Some(_))) =
                    tokio::time::timeout(Duration::ZERO, listener.try_recv()).await
                {
                }
            }
            Ok(Ok(None)) | Ok(Err(_)) => {
                tracing::debug!("change notification listener lost; re-opening it");
                self.listener = None;
            }
        }
    }
}

/// Opens a listener on [`CHANNEL`], within `timeout`.
async fn listen(url: &str, timeout: Duration) -> Option<PgListener> {
    let open = async {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match tokio::time::timeout(timeout, open).await {
        Ok(Ok(listener)) => Some(listener),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "cannot listen for change notifications yet");
            None
        }
        Err(_) => None,
    }
}
