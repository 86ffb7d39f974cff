//! The gateway's wire contract, defined once and shared: [`Refusal`] (every way the gateway
//! says no, with its stable `code`, HTTP status and the stage that counts it) and
//! [`ErrorBody`] (the JSON envelope every refusal travels in). The gateway answers with
//! it, `gateway-client` reads answers with it, and the docs' error table is generated from
//! it (`gateway docs refusals`). [`catalog`] is every tool and action with its parameters;
//! [`MintScope`] and [`ChaosRule`] are records the admin API takes and the store keeps.

pub mod catalog;
mod chaos_rule;
mod envelope;
#[cfg(test)]
mod generated_docs;
mod mint_scope;
mod refusal;

pub use chaos_rule::ChaosRule;
pub use envelope::ErrorBody;
pub use mint_scope::{Excess, MintScope};
pub use refusal::{Refusal, Stage};
