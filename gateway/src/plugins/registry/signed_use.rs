//! Holding bindings to what their plugins' signatures allow: the bindings, tools and
//! failure mode a signature names, and no signed version lower than one a file binding
//! has run in this process unless it says `allow_downgrade`.

use super::super::manifest::BindingSpec;
use super::super::signing::{is_downgrade, Vouched};
use super::super::Plugin;
use super::{PluginRegistry, PluginSet, ReloadError, Source};
use std::collections::HashMap;
use std::sync::Arc;

/// A plugin file as loaded in one build, and what its signature vouched for.
pub(super) type Loaded = (Arc<Plugin>, Option<Vouched>);

/// Per file binding: the plugin and the highest signed version of it run.
pub(super) type VersionsRun = HashMap<String, (String, String)>;

/// Refuses a file binding whose signed version is lower than the highest of the same
/// plugin it has run (`versions_run`), unless it says `allow_downgrade`.
pub(super) fn refuse_downgrade(
    versions_run: &VersionsRun,
    spec: &BindingSpec,
    plugin: &Plugin,
    vouched: Option<&Vouched>,
) -> Result<(), ReloadError> {
    let (Some(vouched), Some((signed_plugin, highest))) = (vouched, versions_run.get(&spec.name()))
    else {
        return Ok(());
    };
    if *signed_plugin == plugin.info.name
        && is_downgrade(&vouched.version, highest)
        && spec.allow_downgrade != Some(true)
    {
        return Err(ReloadError::Downgrade {
            binding: spec.name(),
            version: vouched.version.clone(),
            highest: highest.clone(),
        });
    }
    Ok(())
}

impl PluginRegistry {
    /// The binding `spec` may use `plugin` only as its signature allows (bindings, tools,
    /// failure mode); under `warn`, a use outside it is logged.
    pub(super) fn check_signed_use(
        &self,
        what: &str,
        spec: &BindingSpec,
        plugin: &Plugin,
        vouched: Option<&Vouched>,
    ) -> Result<(), ReloadError> {
        self.signatures
            .check_use(
                what,
                vouched,
                &spec.name(),
                &spec.tools,
                spec.fail_mode(plugin.world),
            )
            .map_err(|problem| ReloadError::Signature {
                file: what.to_string(),
                problem,
            })
    }

    /// Notes the signed versions of the file bindings of a set that went live: a later
    /// reload may not bring a lower one back without `allow_downgrade`.
    pub(super) fn note_versions_run(&self, set: &PluginSet) {
        let mut run = self.versions_run.lock();
        for binding in set.bindings.iter().filter(|b| b.source == Source::File) {
            let Some(version) = &binding.signed_version else {
                continue;
            };
            let plugin = &binding.invoker.plugin.info.name;
            let higher = match run.get(&binding.name) {
                Some((p, highest)) if p == plugin => is_downgrade(highest, version),
                _ => true,
            };
            if higher {
                run.insert(binding.name.clone(), (plugin.clone(), version.clone()));
            }
        }
    }
}
