//! What a reload or a policy call can end in.

use super::super::{FailureKind, LoadError};
use super::MANIFEST_FILE;
use chrono::{DateTime, Utc};

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The manifest is unreadable or invalid.
    #[error(transparent)]
    Manifest(#[from] super::super::manifest::ManifestError),
    /// A file could not be read.
    #[error("{file}: {cause}")]
    Read {
        /// File.
        file: String,
        /// Cause.
        cause: std::io::Error,
    },
    /// A plugin failed validation.
    #[error("{file}: {cause}")]
    Plugin {
        /// File.
        file: String,
        /// Cause.
        cause: LoadError,
    },
    /// A plugin file's signature does not vouch for it (`PLUGIN_SIGNATURES=required`).
    #[error("{file}: {problem}")]
    Signature {
        /// File.
        file: String,
        /// What is wrong with its signature.
        problem: super::super::signing::SignatureError,
    },
    /// A binding pins another component than the one it names.
    #[error("binding {binding}: the plugin's sha256 is {actual}, the binding pins {pinned}")]
    Pinned {
        /// Binding.
        binding: String,
        /// The pinned digest.
        pinned: String,
        /// The component's digest.
        actual: String,
    },
    /// A signed version lower than one the binding has run, without `allow_downgrade`.
    #[error("binding {binding}: signed version {version} is lower than {highest}, which it has run; set allow_downgrade = true to roll back on purpose")]
    Downgrade {
        /// Binding.
        binding: String,
        /// The version offered.
        version: String,
        /// The highest version it has run.
        highest: String,
    },
    /// Two bindings share a name.
    #[error("two bindings are named {0}")]
    DuplicateName(String),
    /// An uploaded binding is not valid.
    #[error("uploaded plugin {name}: {problem}")]
    Upload {
        /// Binding name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// Uploaded plugins could not be read.
    #[error("reading uploaded plugins: {0}")]
    Store(String),
    /// `plugins.toml` went missing, or lost every binding, while bindings from it were live:
    /// refused, so that policy enforcement never disappears with a file (fail closed).
    #[error(
        "{MANIFEST_FILE} is missing or binds nothing, while {live} of its bindings are live; \
             the live set is kept (to remove every file binding, restart with the new file)"
    )]
    ManifestGone {
        /// File bindings live now.
        live: usize,
    },
    /// A binding names the wrong world.
    #[error("binding {binding}: plugin implements {actual}, binding expects {expected}")]
    WorldMismatch {
        /// Binding.
        binding: String,
        /// Declared world.
        expected: &'static str,
        /// The plugin's world.
        actual: &'static str,
    },
}

/// The verdict of all policies bound to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// Every policy allowed (or none applies).
    Allow {
        /// The bindings (indices in the plugin set) that answered `allow-and-filter`: their
        /// `filter-response` runs on the call's successful response.
        filters: Vec<usize>,
    },
    /// A policy denied; the first denial wins.
    Deny {
        /// Binding that denied.
        binding: String,
        /// Its code.
        code: String,
        /// Its reason.
        reason: String,
    },
    /// A fail-closed policy failed.
    Failed {
        /// Binding that failed.
        binding: String,
        /// How.
        kind: FailureKind,
    },
}

/// The last reload error, for the admin API.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReloadFailure {
    /// When it happened.
    #[schema(value_type = String)]
    pub at: DateTime<Utc>,
    /// What went wrong.
    pub error: String,
}
