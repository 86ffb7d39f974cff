//! The gateway's three secrets: where they come from and what a valid one looks like.

use crate::config::Environment;
use crate::crypto::kek::Kek;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Shortest accepted `SIGNING_SECRET`, in bytes.
const MIN_SIGNING_SECRET_LEN: usize = 32;
/// Shortest accepted `ADMIN_API_KEY`, in characters.
const MIN_ADMIN_KEY_LEN: usize = 24;
/// Name of the development secrets file inside the data folder.
const DEV_SECRETS_FILE: &str = "dev-secrets.env";

/// A secret that is missing or malformed; names the variable, never shows its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Required in production and not set.
    #[error(
        "{0} is not set; production requires it (run `gateway keys generate` for fresh values)"
    )]
    Missing(&'static str),
    /// Set but not usable.
    #[error("{0} is malformed: {1}")]
    Malformed(&'static str, &'static str),
    /// The development secrets file could not be read or written.
    #[error("development secrets file {path}: {cause}")]
    DevFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        cause: std::io::Error,
    },
}

/// The resolved secrets. `Debug` shows none of them.
#[derive(Clone)]
pub struct Secrets {
    /// Key-encryption key for secrets stored at rest.
    pub kek: Kek,
    /// Current token sealing secret.
    pub signing_secret: Zeroizing<Vec<u8>>,
    /// Previous token sealing secret, still accepted for validation during a rotation.
    pub previous_signing_secret: Option<Zeroizing<Vec<u8>>>,
    /// Bearer key of the management API.
    pub admin_api_key: Zeroizing<String>,
    /// True when this start generated the admin API key (development only): the one case
    /// in which the gateway shows it, since nobody else knows it yet.
    pub generated: bool,
    /// Bearer token `/metrics` asks for (`METRICS_BEARER_TOKEN`); `None`: open.
    pub metrics_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(redacted)")
    }
}

impl Secrets {
    /// Reads `KEK_BASE64`, `SIGNING_SECRET`, `SIGNING_SECRET_PREVIOUS` and `ADMIN_API_KEY`.
    /// In development, missing ones come from (or are generated into) `<data_dir>/dev-secrets.env`.
    pub fn resolve(environment: Environment, data_dir: &Path) -> Result<Self, SecretError> {
        let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
        for name in ["KEK_BASE64", "SIGNING_SECRET", "ADMIN_API_KEY"] {
            if let Some(v) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
                values.insert(name, v);
            }
        }
        let mut generated = false;
        if values.len() < 3 {
            match environment {
                Environment::Production => {
                    let missing = ["KEK_BASE64", "SIGNING_SECRET", "ADMIN_API_KEY"]
                        .into_iter()
                        .find(|n| !values.contains_key(n))
                        .unwrap_or("KEK_BASE64");
                    return Err(SecretError::Missing(missing));
                }
                Environment::Development => {
                    let admin_key_given = values.contains_key("ADMIN_API_KEY");
                    let fresh = fill_from_dev_file(data_dir, &mut values)?;
                    generated =
                        !admin_key_given && fresh.iter().any(|name| name == "ADMIN_API_KEY");
                }
            }
        }
        let previous = std::env::var("SIGNING_SECRET_PREVIOUS")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let metrics_token = std::env::var("METRICS_BEARER_TOKEN")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| check_metrics_token(&v))
            .transpose()?;
        let mut secrets = Self::from_values(
            values.get("KEK_BASE64").map(String::as_str).unwrap_or(""),
            values
                .get("SIGNING_SECRET")
                .map(String::as_str)
                .unwrap_or(""),
            previous.as_deref(),
            values
                .get("ADMIN_API_KEY")
                .map(String::as_str)
                .unwrap_or(""),
            generated,
        )?;
        secrets.metrics_token = metrics_token;
        Ok(secrets)
    }

    /// Validates explicit values (used by `resolve` and by tests).
    pub fn from_values(
        kek_base64: &str,
        signing_secret: &str,
        previous_signing_secret: Option<&str>,
        admin_api_key: &str,
        generated: bool,
    ) -> Result<Self, SecretError> {
        let kek = Kek::from_base64(kek_base64.trim())
            .map_err(|_| SecretError::Malformed("KEK_BASE64", "must be 32 bytes in base64"))?;
        let signing = check_signing_secret("SIGNING_SECRET", signing_secret)?;
        let previous = previous_signing_secret
            .map(|s| check_signing_secret("SIGNING_SECRET_PREVIOUS", s))
            .transpose()?;
        let admin = admin_api_key.trim();
        if admin.len() < MIN_ADMIN_KEY_LEN {
            return Err(SecretError::Malformed(
                "ADMIN_API_KEY",
                "must be at least 24 characters",
            ));
        }
        Ok(Self {
            kek,
            signing_secret: signing,
            previous_signing_secret: previous,
            admin_api_key: Zeroizing::new(admin.to_string()),
            generated,
            metrics_token: None,
        })
    }
}

/// A `METRICS_BEARER_TOKEN` long enough not to be guessed (as the admin key).
fn check_metrics_token(value: &str) -> Result<Zeroizing<String>, SecretError> {
    let value = value.trim();
    if value.len() < MIN_ADMIN_KEY_LEN {
        return Err(SecretError::Malformed(
            "METRICS_BEARER_TOKEN",
            "must be at least 24 characters",
        ));
    }
    Ok(Zeroizing::new(value.to_string()))
}

fn check_signing_secret(
    name: &'static str,
    value: &str,
) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let value = value.trim();
    if value.len() < MIN_SIGNING_SECRET_LEN {
        return Err(SecretError::Malformed(name, "must be at least 32 bytes"));
    }
    Ok(Zeroizing::new(value.as_bytes().to_vec()))
}

/// Fresh random values for the three secrets, as `NAME=value` lines of an env file.
pub fn generate_secret_lines() -> String {
    let mut kek = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(kek.as_mut());
    format!(
        "KEK_BASE64={}\nSIGNING_SECRET={}\nADMIN_API_KEY={}\n",
        STANDARD.encode(kek.as_ref()),
        random_token(48),
        random_token(32)
    )
}

/// A URL-safe random string from `bytes` random bytes.
fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Loads missing secrets from the development file, generating and saving any it lacks.
/// Returns the names of those generated now.
fn fill_from_dev_file(
    data_dir: &Path,
    values: &mut BTreeMap<&'static str, String>,
) -> Result<Vec<String>, SecretError> {
    let path = data_dir.join(DEV_SECRETS_FILE);
    let io_err = |cause| SecretError::DevFile {
        path: path.clone(),
        cause,
    };
    let mut stored = match std::fs::read_to_string(&path) {
        Ok(text) => parse_env_lines(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(io_err(e)),
    };
    let fresh = parse_env_lines(&generate_secret_lines());
    let mut generated = Vec::new();
    for (name, value) in fresh {
        if let std::collections::btree_map::Entry::Vacant(slot) = stored.entry(name.clone()) {
            slot.insert(value);
            generated.push(name);
        }
    }
    if !generated.is_empty() {
        std::fs::create_dir_all(data_dir).map_err(io_err)?;
        let text: String = stored.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        write_private_file(&path, &text).map_err(io_err)?;
    }
    for name in ["KEK_BASE64", "SIGNING_SECRET", "ADMIN_API_KEY"] {
        if !values.contains_key(name) {
            if let Some(v) = stored.get(name) {
                values.insert(name, v.clone());
            }
        }
    }
    Ok(generated)
}

fn parse_env_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Writes `text` to `path` readable by the owner only.
fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_lines_are_valid_secrets() {
        let lines = parse_env_lines(&generate_secret_lines());
        let s = Secrets::from_values(
            &lines["KEK_BASE64"],
            &lines["SIGNING_SECRET"],
            None,
            &lines["ADMIN_API_KEY"],
            false,
        );
        assert!(s.is_ok());
    }

    #[test]
    fn rejects_short_kek_naming_the_variable() {
        let lines = parse_env_lines(&generate_secret_lines());
        let err = Secrets::from_values(
            "c2hvcnQ=",
            &lines["SIGNING_SECRET"],
            None,
            &lines["ADMIN_API_KEY"],
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("KEK_BASE64"));
    }

    #[test]
    fn dev_file_is_created_once_with_owner_only_mode_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = BTreeMap::new();
        assert_eq!(fill_from_dev_file(dir.path(), &mut first).unwrap().len(), 3);
        let mut second = BTreeMap::new();
        assert!(fill_from_dev_file(dir.path(), &mut second)
            .unwrap()
            .is_empty());
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DEV_SECRETS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
