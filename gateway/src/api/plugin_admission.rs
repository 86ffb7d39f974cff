//! Admitting an uploaded component: decoding it, checking its signature under the
//! gateway's policy (and what the signature vouches for), and refusing a signed downgrade.

use crate::api::plugins::plugin_invalid;
use crate::error::ApiError;
use crate::error::Refusal;
use crate::plugins::signing::{highest_version, is_downgrade, SignatureFile, Vouched};
use crate::state::AppState;
use serde_json::json;

/// Compiles an uploaded component under the signature policy: unvouched bytes are not
/// compiled when signatures are required. Compiling is blocking work, so the whole admission
/// runs off the workers.
pub(crate) async fn admit(
    state: &AppState,
    name: &str,
    wasm: &[u8],
    signature: Option<String>,
) -> Result<(crate::plugins::Plugin, Option<Vouched>), ApiError> {
    let policy = state.plugins.signatures().clone();
    let engine = state.plugins.engine().clone();
    let (name, bytes) = (name.to_string(), wasm.to_vec());
    tokio::task::spawn_blocking(move || {
        policy.admit(
            &name,
            signature.as_deref(),
            &bytes,
            || crate::plugins::Plugin::load(&engine, &name, &bytes).map_err(|e| e.to_string()),
            |e| e.to_string(),
        )
    })
    .await
    .map_err(|e| ApiError::internal("plugin validation task", &e))?
    .map_err(plugin_invalid)
}

/// Refuses (409 `plugin_downgrade`) a signed version of `plugin` lower than the highest
/// signed version of it the binding `name` has stored, unless its binding says
/// `allow_downgrade` (then the rollback is logged, and recorded with the stored binding).
pub(crate) async fn refuse_downgrade(
    state: &AppState,
    name: &str,
    plugin: &str,
    vouched: &Vouched,
    spec: &crate::plugins::manifest::BindingSpec,
) -> Result<(), ApiError> {
    let signed = state.store.plugin_upload_signatures(name).await?;
    let versions = signed
        .iter()
        .filter_map(|text| serde_json::from_str::<SignatureFile>(text).ok())
        .filter(|file| file.plugin == plugin)
        .map(|file| file.version)
        .collect::<Vec<_>>();
    let Some(highest) = highest_version(versions.iter().map(String::as_str)) else {
        return Ok(());
    };
    if !is_downgrade(&vouched.version, &highest) {
        return Ok(());
    }
    if spec.allow_downgrade == Some(true) {
        tracing::warn!(plugin = %name, version = %vouched.version, highest = %highest,
            "signed downgrade allowed by the binding's allow_downgrade");
        return Ok(());
    }
    Err(ApiError::new(
        Refusal::PluginDowngrade,
        "The signed version is lower than one this binding has run; nothing was changed",
    )
    .with_details(json!([format!(
        "{plugin} {} is lower than {highest}: send binding.allow_downgrade = true to roll back on purpose",
        vouched.version
    )])))
}

/// The component of an upload body, decoded.
pub(crate) fn decode_wasm(wasm_base64: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(wasm_base64.trim())
        .map_err(|_| ApiError::validation(vec!["wasm_base64: not valid base64".into()]))
}
