//! Quotas through the host's counters. A quota is counted per agent and scope. All quotas of
//! the scope are consumed together, and only when everything else allowed; if any quota is
//! over its limit, every unit just added is given back and the call is denied.

use crate::spec::{Quota, ResetStrategy};
use gateway_sdk::Host;

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

/// A quota that refused the call.
pub struct Exceeded {
    /// The scope.
    pub scope: String,
    /// Its limit.
    pub limit: u64,
    /// When the window frees a unit, unix ms (fixed windows) or `None` (sliding).
    pub resets_at_ms: Option<u64>,
}

struct Taken {
    key: String,
    ttl: u64,
}

/// Consumes one unit of every quota on `scope`; on any excess, gives them back.
pub fn consume(
    host: &dyn Host,
    quotas: &[Quota],
    agent_id: &str,
    scope: &str,
    now_ms: u64,
) -> Result<(), Exceeded> {
    let mut taken: Vec<Taken> = Vec::new();
    for quota in quotas.iter().filter(|q| q.action == scope) {
        let Some(window) = window_ms(&quota.window) else {
            continue;
        };
        let index = now_ms / window;
        let key = |i: u64| counter_key(agent_id, scope, &quota.window, i);
        let current = key(index);
        let (used, resets_at) = match quota.reset_strategy {
            ResetStrategy::Fixed => {
                let used = host.counter_add(&current, window, 1);
                taken.push(Taken {
                    key: current,
                    ttl: window,
                });
                (used, Some((index + 1) * window))
            }
            ResetStrategy::Sliding => {
                let in_current = host.counter_add(&current, window * 2, 1);
                taken.push(Taken {
                    key: current,
                    ttl: window * 2,
                });
                let previous = if index > 0 {
                    host.counter_add(&key(index - 1), window * 2, 0)
                } else {
                    0
                };
                let elapsed = (now_ms % window) as f64 / window as f64;
                let estimate = in_current as f64 + previous as f64 * (1.0 - elapsed);
                (estimate.floor() as u64, None)
            }
        };
        if used > quota.limit {
            for t in &taken {
                host.counter_add(&t.key, t.ttl, -1);
            }
            return Err(Exceeded {
                scope: scope.to_string(),
                limit: quota.limit,
                resets_at_ms: resets_at,
            });
        }
    }
    Ok(())
}
