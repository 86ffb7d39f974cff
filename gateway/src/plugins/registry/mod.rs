//! The live plugin set: loaded from the plugin directory, swapped atomically on reload, and
//! asked per request for the policies and chaos rules of a tool and role.
//!
//! A reload compiles and validates everything first; only a fully valid set replaces the
//! live one, so a broken file never takes a working plugin down. Requests hold the set
//! they started with until they finish.
//!
//! One job per file: [`binding`] (a plugin bound to tools and roles, and a generation of
//! them), [`calls`] (asking the live set: evaluate, inject, filter, with failure counting
//! and quarantine), [`outcomes`] (what a reload or a policy call can end in), [`shadow`]
//! (a binding's candidate under test), [`shadow_log`] (storing its disagreements) and
//! [`signed_use`] (holding bindings to their signatures); this file loads, reloads and syncs
//! the set.

mod binding;
mod calls;
mod outcomes;
mod shadow;
mod shadow_log;
mod signed_use;
mod stored;

pub use binding::{Binding, PluginSet, Source};
pub use calls::fault_label;
pub use outcomes::{PolicyOutcome, ReloadError, ReloadFailure};
pub use shadow::{Shadow, ShadowBudget, Verdict};
pub use stored::SkippedUpload;

use super::counters::Counters;
use super::manifest::{BindingSpec, Manifest};
use super::plugin::Plugin;
use super::signing::SignaturePolicy;
use crate::metrics::Metrics;
use crate::store::plugin_shadows::{PluginShadow, ShadowVersion};
use crate::store::plugin_uploads::{PluginUpload, UploadVersion};
use arc_swap::ArcSwap;
use chrono::Utc;
use parking_lot::Mutex;
use signed_use::Loaded;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the bindings file in the plugin directory.
pub const MANIFEST_FILE: &str = "plugins.toml";
/// Live instances kept per reusing binding.
const MAX_IDLE_INSTANCES: usize = 16;
/// Failed calls in a row (overload aside, no call answering between them) after which an
/// uploaded version is quarantined, when they also came from [`QUARANTINE_DISTINCT_AGENTS`]
/// agents within [`QUARANTINE_WINDOW_MS`].
pub const QUARANTINE_AFTER_FAILURES: u32 = 5;
/// Distinct agents whose calls must have failed in the streak: one agent, whatever it
/// sends, can never decide that a version is quarantined.
pub const QUARANTINE_DISTINCT_AGENTS: usize = 3;
/// Longest a streak of failures counts for: failures further apart start a new one.
pub const QUARANTINE_WINDOW_MS: i64 = 60_000;

/// The plugin registry.
pub struct PluginRegistry {
    dir: PathBuf,
    /// Compiles and runs every plugin of this registry.
    engine: super::PluginEngine,
    store: Option<crate::store::Store>,
    uploads_seen: Mutex<Fingerprint>,
    /// Where shadow disagreements are stored (with a store).
    disagreements: Option<shadow_log::DisagreementLog>,
    live: ArcSwap<PluginSet>,
    counters: Counters,
    metrics: Arc<Metrics>,
    last_error: Mutex<Option<ReloadFailure>>,
    /// The last uploaded version this instance quarantined, and why.
    last_quarantine: Mutex<Option<ReloadFailure>>,
    /// Reloads (file watch, uploads, the change feed) take turns.
    reloads: crate::refresh::Turns,
    /// The trusted signers, and what an unvouched plugin meets.
    signatures: SignaturePolicy,
    /// What every shadow call of this process draws on.
    shadow_budget: Arc<ShadowBudget>,
    /// Per file binding, the plugin and the highest signed version it has run in this
    /// process: a lower one is a downgrade.
    versions_run: Mutex<signed_use::VersionsRun>,
}

impl PluginRegistry {
    /// A registry over `dir` whose plugins run on `engine`, with nothing loaded yet.
    pub fn new(
        dir: PathBuf,
        engine: super::PluginEngine,
        counters: Counters,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            dir,
            engine,
            store: None,
            uploads_seen: Mutex::new(Fingerprint::default()),
            disagreements: None,
            live: ArcSwap::from_pointee(PluginSet::empty()),
            counters,
            metrics,
            last_error: Mutex::new(None),
            last_quarantine: Mutex::new(None),
            reloads: crate::refresh::Turns::default(),
            signatures: SignaturePolicy::permissive(),
            shadow_budget: Arc::default(),
            versions_run: Mutex::new(HashMap::new()),
        }
    }

    /// Checks every plugin's signature against `policy` (by default nothing is trusted and
    /// an unsigned plugin only warns).
    pub fn with_signatures(mut self, policy: SignaturePolicy) -> Self {
        self.signatures = policy;
        self
    }

    /// The signature policy plugins are loaded under.
    pub fn signatures(&self) -> &SignaturePolicy {
        &self.signatures
    }

    /// The clock of this registry's store (the system's without one).
    pub(crate) fn clock(&self) -> crate::clock::Clock {
        self.store
            .as_ref()
            .map_or(crate::clock::Clock::SYSTEM, |store| store.clock())
    }

    /// The engine this registry's plugins run on.
    pub fn engine(&self) -> &super::PluginEngine {
        &self.engine
    }

    /// Also serves the plugins uploaded to `store` (shared by every instance on it), with
    /// their shadow candidates, and stores shadow disagreements there.
    pub fn with_store(mut self, store: crate::store::Store) -> Self {
        self.disagreements = shadow_log::DisagreementLog::start(
            store.clone(),
            self.metrics.plugin_shadow_unrecorded.clone(),
        );
        self.store = Some(store);
        self
    }

    /// Reloads when the uploaded plugins changed since the last reload (another instance
    /// may have changed them). Returns whether a reload ran. An error means the uploads could
    /// not be read (the database): the caller retries, or this instance would keep serving
    /// the old set. A reload refused for an invalid plugin is not an error here: it is in
    /// [`PluginRegistry::last_error`] and the metrics, and trying again would not help.
    pub async fn sync_uploads(self: &Arc<Self>) -> Result<bool, Arc<ReloadError>> {
        let Some(store) = &self.store else {
            return Ok(false);
        };
        let fingerprint = Fingerprint::read(store)
            .await
            .map_err(|e| Arc::new(ReloadError::Store(e.to_string())))?;
        if *self.uploads_seen.lock() == fingerprint {
            return Ok(false);
        }
        match self.reload().await {
            Err(e) if matches!(*e, ReloadError::Store(_)) => Err(e),
            _ => Ok(true),
        }
    }

    /// The plugin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live set (held by a request until it finishes).
    pub fn current(&self) -> Arc<PluginSet> {
        self.live.load_full()
    }

    /// The last reload failure, if the last reload failed.
    pub fn last_error(&self) -> Option<ReloadFailure> {
        self.last_error.lock().clone()
    }

    /// The last uploaded version this instance quarantined, and why.
    pub fn last_quarantine(&self) -> Option<ReloadFailure> {
        self.last_quarantine.lock().clone()
    }

    /// Re-reads the directory and swaps in the new set when all of it is valid. Compilation
    /// runs on the blocking pool; reloads are serialised.
    pub async fn reload(self: &Arc<Self>) -> Result<(), Arc<ReloadError>> {
        let _turn = self.reloads.take().await;
        let registry = Arc::clone(self);
        let previous = self.current();
        let built = match self.read_uploads().await {
            Ok((stored, fingerprint)) => {
                let built = tokio::task::spawn_blocking(move || registry.build(&previous, stored))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                if built.is_ok() {
                    *self.uploads_seen.lock() = fingerprint;
                }
                built
            }
            Err(e) => Err(e),
        };
        match built {
            Ok(set) => {
                let names: Vec<&str> = set.bindings.iter().map(|b| b.name.as_str()).collect();
                tracing::info!(bindings = ?names, dir = %self.dir.display(), "plugin set loaded");
                self.create_series(&set);
                self.note_versions_run(&set);
                self.live.store(Arc::new(set));
                *self.last_error.lock() = None;
                self.metrics.plugin_reloads.with_label_values(&["ok"]).inc();
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "plugin reload refused; the previous set stays live");
                *self.last_error.lock() = Some(ReloadFailure {
                    at: Utc::now(),
                    error: e.to_string(),
                });
                self.metrics
                    .plugin_reloads
                    .with_label_values(&["error"])
                    .inc();
                Err(Arc::new(e))
            }
        }
    }

    /// [`PluginRegistry::reload`], after a change of the uploads that should make version
    /// `version` of `name` live: an error, naming why, when the reload failed or left that
    /// version out on this instance (the caller undoes its change).
    pub async fn reload_expecting(
        self: &Arc<Self>,
        name: &str,
        version: i64,
    ) -> Result<(), String> {
        self.reload().await.map_err(|e| e.to_string())?;
        let set = self.current();
        if set
            .binding(name)
            .is_some_and(|b| b.source == Source::Upload(version))
        {
            return Ok(());
        }
        Err(
            match set
                .skipped
                .iter()
                .find(|s| s.name == name && s.version == version)
            {
                Some(skipped) => skipped.error.clone(),
                None => format!("version {version} of {name} did not go live"),
            },
        )
    }

    async fn read_uploads(&self) -> Result<(Stored, Fingerprint), ReloadError> {
        let Some(store) = &self.store else {
            return Ok((Stored::default(), Fingerprint::default()));
        };
        let store_error = |e: crate::store::StoreError| ReloadError::Store(e.to_string());
        // One snapshot: the fingerprint is of exactly the state built from, so a later
        // sync that sees it unchanged has nothing to reload.
        let snapshot = store.plugin_snapshot().await.map_err(store_error)?;
        let shadow_versions = snapshot.shadows.iter().map(PluginShadow::version).collect();
        let fingerprint = Fingerprint::of(&snapshot.versions, shadow_versions);
        let stored = Stored {
            uploads: snapshot.uploads,
            shadows: snapshot.shadows,
        };
        Ok((stored, fingerprint))
    }

    fn build(&self, previous: &PluginSet, stored: Stored) -> Result<PluginSet, ReloadError> {
        let manifest_path = self.dir.join(MANIFEST_FILE);
        let manifest = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => Manifest::parse(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(cause) => {
                return Err(ReloadError::Read {
                    file: MANIFEST_FILE.into(),
                    cause,
                })
            }
        };
        let live_from_file = previous
            .bindings
            .iter()
            .filter(|b| matches!(b.source, Source::File))
            .count();
        if manifest.binding.is_empty() && live_from_file > 0 {
            return Err(ReloadError::ManifestGone {
                live: live_from_file,
            });
        }
        let known: HashMap<&str, &Arc<Plugin>> = previous
            .bindings
            .iter()
            .flat_map(|b| {
                let shadow = b.shadow.as_ref().map(|s| &s.invoker.plugin);
                std::iter::once(&b.invoker.plugin).chain(shadow)
            })
            .map(|plugin| (plugin.sha256.as_str(), plugin))
            .collect();
        let mut compiled: HashMap<String, Loaded> = HashMap::new();
        let mut bindings = Vec::with_capacity(manifest.binding.len());
        let versions_run = self.versions_run.lock().clone();
        for spec in manifest.binding {
            let (plugin, vouched) =
                self.load_file(&spec.plugin, &spec.name(), &known, &mut compiled)?;
            self.check_signed_use(&spec.plugin, &spec, &plugin, vouched.as_ref())?;
            signed_use::refuse_downgrade(&versions_run, &spec, &plugin, vouched.as_ref())?;
            let shadow = match &spec.shadow {
                Some(candidate) => {
                    let name = candidate.strip_suffix(".wasm").unwrap_or(candidate);
                    let (plugin, _) = self.load_file(candidate, name, &known, &mut compiled)?;
                    if plugin.world != super::World::Policy {
                        return Err(ReloadError::WorldMismatch {
                            binding: candidate.clone(),
                            expected: "policy",
                            actual: plugin.world.as_str(),
                        });
                    }
                    Some(plugin)
                }
                None => None,
            };
            let percent = spec.shadow_percent.unwrap_or(10.0);
            let limits = spec.limits();
            let mut binding = Binding::new(spec, plugin, Source::File)?;
            binding.signed_version = vouched.map(|v| v.version);
            binding.keep_health_of(previous);
            binding.shadow = shadow.map(|plugin| Shadow::new(plugin, limits, percent));
            bindings.push(Arc::new(binding));
        }
        let mut shadows: HashMap<String, PluginShadow> = stored
            .shadows
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        let mut skipped = Vec::new();
        for upload in stored.uploads {
            match self.load_upload(&upload, previous, &known, &mut shadows) {
                Ok(binding) => bindings.push(Arc::new(binding)),
                Err(e) => {
                    let kept = previous
                        .binding(&upload.name)
                        .filter(|b| matches!(b.source, Source::Upload(_)));
                    if let Some(kept) = kept {
                        bindings.push(Arc::clone(kept));
                    }
                    let skip = SkippedUpload::new(&upload, e.to_string(), kept.map(|b| &**b));
                    tracing::error!(plugin = %skip.name, version = skip.version, error = %skip.error,
                        kept_version = ?skip.kept_version, "stored plugin version not loaded on this instance");
                    skipped.push(skip);
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for b in &bindings {
            if !names.insert(b.name.as_str()) {
                return Err(ReloadError::DuplicateName(b.name.clone()));
            }
        }
        Ok(PluginSet {
            bindings,
            loaded_at: Utc::now(),
            skipped,
        })
    }
}

impl PluginRegistry {
    /// The plugin in `file` of the plugin directory, as `name`, under the signature policy:
    /// compiled once per file in a build (`compiled`) and not again when the live set already
    /// has its bytes (`known`, by SHA-256).
    fn load_file(
        &self,
        file: &str,
        name: &str,
        known: &HashMap<&str, &Arc<Plugin>>,
        compiled: &mut HashMap<String, Loaded>,
    ) -> Result<Loaded, ReloadError> {
        if let Some(loaded) = compiled.get(file) {
            return Ok(loaded.clone());
        }
        let unreadable = |path: String| move |cause| ReloadError::Read { file: path, cause };
        let bytes = std::fs::read(self.dir.join(file)).map_err(unreadable(file.to_string()))?;
        let signature = read_signature(&self.dir.join(format!("{file}.sig")))
            .map_err(unreadable(format!("{file}.sig")))?;
        let plugin = self.signatures.admit(
            file,
            signature.as_deref(),
            &bytes,
            || {
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                match known.get(sha.as_str()) {
                    Some(plugin) => Ok(Arc::clone(plugin)),
                    None => Plugin::load(&self.engine, name, &bytes)
                        .map(Arc::new)
                        .map_err(|cause| ReloadError::Plugin {
                            file: file.to_string(),
                            cause,
                        }),
                }
            },
            |problem| ReloadError::Signature {
                file: file.to_string(),
                problem,
            },
        )?;
        compiled.insert(file.to_string(), plugin.clone());
        Ok(plugin)
    }
}

impl PluginRegistry {
    /// Creates at zero the evaluation, failure, quarantine and shadow series each binding of
    /// `set` can count, so that a rate over them reads 0 rather than nothing until the first
    /// event.
    fn create_series(&self, set: &PluginSet) {
        let m = &self.metrics;
        for binding in &set.bindings {
            let name = binding.name.as_str();
            // Its evaluations by outcome, and its duration.
            self.series(binding);
            for kind in super::FailureKind::ALL {
                m.plugin_failures.with_label_values(&[name, kind.as_str()]);
            }
            m.plugin_quarantines.with_label_values(&[name]);
            if binding.shadow.is_some() {
                for outcome in ["agree", "disagree", "error", "skipped"] {
                    m.plugin_shadow_evaluations
                        .with_label_values(&[name, outcome]);
                }
                m.plugin_shadow_unrecorded.with_label_values(&[name]);
            }
        }
    }
}

/// The uploads and candidates a reload builds from.
#[derive(Default)]
struct Stored {
    uploads: Vec<PluginUpload>,
    shadows: Vec<PluginShadow>,
}

/// What identifies the stored plugins without their bytes: a change means a reload.
#[derive(Default, PartialEq)]
struct Fingerprint {
    uploads: Vec<(String, i64, i64)>,
    shadows: Vec<ShadowVersion>,
}

impl Fingerprint {
    async fn read(store: &crate::store::Store) -> Result<Self, crate::store::StoreError> {
        Ok(Self::of(
            &store.plugin_upload_versions().await?,
            store.plugin_shadow_versions().await?,
        ))
    }

    fn of(versions: &[UploadVersion], shadows: Vec<ShadowVersion>) -> Self {
        Self {
            uploads: versions
                .iter()
                .map(|v| (v.name.clone(), v.version, v.active))
                .collect(),
            shadows,
        }
    }
}

/// The signature file next to a plugin file, if there is one.
fn read_signature(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The binding of an uploaded plugin, from its stored JSON (the manifest keys, without
/// `plugin` and `name`, which come from the upload's name).
pub fn upload_spec(name: &str, binding_json: &str) -> Result<BindingSpec, String> {
    let mut value: serde_json::Value =
        serde_json::from_str(binding_json).map_err(|e| format!("binding is not JSON: {e}"))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "binding must be a JSON object".to_string())?;
    object.insert("plugin".into(), format!("{name}.wasm").into());
    object.insert("name".into(), name.into());
    let spec: BindingSpec = serde_json::from_value(value).map_err(|e| format!("binding: {e}"))?;
    spec.check().map_err(|e| e.to_string())?;
    if spec.shadow.is_some() {
        return Err("binding: shadow names a file of the plugin directory, so it is for plugins.toml bindings".into());
    }
    Ok(spec)
}
