//! What a token allows: the permission vocabulary of tokens, mints and policy scopes.

use super::{find, ActionSpec, ToolName, ACTIONS};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a token allows its holder to do: a class of actions (`read`, `write`), one action
/// of one tool (`serpapi:search`), or every action of one tool (`serpapi:*`). On the wire
/// and in the sealed token, the string forms; a call is allowed when one of the token's
/// permissions covers it ([`Permission::covers`]). An action's own class is `Read` or
/// `Write` ([`ActionSpec::permission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Actions that only read (search, fetch, chat, profile).
    Read,
    /// Actions with side effects (sending e-mail).
    Write,
    /// One action of one tool (`tool:action`).
    Action(ToolName, &'static str),
    /// Every action of one tool (`tool:*`).
    AnyAction(ToolName),
}

/// The forms a permission takes, for error messages and the API document.
pub const PERMISSION_FORMS: &str = "read, write, <tool>:<action> (e.g. serpapi:search) or <tool>:*";

impl Permission {
    /// The two classes of actions.
    pub const ALL: [Permission; 2] = [Permission::Read, Permission::Write];

    /// Whether this permission allows a call of `action`.
    pub fn covers(self, action: &ActionSpec) -> bool {
        match self {
            Permission::Read | Permission::Write => action.permission == self,
            Permission::Action(tool, name) => action.tool == tool && action.action == name,
            Permission::AnyAction(tool) => action.tool == tool,
        }
    }

    /// Whether every call `other` allows, this one allows too (a mint asking for `other`
    /// stays within a maximum scope holding this).
    pub fn includes(self, other: Permission) -> bool {
        match other {
            Permission::Action(tool, name) => find(tool, name).is_some_and(|a| self.covers(a)),
            Permission::AnyAction(tool) => {
                self == other
                    || ACTIONS
                        .iter()
                        .filter(|a| a.tool == tool)
                        .all(|a| self.covers(a))
            }
            Permission::Read | Permission::Write => self == other,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Read => f.write_str("read"),
            Permission::Write => f.write_str("write"),
            Permission::Action(tool, action) => write!(f, "{tool}:{action}"),
            Permission::AnyAction(tool) => write!(f, "{tool}:*"),
        }
    }
}

impl FromStr for Permission {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "read" => Ok(Permission::Read),
            "write" => Ok(Permission::Write),
            _ => {
                let (tool, action) = s.split_once(':').ok_or(())?;
                let tool: ToolName = tool.parse()?;
                if action == "*" {
                    return Ok(Permission::AnyAction(tool));
                }
                let spec = find(tool, action).ok_or(())?;
                Ok(Permission::Action(tool, spec.action))
            }
        }
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|()| {
            serde::de::Error::custom(format!(
                "unknown permission {text:?}: use {PERMISSION_FORMS}"
            ))
        })
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Permission {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(format!("A permission: {PERMISSION_FORMS}.")))
            .examples(["read", "serpapi:search", "gmail_send:*"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Permission {}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(tool: ToolName, name: &str) -> &'static ActionSpec {
        find(tool, name).unwrap()
    }

    #[test]
    fn permissions_read_and_write_as_strings() {
        for text in [
            "read",
            "write",
            "serpapi:search",
            "gmail_send:send",
            "http_fetch:*",
        ] {
            let permission: Permission = text.parse().unwrap();
            assert_eq!(permission.to_string(), text);
            let json = serde_json::to_string(&permission).unwrap();
            assert_eq!(
                serde_json::from_str::<Permission>(&json).unwrap(),
                permission
            );
        }
        for bad in [
            "",
            "admin",
            "serpapi",
            "serpapi:",
            "serpapi:send",
            "nope:*",
            ":search",
        ] {
            assert!(bad.parse::<Permission>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_permission_covers_its_class_its_action_or_its_tool() {
        use ToolName::{GmailSend, Serpapi};
        let send = action(GmailSend, "send");
        let search = action(Serpapi, "search");
        assert!(Permission::Write.covers(send) && !Permission::Read.covers(send));
        assert!(Permission::Read.covers(search) && !Permission::Write.covers(search));
        assert!(Permission::Action(Serpapi, "search").covers(search));
        assert!(!Permission::Action(Serpapi, "search").covers(send));
        assert!(Permission::AnyAction(GmailSend).covers(send));
        assert!(!Permission::AnyAction(GmailSend).covers(search));
    }

    #[test]
    fn a_scope_includes_what_it_covers_entirely() {
        use ToolName::{GmailSend, Serpapi};
        assert!(Permission::Read.includes(Permission::Action(Serpapi, "search")));
        assert!(Permission::Read.includes(Permission::AnyAction(Serpapi)));
        // gmail_send has a write action: `read` does not include all of it.
        assert!(!Permission::Read.includes(Permission::AnyAction(GmailSend)));
        assert!(Permission::AnyAction(GmailSend).includes(Permission::Action(GmailSend, "send")));
        assert!(!Permission::Action(Serpapi, "search").includes(Permission::Read));
        assert!(!Permission::AnyAction(Serpapi).includes(Permission::Read));
    }
}
