//! Starting requests on time. tokio's timer has a granularity of a millisecond and wakes late
//! by up to that much, which an open-model bench would count as latency of the target: with
//! plain `sleep_until` a 0.3 ms request showed as 2 ms. So the bench sleeps until shortly
//! before the intended instant and yields in a loop for the rest.

use std::time::Duration;
use tokio::time::Instant;

/// How long before the intended instant the bench stops sleeping and starts yielding.
const SLACK: Duration = Duration::from_millis(2);

/// Returns at `when` (or just after), not a timer tick later.
pub async fn wait_until(when: Instant) {
    if let Some(early) = when.checked_sub(SLACK) {
        if Instant::now() < early {
            tokio::time::sleep_until(early).await;
        }
    }
    while Instant::now() < when {
        tokio::task::yield_now().await;
    }
}
