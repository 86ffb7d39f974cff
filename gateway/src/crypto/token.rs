//! Agent tokens: claims sealed with AES-256-GCM, opaque to clients.
//!
//! Wire form: `gw1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The sealing key is
//! derived from `SIGNING_SECRET` with HKDF-SHA256; the key id (8 hex digits, derived from the
//! key) lets a gateway accept tokens of the previous secret during a rotation. The prefix is
//! authenticated as associated data, so a token cannot be moved to another key id.

use crate::catalog::{Permission, ToolName};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Version tag that starts every token.
const FORMAT: &str = "gw1";
/// Longest token accepted for opening, in bytes; anything longer is malformed.
const MAX_TOKEN_LEN: usize = 4096;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// What a token says about its holder. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Token id (the `token_id` returned at issue; the revocation handle).
    pub jti: Uuid,
    /// Agent id.
    pub sub: Uuid,
    /// Agent name at issue time.
    pub name: String,
    /// Agent role at issue time.
    pub role: String,
    /// Tools the token may call.
    pub tools: Vec<ToolName>,
    /// Permissions the token carries.
    pub permissions: Vec<Permission>,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
}

/// Why a token could not be opened. Callers outside the gateway only ever learn "invalid".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not of the token's shape.
    #[error("malformed token")]
    Malformed,
    /// Sealed under a key this gateway does not hold.
    #[error("unknown token key id")]
    UnknownKey,
    /// The seal does not verify: tampered or forged.
    #[error("token seal does not verify")]
    BadSeal,
}

struct SealKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SealKey {
    fn derive(secret: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"4runr-gateway token seal"), secret);
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        // Invariant: 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
        hk.expand(b"gw1 aes-256-gcm", key.as_mut())
            .expect("32-byte HKDF output is always valid");
        let id_hash = Sha256::new()
            .chain_update(b"4runr-gateway token key id")
            .chain_update(key.as_ref())
            .finalize();
        Self {
            id: hex::encode(&id_hash[..4]),
            cipher: Aes256Gcm::new(key.as_ref().into()),
        }
    }

    fn prefix(&self) -> String {
        format!("{FORMAT}.{}", self.id)
    }
}

/// Seals and opens tokens. Holds the current key and, during a rotation, the previous one.
pub struct TokenSealer {
    current: SealKey,
    previous: Option<SealKey>,
}

impl TokenSealer {
    /// Derives the sealing keys from the current and (optional) previous `SIGNING_SECRET`.
    pub fn new(secret: &[u8], previous_secret: Option<&[u8]>) -> Self {
        Self {
            current: SealKey::derive(secret),
            previous: previous_secret.map(SealKey::derive),
        }
    }

    /// Id of the key new tokens are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `claims` into a token string.
    pub fn seal(&self, claims: &Claims) -> String {
        // Invariant: Claims holds only strings, numbers and enums; serialisation cannot fail.
        let plaintext = serde_json::to_vec(claims).expect("claims always serialise");
        let prefix = self.current.prefix();
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Invariant: AES-GCM encryption fails only for plaintexts over 64 GiB.
        let sealed = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: prefix.as_bytes(),
                },
            )
            .expect("AES-GCM sealing of small claims cannot fail");
        let mut body = Vec::with_capacity(NONCE_LEN + sealed.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&sealed);
        format!("{prefix}.{}", URL_SAFE_NO_PAD.encode(body))
    }

    /// Opens a token and returns its claims. Expiry and revocation are the caller's checks.
    pub fn open(&self, token: &str) -> Result<Claims, OpenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(OpenError::Malformed);
        }
        let mut parts = token.splitn(3, '.');
        let (Some(format), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        if format != FORMAT || key_id.is_empty() || body.contains('.') {
            return Err(OpenError::Malformed);
        }
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == key_id)
            .ok_or(OpenError::UnknownKey)?;
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let prefix = key.prefix();
        let plaintext = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: prefix.as_bytes(),
                },
            )
            .map_err(|_| OpenError::BadSeal)?;
        serde_json::from_slice(&plaintext).map_err(|_| OpenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            jti: Uuid::new_v4(),
            sub: Uuid::new_v4(),
            name: "scraper-1".into(),
            role: "scraper".into(),
            tools: vec![ToolName::Serpapi],
            permissions: vec![Permission::Read],
            iat: 1_700_000_000,
            exp: 1_700_000_600,
        }
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn seal_then_open_round_trips_and_hides_claims() {
        let sealer = TokenSealer::new(SECRET, None);
        let c = claims();
        let token = sealer.seal(&c);
        assert!(!token.contains("scraper"));
        assert_eq!(sealer.open(&token), Ok(c));
    }

    #[test]
    fn rejects_tampered_body() {
        let sealer = TokenSealer::new(SECRET, None);
        let token = sealer.seal(&claims());
        let (head, body) = token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
        let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(sealer.open(&tampered), Err(OpenError::BadSeal));
    }

    #[test]
    fn rejects_unknown_and_swapped_key_ids() {
        let sealer = TokenSealer::new(SECRET, None);
        let token = sealer.seal(&claims());
        let other = TokenSealer::new(OTHER, None);
        assert_eq!(other.open(&token), Err(OpenError::UnknownKey));
        // A token re-labelled with a key id the gateway holds still fails: the id is sealed in.
        let rotated = TokenSealer::new(OTHER, Some(SECRET));
        let body = token.rsplit_once('.').unwrap().1;
        let relabelled = format!("gw1.{}.{body}", rotated.current_key_id());
        assert_eq!(rotated.open(&relabelled), Err(OpenError::BadSeal));
    }

    #[test]
    fn previous_secret_still_opens_during_rotation() {
        let old = TokenSealer::new(SECRET, None);
        let token = old.seal(&claims());
        let rotated = TokenSealer::new(OTHER, Some(SECRET));
        assert!(rotated.open(&token).is_ok());
    }

    #[test]
    fn rejects_malformed_shapes_without_panicking() {
        let sealer = TokenSealer::new(SECRET, None);
        for bad in [
            "",
            ".",
            "gw1",
            "gw1..",
            "gw1.x.",
            "gw2.abcd.AAAA",
            "gw1.abcd.!!!!",
            "gw1.abcd.AAAA",
            "eyJhIjoxfQ==.deadbeef",
            &"a".repeat(5000),
        ] {
            assert_eq!(sealer.open(bad), Err(OpenError::Malformed), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]

        /// Any text, and any text shaped like a token of this gateway's key, is refused
        /// without a panic.
        #[test]
        fn opening_any_text_is_refused_without_panic(
            text in ".{0,600}",
            body in "[A-Za-z0-9_-]{0,400}",
        ) {
            let sealer = TokenSealer::new(SECRET, None);
            proptest::prop_assert!(sealer.open(&text).is_err());
            let shaped = format!("{FORMAT}.{}.{body}", sealer.current_key_id());
            proptest::prop_assert!(sealer.open(&shaped).is_err());
        }

        /// A real token with any one byte of its sealed part changed is refused.
        #[test]
        fn any_changed_byte_of_a_token_is_refused(at in 0usize..1000, to in proptest::char::range('0', 'z')) {
            let sealer = TokenSealer::new(SECRET, None);
            let token = sealer.seal(&claims());
            let start = token.rfind('.').unwrap() + 1;
            let at = start + at % (token.len() - start);
            let mut changed: Vec<char> = token.chars().collect();
            proptest::prop_assume!(changed[at] != to);
            changed[at] = to;
            let changed: String = changed.into_iter().collect();
            proptest::prop_assert!(sealer.open(&changed).is_err());
        }
    }
}
