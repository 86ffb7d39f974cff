//! Retries: only for idempotent actions and errors that a second attempt can fix (timeout,
//! connection failure, 502/503/504, 429), with exponential backoff and ±10 % jitter, a 429's
//! `Retry-After` honoured, and never past the request's deadline.

use crate::tools::{RetryReason, ToolError};
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff.
    pub base_delay: Duration,
    /// Longest backoff.
    pub max_delay: Duration,
}

/// Share of a backoff that jitter may add or remove.
const JITTER: f64 = 0.1;

impl RetryPolicy {
    /// Backoff before retry number `retry` (1-based), with jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(16));
        let capped = exponential.min(self.max_delay);
        let jitter = rand::thread_rng().gen_range(-JITTER..=JITTER);
        capped.mul_f64(1.0 + jitter)
    }

    /// What to do after attempt number `attempt` (0-based) failed with `error`: the delay
    /// before the next attempt and why, or `None` to give up.
    pub fn next(
        &self,
        idempotent: bool,
        attempt: u32,
        error: &ToolError,
        deadline: Instant,
    ) -> Option<(Duration, RetryReason)> {
        if !idempotent || attempt >= self.max_retries {
            return None;
        }
        let reason = error.retry_reason()?;
        let mut delay = self.backoff(attempt + 1);
        if let ToolError::Status {
            retry_after: Some(asked),
            ..
        } = error
        {
            delay = delay.max(*asked);
        }
        (Instant::now() + delay < deadline).then_some((delay, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_millis(1000),
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let p = policy();
        for (retry, expected) in [(1, 250.0), (2, 500.0), (3, 1000.0), (9, 1000.0)] {
            let ms = p.backoff(retry).as_secs_f64() * 1000.0;
            assert!(
                (expected * 0.9..=expected * 1.1).contains(&ms),
                "{retry}: {ms}"
            );
        }
    }

    #[test]
    fn retries_only_idempotent_actions_and_retryable_errors() {
        let p = policy();
        let unavailable = ToolError::Status {
            status: 503,
            retry_after: None,
        };
        assert!(p.next(true, 0, &unavailable, far()).is_some());
        assert!(p.next(false, 0, &unavailable, far()).is_none());
        assert!(
            p.next(true, 2, &unavailable, far()).is_none(),
            "budget spent"
        );
        let not_found = ToolError::Status {
            status: 404,
            retry_after: None,
        };
        assert!(p.next(true, 0, &not_found, far()).is_none());
        assert!(p.next(true, 0, &ToolError::NotConfigured, far()).is_none());
        assert_eq!(
            p.next(true, 0, &ToolError::Timeout, far()).map(|(_, r)| r),
            Some(RetryReason::Timeout)
        );
    }

    #[test]
    fn honours_retry_after_and_the_deadline() {
        let p = policy();
        let limited = ToolError::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        };
        let (delay, reason) = p.next(true, 0, &limited, far()).unwrap();
        assert_eq!(
            (delay, reason),
            (Duration::from_secs(3), RetryReason::RateLimited)
        );
        let soon = Instant::now() + Duration::from_secs(1);
        assert!(p.next(true, 0, &limited, soon).is_none());
    }
}
