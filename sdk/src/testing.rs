//! Native tests of plugins: a mock host (settable clock, in-memory counters, captured log
//! lines) and harnesses that call a plugin as the gateway does (configuration by id, parsed
//! once) and hold every answer to the host's rules ([`crate::rules`]): an answer the
//! gateway would refuse fails the test, with the rule it broke.

use crate::host::{CounterChange, CounterError, Host, LogLevel, MAX_COUNTER_KEY_BYTES};
use crate::rules::{
    check_decision, check_fault, check_filtered_size, MAX_LOG_LINES_PER_CALL, MAX_LOG_MESSAGE_BYTES,
};
use crate::{Chaos, ConfigCache, Decision, Fault, Policy, Request};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A [`Host`] for tests, with the gateway's limits: keys over 1024 bytes are refused, at
/// most 32 log lines are kept per call and each is cut to 1024 bytes.
#[derive(Default)]
pub struct MockHost {
    now_ms: Cell<u64>,
    counters: RefCell<HashMap<String, (u64, u64)>>,
    logs: RefCell<Vec<(LogLevel, String)>>,
    logs_this_call: Cell<u32>,
}

impl MockHost {
    /// A host whose counters run on this clock (the request's `now_ms` in a harness).
    pub fn new(now_ms: u64) -> Self {
        let host = Self::default();
        host.set_now_ms(now_ms);
        host
    }

    /// Sets the counters' clock.
    pub fn set_now_ms(&self, now_ms: u64) {
        self.now_ms.set(now_ms);
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

    /// Starts a call: its log-line allowance starts again.
    pub fn begin_call(&self) {
        self.logs_this_call.set(0);
    }
}

impl Host for MockHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs_this_call.set(self.logs_this_call.get() + 1);
        if self.logs_this_call.get() > MAX_LOG_LINES_PER_CALL {
            return;
        }
        let mut cut = message.len().min(MAX_LOG_MESSAGE_BYTES);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        self.logs
            .borrow_mut()
            .push((level, message[..cut].to_string()));
    }

    fn counter_add(&self, key: &str, window_ms: u64, delta: i64) -> Result<u64, CounterError> {
        if key.len() > MAX_COUNTER_KEY_BYTES {
            return Err(CounterError::KeyTooLong);
        }
        let now = self.now_ms.get();
        let mut counters = self.counters.borrow_mut();
        let entry = counters
            .entry(key.to_string())
            .or_insert((0, now.saturating_add(window_ms)));
        if entry.1 <= now {
            *entry = (0, now.saturating_add(window_ms));
        }
        entry.0 = entry.0.saturating_add_signed(delta);
        Ok(entry.0)
    }

    fn counters_add(&self, changes: &[CounterChange]) -> Result<Vec<u64>, CounterError> {
        changes
            .iter()
            .map(|c| self.counter_add(&c.key, c.window_ms, c.delta))
            .collect()
    }
}

/// Calls a [`Policy`] as the gateway does, with one configuration at a time.
pub struct PolicyHarness<P: Policy> {
    /// The host the plugin sees.
    pub host: MockHost,
    configs: ConfigCache<P::Config>,
    documents: Vec<String>,
    config_id: u64,
}

impl<P: Policy> PolicyHarness<P> {
    /// A harness whose configuration is these documents (JSON, most general first).
    pub fn new(documents: &[&str]) -> Self {
        let mut harness = Self {
            host: MockHost::default(),
            configs: ConfigCache::default(),
            documents: Vec::new(),
            config_id: 0,
        };
        harness.set_config(documents);
        harness
    }

    /// Replaces the configuration (a new configuration id, as the gateway gives one).
    pub fn set_config(&mut self, documents: &[&str]) {
        self.documents = documents.iter().map(|d| d.to_string()).collect();
        self.config_id += 1;
    }

    /// `evaluate`, on the request's clock.
    ///
    /// # Panics
    /// When the decision breaks a rule of the host (a deny code that is not a code, a
    /// reason too long). A reason [`Decision::deny`] cut to its limit is taken, with a
    /// warning on standard error.
    pub fn evaluate(&self, request: &Request) -> Decision {
        self.host.set_now_ms(request.now_ms());
        self.host.begin_call();
        let documents = self.documents.clone();
        let decision = crate::run::evaluate::<P>(
            &self.host,
            &self.configs,
            self.config_id,
            || documents,
            request,
        );
        if let Err(problem) = check_decision(&decision) {
            panic!("the gateway would refuse this decision: {problem}");
        }
        if let Decision::Deny { code, reason } = &decision {
            if crate::rules::was_cut(reason) {
                // Cut, not refused: the gateway takes it, but the caller reads a shortened
                // reason; its author should bound what the reason repeats.
                eprintln!(
                    "warning: the {code} reason was over {} bytes and was cut",
                    crate::rules::MAX_MESSAGE_BYTES
                );
            }
        }
        decision
    }

    /// `filter-response`, on the request's clock.
    ///
    /// # Panics
    /// When the answer is not JSON or is over the host's size limit.
    pub fn filter_response(&self, request: &Request, response_json: &str) -> Option<String> {
        self.host.set_now_ms(request.now_ms());
        self.host.begin_call();
        let documents = self.documents.clone();
        let filtered = crate::run::filter_response::<P>(
            &self.host,
            &self.configs,
            self.config_id,
            || documents,
            request,
            response_json,
        );
        if let Some(text) = &filtered {
            if let Err(problem) = check_filtered_size(text) {
                panic!("the gateway would refuse this response: {problem}");
            }
            if serde_json::from_str::<serde_json::Value>(text).is_err() {
                panic!("the gateway would refuse this response: it is not JSON");
            }
        }
        filtered
    }

    /// `validate-config` of one document.
    pub fn validate(document: &str) -> Result<(), Vec<String>> {
        crate::run::validate::<P>(document.to_string())
    }

    /// `effective-config` of the harness's documents.
    pub fn effective(&self) -> Result<String, Vec<String>> {
        crate::run::effective::<P>(&self.documents)
    }
}

/// Calls a [`Chaos`] plugin as the gateway does.
pub struct ChaosHarness<C: Chaos> {
    /// The host the plugin sees.
    pub host: MockHost,
    configs: ConfigCache<C::Config>,
    documents: Vec<String>,
    config_id: u64,
}

impl<C: Chaos> ChaosHarness<C> {
    /// A harness whose configuration is these documents.
    pub fn new(documents: &[&str]) -> Self {
        Self {
            host: MockHost::default(),
            configs: ConfigCache::default(),
            documents: documents.iter().map(|d| d.to_string()).collect(),
            config_id: 1,
        }
    }

    /// `inject`, on the request's clock.
    ///
    /// # Panics
    /// When the fault breaks a rule of the host (delay, status or message out of range).
    pub fn inject(&self, request: &Request) -> Fault {
        self.host.set_now_ms(request.now_ms());
        self.host.begin_call();
        let documents = self.documents.clone();
        let fault = crate::run::inject::<C>(
            &self.host,
            &self.configs,
            self.config_id,
            || documents,
            request,
        );
        if let Err(problem) = check_fault(&fault) {
            panic!("the gateway would refuse this fault: {problem}");
        }
        fault
    }
}
