//! The wall-time limit on a plugin call that waits inside the host. Epoch deadlines stop
//! guest code, but not a call suspended in a host import: a WASI sleep or poll, or a
//! `counter-add` waiting on a slow Redis. Such a call is stopped at the same wall-time limit
//! as a stuck one ([`super::call_clock::wall_limit`]). A timer is armed only when the call
//! first waits, so calls that never wait (the usual case) pay nothing for it.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

/// Runs `call` to completion, or gives up `limit` after it first waits: `None` then. The
/// call's future is dropped on giving up, which cancels the plugin call (wasmtime unwinds
/// its fiber) and discards its instance.
pub async fn within_wall_limit<F: Future>(limit: Duration, call: F) -> Option<F::Output> {
    let mut call = pin!(call);
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = call.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_that_never_waits_completes() {
        assert_eq!(
            within_wall_limit(Duration::ZERO, async { 7 }).await,
            Some(7)
        );
    }

    #[tokio::test]
    async fn a_call_that_waits_past_the_limit_is_given_up() {
        let short = within_wall_limit(
            Duration::from_secs(60),
            tokio::time::sleep(Duration::from_millis(1)),
        )
        .await;
        assert_eq!(short, Some(()));
        let long = within_wall_limit(
            Duration::from_millis(20),
            tokio::time::sleep(Duration::from_secs(3600)),
        )
        .await;
        assert_eq!(long, None);
    }
}
