//! The gateway's clock for the times it stamps into rows and compares with them (agents',
//! policies' and credentials' timestamps, revocations' and signatures' expiry, the audit's
//! partitions and retention). A value the store carries, not a process-wide setting: the
//! system clock, or in a cluster test's instance the system clock shifted, to show that no
//! instance's clock decides what the others see. Also how times appear on the wire:
//! ISO 8601 in UTC with milliseconds, as the original did ([`iso`], [`iso_ms`]).

use chrono::{DateTime, SecondsFormat, Utc};

/// Unix time in milliseconds, possibly shifted from the system's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    shift_ms: i64,
}

impl Clock {
    /// The system clock.
    pub const SYSTEM: Clock = Clock { shift_ms: 0 };

    /// The system clock, `shift_ms` ahead (behind when negative).
    pub fn shifted(shift_ms: i64) -> Self {
        Self { shift_ms }
    }

    /// How far this clock is from the system's.
    pub fn shift_ms(&self) -> i64 {
        self.shift_ms
    }

    /// Now, in unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis().saturating_add(self.shift_ms)
    }
}

/// Unix milliseconds as `2025-08-15T12:00:00.000Z`.
pub fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time as `2025-08-15T12:00:00.000Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_reads_the_system_time_plus_its_shift() {
        let before = Clock::SYSTEM.now_ms();
        let ahead = Clock::shifted(60_000).now_ms();
        let after = Clock::SYSTEM.now_ms();
        assert!(ahead >= before + 60_000 && ahead <= after + 60_000);
        assert!(Clock::shifted(i64::MAX).now_ms() == i64::MAX, "saturates");
    }
}
