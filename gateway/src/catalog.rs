//! The tools the gateway fronts, their actions and parameters, and the permissions a token
//! can carry: the wire crate's catalog ([`gateway_wire::catalog`]), which is their one
//! definition.

pub use gateway_wire::catalog::*;
