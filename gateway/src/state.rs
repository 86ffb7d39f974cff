//! The state every handler shares, behind one `Arc`.

use crate::auth::admin::AdminKey;
use crate::auth::replay_guard::ReplayGuard;
use crate::config::Config;
use crate::crypto::agent_keys::AgentKeyPool;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tokens::mirror::AccessMirror;
use crate::tokens::TokenService;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

/// Shared application state. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds.
pub struct Shared {
    /// Configuration read at start.
    pub config: Config,
    /// Database.
    pub store: Store,
    /// Metric families.
    pub metrics: Arc<Metrics>,
    /// Token issue and validation.
    pub tokens: TokenService,
    /// In-memory agent status and revocations.
    pub mirror: Arc<AccessMirror>,
    /// Ready RSA key pairs for new agents.
    pub key_pool: AgentKeyPool,
    /// Used agent signatures.
    pub replay_guard: ReplayGuard,
    /// The admin API key (as a digest).
    pub admin_key: AdminKey,
    /// The bearer token `/metrics` asks for, when `METRICS_BEARER_TOKEN` is set.
    pub metrics_key: Option<AdminKey>,
    /// Failed authentications per client address.
    pub auth_failures: crate::auth::failure_limit::AuthFailures,
    /// The live policy and chaos plugins.
    pub plugins: Arc<crate::plugins::registry::PluginRegistry>,
    /// Active policies and merged specs.
    pub policies: Arc<crate::policies::PolicyBook>,
    /// Chaos rules applied by the chaos plugin.
    pub chaos_rules: Arc<crate::chaos_rules::ChaosRules>,
    /// The proxy pipeline's services.
    pub proxy: crate::pipeline::services::ProxyServices,
    /// The guarded Redis link, when `REDIS_URL` is set.
    pub redis: Option<crate::resilience::redis_link::RedisLink>,
    /// When this process started serving.
    pub started_at: Instant,
    /// This instance's follower of the database's change feed.
    pub change_feed: Arc<crate::change_feed::ChangeFeed>,
    /// Set when shutdown is requested (`/ready` then answers 503).
    pub draining: crate::server::Draining,
    /// What `/ready` last found, so that it logs changes only.
    pub readiness_log: crate::telemetry::readiness_log::ReadinessLog,
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
