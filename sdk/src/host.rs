//! The capabilities a plugin has besides its call: the gateway in production, a mock in
//! tests.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// Why a counter could not be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterError {
    /// The key is longer than [`MAX_COUNTER_KEY_BYTES`].
    KeyTooLong,
    /// The gateway holds as many counters as it may; no new key fits.
    Full,
}

impl std::fmt::Display for CounterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CounterError::KeyTooLong => "counter key too long",
            CounterError::Full => "no room for another counter",
        })
    }
}

/// Longest counter key the host accepts, in bytes.
pub const MAX_COUNTER_KEY_BYTES: usize = 1024;

/// One change of a counter, for [`Host::counters_add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterChange {
    /// The counter's key.
    pub key: String,
    /// How long the counter lives from its first use, in ms.
    pub window_ms: u64,
    /// What to add (negative to give back).
    pub delta: i64,
}

/// What the gateway offers a plugin.
pub trait Host {
    /// Writes a line to the gateway's log (at most 32 per call, each cut to 1024 bytes).
    fn log(&self, level: LogLevel, message: &str);
    /// Adds `delta` to counter `key` (living `window_ms` from its first use); returns the
    /// new value, never below zero.
    fn counter_add(&self, key: &str, window_ms: u64, delta: i64) -> Result<u64, CounterError>;
    /// Several changes in one round trip: the new values, in order.
    fn counters_add(&self, changes: &[CounterChange]) -> Result<Vec<u64>, CounterError>;
}
