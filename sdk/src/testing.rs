//! A mock host for unit-testing plugins natively: settable clock and configuration,
//! in-memory counters, captured log lines.

use crate::host::{Host, LogLevel};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A [`Host`] for tests.
#[derive(Default)]
pub struct MockHost {
    config: RefCell<String>,
    now_ms: Cell<u64>,
    counters: RefCell<HashMap<String, (u64, u64)>>,
    logs: RefCell<Vec<(LogLevel, String)>>,
}

impl MockHost {
    /// A host with this configuration JSON and clock.
    pub fn new(config: &str, now_ms: u64) -> Self {
        let host = Self::default();
        host.set_config(config);
        host.set_now_ms(now_ms);
        host
    }

    /// Replaces the configuration.
    pub fn set_config(&self, config: &str) {
        *self.config.borrow_mut() = config.to_string();
    }

    /// Sets the clock.
    pub fn set_now_ms(&self, now_ms: u64) {
        self.now_ms.set(now_ms);
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// Current value of a counter (0 when absent or expired).
    pub fn counter(&self, key: &str) -> u64 {
        match self.counters.borrow().get(key) {
            Some((value, expires)) if *expires > self.now_ms.get() => *value,
            _ => 0,
        }
    }

    /// Log lines written so far.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.borrow().clone()
    }
}

impl Host for MockHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn config(&self) -> String {
        self.config.borrow().clone()
    }

    fn counter_add(&self, key: &str, window_ms: u64, delta: i64) -> u64 {
        let now = self.now_ms.get();
        let mut counters = self.counters.borrow_mut();
        let entry = counters
            .entry(key.to_string())
            .or_insert((0, now + window_ms));
        if entry.1 <= now {
            *entry = (0, now + window_ms);
        }
        entry.0 = entry.0.saturating_add_signed(delta);
        entry.0
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }
}
