//! Logs what `/ready` finds only when it changes: a dependency that starts failing is one
//! warning (with the error), its recovery one info line, and a probe every few seconds in
//! between logs nothing (an outage must not bury the log in one line per probe).

use parking_lot::Mutex;

/// The last states `/ready` saw, by dependency.
#[derive(Debug, Default)]
pub struct ReadinessLog {
    last: Mutex<Vec<(&'static str, &'static str)>>,
}

impl ReadinessLog {
    /// Records that `dependency` is in `status` now (`detail`: why, when it fails); logs when
    /// that differs from the last probe's. Returns whether it changed.
    pub fn observe(&self, dependency: &'static str, status: &'static str, detail: &str) -> bool {
        let mut last = self.last.lock();
        let previous = last.iter_mut().find(|(name, _)| *name == dependency);
        let was = previous.as_ref().map(|(_, status)| *status);
        if was == Some(status) {
            return false;
        }
        match previous {
            Some(entry) => entry.1 = status,
            None => last.push((dependency, status)),
        }
        drop(last);
        let healthy = matches!(status, "ok" | "not_configured");
        match (was, healthy) {
            (None, true) => {}
            (_, true) => tracing::info!(dependency, status, "readiness: dependency recovered"),
            (_, false) => {
                tracing::warn!(dependency, status, detail, "readiness: dependency failing")
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_reported() {
        let log = ReadinessLog::default();
        assert!(log.observe("database", "ok", ""));
        assert!(!log.observe("database", "ok", ""));
        assert!(log.observe("database", "failing", "refused"));
        assert!(!log.observe("database", "failing", "refused"));
        assert!(log.observe("redis", "timeout", ""));
        assert!(log.observe("database", "ok", ""));
        assert!(!log.observe("redis", "timeout", ""));
    }
}
