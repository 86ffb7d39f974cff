//! The live plugin set: loaded from the plugin directory, swapped atomically on reload, and
//! asked per request for the policies and chaos rules of a tool and role.
//!
//! A reload compiles and validates everything first; only a fully valid set replaces the
//! live one, so a broken file never takes a working plugin down. Requests hold the set
//! they started with until they finish.

use super::bindings::{Decision, Fault, Request};
use super::call_slots::CallSlots;
use super::counters::Counters;
use super::manifest::{BindingSpec, ConfigSource, FailMode, FilterResponse, Manifest};
use super::plugin::{CallFailure, FailureKind, Invoker, LoadError, Plugin, World};
use super::sandbox::CallContext;
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Name of the bindings file in the plugin directory.
pub const MANIFEST_FILE: &str = "plugins.toml";
/// Live instances kept per reusing binding.
const MAX_IDLE_INSTANCES: usize = 16;
/// Failed calls in a row (overload aside) after which an uploaded version is quarantined:
/// rolled back to the version before it.
pub const QUARANTINE_AFTER_FAILURES: u32 = 5;

/// Where a binding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `plugins.toml` and a file in the plugin directory.
    File,
    /// The admin API (stored in the database), with its version.
    Upload(i64),
}

/// A plugin bound to tools and roles.
pub struct Binding {
    /// Binding name.
    pub name: String,
    /// The name as handed to each call's context (shared, not re-allocated per call).
    label: Arc<str>,
    /// Its metric series, resolved on first use.
    series: OnceLock<BindingSeries>,
    /// Where it comes from.
    pub source: Source,
    /// Its `plugins.toml` entry.
    pub spec: BindingSpec,
    /// The plugin, with this binding's limits.
    pub invoker: Invoker,
    /// Static configuration JSON.
    pub config: Arc<str>,
    /// What a failure does.
    pub fail: FailMode,
    /// Its calls running now (at most `CALLS_AT_ONCE`).
    slots: CallSlots,
    /// Calls that failed in a row (overload aside); a success resets it.
    failures_in_a_row: AtomicU32,
    /// Set once this uploaded version has been quarantined (rolled back).
    quarantined: AtomicBool,
}

impl Binding {
    /// The configuration of one call: the dynamic source the binding names, else its static
    /// configuration.
    fn config(&self, policies: Option<&Arc<str>>, chaos_rules: Option<&Arc<str>>) -> Arc<str> {
        let dynamic = match self.spec.config_from {
            Some(ConfigSource::Policies) => {
                Some(policies.cloned().unwrap_or_else(|| Arc::from("{}")))
            }
            Some(ConfigSource::ChaosRules) => chaos_rules.cloned(),
            None => None,
        };
        dynamic.unwrap_or_else(|| Arc::clone(&self.config))
    }

    /// Binds `plugin` as `spec` says: checks the declared world and applies the defaults
    /// (policies fail closed, chaos fails open; stateless plugins' instances are reused).
    fn new(spec: BindingSpec, plugin: Arc<Plugin>, source: Source) -> Result<Self, ReloadError> {
        if let Some(expected) = spec.world {
            if expected != plugin.world {
                return Err(ReloadError::WorldMismatch {
                    binding: spec.name(),
                    expected: expected.as_str(),
                    actual: plugin.world.as_str(),
                });
            }
        }
        let fail = spec.fail.unwrap_or(match plugin.world {
            World::Policy => FailMode::Closed,
            World::Chaos => FailMode::Open,
        });
        Ok(Self {
            name: spec.name(),
            label: Arc::from(spec.name()),
            series: OnceLock::new(),
            source,
            config: Arc::from(spec.config_json()),
            invoker: Invoker::new(
                plugin,
                spec.limits(),
                spec.reuse.unwrap_or(true),
                MAX_IDLE_INSTANCES,
            ),
            fail,
            spec,
            slots: CallSlots::default(),
            failures_in_a_row: AtomicU32::new(0),
            quarantined: AtomicBool::new(false),
        })
    }

    /// The plugin's world.
    pub fn world(&self) -> World {
        self.invoker.plugin.world
    }
}

/// A binding's metric series, looked up once rather than by label on every call (a look-up
/// hashes the labels and takes the family's lock).
struct BindingSeries {
    duration: prometheus::Histogram,
    allow: prometheus::IntCounter,
    deny: prometheus::IntCounter,
    none: prometheus::IntCounter,
    fault: prometheus::IntCounter,
    filtered: prometheus::IntCounter,
    failure: prometheus::IntCounter,
}

impl BindingSeries {
    fn new(metrics: &Metrics, name: &str) -> Self {
        let outcome = |label: &str| metrics.plugin_evaluations.with_label_values(&[name, label]);
        Self {
            duration: metrics.plugin_duration.with_label_values(&[name]),
            allow: outcome("allow"),
            deny: outcome("deny"),
            none: outcome("none"),
            fault: outcome("fault"),
            filtered: outcome("filtered"),
            failure: outcome("failure"),
        }
    }
}

/// One generation of loaded bindings.
pub struct PluginSet {
    /// Bindings in manifest order.
    pub bindings: Vec<Arc<Binding>>,
    /// When this set went live.
    pub loaded_at: DateTime<Utc>,
}

impl PluginSet {
    fn empty() -> Self {
        Self {
            bindings: Vec::new(),
            loaded_at: Utc::now(),
        }
    }

    /// Bindings of `world` that apply to `tool` and `role`, in manifest order.
    pub fn applicable<'a>(
        &'a self,
        world: World,
        tool: &'a str,
        role: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Binding>> + 'a {
        self.bindings
            .iter()
            .filter(move |b| b.world() == world && b.spec.applies_to(tool, role))
    }

    /// The tools no policy binding covers, for any role.
    pub fn tools_without_policy(&self) -> Vec<crate::catalog::ToolName> {
        crate::catalog::ToolName::ALL
            .into_iter()
            .filter(|tool| {
                !self.bindings.iter().any(|b| {
                    b.world() == World::Policy
                        && b.spec.tools.iter().any(|t| t == "*" || t == tool.as_str())
                })
            })
            .collect()
    }

    /// True when some applicable policy takes its configuration from stored policies.
    pub fn needs_policy_config(&self, tool: &str, role: &str) -> bool {
        self.applicable(World::Policy, tool, role)
            .any(|b| b.spec.config_from == Some(ConfigSource::Policies))
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The manifest is unreadable or invalid.
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
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
    Allow,
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
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadFailure {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What went wrong.
    pub error: String,
}

/// The plugin registry.
pub struct PluginRegistry {
    dir: PathBuf,
    store: Option<crate::store::Store>,
    uploads_seen: Mutex<Vec<(String, i64, i64)>>,
    live: ArcSwap<PluginSet>,
    counters: Counters,
    metrics: Arc<Metrics>,
    last_error: Mutex<Option<ReloadFailure>>,
    /// The last uploaded version this instance quarantined, and why.
    last_quarantine: Mutex<Option<ReloadFailure>>,
    /// Reloads (file watch, uploads, the change feed) take turns.
    reloads: crate::refresh::Turns,
}

impl PluginRegistry {
    /// A registry over `dir`, with nothing loaded yet.
    pub fn new(dir: PathBuf, counters: Counters, metrics: Arc<Metrics>) -> Self {
        Self {
            dir,
            store: None,
            uploads_seen: Mutex::new(Vec::new()),
            live: ArcSwap::from_pointee(PluginSet::empty()),
            counters,
            metrics,
            last_error: Mutex::new(None),
            last_quarantine: Mutex::new(None),
            reloads: crate::refresh::Turns::default(),
        }
    }

    /// Also serves the plugins uploaded to `store` (shared by every instance on it).
    pub fn with_store(mut self, store: crate::store::Store) -> Self {
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
        let fingerprint: Vec<(String, i64, i64)> = store
            .plugin_upload_versions()
            .await
            .map_err(|e| Arc::new(ReloadError::Store(e.to_string())))?
            .into_iter()
            .map(|v| (v.name, v.version, v.active))
            .collect();
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
            Ok((uploads, fingerprint)) => {
                let built = tokio::task::spawn_blocking(move || registry.build(&previous, uploads))
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

    async fn read_uploads(
        &self,
    ) -> Result<
        (
            Vec<crate::store::plugin_uploads::PluginUpload>,
            Vec<(String, i64, i64)>,
        ),
        ReloadError,
    > {
        let Some(store) = &self.store else {
            return Ok((Vec::new(), Vec::new()));
        };
        let store_error = |e: crate::store::StoreError| ReloadError::Store(e.to_string());
        let versions = store.plugin_upload_versions().await.map_err(store_error)?;
        let uploads = store.active_plugin_uploads().await.map_err(store_error)?;
        let fingerprint = versions
            .into_iter()
            .map(|v| (v.name, v.version, v.active))
            .collect();
        Ok((uploads, fingerprint))
    }

    fn build(
        &self,
        previous: &PluginSet,
        uploads: Vec<crate::store::plugin_uploads::PluginUpload>,
    ) -> Result<PluginSet, ReloadError> {
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
            .map(|b| (b.invoker.plugin.sha256.as_str(), &b.invoker.plugin))
            .collect();
        let mut compiled: HashMap<String, Arc<Plugin>> = HashMap::new();
        let mut bindings = Vec::with_capacity(manifest.binding.len());
        for spec in manifest.binding {
            let file = spec.plugin.clone();
            let plugin = match compiled.get(&file) {
                Some(p) => Arc::clone(p),
                None => {
                    let bytes =
                        std::fs::read(self.dir.join(&file)).map_err(|cause| ReloadError::Read {
                            file: file.clone(),
                            cause,
                        })?;
                    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                    let plugin = match known.get(sha.as_str()) {
                        Some(p) => Arc::clone(p),
                        None => Arc::new(Plugin::load(&spec.name(), &bytes).map_err(|cause| {
                            ReloadError::Plugin {
                                file: file.clone(),
                                cause,
                            }
                        })?),
                    };
                    compiled.insert(file.clone(), Arc::clone(&plugin));
                    plugin
                }
            };
            bindings.push(Arc::new(Binding::new(spec, plugin, Source::File)?));
        }
        for upload in uploads {
            let invalid = |problem: String| ReloadError::Upload {
                name: upload.name.clone(),
                problem,
            };
            let spec = upload_spec(&upload.name, &upload.binding).map_err(invalid)?;
            let plugin = match known.get(upload.sha256.as_str()) {
                Some(p) => Arc::clone(p),
                None => Arc::new(
                    Plugin::load(&upload.name, &upload.wasm).map_err(|e| invalid(e.to_string()))?,
                ),
            };
            bindings.push(Arc::new(Binding::new(
                spec,
                plugin,
                Source::Upload(upload.version),
            )?));
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
        })
    }

    /// Runs `call` in a slot of `binding` (counted in `gateway_plugin_calls_in_flight`
    /// while it runs); the busy failure when no slot frees up within a call's wall limit.
    async fn in_slot<T>(
        &self,
        binding: &Binding,
        call: impl std::future::Future<Output = Result<T, CallFailure>>,
    ) -> Result<T, CallFailure> {
        let _running = binding
            .slots
            .take(
                binding.invoker.wall_limit(),
                &self.metrics.plugin_calls_in_flight,
            )
            .await?;
        call.await
    }

    fn call_context(
        &self,
        binding: &Binding,
        config: Arc<str>,
        request: &Request,
        counters: &Counters,
    ) -> CallContext {
        CallContext {
            plugin: Arc::clone(&binding.label),
            config,
            counters: counters.clone(),
            now_ms: request.now_ms,
            seed: request.seed,
        }
    }

    fn record_failure(&self, binding: &Binding, failure: &CallFailure) {
        if failure.kind == FailureKind::Busy {
            // Overload, counted below: a line per refused call would flood the log.
            tracing::debug!(plugin = %binding.name, error = %failure.message, "plugin busy");
        } else {
            tracing::warn!(plugin = %binding.name, kind = failure.kind.as_str(), error = %failure.message,
                fail = ?binding.fail, "plugin call failed");
        }
        self.metrics
            .plugin_failures
            .with_label_values(&[&binding.name, failure.kind.as_str()])
            .inc();
        self.series(binding).failure.inc();
        if failure.kind != FailureKind::Busy {
            let in_a_row = binding.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
            if in_a_row >= QUARANTINE_AFTER_FAILURES {
                self.quarantine(binding, failure);
            }
        }
    }

    /// Rolls an uploaded version that keeps failing back to the one before it, once: in the
    /// database, so that the change feed reloads every instance (this one included). Another
    /// instance that got there first is not overtaken: the rollback applies only while this
    /// version is still the active one.
    fn quarantine(&self, binding: &Binding, failure: &CallFailure) {
        let (Source::Upload(version), Some(store)) = (binding.source, &self.store) else {
            return;
        };
        if binding.quarantined.swap(true, Ordering::Relaxed) {
            return;
        }
        let message = format!(
            "uploaded plugin {} version {version} failed {QUARANTINE_AFTER_FAILURES} calls in a row \
             (last: {}: {}); rolled back to the version before it",
            binding.name,
            failure.kind.as_str(),
            failure.message
        );
        tracing::error!("{message}");
        *self.last_quarantine.lock() = Some(ReloadFailure {
            at: Utc::now(),
            error: message,
        });
        self.metrics
            .plugin_quarantines
            .with_label_values(&[&binding.name])
            .inc();
        let (store, name) = (store.clone(), binding.name.clone());
        tokio::spawn(async move {
            match store.rollback_plugin_upload(&name, Some(version)).await {
                Ok(Some(live)) => {
                    tracing::warn!(plugin = %name, version = live, "quarantine: earlier version live again")
                }
                Ok(None) => {
                    tracing::warn!(plugin = %name, "quarantine: no earlier version, or already rolled back; the failing version stays")
                }
                Err(e) => {
                    tracing::error!(plugin = %name, error = %e, "quarantine: the rollback failed")
                }
            }
        });
    }

    /// Notes a call of `binding` that answered.
    fn succeeded(binding: &Binding) {
        binding.failures_in_a_row.store(0, Ordering::Relaxed);
    }

    fn series<'b>(&self, binding: &'b Binding) -> &'b BindingSeries {
        binding
            .series
            .get_or_init(|| BindingSeries::new(&self.metrics, &binding.name))
    }

    fn observe(&self, binding: &Binding, started: Instant) {
        self.series(binding)
            .duration
            .observe(started.elapsed().as_secs_f64());
    }

    /// Runs every policy bound to the request's tool and role. `policy_config` is the merged
    /// stored policy for bindings with `config_from = "policies"`.
    pub async fn evaluate(
        &self,
        set: &PluginSet,
        request: &Request,
        policy_config: Option<Arc<str>>,
    ) -> PolicyOutcome {
        self.evaluate_counting(set, request, policy_config, &self.counters)
            .await
    }

    /// [`PluginRegistry::evaluate`] as a dry run: the policies read the real counters but
    /// their additions are forgotten, so asking consumes no quota.
    pub async fn evaluate_dry_run(
        &self,
        set: &PluginSet,
        request: &Request,
        policy_config: Option<Arc<str>>,
    ) -> PolicyOutcome {
        let counters = self.counters.dry_run();
        self.evaluate_counting(set, request, policy_config, &counters)
            .await
    }

    async fn evaluate_counting(
        &self,
        set: &PluginSet,
        request: &Request,
        policy_config: Option<Arc<str>>,
        counters: &Counters,
    ) -> PolicyOutcome {
        // A dry run's denials are answers to an operator, not denials of traffic.
        let denials = (!counters.is_dry_run()).then_some(&self.metrics.policy_denials);
        for binding in set.applicable(World::Policy, &request.tool, &request.agent_role) {
            let config = binding.config(policy_config.as_ref(), None);
            let started = Instant::now();
            let result = self
                .in_slot(
                    binding,
                    binding.invoker.evaluate(
                        self.call_context(binding, config, request, counters),
                        request,
                    ),
                )
                .await;
            self.observe(binding, started);
            match result {
                Ok(Decision::Allow) => {
                    Self::succeeded(binding);
                    self.series(binding).allow.inc();
                }
                Ok(Decision::Deny(denial)) => {
                    Self::succeeded(binding);
                    self.series(binding).deny.inc();
                    if let Some(denials) = denials {
                        denials
                            .with_label_values(&[&request.tool, &request.action, &denial.code])
                            .inc();
                    }
                    return PolicyOutcome::Deny {
                        binding: binding.name.clone(),
                        code: denial.code,
                        reason: denial.reason,
                    };
                }
                Err(failure) => {
                    self.record_failure(binding, &failure);
                    if binding.fail == FailMode::Closed {
                        if let Some(denials) = denials {
                            denials
                                .with_label_values(&[
                                    &request.tool,
                                    &request.action,
                                    "policy_error",
                                ])
                                .inc();
                        }
                        return PolicyOutcome::Failed {
                            binding: binding.name.clone(),
                            kind: failure.kind,
                        };
                    }
                }
            }
        }
        PolicyOutcome::Allow
    }

    /// Runs the chaos rules bound to the request's tool and role; the first fault wins.
    /// Chaos fails open: a failing plugin injects nothing. `chaos_rules` is the configuration
    /// of bindings with `config_from = "chaos_rules"`.
    pub async fn inject(
        &self,
        set: &PluginSet,
        request: &Request,
        chaos_rules: Arc<str>,
    ) -> Option<Fault> {
        for binding in set.applicable(World::Chaos, &request.tool, &request.agent_role) {
            let config = binding.config(None, Some(&chaos_rules));
            let started = Instant::now();
            let result = self
                .in_slot(
                    binding,
                    binding.invoker.inject(
                        self.call_context(binding, config, request, &self.counters),
                        request,
                    ),
                )
                .await;
            self.observe(binding, started);
            match result {
                Ok(Fault::None) => {
                    Self::succeeded(binding);
                    self.series(binding).none.inc();
                }
                Ok(fault) => {
                    Self::succeeded(binding);
                    self.series(binding).fault.inc();
                    self.metrics
                        .chaos_injections
                        .with_label_values(&[&request.tool, fault_label(&fault)])
                        .inc();
                    return Some(fault);
                }
                Err(failure) => self.record_failure(binding, &failure),
            }
        }
        None
    }

    /// Runs every policy's response filter, in order, over a successful response. Bindings
    /// with `filter_response = "when_policy_has_rules"` are skipped when the merged policy
    /// has no response rules (`policy_has_rules`). Returns the filtered JSON, or `None` when
    /// no filter changed it. A failing filter is skipped when the binding fails open, and
    /// withholds the response (`Err`) when it fails closed.
    pub async fn filter_response(
        &self,
        set: &PluginSet,
        request: &Request,
        policy_config: Option<Arc<str>>,
        policy_has_rules: bool,
        response: &serde_json::Value,
    ) -> Result<Option<String>, PolicyOutcome> {
        // The response as JSON text, written when a filter first needs it.
        let mut text: Option<String> = None;
        let mut changed = false;
        for binding in set.applicable(World::Policy, &request.tool, &request.agent_role) {
            if binding.spec.filter_response == Some(FilterResponse::WhenPolicyHasRules)
                && !policy_has_rules
            {
                continue;
            }
            let config = binding.config(policy_config.as_ref(), None);
            let current: &str = text.get_or_insert_with(|| response.to_string());
            let started = Instant::now();
            let result = self
                .in_slot(
                    binding,
                    binding.invoker.filter_response(
                        self.call_context(binding, config, request, &self.counters),
                        request,
                        current,
                    ),
                )
                .await;
            self.observe(binding, started);
            match result {
                Ok(filtered) => {
                    Self::succeeded(binding);
                    self.series(binding).filtered.inc();
                    if let Some(filtered) = filtered {
                        text = Some(filtered);
                        changed = true;
                    }
                }
                Err(failure) => {
                    self.record_failure(binding, &failure);
                    if binding.fail == FailMode::Closed {
                        return Err(PolicyOutcome::Failed {
                            binding: binding.name.clone(),
                            kind: failure.kind,
                        });
                    }
                }
            }
        }
        Ok(text.filter(|_| changed))
    }
}

/// Metric label of a fault.
pub fn fault_label(fault: &Fault) -> &'static str {
    match fault {
        Fault::None => "none",
        Fault::Delay(_) => "delay",
        Fault::Error(_) => "error",
        Fault::Timeout => "timeout",
        Fault::DelayThenError(_) => "delay_then_error",
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
    Ok(spec)
}
