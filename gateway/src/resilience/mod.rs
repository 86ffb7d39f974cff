//! What keeps the gateway and its upstreams healthy under load and failure, one concern per
//! file: rate limits, circuit breakers (per tool, and per destination for `http_fetch`),
//! bulkheads (and each agent's share of them), retries, the response cache, and the guarded
//! link to Redis they share.

pub mod agent_share;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod destination_breakers;
pub mod rate_limit;
pub mod redis_link;
pub mod retry;
