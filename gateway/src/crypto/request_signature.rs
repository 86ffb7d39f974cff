//! Agent request signatures: RSA-PSS-SHA256 over a canonical string of the request.
//!
//! The signed message is `METHOD\nPATH\nTIMESTAMP\nHEX(SHA-256(BODY))`. Verification uses
//! the public key stored with the agent; no private-key operation ever happens here.
//! Salt lengths: the digest length (32 bytes) and the maximum for the key are both accepted,
//! since OpenSSL-based clients default to the latter and most others to the former.

use rsa::pss::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha256};

/// The canonical message an agent signs.
pub fn signing_message(method: &str, path: &str, timestamp: &str, body: &[u8]) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    format!("{method}\n{path}\n{timestamp}\n{body_hash}")
}

/// True when `signature` is a valid RSA-PSS-SHA256 signature of `message` by `key`.
pub fn verify(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    let max_salt = key.size().saturating_sub(Sha256::output_size() + 2);
    [Sha256::output_size(), max_salt].into_iter().any(|salt| {
        VerifyingKey::<Sha256>::new_with_salt_len(key.clone(), salt)
            .verify(message, &signature)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pss::BlindedSigningKey;
    use rsa::signature::{RandomizedSigner, SignatureEncoding};
    use rsa::RsaPrivateKey;

    #[test]
    fn verifies_own_signature_and_rejects_others() {
        let mut rng = rand::rngs::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let other = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let msg = signing_message("POST", "/api/generate-token", "1700000000", b"{}");
        let sig = BlindedSigningKey::<Sha256>::new(key.clone())
            .sign_with_rng(&mut rng, msg.as_bytes())
            .to_vec();
        assert!(verify(&key.to_public_key(), msg.as_bytes(), &sig));
        assert!(!verify(&other.to_public_key(), msg.as_bytes(), &sig));
        assert!(!verify(&key.to_public_key(), b"other message", &sig));
        assert!(!verify(&key.to_public_key(), msg.as_bytes(), b"short"));
    }
}
