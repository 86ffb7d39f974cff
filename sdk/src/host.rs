//! The capabilities a plugin has: the gateway in production, a mock in tests.

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

/// What the gateway offers a plugin.
pub trait Host {
    /// Writes a line to the gateway's log.
    fn log(&self, level: LogLevel, message: &str);
    /// The plugin's configuration for this call, as JSON text.
    fn config(&self) -> String;
    /// Adds `delta` to counter `key` (living `window_ms` from its first use); returns the
    /// new value, never below zero.
    fn counter_add(&self, key: &str, window_ms: u64, delta: i64) -> u64;
    /// Current time, unix milliseconds.
    fn now_ms(&self) -> u64;
}
