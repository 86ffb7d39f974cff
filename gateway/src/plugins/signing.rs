//! Signed plugins: a detached ed25519 signature over a component's name, version and
//! SHA-256 (so over its bytes), made by `gateway plugin sign` and checked at load against
//! the keys the operator trusts (`PLUGIN_TRUSTED_KEYS`). With `PLUGIN_SIGNATURES=required`
//! (production's default) a plugin file or upload without a valid signature from a trusted
//! key is refused; with `warn` (development's) it loads with a warning.
//!
//! A signature may also restrict where the plugin may be used: the bindings it may be bound
//! under, the tools, and the failure mode (format `/2`, whose message covers them); a binding
//! outside them is refused as a signature problem. And a signed version lower than one the
//! binding already ran is a downgrade, refused unless the binding says `allow_downgrade`.

use super::manifest::FailMode;
pub use super::signed_scope::{highest_version, is_downgrade, SignedScope};
use super::Plugin;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Format tag of a signature file and prefix of the signed message.
pub const FORMAT: &str = "4runr-plugin-signature/1";
/// The format of a signature that restricts where the plugin may be used.
pub const FORMAT_RESTRICTED: &str = "4runr-plugin-signature/2";
/// Prefix of a key in text form.
const KEY_PREFIX: &str = "ed25519:";

/// What a plugin without a valid, trusted signature meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureMode {
    /// Refused (the previous plugin set stays live; an upload answers 422).
    Required,
    /// Loaded, with a warning in the log.
    Warn,
}

/// A detached signature, as `gateway plugin sign` writes it next to the component
/// (`FILE.wasm.sig`) and as an upload carries it (`signature`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// [`FORMAT`].
    pub format: String,
    /// The plugin's name, as its `info` says.
    pub plugin: String,
    /// The plugin's version, as its `info` says.
    pub version: String,
    /// SHA-256 of the component's bytes, hex.
    pub sha256: String,
    /// Binding names the plugin may be bound under (format `/2`; empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<String>,
    /// Tools it may be bound to (format `/2`; empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// The failure mode its bindings must have (format `/2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<FailMode>,
    /// The signer's public key, `ed25519:<base64>`.
    pub key: String,
    /// The signature of [`message`], base64.
    pub signature: String,
}

impl SignatureFile {
    /// Where it allows its plugin to be used.
    pub fn scope(&self) -> SignedScope {
        SignedScope {
            bindings: self.bindings.clone(),
            tools: self.tools.clone(),
            fail: self.fail,
        }
    }
}

/// Why a signature does not vouch for a component. Operators read these; they name what
/// to fix and nothing of the keys' secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature was given.
    #[error("not signed")]
    Missing,
    /// The signature is not one this gateway reads.
    #[error("signature is malformed: {0}")]
    Malformed(String),
    /// The signature is of other bytes.
    #[error("signature is for another file (its sha256 is not this component's)")]
    OtherFile,
    /// The signature names another plugin or version than the component's `info`.
    #[error("signature is for {signed}, the component is {actual}")]
    OtherPlugin {
        /// Name and version signed.
        signed: String,
        /// Name and version of the component.
        actual: String,
    },
    /// The signing key is not among the trusted ones.
    #[error("signed by key {0}, which is not in PLUGIN_TRUSTED_KEYS")]
    Untrusted(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    Invalid,
    /// The binding uses the plugin outside what its signature allows.
    #[error("binding is outside the signature's scope: {0}")]
    OutOfScope(String),
}

/// The message a signature covers: format `/1` without a scope, `/2` with one.
fn message(plugin: &str, version: &str, sha256: &str, scope: &SignedScope) -> String {
    if scope.is_open() {
        format!("{FORMAT}\n{plugin}\n{version}\n{sha256}")
    } else {
        let lines = scope.message_lines();
        format!("{FORMAT_RESTRICTED}\n{plugin}\n{version}\n{sha256}{lines}")
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A public key in text form.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("{KEY_PREFIX}{}", b64().encode(key.as_bytes()))
}

/// A short id of a public key (the first 8 bytes of its SHA-256, hex), for messages.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

fn key_bytes(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    let text = text.strip_prefix(KEY_PREFIX).unwrap_or(text);
    let bytes = b64()
        .decode(text)
        .map_err(|_| "a key is ed25519:<base64 of 32 bytes>".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "a key is ed25519:<base64 of 32 bytes>".to_string())
}

/// Parses a private key (a key file's content: `ed25519:<base64 seed>`).
pub fn parse_signing_key(text: &str) -> Result<SigningKey, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    key_bytes(line).map(|seed| SigningKey::from_bytes(&seed))
}

/// Parses a public key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_bytes(&key_bytes(text)?).map_err(|_| "not an ed25519 public key".to_string())
}

/// A fresh key pair: (private key text, public key text).
pub fn generate() -> (String, String) {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    (
        format!("{KEY_PREFIX}{}", b64().encode(key.to_bytes())),
        public_key_text(&key.verifying_key()),
    )
}

/// Signs a component's name, version and bytes, and where it may be used.
pub fn sign(
    key: &SigningKey,
    plugin: &str,
    version: &str,
    bytes: &[u8],
    scope: SignedScope,
) -> SignatureFile {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let signature = key.sign(message(plugin, version, &sha256, &scope).as_bytes());
    SignatureFile {
        format: if scope.is_open() {
            FORMAT
        } else {
            FORMAT_RESTRICTED
        }
        .into(),
        plugin: plugin.into(),
        version: version.into(),
        sha256,
        bindings: scope.bindings,
        tools: scope.tools,
        fail: scope.fail,
        key: public_key_text(&key.verifying_key()),
        signature: b64().encode(signature.to_bytes()),
    }
}

/// The keys a gateway trusts, and what it does with a plugin none of them vouches for.
#[derive(Debug, Clone)]
pub struct SignaturePolicy {
    trusted: Vec<VerifyingKey>,
    /// What an unsigned or badly signed plugin meets.
    pub mode: SignatureMode,
}

impl SignaturePolicy {
    /// A policy over the comma-separated public keys of `PLUGIN_TRUSTED_KEYS`.
    pub fn new(trusted_keys: &str, mode: SignatureMode) -> Result<Self, String> {
        let trusted = trusted_keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| parse_public_key(k).map_err(|e| format!("PLUGIN_TRUSTED_KEYS: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { trusted, mode })
    }

    /// Trusts nothing and only warns (plugin tools outside a gateway, tests).
    pub fn permissive() -> Self {
        Self {
            trusted: Vec::new(),
            mode: SignatureMode::Warn,
        }
    }

    /// Checks `signature` (a signature file's JSON) for the component `bytes`, before they
    /// are compiled: the bytes are the ones signed, the key is trusted, the signature holds.
    /// What it vouches for (a name and version) is checked once the plugin is loaded.
    pub fn verify_bytes(
        &self,
        signature: Option<&str>,
        bytes: &[u8],
    ) -> Result<Vouched, SignatureError> {
        let text = signature.ok_or(SignatureError::Missing)?;
        let file: SignatureFile =
            serde_json::from_str(text).map_err(|e| SignatureError::Malformed(e.to_string()))?;
        let scope = file.scope();
        let expected = if scope.is_open() {
            FORMAT
        } else {
            FORMAT_RESTRICTED
        };
        if file.format != expected {
            return Err(SignatureError::Malformed(format!(
                "format {:?}, expected {expected}",
                file.format
            )));
        }
        if file.sha256 != hex::encode(Sha256::digest(bytes)) {
            return Err(SignatureError::OtherFile);
        }
        let key = parse_public_key(&file.key).map_err(SignatureError::Malformed)?;
        if !self.trusted.contains(&key) {
            return Err(SignatureError::Untrusted(key_id(&key)));
        }
        let signature = b64()
            .decode(&file.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or(SignatureError::Invalid)?;
        key.verify(
            message(&file.plugin, &file.version, &file.sha256, &scope).as_bytes(),
            &signature,
        )
        .map_err(|_| SignatureError::Invalid)?;
        Ok(Vouched {
            plugin: file.plugin,
            version: file.version,
            scope,
            signer: key_id(&key),
        })
    }

    /// [`SignaturePolicy::verify_bytes`], then the loaded plugin's name and version: the
    /// signer's key id when the signature vouches for this plugin.
    pub fn verify(
        &self,
        signature: Option<&str>,
        plugin: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<String, SignatureError> {
        let vouched = self.verify_bytes(signature, bytes)?;
        vouched.check_info(plugin, version)?;
        Ok(vouched.signer)
    }

    /// Loads `what` (with `load`) only as the signature policy allows: the signature is
    /// checked against `bytes` before they are compiled, then against the loaded plugin's
    /// name and version. A refusal is turned into the caller's error by `refused`; a plugin
    /// that loads unvouched under `warn` is logged. Returns the plugin, and what its
    /// signature vouches for when it does (for [`SignaturePolicy::check_use`]).
    pub fn admit<P: std::borrow::Borrow<Plugin>, E>(
        &self,
        what: &str,
        signature: Option<&str>,
        bytes: &[u8],
        load: impl FnOnce() -> Result<P, E>,
        refused: impl Fn(SignatureError) -> E,
    ) -> Result<(P, Option<Vouched>), E> {
        let vouched = match self.verify_bytes(signature, bytes) {
            Ok(vouched) => Some(vouched),
            Err(problem) => {
                self.unvouched(what, problem).map_err(&refused)?;
                None
            }
        };
        let plugin = load()?;
        let info = &plugin.borrow().info;
        let vouched = match vouched {
            Some(v) => match v.check_info(&info.name, &info.version) {
                Ok(()) => {
                    tracing::debug!(plugin = what, "plugin signature verified");
                    Some(v)
                }
                Err(problem) => {
                    self.unvouched(what, problem).map_err(refused)?;
                    None
                }
            },
            None => None,
        };
        Ok((plugin, vouched))
    }

    /// Whether a binding named `binding`, to `tools`, failing `fail`, may use a plugin whose
    /// signature vouched for `vouched`: outside the signature's scope is a signature problem
    /// (refused, or a warning under `warn`).
    pub fn check_use(
        &self,
        what: &str,
        vouched: Option<&Vouched>,
        binding: &str,
        tools: &[String],
        fail: FailMode,
    ) -> Result<(), SignatureError> {
        match vouched.map(|v| v.scope.check(binding, tools, fail)) {
            Some(Err(problem)) => self.unvouched(what, SignatureError::OutOfScope(problem)),
            _ => Ok(()),
        }
    }

    fn unvouched(&self, what: &str, problem: SignatureError) -> Result<(), SignatureError> {
        if self.mode == SignatureMode::Required {
            return Err(problem);
        }
        tracing::warn!(plugin = what, %problem, "plugin loaded without a trusted signature (PLUGIN_SIGNATURES=warn)");
        Ok(())
    }
}

/// What a verified signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    plugin: String,
    /// The version signed.
    pub version: String,
    /// Where the plugin may be used.
    pub scope: SignedScope,
    /// The signer's key id.
    pub signer: String,
}

impl Vouched {
    /// The loaded plugin must be the one signed.
    pub fn check_info(&self, plugin: &str, version: &str) -> Result<(), SignatureError> {
        if (self.plugin.as_str(), self.version.as_str()) == (plugin, version) {
            Ok(())
        } else {
            Err(SignatureError::OtherPlugin {
                signed: format!("{} {}", self.plugin, self.version),
                actual: format!("{plugin} {version}"),
            })
        }
    }
}

#[cfg(test)]
#[path = "signing_tests.rs"]
mod tests;
