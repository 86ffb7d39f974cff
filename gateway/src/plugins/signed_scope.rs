//! Where a signature lets its plugin be used (bindings, tools, failure mode), and the
//! version order that makes a signed re-upload a downgrade.

use super::manifest::FailMode;

/// Where a signature allows its plugin to be used; an empty list or `None` allows any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedScope {
    /// Binding names it may be bound under.
    pub bindings: Vec<String>,
    /// Tools it may be bound to (`"*"`: all, which a binding to `"*"` needs).
    pub tools: Vec<String>,
    /// The failure mode its bindings must have.
    pub fail: Option<FailMode>,
}

impl SignedScope {
    pub(super) fn is_open(&self) -> bool {
        self == &SignedScope::default()
    }

    /// Lines of the signed message (after the digest) naming the scope.
    pub(super) fn message_lines(&self) -> String {
        let fail = match self.fail {
            Some(FailMode::Closed) => "closed",
            Some(FailMode::Open) => "open",
            None => "",
        };
        format!(
            "\nbindings={}\ntools={}\nfail={fail}",
            self.bindings.join(","),
            self.tools.join(",")
        )
    }

    /// Whether a binding named `binding`, to `tools`, failing `fail`, is inside the scope.
    pub fn check(&self, binding: &str, tools: &[String], fail: FailMode) -> Result<(), String> {
        if !self.bindings.is_empty() && !self.bindings.iter().any(|b| b == binding) {
            return Err(format!(
                "signed for bindings [{}], not {binding}",
                self.bindings.join(", ")
            ));
        }
        if !self.tools.is_empty() && !self.tools.iter().any(|t| t == "*") {
            if let Some(tool) = tools.iter().find(|t| !self.tools.contains(t)) {
                return Err(format!(
                    "signed for tools [{}], bound to {tool}",
                    self.tools.join(", ")
                ));
            }
        }
        if let Some(signed) = self.fail.filter(|f| *f != fail) {
            return Err(format!(
                "signed for fail = {}, bound with fail = {}",
                fail_name(signed),
                fail_name(fail)
            ));
        }
        Ok(())
    }
}

fn fail_name(fail: FailMode) -> &'static str {
    match fail {
        FailMode::Closed => "closed",
        FailMode::Open => "open",
    }
}

/// True when `version` is lower than `highest` (both semantic versions; one that is not
/// is compared as nothing, and is never a downgrade).
pub fn is_downgrade(version: &str, highest: &str) -> bool {
    match (
        semver::Version::parse(version.trim()),
        semver::Version::parse(highest.trim()),
    ) {
        (Ok(version), Ok(highest)) => version < highest,
        _ => false,
    }
}

/// The highest of `versions` (semantic versions; others are left out).
pub fn highest_version<'a>(versions: impl IntoIterator<Item = &'a str>) -> Option<String> {
    versions
        .into_iter()
        .filter_map(|v| semver::Version::parse(v.trim()).ok())
        .max()
        .map(|v| v.to_string())
}
