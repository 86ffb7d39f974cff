//! The plugin contract as the host checks it: the contract version and interfaces this
//! gateway speaks, what a component may import, which world it implements, and why a
//! component is refused ([`LoadError`]).

use super::failure::CallFailure;

/// The contract version this gateway speaks: the SDK's, which a test checks against the
/// package line of `sdk/wit/plugin.wit`.
pub const CONTRACT_VERSION: &str = gateway_sdk::CONTRACT_VERSION;
/// The interface a policy plugin exports.
pub const POLICY_INTERFACE: &str = "gateway:plugin/policy@2.0.0";
/// The interface a chaos plugin exports.
pub const CHAOS_INTERFACE: &str = "gateway:plugin/chaos@2.0.0";
/// Largest plugin file accepted.
pub const MAX_PLUGIN_BYTES: usize = 32 << 20;

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Allows or denies calls.
    Policy,
    /// Injects faults.
    Chaos,
}

impl World {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Policy => "policy",
            World::Chaos => "chaos",
        }
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Over [`MAX_PLUGIN_BYTES`].
    #[error("plugin file is larger than {} MiB", MAX_PLUGIN_BYTES >> 20)]
    TooLarge,
    /// Not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// Imports something the gateway does not offer (another contract version, or a
    /// capability such as sockets that plugins do not get).
    #[error("plugin needs imports this gateway does not offer (built for another contract?): {0}")]
    Link(String),
    /// Imports an interface outside the contract (a filesystem, sockets, HTTP…).
    #[error("plugin imports {0}, which plugins do not get (allowed: gateway:plugin/*, and of WASI only clocks, random, io and cli, all virtual)")]
    Import(String),
    /// Exports neither interface.
    #[error("plugin exports neither {POLICY_INTERFACE} nor {CHAOS_INTERFACE}")]
    NoWorld,
    /// Built for another contract major version.
    #[error("plugin was built for contract gateway:plugin@{0}; this gateway speaks gateway:plugin@{CONTRACT_VERSION} (rebuild it with this gateway's SDK)")]
    Contract(String),
    /// The `info` dry call failed.
    #[error("plugin failed its dry call: {0}")]
    DryCall(CallFailure),
}

/// Checks a component's imports and exports (as named in it) against the contract, and
/// says which world it implements.
pub fn check_interfaces(imports: &[String], exports: &[String]) -> Result<World, LoadError> {
    // Another contract first: its imports would also read as "outside the contract".
    if let Some(other) = imports
        .iter()
        .chain(exports)
        .filter_map(|name| contract_of(name))
        .find(|version| !same_major(version))
    {
        return Err(LoadError::Contract(other.to_string()));
    }
    if let Some(outside) = imports.iter().find(|name| !offered_import(name)) {
        return Err(LoadError::Import(outside.clone()));
    }
    if exports.iter().any(|e| e == POLICY_INTERFACE) {
        Ok(World::Policy)
    } else if exports.iter().any(|e| e == CHAOS_INTERFACE) {
        Ok(World::Chaos)
    } else {
        Err(LoadError::NoWorld)
    }
}

/// The interfaces a plugin may import: the contract's, and the WASI interfaces Rust's
/// `wasm32-wasip2` standard library links, all of them virtual ([`super::virtual_wasi`]):
/// clocks, random, io streams and the cli ones (an empty environment, closed stdio). Not
/// the filesystem, sockets or HTTP.
fn offered_import(name: &str) -> bool {
    let interface = name.split('@').next().unwrap_or(name);
    const OFFERED: &[&str] = &[
        "gateway:plugin/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:io/",
        "wasi:cli/",
    ];
    OFFERED.iter().any(|prefix| interface.starts_with(prefix))
}

/// The contract version a `gateway:plugin/…@version` name carries, if it is one.
fn contract_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("gateway:plugin/")?;
    Some(
        rest.split_once('@')
            .map_or("unversioned", |(_, version)| version),
    )
}

/// True when `version` has this gateway's major version.
fn same_major(version: &str) -> bool {
    version.split('.').next() == CONTRACT_VERSION.split('.').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_version_is_the_wits() {
        let wit = include_str!("../../../sdk/wit/plugin.wit");
        let package = wit
            .lines()
            .find_map(|line| line.strip_prefix("package gateway:plugin@"))
            .expect("a package line");
        assert_eq!(package.trim_end_matches(';'), CONTRACT_VERSION);
        for interface in [POLICY_INTERFACE, CHAOS_INTERFACE] {
            assert!(
                interface.ends_with(&format!("@{CONTRACT_VERSION}")),
                "{interface}"
            );
        }
    }

    #[test]
    fn contract_versions_are_read_from_names() {
        assert_eq!(contract_of("gateway:plugin/host@1.0.0"), Some("1.0.0"));
        assert_eq!(contract_of("gateway:plugin/host"), Some("unversioned"));
        assert_eq!(contract_of("wasi:io/poll@0.2.6"), None);
        assert!(same_major("2.1.0"));
        assert!(!same_major("1.0.0"));
        assert!(!same_major("unversioned"));
    }

    #[test]
    fn interfaces_decide_the_world_or_the_refusal() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let clocks = names(&["wasi:clocks/wall-clock@0.2.6"]);
        assert_eq!(
            check_interfaces(&clocks, &names(&[POLICY_INTERFACE])).unwrap(),
            World::Policy
        );
        assert_eq!(
            check_interfaces(&clocks, &names(&[CHAOS_INTERFACE])).unwrap(),
            World::Chaos
        );
        assert!(matches!(
            check_interfaces(&names(&["wasi:filesystem/types@0.2.6"]), &names(&[POLICY_INTERFACE])),
            Err(LoadError::Import(name)) if name.starts_with("wasi:filesystem")
        ));
        assert!(matches!(
            check_interfaces(&names(&["wasi:sockets/tcp@0.2.6"]), &names(&["gateway:plugin/policy@1.0.0"])),
            Err(LoadError::Contract(version)) if version == "1.0.0"
        ));
        assert!(matches!(
            check_interfaces(&clocks, &[]),
            Err(LoadError::NoWorld)
        ));
    }
}
