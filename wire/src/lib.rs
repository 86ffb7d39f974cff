//! The gateway's wire contract, defined once and shared: [`Refusal`] (every way the gateway
//! says no, with its stable `code`, HTTP status and the stage that counts it) and
//! [`ErrorBody`] (the JSON envelope every refusal travels in). The gateway answers with
//! it, `gateway-client` reads answers with it, and the docs' error table is generated from
//! it (`gateway docs refusals`). [`catalog`] is every tool and action with its parameters.

pub mod catalog;
mod envelope;
#[cfg(test)]
mod generated_docs;
mod refusal;

pub use envelope::ErrorBody;
pub use refusal::{Refusal, Stage};
