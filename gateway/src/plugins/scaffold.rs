//! `gateway plugin new`: a new plugin crate, ready to test natively, build to a component
//! and try with `gateway plugin test`. The crate stands alone (a `[workspace]` of its own,
//! the SDK by path), so it builds wherever it is written.

use super::World;
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.tmpl");
const POLICY_LIB: &str = include_str!("scaffold/policy.rs.tmpl");
const CHAOS_LIB: &str = include_str!("scaffold/chaos.rs.tmpl");
const REQUEST: &str = include_str!("scaffold/request.json.tmpl");
const BINDING: &str = include_str!("scaffold/binding.toml.tmpl");

/// The SDK this gateway was built with, when its sources are still where they were.
pub fn default_sdk_dir() -> Option<PathBuf> {
    let built_with = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    built_with.join("wit/plugin.wit").is_file().then(|| {
        built_with
            .canonicalize()
            .unwrap_or_else(|_| built_with.clone())
    })
}

/// True for a usable plugin name: 1 to 64 of `a-z`, `0-9` and `-`, starting with a letter
/// (a crate name, a binding name and a file name at once).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What `new` wrote, and what to run next.
pub struct Created {
    /// The crate's directory.
    pub dir: PathBuf,
    /// The component `cargo build` will write, relative to the crate's directory.
    pub component: PathBuf,
    /// What to tell the user.
    pub next_steps: String,
}

/// Writes the crate `name` of `world` into `parent/name`, using the SDK at `sdk`.
pub fn create(name: &str, world: World, parent: &Path, sdk: &Path) -> anyhow::Result<Created> {
    anyhow::ensure!(
        valid_name(name),
        "{name:?}: a plugin name is 1 to 64 of a-z, 0-9 and '-', starting with a letter"
    );
    anyhow::ensure!(
        sdk.join("wit/plugin.wit").is_file(),
        "{}: not the gateway's plugin SDK (no wit/plugin.wit); give --sdk",
        sdk.display()
    );
    let dir = parent.join(name);
    anyhow::ensure!(
        !dir.exists(),
        "{}: already exists; nothing was written",
        dir.display()
    );
    let file = format!("{}.wasm", name.replace('-', "_"));
    let (lib, config_json, config_toml, fail) = match world {
        World::Policy => (
            POLICY_LIB,
            r#"{"blocked_tools": ["gmail_send"]}"#,
            r#"{ blocked_tools = ["gmail_send"] }"#,
            "closed",
        ),
        World::Chaos => (
            CHAOS_LIB,
            r#"{"delay_ms": 200, "pct": 10}"#,
            "{ delay_ms = 200, pct = 10 }",
            "open",
        ),
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", name)
            .replace("{{world}}", world.as_str())
            .replace("{{contract}}", super::contract::CONTRACT_VERSION)
            .replace("{{sdk}}", &sdk.display().to_string().replace('\\', "/"))
            .replace("{{file}}", &file)
            .replace("{{config_toml}}", config_toml)
            .replace("{{fail}}", fail)
    };
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), fill(CARGO_TOML))?;
    std::fs::write(dir.join("src/lib.rs"), fill(lib))?;
    std::fs::write(dir.join("request.json"), REQUEST)?;
    std::fs::write(dir.join("config.json"), format!("{config_json}\n"))?;
    std::fs::write(dir.join("binding.toml"), fill(BINDING))?;
    std::fs::write(dir.join(".gitignore"), "/target\n")?;
    let component = Path::new("target/wasm32-wasip2/release").join(&file);
    let shown = dir.display();
    let next_steps = format!(
        "created {shown} ({} plugin)\n\n\
         test it natively:   cargo test --manifest-path {shown}/Cargo.toml\n\
         build it:           cargo build --release --target wasm32-wasip2 --manifest-path {shown}/Cargo.toml\n\
         try it:             gateway plugin test {shown}/{} --request {shown}/request.json --config {shown}/config.json\n\n\
         (the wasm32-wasip2 target: rustup target add wasm32-wasip2)\n\
         make it live: copy the .wasm into PLUGINS_DIR and add {shown}/binding.toml to its plugins.toml,\n\
         or upload it with PUT /api/admin/plugins/{name}.",
        world.as_str(),
        component.display(),
    );
    Ok(Created {
        dir,
        component,
        next_steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_crate_binding_and_file_names_at_once() {
        for good in ["a", "no-email-on-weekends", "p2"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "2fast", "Upper", "under_score", "../x", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = default_sdk_dir().expect("the SDK next to this crate");
        create("mine", World::Policy, dir.path(), &sdk).unwrap();
        let again = create("mine", World::Policy, dir.path(), &sdk);
        assert!(again.is_err());
        let lib = std::fs::read_to_string(dir.path().join("mine/src/lib.rs")).unwrap();
        assert!(lib.contains("PluginInfo::new(\"mine\""));
        assert!(!lib.contains("{{"), "every placeholder filled");
    }

    #[test]
    fn the_binding_snippet_is_a_valid_manifest_for_both_worlds() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = default_sdk_dir().expect("the SDK next to this crate");
        for (name, world) in [("p", World::Policy), ("c", World::Chaos)] {
            let created = create(name, world, dir.path(), &sdk).unwrap();
            let snippet = std::fs::read_to_string(created.dir.join("binding.toml")).unwrap();
            let manifest = super::super::manifest::Manifest::parse(&snippet).unwrap();
            assert_eq!(manifest.binding[0].world, Some(world));
            assert_eq!(manifest.binding[0].plugin, format!("{name}.wasm"));
        }
    }
}
