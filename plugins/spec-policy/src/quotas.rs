//! Quotas through the host's counters. A quota is counted per agent and scope. All quotas of
//! the scope are consumed together, in one round trip, and only when everything else
//! allowed; if any quota is over its limit, every unit just added is given back and the call
//! is denied. Quotas on the same window share its counter (two limits on one count).

use crate::spec::{Quota, ResetStrategy};
use gateway_sdk::{CounterChange, CounterError, Host};

/// Parses "30m", "1h", "24h", "7d" into milliseconds.
pub fn window_ms(window: &str) -> Option<u64> {
    let window = window.trim();
    let (number, unit) = window.split_at(window.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// `quota:<agent>:<scope>:<window>:<window index>`, built without the formatting machinery
/// (two of these per sliding quota on every allowed call).
fn counter_key(agent_id: &str, scope: &str, window: &str, index: u64) -> String {
    let mut digits = itoa::Buffer::new();
    [
        "quota:",
        agent_id,
        ":",
        scope,
        ":",
        window,
        ":",
        digits.format(index),
    ]
    .concat()
}

/// Why the quotas refused the call.
pub enum Refusal {
    /// A quota is used up.
    Exceeded {
        /// The scope.
        scope: String,
        /// Its limit.
        limit: u64,
        /// When the window frees a unit, unix ms (fixed windows) or `None` (sliding).
        resets_at_ms: Option<u64>,
    },
    /// The host's counters could not be changed.
    Unavailable(CounterError),
}

/// The quotas of one scope and window text: they share one counter per window index (the
/// calls made in it), each comparing it with its own limit.
struct Group<'q> {
    window: &'q str,
    window_ms: u64,
    quotas: Vec<&'q Quota>,
}

impl Group<'_> {
    fn sliding(&self) -> bool {
        self.quotas
            .iter()
            .any(|q| q.reset_strategy == ResetStrategy::Sliding)
    }

    /// How long the current window's counter lives: two windows when a sliding quota reads
    /// it again as the previous window.
    fn ttl(&self) -> u64 {
        if self.sliding() {
            self.window_ms.saturating_mul(2)
        } else {
            self.window_ms
        }
    }
}

/// Consumes one unit of every quota on `scope` (quotas on the same window count the same
/// calls: one unit for all of them), in one round trip to the host; on any excess, gives
/// them back and refuses.
pub fn consume(
    host: &dyn Host,
    quotas: &[Quota],
    agent_id: &str,
    scope: &str,
    now_ms: u64,
) -> Result<(), Refusal> {
    let mut groups: Vec<Group> = Vec::new();
    for quota in quotas.iter().filter(|q| q.action == scope) {
        let Some(window_ms) = window_ms(&quota.window) else {
            continue;
        };
        match groups.iter_mut().find(|g| g.window == quota.window) {
            Some(group) => group.quotas.push(quota),
            None => groups.push(Group {
                window: &quota.window,
                window_ms,
                quotas: vec![quota],
            }),
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    let mut changes = Vec::with_capacity(groups.len() * 2);
    for group in &groups {
        let index = now_ms / group.window_ms;
        changes.push(CounterChange {
            key: counter_key(agent_id, scope, group.window, index),
            window_ms: group.ttl(),
            delta: 1,
        });
        if group.sliding() && index > 0 {
            changes.push(CounterChange {
                key: counter_key(agent_id, scope, group.window, index - 1),
                window_ms: group.ttl(),
                delta: 0,
            });
        }
    }
    let values = host.counters_add(&changes).map_err(Refusal::Unavailable)?;
    let mut at = 0;
    let mut refusal = None;
    for group in &groups {
        let index = now_ms / group.window_ms;
        let in_current = values.get(at).copied().unwrap_or(0);
        at += 1;
        let previous = if group.sliding() && index > 0 {
            at += 1;
            values.get(at - 1).copied().unwrap_or(0)
        } else {
            0
        };
        for quota in &group.quotas {
            let (used, resets_at_ms) = match quota.reset_strategy {
                ResetStrategy::Fixed => (in_current, Some((index + 1) * group.window_ms)),
                ResetStrategy::Sliding => {
                    let elapsed = (now_ms % group.window_ms) as f64 / group.window_ms as f64;
                    let estimate = in_current as f64 + previous as f64 * (1.0 - elapsed);
                    (estimate.floor() as u64, None)
                }
            };
            if used > quota.limit && refusal.is_none() {
                refusal = Some(Refusal::Exceeded {
                    scope: scope.to_string(),
                    limit: quota.limit,
                    resets_at_ms,
                });
            }
        }
    }
    let Some(refusal) = refusal else {
        return Ok(());
    };
    let give_back: Vec<CounterChange> = changes
        .into_iter()
        .filter(|c| c.delta == 1)
        .map(|c| CounterChange { delta: -1, ..c })
        .collect();
    // Giving back is best effort: the refusal stands whatever the counters answer.
    let _ = host.counters_add(&give_back);
    Err(refusal)
}
