//! Envelope encryption of secrets at rest under the key-encryption key (`KEK_BASE64`).
//!
//! Each secret gets a fresh data key; the data key is wrapped under the KEK. Both layers are
//! AES-256-GCM with their 96-bit nonces and 128-bit tags kept, so every byte is authenticated.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The key-encryption key. Cheap to clone; `Debug` shows nothing.
#[derive(Clone)]
pub struct Kek(Arc<Zeroizing<[u8; 32]>>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(redacted)")
    }
}

/// Opening an envelope failed. Deliberately says nothing about which step failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("envelope could not be opened")]
pub struct EnvelopeError;

/// A sealed secret as stored: all fields base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format version.
    pub v: u8,
    /// Nonce of the data key wrap.
    pub key_nonce: String,
    /// The data key, encrypted under the KEK (with its tag).
    pub wrapped_key: String,
    /// Nonce of the data encryption.
    pub nonce: String,
    /// The secret, encrypted under the data key (with its tag).
    pub ciphertext: String,
}

impl Kek {
    /// Parses a base64 string that must decode to exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, EnvelopeError> {
        let bytes = Zeroizing::new(STANDARD.decode(text).map_err(|_| EnvelopeError)?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| EnvelopeError)?;
        Ok(Self(Arc::new(Zeroizing::new(key))))
    }

    /// Seals `plaintext`, binding it to `context` (for example `"credential:serpapi"`), so
    /// an envelope copied to another record does not open there.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Envelope {
        let mut data_key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(data_key.as_mut());
        let (nonce, ciphertext) = encrypt(&data_key, plaintext, context.as_bytes());
        let (key_nonce, wrapped_key) = encrypt(&self.0, data_key.as_slice(), context.as_bytes());
        Envelope {
            v: 1,
            key_nonce: STANDARD.encode(key_nonce),
            wrapped_key: STANDARD.encode(wrapped_key),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        }
    }

    /// Opens an envelope sealed with [`Kek::seal`] under the same context.
    pub fn open(
        &self,
        envelope: &Envelope,
        context: &str,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if envelope.v != 1 {
            return Err(EnvelopeError);
        }
        let decode = |s: &str| STANDARD.decode(s).map_err(|_| EnvelopeError);
        let data_key = Zeroizing::new(decrypt(
            self.0.as_ref(),
            &decode(&envelope.key_nonce)?,
            &decode(&envelope.wrapped_key)?,
            context.as_bytes(),
        )?);
        let key: &[u8; 32] = data_key.as_slice().try_into().map_err(|_| EnvelopeError)?;
        decrypt(
            key,
            &decode(&envelope.nonce)?,
            &decode(&envelope.ciphertext)?,
            context.as_bytes(),
        )
        .map(Zeroizing::new)
    }
}

fn encrypt(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> ([u8; 12], Vec<u8>) {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    // Invariant: AES-GCM encryption fails only for plaintexts over 64 GiB.
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory secret cannot fail");
    (nonce, ciphertext)
}

fn decrypt(
    key: &[u8; 32],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    if nonce.len() != 12 {
        return Err(EnvelopeError);
    }
    Aes256Gcm::new(key.into())
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| EnvelopeError)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips() {
        let env = kek().seal(b"sk-live-123", "credential:openai");
        assert_eq!(
            kek().open(&env, "credential:openai").unwrap().as_slice(),
            b"sk-live-123"
        );
    }

    #[test]
    fn refuses_other_context_other_key_and_tampering() {
        let env = kek().seal(b"secret", "a");
        assert_eq!(kek().open(&env, "b"), Err(EnvelopeError));
        let other = Kek::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert_eq!(other.open(&env, "a"), Err(EnvelopeError));
        let mut tampered = env.clone();
        let mut ct = STANDARD.decode(&tampered.ciphertext).unwrap();
        ct[0] ^= 1;
        tampered.ciphertext = STANDARD.encode(ct);
        assert_eq!(kek().open(&tampered, "a"), Err(EnvelopeError));
    }

    #[test]
    fn rejects_keys_that_are_not_32_bytes() {
        assert!(Kek::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        assert!(Kek::from_base64("not base64!").is_err());
    }
}
