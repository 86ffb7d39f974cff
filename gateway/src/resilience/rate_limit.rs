//! Rate limits per agent and per agent+tool: GCRA (a token bucket kept as one timestamp per
//! key), in process, or in Redis through one atomic script so that every instance shares
//! one limit. Both limits of a request are checked together and consumed only when both
//! allow it.
//!
//! The arithmetic is [`gcra_step`]; the Redis script repeats it line for line (its tests
//! run both against the same cases).

use crate::resilience::redis_link::RedisLink;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

/// Which limit decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// All of an agent's requests.
    Agent,
    /// An agent's requests to one tool.
    AgentTool,
}

impl Scope {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Agent => "agent",
            Scope::AgentTool => "agent_tool",
        }
    }
}

/// One limit to check: a key and its allowance per minute.
#[derive(Debug, Clone)]
pub struct Limit {
    /// Which limit.
    pub scope: Scope,
    /// Counter key.
    pub key: String,
    /// Requests per minute (also the burst).
    pub per_minute: u32,
}

/// The outcome of a check, for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// True when the request may go on.
    pub allowed: bool,
    /// The deciding limit (the refusing one, or the one with least room left).
    pub scope: Scope,
    /// Its allowance per minute.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Time until the limit is whole again.
    pub reset: Duration,
    /// When refused: time until one request fits.
    pub retry_after: Duration,
}

/// One GCRA step at `now` for a key whose theoretical arrival time is `tat` (both in
/// microseconds). Returns `Ok((new_tat, remaining))` or `Err(retry_after_us)`.
pub fn gcra_step(tat: Option<i64>, now: i64, per_minute: u32) -> Result<(i64, u32), i64> {
    let interval = (60_000_000 / i64::from(per_minute.max(1))).max(1);
    let burst = i64::from(per_minute.max(1));
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    let allow_at = new_tat - burst * interval;
    if now < allow_at {
        return Err(allow_at - now);
    }
    let remaining = ((now - allow_at) / interval).clamp(0, burst - 1);
    Ok((new_tat, remaining as u32))
}

/// Most keys kept in process before elapsed ones are swept.
const LOCAL_SWEEP_THRESHOLD: usize = 100_000;

/// Redis form of [`gcra_step`] over several keys: all allowed, or none consumed.
/// KEYS: the limits' keys. ARGV: per key, its allowance per minute.
/// Returns {allowed (0/1), index of the deciding key (1-based), remaining, reset_us, retry_us}.
const REDIS_GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new_tats = {}
local best, best_remaining, best_reset = 1, nil, 0
for i = 1, #KEYS do
  local per_minute = math.max(tonumber(ARGV[i]), 1)
  local interval = math.max(math.floor(60000000 / per_minute), 1)
  local burst = per_minute
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    return {0, i, 0, tat - now, allow_at - now}
  end
  local remaining = math.floor((now - allow_at) / interval)
  if remaining > burst - 1 then remaining = burst - 1 end
  new_tats[i] = new_tat
  if best_remaining == nil or remaining < best_remaining then
    best, best_remaining, best_reset = i, remaining, new_tat - now
  end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], new_tats[i], 'PX', math.max(math.ceil((new_tats[i] - now) / 1000), 1))
end
return {1, best, best_remaining, best_reset, 0}
"#;

/// Where limits are kept.
pub enum RateLimiter {
    /// In this process.
    Local(Mutex<HashMap<String, i64>>),
    /// In Redis, shared by every instance; in this process while Redis is away.
    Redis {
        /// Guarded connection.
        link: RedisLink,
        /// The compiled script.
        script: redis::Script,
        /// The limits kept while Redis is away (per instance).
        fallback: Mutex<HashMap<String, i64>>,
    },
}

impl RateLimiter {
    /// In-process limits.
    pub fn local() -> Self {
        RateLimiter::Local(Mutex::new(HashMap::new()))
    }

    /// Limits shared through Redis.
    pub fn redis(link: RedisLink) -> Self {
        RateLimiter::Redis {
            link,
            script: redis::Script::new(REDIS_GCRA),
            fallback: Mutex::new(HashMap::new()),
        }
    }

    /// Checks (and, when allowed, consumes) every limit at once. `limits` must not be empty.
    /// While Redis is away, the limits are this instance's own.
    pub async fn check(&self, limits: &[Limit], now_ms: i64) -> Verdict {
        match self {
            RateLimiter::Local(map) => check_local(&mut map.lock(), limits, now_ms * 1000),
            RateLimiter::Redis {
                link,
                script,
                fallback,
            } => {
                let mut invocation = script.prepare_invoke();
                for l in limits {
                    invocation
                        .key(format!("{}rl:{}", link.prefix(), l.key))
                        .arg(l.per_minute);
                }
                let answer: Option<(i64, usize, i64, i64, i64)> = link
                    .call("rate_limit", |mut conn| async move {
                        invocation.invoke_async(&mut conn).await
                    })
                    .await;
                let Some((allowed, index, remaining, reset, retry)) = answer else {
                    return check_local(&mut fallback.lock(), limits, now_ms * 1000);
                };
                let deciding = &limits[index.saturating_sub(1).min(limits.len() - 1)];
                Verdict {
                    allowed: allowed == 1,
                    scope: deciding.scope,
                    limit: deciding.per_minute,
                    remaining: remaining.max(0) as u32,
                    reset: Duration::from_micros(reset.max(0) as u64),
                    retry_after: Duration::from_micros(retry.max(0) as u64),
                }
            }
        }
    }
}

/// [`RateLimiter::check`] in process; times in microseconds.
fn check_local(map: &mut HashMap<String, i64>, limits: &[Limit], now: i64) -> Verdict {
    if map.len() > LOCAL_SWEEP_THRESHOLD {
        map.retain(|_, tat| *tat > now);
    }
    let mut steps = Vec::with_capacity(limits.len());
    let mut deciding: Option<(usize, u32, i64)> = None;
    for (i, l) in limits.iter().enumerate() {
        let tat = map.get(&l.key).copied();
        match gcra_step(tat, now, l.per_minute) {
            Ok((new_tat, remaining)) => {
                steps.push(new_tat);
                if deciding.is_none_or(|(_, r, _)| remaining < r) {
                    deciding = Some((i, remaining, new_tat - now));
                }
            }
            Err(retry_ms) => {
                let reset = tat.unwrap_or(now).max(now) - now;
                return Verdict {
                    allowed: false,
                    scope: l.scope,
                    limit: l.per_minute,
                    remaining: 0,
                    reset: Duration::from_micros(reset as u64),
                    retry_after: Duration::from_micros(retry_ms as u64),
                };
            }
        }
    }
    for (l, new_tat) in limits.iter().zip(steps) {
        map.insert(l.key.clone(), new_tat);
    }
    let (i, remaining, reset) = deciding.unwrap_or((0, 0, 0));
    Verdict {
        allowed: true,
        scope: limits[i].scope,
        limit: limits[i].per_minute,
        remaining,
        reset: Duration::from_micros(reset.max(0) as u64),
        retry_after: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(scope: Scope, key: &str, per_minute: u32) -> Limit {
        Limit {
            scope,
            key: key.into(),
            per_minute,
        }
    }

    #[test]
    fn allows_a_burst_of_the_limit_then_refuses() {
        let mut map = HashMap::new();
        let limits = [limit(Scope::Agent, "a", 3)];
        let remaining: Vec<u32> = (0..3)
            .map(|_| check_local(&mut map, &limits, 1_000_000).remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = check_local(&mut map, &limits, 1_000_000);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(20_000));
    }

    #[test]
    fn refills_one_request_per_interval() {
        let mut map = HashMap::new();
        let limits = [limit(Scope::Agent, "a", 60)];
        for _ in 0..60 {
            assert!(check_local(&mut map, &limits, 0).allowed);
        }
        assert!(!check_local(&mut map, &limits, 999_999).allowed);
        assert!(check_local(&mut map, &limits, 1_000_000).allowed);
        assert!(!check_local(&mut map, &limits, 1_000_000).allowed);
    }

    #[test]
    fn very_high_limits_never_refuse() {
        let mut map = HashMap::new();
        let limits = [limit(Scope::Agent, "a", u32::MAX)];
        for _ in 0..1000 {
            assert!(check_local(&mut map, &limits, 5).allowed);
        }
    }

    #[test]
    fn a_refused_tool_limit_does_not_consume_the_agent_limit() {
        let mut map = HashMap::new();
        let both = [
            limit(Scope::Agent, "a", 10),
            limit(Scope::AgentTool, "a:t", 1),
        ];
        assert!(check_local(&mut map, &both, 0).allowed);
        let refused = check_local(&mut map, &both, 0);
        assert!(!refused.allowed);
        assert_eq!(refused.scope, Scope::AgentTool);
        let agent_only = [limit(Scope::Agent, "a", 10)];
        assert_eq!(check_local(&mut map, &agent_only, 0).remaining, 8);
    }

    #[test]
    fn reports_the_limit_with_least_room() {
        let mut map = HashMap::new();
        let both = [
            limit(Scope::Agent, "a", 100),
            limit(Scope::AgentTool, "a:t", 5),
        ];
        let v = check_local(&mut map, &both, 0);
        assert_eq!((v.scope, v.limit, v.remaining), (Scope::AgentTool, 5, 4));
    }
}
