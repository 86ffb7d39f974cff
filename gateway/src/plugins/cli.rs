//! `gateway plugin check` and `gateway plugin test`: inspect a plugin file and run it once
//! on a request, outside any gateway.

use super::counters::Counters;
use super::plugin_config::PluginConfig;
use super::record::{decision_json, fault_json, RequestRecord};
use super::sandbox::CallContext;
use super::signing::{self, SignatureError, SignatureMode, SignaturePolicy};
use super::{CallFailure, CallLimits, Invoker, Plugin, PluginEngine, World};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a plugin run produced: the report to print, and whether the plugin answered.
pub struct Outcome {
    /// Human-readable report (JSON for `test`).
    pub report: String,
    /// True when the plugin answered (whatever it answered).
    pub answered: bool,
}

/// Loads the plugin at `path` on an engine of its own (one command, one plugin).
fn load(path: &Path) -> anyhow::Result<Plugin> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    Plugin::load(&PluginEngine::new()?, name, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Where `gateway plugin sign` writes a component's signature by default.
pub fn signature_path(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Who signed `path` (its `.sig` next to it), judged against `trusted_keys`
/// (`PLUGIN_TRUSTED_KEYS`).
fn signer(path: &Path, plugin: &Plugin, trusted_keys: &str) -> anyhow::Result<String> {
    let signature = match std::fs::read_to_string(signature_path(path)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok("none".into()),
        Err(e) => anyhow::bail!("{}: {e}", signature_path(path).display()),
    };
    let policy =
        SignaturePolicy::new(trusted_keys, SignatureMode::Required).map_err(anyhow::Error::msg)?;
    let bytes = std::fs::read(path)?;
    Ok(
        match policy.verify(
            Some(&signature),
            &plugin.info.name,
            &plugin.info.version,
            &bytes,
        ) {
            Ok(key) => format!("valid, by trusted key {key}"),
            Err(SignatureError::Untrusted(key)) => {
                format!("by key {key}, which PLUGIN_TRUSTED_KEYS does not list")
            }
            Err(problem) => format!("INVALID: {problem}"),
        },
    )
}

/// `gateway plugin sign FILE.wasm --key KEY [--out FILE.sig] [--binding NAME] [--tools T]
/// [--fail MODE]`: a detached signature over the component's name, version and bytes, and
/// where it may be used.
pub fn sign(
    path: &Path,
    key_path: &Path,
    out: Option<&Path>,
    scope: signing::SignedScope,
) -> anyhow::Result<String> {
    for tool in &scope.tools {
        if tool != "*" && tool.parse::<crate::catalog::ToolName>().is_err() {
            anyhow::bail!("--tools: unknown tool {tool:?}");
        }
    }
    let key_text = std::fs::read_to_string(key_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
    let key = signing::parse_signing_key(&key_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
    let plugin = load(path)?;
    let bytes = std::fs::read(path)?;
    let signature = signing::sign(&key, &plugin.info.name, &plugin.info.version, &bytes, scope);
    let out = out.map_or_else(|| signature_path(path), Path::to_path_buf);
    std::fs::write(&out, serde_json::to_string_pretty(&signature)? + "\n")
        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    Ok(format!(
        "signed {} {} (sha256 {}) with key {}\nwrote {}\n",
        plugin.info.name,
        plugin.info.version,
        signature.sha256,
        signing::key_id(&key.verifying_key()),
        out.display()
    ))
}

/// `gateway plugin check FILE.wasm`: contract version, world, exports, imports, size, sha256,
/// and who signed it (against `trusted_keys`).
pub fn check(path: &Path, trusted_keys: &str) -> anyhow::Result<String> {
    let p = load(path)?;
    let signed = signer(path, &p, trusted_keys)?;
    Ok(format!(
        "file:      {}\nplugin:    {} {}\nworld:     {} (exports {})\ncontract:  gateway:plugin@{}\nstateless: {}\nsize:      {} bytes\nsha256:    {}\nsignature: {signed}\nimports:   {}\n",
        path.display(),
        p.info.name,
        p.info.version,
        p.world.as_str(),
        p.exports.join(", "),
        super::contract::CONTRACT_VERSION,
        if p.info.stateless { "yes (instances may be reused)" } else { "no (fresh instance per call)" },
        p.size,
        p.sha256,
        p.imports.join("\n           ")
    ))
}

/// `gateway plugin test FILE.wasm --request REQ.json [--config CFG.json]
/// [--response RESP.json]`: one call, with the binding defaults (10 ms deadline, 16 MiB
/// memory) unless told otherwise; with a response, a policy's `filter-response` runs on it
/// too.
pub async fn test(
    path: &Path,
    request_path: &Path,
    config_path: Option<&Path>,
    response_path: Option<&Path>,
    limits: CallLimits,
) -> anyhow::Result<Outcome> {
    let plugin = Arc::new(load(path)?);
    let text = std::fs::read_to_string(request_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", request_path.display()))?;
    let record: RequestRecord = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a request record: {e}", request_path.display()))?;
    let config = match config_path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            config_documents(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => PluginConfig::single("{}"),
    };
    let response = match response_path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            serde_json::from_str::<Value>(&text)
                .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", p.display()))?;
            if plugin.world != World::Policy {
                anyhow::bail!("--response: only a policy plugin filters responses");
            }
            Some(text)
        }
        None => None,
    };
    let started = Instant::now();
    let answer = run_once(Arc::clone(&plugin), limits, config.clone(), record.clone()).await;
    let answer = match (answer, response) {
        (Ok(decision), Some(response)) => filter_once(plugin, limits, config, record, &response)
            .await
            .map(|filtered| json!({"decision": decision, "filtered": filtered})),
        (answer, _) => answer,
    };
    let micros = started.elapsed().as_secs_f64() * 1e6;
    let (body, answered) = match answer {
        Ok(answer) => (json!({"answer": answer, "micros": micros.round()}), true),
        Err(failure) => (
            json!({"failure": failure.kind.as_str(), "detail": failure.message, "micros": micros.round()}),
            false,
        ),
    };
    Ok(Outcome {
        report: serde_json::to_string_pretty(&body).unwrap_or_default(),
        answered,
    })
}

/// A `--config` file's documents, in the forms a binding takes: a JSON object is one
/// document (a binding's static `config`, a chaos configuration, one stored policy), and a
/// JSON array of objects is several, most general first (the stored policies of a role
/// then of an agent, as `config_from = "policies"` hands them).
pub fn config_documents(text: &str) -> anyhow::Result<PluginConfig> {
    match serde_json::from_str::<Value>(text).map_err(|e| anyhow::anyhow!("not JSON: {e}"))? {
        Value::Array(documents) => Ok(PluginConfig::new(
            documents
                .into_iter()
                .map(|d| Arc::from(d.to_string()))
                .collect(),
        )),
        document => Ok(PluginConfig::single(&document.to_string())),
    }
}

/// What one call outside a gateway needs: an invoker with no reuse and the call's context
/// (scratch counters).
fn one_call(
    plugin: Arc<Plugin>,
    limits: CallLimits,
    config: PluginConfig,
    record: RequestRecord,
) -> (Invoker, CallContext) {
    let context = CallContext {
        plugin: Arc::from(plugin.name.as_str()),
        call: Arc::new(record.into_call(0, 0)),
        attempt: 0,
        config,
        counters: Counters::local(),
    };
    (Invoker::new(plugin, limits, false, 0), context)
}

/// Runs `plugin` once on `record` with `config` and `limits`, on a fresh instance and
/// scratch counters: its answer as JSON (a decision or a fault), or how the call failed.
/// `gateway plugin test` and an upload's sample request use it.
pub async fn run_once(
    plugin: Arc<Plugin>,
    limits: CallLimits,
    config: PluginConfig,
    record: RequestRecord,
) -> Result<Value, CallFailure> {
    let world = plugin.world;
    let (invoker, context) = one_call(plugin, limits, config, record);
    match world {
        World::Policy => invoker.evaluate(context).await.map(|d| decision_json(&d)),
        World::Chaos => invoker.inject(context).await.map(|f| fault_json(&f)),
    }
}

/// Runs a policy's `filter-response` once on `response` (JSON text): the filtered JSON, or
/// the response itself when the filter changed nothing. Run whatever the decision was, so
/// that a filter can be tried on its own.
async fn filter_once(
    plugin: Arc<Plugin>,
    limits: CallLimits,
    config: PluginConfig,
    record: RequestRecord,
    response: &str,
) -> Result<Value, CallFailure> {
    let (invoker, context) = one_call(plugin, limits, config, record);
    let filtered = invoker.filter_response(context, response).await?;
    let text = filtered.as_deref().unwrap_or(response);
    serde_json::from_str(text).map_err(|_| CallFailure {
        kind: super::FailureKind::Invalid,
        message: "the filtered response is not JSON".into(),
    })
}

/// Limits from command-line values.
pub fn limits(timeout_ms: u64, memory_mb: u64) -> CallLimits {
    CallLimits {
        timeout: Duration::from_millis(timeout_ms.max(1)),
        memory_bytes: (memory_mb.clamp(1, 64) as usize) << 20,
    }
}
