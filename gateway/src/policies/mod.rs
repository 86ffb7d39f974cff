//! Policies: PolicySpec documents stored per agent or per role, the default role policies
//! seeded on a first start, and the merged spec that `spec-policy` receives as its
//! configuration.
//!
//! Active policies are mirrored in memory (reloaded every second, and at once after a local
//! change), and merged specs are cached per agent and role until the policies change, so a
//! request never waits on the database for its policy.

use crate::plugins::bindings::Request;
use crate::plugins::registry::PluginSet;
use crate::state::AppState;
use crate::store::policies::{new_policy_id, PolicyFilter, PolicyRow};
use crate::store::{now_ms, Store, StoreError};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use spec_policy::spec::{merge, PolicySpec};
use std::collections::HashMap;
use std::sync::Arc;

/// Most merged specs cached.
const MAX_CACHED_MERGES: usize = 100_000;

/// A merged spec and the policies it came from.
#[derive(Debug, Clone)]
pub struct MergedSpec {
    /// The merged spec.
    pub spec: PolicySpec,
    /// Source policy ids, role policies first.
    pub sources: Vec<String>,
    /// The spec as JSON (the plugin's configuration).
    pub json: Arc<str>,
}

/// The in-memory mirror of active policies and the merge cache.
#[derive(Default)]
pub struct PolicyBook {
    active: RwLock<Arc<Vec<(PolicyRow, PolicySpec)>>>,
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

    /// Re-reads the active policies; clears the merge cache when they changed.
    pub async fn sync(&self, store: &Store) -> Result<(), StoreError> {
        let _turn = self.syncing.take().await;
        let rows = store
            .list_policies(&PolicyFilter {
                active: Some(true),
                ..PolicyFilter::default()
            })
            .await?;
        let parsed: Vec<(PolicyRow, PolicySpec)> = rows
            .into_iter()
            .filter_map(|row| match serde_json::from_str::<PolicySpec>(&row.spec) {
                Ok(spec) => Some((row, spec)),
                Err(e) => {
                    tracing::error!(policy_id = %row.id, error = %e, "stored policy spec does not parse; ignored");
                    None
                }
            })
            .collect();
        let changed = {
            let current = self.active.read();
            current.len() != parsed.len()
                || current
                    .iter()
                    .zip(&parsed)
                    .any(|((a, _), (b, _))| a.id != b.id || a.updated_at != b.updated_at)
        };
        if changed {
            *self.active.write() = Arc::new(parsed);
            self.merged.lock().clear();
        }
        Ok(())
    }

    /// The merged spec for an agent and its role: role policies first, then the agent's
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
        let (sources, specs): (Vec<String>, Vec<PolicySpec>) = role_policies
            .chain(agent_policies)
            .map(|(p, s)| (p.id.clone(), s.clone()))
            .unzip();
        let spec = merge(&specs);
        let json: Arc<str> =
            Arc::from(serde_json::to_string(&spec).unwrap_or_else(|_| "{}".into()));
        let merged = Arc::new(MergedSpec {
            spec,
            sources,
            json,
        });
        let mut cache = self.merged.lock();
        if cache.len() >= MAX_CACHED_MERGES {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&merged));
        merged
    }
}

/// What the stored policies give one request's policy plugins.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// The merged spec as JSON, when an applicable binding has `config_from = "policies"`.
    pub json: Option<Arc<str>>,
    /// The merged spec has response rules (bindings with
    /// `filter_response = "when_policy_has_rules"` are called on responses only then).
    pub has_response_rules: bool,
}

/// The merged spec of the request's agent and role, when one of the applicable bindings
/// takes its configuration from the stored policies.
pub fn config_for(state: &AppState, set: &PluginSet, request: &Request) -> PolicyConfig {
    if !set.needs_policy_config(&request.tool, &request.agent_role) {
        return PolicyConfig {
            json: None,
            has_response_rules: false,
        };
    }
    let merged = state
        .policies
        .merged(&request.agent_id, &request.agent_role);
    PolicyConfig {
        json: Some(Arc::clone(&merged.json)),
        has_response_rules: merged.spec.has_response_rules(),
    }
}

/// Parses, validates and normalises a spec; returns it with its canonical JSON and hash.
pub fn normalise(spec: serde_json::Value) -> Result<(PolicySpec, String, String), Vec<String>> {
    let spec: PolicySpec = serde_json::from_value(spec).map_err(|e| vec![format!("spec: {e}")])?;
    let problems = spec.problems();
    if !problems.is_empty() {
        return Err(problems.into_iter().map(|p| format!("spec.{p}")).collect());
    }
    // serde_json's Value keeps object keys sorted, so this JSON is canonical at every depth.
    let canonical = serde_json::to_value(&spec)
        .map(|v| v.to_string())
        .map_err(|e| vec![format!("spec: {e}")])?;
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    Ok((spec, canonical, hash))
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
    let now = now_ms();
    for (i, d) in defaults.iter().enumerate() {
        // Distinct creation times keep the listing in this order.
        let created = now + i as i64;
        let (_, spec, spec_hash) = normalise(d.spec.clone()).expect("valid default policy spec");
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
    fn default_policies_are_valid() {
        let defaults: Vec<DefaultPolicy> =
            serde_json::from_str(include_str!("defaults.json")).unwrap();
        assert_eq!(defaults.len(), 3);
        for d in defaults {
            assert!(normalise(d.spec).is_ok(), "{}", d.name);
        }
    }

    #[test]
    fn hash_covers_nested_fields() {
        let a = serde_json::json!({"scopes": ["serpapi:search"], "guards": {"maxRequestSize": 1}});
        let b = serde_json::json!({"scopes": ["serpapi:search"], "guards": {"maxRequestSize": 2}});
        assert_ne!(normalise(a).unwrap().2, normalise(b).unwrap().2);
    }
}
