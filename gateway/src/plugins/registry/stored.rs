//! Stored uploads in a reload: each uploaded version (and its shadow candidate) bound as
//! its stored binding says, under the signature policy. A version this instance cannot
//! admit (an unsigned one stored by an instance in `warn` mode, a signature it does not
//! trust, a use outside the signature) does not block the reload: the version of that name
//! this instance already serves stays, or none when it served none, and it is reported.

use super::super::Plugin;
use super::binding::{Binding, PluginSet, Source};
use super::outcomes::ReloadError;
use super::{upload_spec, PluginRegistry, Shadow};
use crate::store::plugin_shadows::PluginShadow;
use crate::store::plugin_uploads::PluginUpload;
use std::collections::HashMap;
use std::sync::Arc;

/// A stored version a reload left out on this instance.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SkippedUpload {
    /// Binding name.
    pub name: String,
    /// The stored version left out.
    pub version: i64,
    /// Why this instance could not load it.
    pub error: String,
    /// The version of it this instance serves instead, if any.
    pub kept_version: Option<i64>,
}

impl SkippedUpload {
    /// `upload`, left out for `error`, with `kept` served instead.
    pub(super) fn new(upload: &PluginUpload, error: String, kept: Option<&Binding>) -> Self {
        Self {
            name: upload.name.clone(),
            version: upload.version,
            error,
            kept_version: kept.and_then(|b| match b.source {
                Source::Upload(version) => Some(version),
                Source::File => None,
            }),
        }
    }
}

impl PluginRegistry {
    /// Binds one stored upload (and its candidate, from `shadows`) as its binding says.
    pub(super) fn load_upload(
        &self,
        upload: &PluginUpload,
        previous: &PluginSet,
        known: &HashMap<&str, &Arc<Plugin>>,
        shadows: &mut HashMap<String, PluginShadow>,
    ) -> Result<Binding, ReloadError> {
        let invalid = |problem: String| ReloadError::Upload {
            name: upload.name.clone(),
            problem,
        };
        let spec = upload_spec(&upload.name, &upload.binding).map_err(invalid)?;
        let (plugin, vouched) = self.signatures.admit(
            &upload.name,
            upload.signature.as_deref(),
            &upload.wasm,
            || match known.get(upload.sha256.as_str()) {
                Some(p) => Ok(Arc::clone(p)),
                None => Plugin::load(&self.engine, &upload.name, &upload.wasm)
                    .map(Arc::new)
                    .map_err(|e| invalid(e.to_string())),
            },
            |e| invalid(e.to_string()),
        )?;
        self.check_signed_use(&upload.name, &spec, &plugin, vouched.as_ref())?;
        let limits = spec.limits();
        let mut binding = Binding::new(spec, plugin, Source::Upload(upload.version))?;
        binding.signed_version = vouched.map(|v| v.version);
        binding.keep_health_of(previous);
        if let Some(candidate) = shadows.remove(&upload.name) {
            binding.shadow = self.load_stored_shadow(&binding, candidate, known, limits);
        }
        Ok(binding)
    }

    /// The stored candidate of an uploaded binding, or none when it cannot judge the
    /// binding's calls (a candidate never stops the live set from loading: it is logged and
    /// left out).
    fn load_stored_shadow(
        &self,
        binding: &Binding,
        candidate: PluginShadow,
        known: &HashMap<&str, &Arc<Plugin>>,
        limits: super::super::CallLimits,
    ) -> Option<Shadow> {
        let what = format!("{} (shadow candidate)", binding.name);
        let loaded = self
            .signatures
            .admit(
                &what,
                candidate.signature.as_deref(),
                &candidate.wasm,
                || match known.get(candidate.sha256.as_str()) {
                    Some(plugin) => Ok(Arc::clone(plugin)),
                    None => Plugin::load(&self.engine, &binding.name, &candidate.wasm)
                        .map(Arc::new)
                        .map_err(|e| e.to_string()),
                },
                |e| e.to_string(),
            )
            .map(|(plugin, _)| plugin);
        match loaded {
            Ok(plugin)
                if plugin.world == super::super::World::Policy
                    && binding.invoker.plugin.world == super::super::World::Policy =>
            {
                Some(Shadow::new(plugin, limits, candidate.percent))
            }
            Ok(_) => {
                tracing::error!(binding = %binding.name, "shadow candidate left out: only a policy can shadow a policy");
                None
            }
            Err(error) => {
                tracing::error!(binding = %binding.name, %error, "shadow candidate left out: it does not load");
                None
            }
        }
    }
}
