//! Agent RSA-2048 key pairs: generation off the async runtime, a pool of ready keys, and
//! parsing of public keys that agents bring themselves.
//!
//! Key generation takes tens of milliseconds of CPU, so it never runs on a runtime worker:
//! one background thread keeps up to `KEY_POOL_SIZE` pairs ready and create-agent takes one
//! in microseconds; when the pool is empty, a pair is generated on the blocking thread pool.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use rsa::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

/// Modulus size of generated agent keys.
pub const AGENT_KEY_BITS: usize = 2048;
/// Smallest modulus accepted from an agent that brings its own key.
const MIN_PUBLIC_KEY_BITS: usize = 2048;
/// Largest modulus accepted (bounds verification cost).
const MAX_PUBLIC_KEY_BITS: usize = 4096;

/// A generated key pair, PEM-encoded. The private half is wiped from memory when dropped.
pub struct AgentKeyPair {
    /// PKCS#8 PEM of the private key, handed to the agent once and never stored.
    pub private_pem: Zeroizing<String>,
    /// SPKI PEM of the public key, stored with the agent.
    pub public_pem: String,
}

/// A public key an agent supplied could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublicKeyError {
    /// Not an SPKI PEM RSA public key.
    #[error("public_key must be an RSA public key in SPKI PEM form (-----BEGIN PUBLIC KEY-----)")]
    Unparseable,
    /// Modulus outside 2048–4096 bits.
    #[error("public_key must be an RSA key of 2048 to 4096 bits")]
    WrongSize,
}

/// Generates one RSA-2048 key pair. Blocking: call it off the async runtime.
pub fn generate_key_pair() -> AgentKeyPair {
    let mut rng = rand::rngs::OsRng;
    // Invariant: generation of a 2048-bit key with the OS RNG only fails if the RNG does.
    let private = RsaPrivateKey::new(&mut rng, AGENT_KEY_BITS).expect("RSA key generation");
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .expect("PKCS#8 encoding of a valid key");
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("SPKI encoding of a valid key");
    AgentKeyPair {
        private_pem,
        public_pem,
    }
}

/// Parses an SPKI PEM public key and returns it with its canonical PEM re-encoding.
pub fn parse_public_key(pem: &str) -> Result<(RsaPublicKey, String), PublicKeyError> {
    let key =
        RsaPublicKey::from_public_key_pem(pem.trim()).map_err(|_| PublicKeyError::Unparseable)?;
    let bits = key.n().bits();
    if !(MIN_PUBLIC_KEY_BITS..=MAX_PUBLIC_KEY_BITS).contains(&bits) {
        return Err(PublicKeyError::WrongSize);
    }
    let canonical = key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|_| PublicKeyError::Unparseable)?;
    Ok((key, canonical))
}

/// A pool of ready key pairs, refilled by one background thread.
pub struct AgentKeyPool {
    ready: Receiver<AgentKeyPair>,
    capacity: usize,
}

impl AgentKeyPool {
    /// Starts the pool. With `capacity` 0 no thread starts and every key is made on demand.
    /// The refill thread ends when the pool is dropped.
    pub fn start(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        if capacity > 0 {
            let spawned = std::thread::Builder::new()
                .name("agent-key-pool".into())
                .spawn(move || refill(tx));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start the key pool thread; keys will be generated on demand");
            }
        }
        Self {
            ready: rx,
            capacity,
        }
    }

    /// Takes a ready key pair, or generates one on the blocking pool when none is ready.
    pub async fn take(&self) -> AgentKeyPair {
        if let Ok(pair) = self.ready.try_recv() {
            return pair;
        }
        match tokio::task::spawn_blocking(generate_key_pair).await {
            Ok(pair) => pair,
            // A panic inside generation is an RNG failure; surface it rather than loop.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Key pairs ready right now.
    pub fn ready(&self) -> usize {
        self.ready.len()
    }

    /// Most key pairs the pool keeps ready.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

fn refill(tx: Sender<AgentKeyPair>) {
    loop {
        let pair = generate_key_pair();
        match tx.try_send(pair) {
            Ok(()) => {}
            Err(TrySendError::Full(pair)) => {
                // Block until a slot frees (or the pool is dropped).
                if tx.send(pair).is_err() {
                    return;
                }
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;

    #[test]
    fn generated_private_key_matches_public_key() {
        let pair = generate_key_pair();
        let private = RsaPrivateKey::from_pkcs8_pem(&pair.private_pem).unwrap();
        let (public, _) = parse_public_key(&pair.public_pem).unwrap();
        assert_eq!(private.to_public_key(), public);
    }

    #[test]
    fn rejects_garbage_and_small_public_keys() {
        assert_eq!(
            parse_public_key("hello").unwrap_err(),
            PublicKeyError::Unparseable
        );
        let small = RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pem = small
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        assert_eq!(
            parse_public_key(&pem).unwrap_err(),
            PublicKeyError::WrongSize
        );
    }

    #[tokio::test]
    async fn pool_fills_in_background() {
        let pool = AgentKeyPool::start(1);
        let pair = pool.take().await;
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(pool.capacity(), 1);
    }
}
