//! The gateway's cryptography: the key-encryption key, agent key pairs, sealed tokens and
//! agent request signatures. Each file owns one primitive; none of them logs a secret.

pub mod agent_keys;
pub mod kek;
pub mod request_signature;
pub mod token;
