//! A request body that must arrive in time: all of it within a grace period, or, after the
//! grace, at least at a minimum rate. A client that sends headers and then trickles (or
//! stalls) its body is cut off instead of holding its connection and handler forever.

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus::IntCounter;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The error a late body ends with; [`is_body_timeout`] finds it in an error's chain.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// True when `error`, or an error in its source chain, is a [`BodyTimedOut`].
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// How fast a body must arrive.
#[derive(Debug, Clone)]
pub struct BodyPace {
    /// Time the whole body may take before the minimum rate applies.
    pub grace: Duration,
    /// Bytes per second the body must average after the grace (0: none; the grace is all).
    pub min_rate: u32,
    /// Counted each time a body is cut off.
    pub timeouts: IntCounter,
}

/// `inner`, failing with [`BodyTimedOut`] once it falls behind its [`BodyPace`].
pub struct DeadlineBody<B> {
    inner: B,
    pace: BodyPace,
    started: Instant,
    received: u64,
    /// Armed at the first wait for data: a body that arrives with its headers (the common
    /// case) never registers a timer.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> DeadlineBody<B> {
    /// Starts the clock of `inner` now.
    pub fn new(inner: B, pace: BodyPace) -> Self {
        Self {
            inner,
            pace,
            started: Instant::now(),
            received: 0,
            sleep: None,
        }
    }

    /// When the body, having sent `received` bytes, must have sent more.
    fn deadline(&self) -> Instant {
        let earned = match self.pace.min_rate {
            0 => Duration::ZERO,
            rate => Duration::from_secs_f64(self.received as f64 / f64::from(rate)),
        };
        self.started + self.pace.grace + earned
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if this.pace.min_rate > 0 {
                        let deadline = this.deadline();
                        if let Some(sleep) = &mut this.sleep {
                            sleep.as_mut().reset(deadline);
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.deadline();
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.pace.timeouts.inc();
                    return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn pace(grace_ms: u64, min_rate: u32) -> BodyPace {
        BodyPace {
            grace: Duration::from_millis(grace_ms),
            min_rate,
            timeouts: IntCounter::new("t", "t").unwrap(),
        }
    }

    type Chunks = http_body_util::channel::Channel<Bytes, std::convert::Infallible>;
    type Feed = http_body_util::channel::Sender<Bytes, std::convert::Infallible>;

    fn channel_body() -> (Feed, Chunks) {
        Chunks::new(4)
    }

    #[tokio::test]
    async fn a_stalled_body_fails() {
        let (mut tx, body) = channel_body();
        let pace = pace(20, 0);
        let timeouts = pace.timeouts.clone();
        tx.send_data(Bytes::from_static(b"{")).await.unwrap();
        let error = DeadlineBody::new(body, pace).collect().await.unwrap_err();
        assert!(is_body_timeout(&*error));
        assert_eq!(timeouts.get(), 1);
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_that_arrives_is_read_whole() {
        let (mut tx, body) = channel_body();
        tokio::spawn(async move {
            for _ in 0..5 {
                tx.send_data(Bytes::from(vec![b'a'; 1_000])).await.unwrap();
            }
        });
        let read = DeadlineBody::new(body, pace(60_000, 1_000))
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(read.len(), 5_000);
    }

    #[test]
    fn each_byte_received_earns_time_at_the_minimum_rate() {
        let (_tx, body) = channel_body();
        let mut body = DeadlineBody::new(body, pace(1_000, 1_000));
        let start = body.started;
        assert_eq!(body.deadline(), start + Duration::from_secs(1));
        body.received = 2_500;
        assert_eq!(body.deadline(), start + Duration::from_millis(3_500));
        let (_tx, unpaced) = channel_body();
        let mut unpaced = DeadlineBody::new(unpaced, pace(1_000, 0));
        unpaced.received = 1 << 20;
        assert_eq!(unpaced.deadline(), unpaced.started + Duration::from_secs(1));
    }
}
