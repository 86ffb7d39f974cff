//! The actions of every tool: which permission each needs, whether it may be retried, and
//! whether its answers may be cached.

use crate::catalog::{Permission, ToolName};

/// What the gateway knows about one `tool.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    /// The tool.
    pub tool: ToolName,
    /// The action's wire name.
    pub action: &'static str,
    /// Permission a token must carry.
    pub permission: Permission,
    /// Safe to send twice (only these are retried).
    pub idempotent: bool,
    /// Answers may be served from the response cache.
    pub cacheable: bool,
}

const fn spec(
    tool: ToolName,
    action: &'static str,
    permission: Permission,
    idempotent: bool,
    cacheable: bool,
) -> ActionSpec {
    ActionSpec {
        tool,
        action,
        permission,
        idempotent,
        cacheable,
    }
}

/// Every action, in a stable order.
pub const ACTIONS: &[ActionSpec] = &[
    spec(ToolName::Serpapi, "search", Permission::Read, true, true),
    spec(ToolName::HttpFetch, "get", Permission::Read, true, true),
    spec(ToolName::HttpFetch, "head", Permission::Read, true, true),
    spec(ToolName::Openai, "chat", Permission::Read, true, false),
    spec(ToolName::Openai, "complete", Permission::Read, true, false),
    spec(ToolName::GmailSend, "send", Permission::Write, false, false),
    spec(
        ToolName::GmailSend,
        "profile",
        Permission::Read,
        true,
        false,
    ),
];

/// The action `action` of `tool`, if it exists.
pub fn find(tool: ToolName, action: &str) -> Option<&'static ActionSpec> {
    ACTIONS
        .iter()
        .find(|a| a.tool == tool && a.action == action)
}

/// The action names of `tool`.
pub fn names_of(tool: ToolName) -> Vec<&'static str> {
    ACTIONS
        .iter()
        .filter(|a| a.tool == tool)
        .map(|a| a.action)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sending_mail_needs_write_and_is_never_retried() {
        for a in ACTIONS {
            let sends_mail = a.tool == ToolName::GmailSend && a.action == "send";
            assert_eq!(a.permission == Permission::Write, sends_mail, "{a:?}");
            assert_eq!(!a.idempotent, sends_mail, "{a:?}");
        }
    }

    #[test]
    fn finds_known_actions_only() {
        assert!(find(ToolName::Serpapi, "search").is_some());
        assert!(find(ToolName::Serpapi, "get").is_none());
        assert_eq!(names_of(ToolName::Openai), ["chat", "complete"]);
    }
}
