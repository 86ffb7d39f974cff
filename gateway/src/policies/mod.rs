//! Policies: documents stored per agent or per role, as their senders wrote them; the
//! default role policies seeded on a first start; and, per agent and role, the documents
//! that apply, handed to policy plugins by reference ([`PluginConfig`]).
//!
//! The gateway does not read inside a policy: the bound policy plugin validates a document
//! when it is stored (`validate-config`), merges the documents that apply to a call, and
//! says what the merge enforces (`effective-config`). A newer plugin can therefore add a
//! policy field without a new gateway.
//!
//! Active policies are mirrored in memory (reloaded from the change feed, and at once after
//! a local change), and each agent's documents are cached until the policies change, so a
//! request never waits on the database for its policy.

use crate::error::ApiError;
use crate::error::Refusal;
use crate::plugins::manifest::ConfigSource;
use crate::plugins::plugin_config::PluginConfig;
use crate::plugins::registry::PluginSet;
use crate::plugins::World;
use crate::state::AppState;
use crate::store::policies::{new_policy_id, PolicyFilter, PolicyRow};
use crate::store::{Store, StoreError};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Most agents' document lists cached.
const MAX_CACHED_MERGES: usize = 100_000;

/// The documents that apply to an agent, and the policies they came from.
#[derive(Debug, Clone)]
pub struct MergedSpec {
    /// Role policies first, then the agent's own (so they win), oldest first within each.
    pub config: PluginConfig,
    /// Source policy ids, in the same order.
    pub sources: Vec<String>,
}

/// An active policy and its document, shared by every cached list that holds it.
type ActivePolicy = (PolicyRow, Arc<str>);

/// The in-memory mirror of active policies and the per-agent cache.
#[derive(Default)]
pub struct PolicyBook {
    active: RwLock<Arc<Vec<ActivePolicy>>>,
    merged: Mutex<HashMap<(String, String), Arc<MergedSpec>>>,
    /// The periodic sync and a local change's sync take turns.
    syncing: crate::refresh::Turns,
}

impl PolicyBook {
    /// Loads the active policies.
    pub async fn load(store: &Store) -> Result<Arc<Self>, StoreError> {
        let book = Arc::new(Self::default());
        book.sync(store).await?;
        Ok(book)
    }

    /// Re-reads the active policies; clears the cache when they changed.
    pub async fn sync(&self, store: &Store) -> Result<(), StoreError> {
        let _turn = self.syncing.take().await;
        let rows = store
            .list_policies(&PolicyFilter {
                active: Some(true),
                ..PolicyFilter::default()
            })
            .await?;
        let changed = {
            let current = self.active.read();
            current.len() != rows.len()
                || current
                    .iter()
                    .zip(&rows)
                    .any(|((a, _), b)| a.id != b.id || a.updated_at != b.updated_at)
        };
        if changed {
            let documents = rows
                .into_iter()
                .map(|row| {
                    let document = Arc::from(row.spec.as_str());
                    (row, document)
                })
                .collect();
            *self.active.write() = Arc::new(documents);
            self.merged.lock().clear();
        }
        Ok(())
    }

    /// The documents for an agent and its role: role policies first, then the agent's
    /// own (so they win), oldest first within each.
    pub fn merged(&self, agent_id: &str, role: &str) -> Arc<MergedSpec> {
        let key = (agent_id.to_string(), role.to_string());
        if let Some(hit) = self.merged.lock().get(&key) {
            return Arc::clone(hit);
        }
        let active = Arc::clone(&self.active.read());
        let role_policies = active
            .iter()
            .filter(|(p, _)| p.role.as_deref() == Some(role));
        let agent_policies = active
            .iter()
            .filter(|(p, _)| p.agent_id.as_deref() == Some(agent_id));
        let (sources, documents): (Vec<String>, Vec<Arc<str>>) = role_policies
            .chain(agent_policies)
            .map(|(p, document)| (p.id.clone(), Arc::clone(document)))
            .unzip();
        let merged = Arc::new(MergedSpec {
            config: PluginConfig::new(documents),
            sources,
        });
        let mut cache = self.merged.lock();
        if cache.len() >= MAX_CACHED_MERGES {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&merged));
        merged
    }
}

/// The policy documents of the request's agent and role, when one of the applicable
/// bindings takes its configuration from the stored policies.
pub fn config_for(
    state: &AppState,
    set: &PluginSet,
    tool: &str,
    agent_id: &str,
    role: &str,
) -> Option<PluginConfig> {
    set.needs_policy_config(tool, role)
        .then(|| state.policies.merged(agent_id, role).config.clone())
}

/// The stored form of a policy document (its JSON, keys sorted at every depth) and its hash.
pub fn normalise(spec: &serde_json::Value) -> Result<(String, String), Vec<String>> {
    if !spec.is_object() {
        return Err(vec!["spec: must be a JSON object".into()]);
    }
    // serde_json's Value keeps object keys sorted, so this JSON is canonical at every depth.
    let canonical = spec.to_string();
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    Ok((canonical, hash))
}

/// Asks every policy plugin that reads stored policies whether `document` is valid: 400
/// `validation_failed` with the plugins' problems when one finds it invalid, 503
/// `policy_validator_failed` when one cannot answer. With no such plugin bound, any JSON
/// object is stored (nothing reads it yet).
pub async fn validate(state: &AppState, document: &str) -> Result<(), ApiError> {
    let set = state.plugins.current();
    let mut seen = std::collections::HashSet::new();
    let mut problems = Vec::new();
    for binding in set.bindings.iter().filter(|b| {
        b.world() == World::Policy && b.spec.config_from == Some(ConfigSource::Policies)
    }) {
        if !seen.insert(binding.invoker.plugin.sha256.clone()) {
            continue;
        }
        match binding.invoker.validate_config(document).await {
            Ok(Ok(())) => {}
            Ok(Err(found)) => problems.extend(found),
            Err(failure) => {
                tracing::warn!(plugin = %binding.name, error = %failure, "policy validation call failed");
                return Err(ApiError::new(
                    Refusal::PolicyValidatorFailed,
                    format!(
                        "The policy plugin {} could not check this policy",
                        binding.name
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.dedup();
        Err(ApiError::validation(problems))
    }
}

/// What the policy plugin that reads stored policies enforces for an agent (the first such
/// binding of the agent's role): its `effective-config` as JSON, `null` when none is bound.
pub async fn effective(
    state: &AppState,
    merged: &MergedSpec,
    role: &str,
) -> Result<serde_json::Value, ApiError> {
    let set = state.plugins.current();
    let Some(binding) = set.bindings.iter().find(|b| {
        b.world() == World::Policy
            && b.spec.config_from == Some(ConfigSource::Policies)
            && (b.spec.roles.is_empty() || b.spec.roles.iter().any(|r| r == role))
    }) else {
        return Ok(serde_json::Value::Null);
    };
    let documents: Vec<String> = merged
        .config
        .documents
        .iter()
        .map(|d| d.to_string())
        .collect();
    let failed = || {
        ApiError::new(
            Refusal::PolicyValidatorFailed,
            format!(
                "The policy plugin {} could not merge the policies",
                binding.name
            ),
        )
    };
    match binding.invoker.effective_config(&documents).await {
        Ok(Ok(json)) => serde_json::from_str(&json).map_err(|_| failed()),
        Ok(Err(problems)) => Err(ApiError::validation(problems)),
        Err(failure) => {
            tracing::warn!(plugin = %binding.name, error = %failure, "effective-config call failed");
            Err(failed())
        }
    }
}

#[derive(Deserialize)]
struct DefaultPolicy {
    name: String,
    description: String,
    role: String,
    spec: serde_json::Value,
}

/// On a first start (no policy ever stored), stores the three default role policies
/// (scraper, enricher, engager).
pub async fn seed_defaults(store: &Store) -> Result<usize, StoreError> {
    if store.count_policies().await? > 0 {
        return Ok(0);
    }
    // Invariant: defaults.json is part of the binary and covered by a test.
    let defaults: Vec<DefaultPolicy> =
        serde_json::from_str(include_str!("defaults.json")).expect("valid default policies");
    let now = store.now_ms();
    for (i, d) in defaults.iter().enumerate() {
        // Distinct creation times keep the listing in this order.
        let created = now + i as i64;
        let (spec, spec_hash) = normalise(&d.spec).expect("default policy specs are objects");
        store
            .insert_policy(&PolicyRow {
                id: new_policy_id(),
                name: d.name.clone(),
                description: Some(d.description.clone()),
                agent_id: None,
                role: Some(d.role.clone()),
                spec,
                spec_hash,
                active: 1,
                created_at: created,
                updated_at: created,
            })
            .await?;
    }
    tracing::info!(count = defaults.len(), "seeded the default role policies");
    Ok(defaults.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policies_are_objects() {
        let defaults: Vec<DefaultPolicy> =
            serde_json::from_str(include_str!("defaults.json")).unwrap();
        assert_eq!(defaults.len(), 3);
        for d in defaults {
            assert!(normalise(&d.spec).is_ok(), "{}", d.name);
        }
    }

    #[test]
    fn hash_covers_nested_fields() {
        let a = serde_json::json!({"scopes": ["serpapi:search"], "guards": {"maxRequestSize": 1}});
        let b = serde_json::json!({"scopes": ["serpapi:search"], "guards": {"maxRequestSize": 2}});
        assert_ne!(normalise(&a).unwrap().1, normalise(&b).unwrap().1);
    }
}
