//! What keeps the gateway and its upstreams healthy under load and failure, one concern per
//! file: rate limits, circuit breakers, bulkheads, retries and the response cache.

pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod rate_limit;
pub mod retry;
