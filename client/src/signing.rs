//! The signed-request flow by which an agent mints its own token: RSA-PSS (SHA-256, salt 32)
//! over `METHOD\nPATH\nTIMESTAMP\nhex(sha256(body))`, in the `X-Agent-*` headers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs8::DecodePrivateKey;
use rsa::pss::BlindedSigningKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};

/// The path of the token endpoint, as signed.
pub const GENERATE_TOKEN_PATH: &str = "/api/generate-token";

/// An agent's signing key.
pub struct AgentKey(BlindedSigningKey<Sha256>);

impl AgentKey {
    /// The key of a PKCS#8 PEM (as `POST /api/create-agent` hands it out).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
        Ok(Self(BlindedSigningKey::new(key)))
    }

    /// The `X-Agent-Signature` of a POST of `body` to `path` at `timestamp` (unix seconds).
    pub fn sign(&self, path: &str, timestamp: i64, body: &[u8]) -> String {
        let message = format!(
            "POST\n{path}\n{timestamp}\n{}",
            hex::encode(Sha256::digest(body))
        );
        let signature = self
            .0
            .sign_with_rng(&mut rand::rngs::OsRng, message.as_bytes());
        STANDARD.encode(signature.to_vec())
    }
}
