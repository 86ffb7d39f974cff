//! The tool catalog, once: every tool the gateway fronts, every action of each with the
//! permission it needs, whether it may be retried or cached, how it is shown to clients,
//! and its parameters ([`params`]) — from which the gateway validates a call, the OpenAPI
//! document and the MCP edge draw their schemas, the metrics their label sets, and the
//! default policy the scopes it knows. Nothing else lists tools or actions.

mod docs;
pub mod params;
mod permission;
mod tool_params;
mod tools;

pub use docs::docs_tables;
pub use params::{Format, Kind, Param, Presence};
pub use permission::{Permission, PERMISSION_FORMS};
pub use tools::ToolName;

/// What the gateway knows about one `tool.action`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActionSpec {
    /// The tool.
    pub tool: ToolName,
    /// The action's wire name.
    pub action: &'static str,
    /// A short human name (MCP's `title`).
    pub title: &'static str,
    /// What the action does, for people and for models choosing a tool.
    pub description: &'static str,
    /// Permission class a token must carry ([`Permission::Read`] or [`Permission::Write`]).
    pub permission: Permission,
    /// Safe to send twice (only these are retried).
    pub idempotent: bool,
    /// Answers may be served from the response cache.
    pub cacheable: bool,
    /// Reaches a world outside the gateway's operator (the web, any mail recipient).
    pub open_world: bool,
    /// Its parameters, in the order they are documented.
    pub params: &'static [Param],
}

impl ActionSpec {
    /// `tool.action`, as logs and the MCP edge name it.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.tool, self.action)
    }

    /// Changes something outside the gateway that cannot be taken back (sending mail).
    pub fn destructive(&self) -> bool {
        self.permission == Permission::Write
    }

    /// The JSON Schema of its `params` object: what [`params`] validation enforces.
    pub fn params_schema(&self) -> serde_json::Value {
        params::object_schema(self.params)
    }
}

/// Every action, in a stable order.
pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        tool: ToolName::Serpapi,
        action: "search",
        title: "Web search",
        description: "Search the web; answers titles and links of the results.",
        permission: Permission::Read,
        idempotent: true,
        cacheable: true,
        open_world: true,
        params: params::SERPAPI_SEARCH,
    },
    ActionSpec {
        tool: ToolName::HttpFetch,
        action: "get",
        title: "Fetch a web page",
        description:
            "GET an http or https URL on the public internet; answers status, headers and body.",
        permission: Permission::Read,
        idempotent: true,
        cacheable: true,
        open_world: true,
        params: params::HTTP_FETCH,
    },
    ActionSpec {
        tool: ToolName::HttpFetch,
        action: "head",
        title: "Check a web page",
        description:
            "HEAD an http or https URL on the public internet; answers status and headers.",
        permission: Permission::Read,
        idempotent: true,
        cacheable: true,
        open_world: true,
        params: params::HTTP_FETCH,
    },
    ActionSpec {
        tool: ToolName::Openai,
        action: "chat",
        title: "Chat with an LLM",
        description: "Send a conversation to a chat model; answers the model's reply.",
        permission: Permission::Read,
        idempotent: true,
        cacheable: false,
        open_world: false,
        params: params::OPENAI_CHAT,
    },
    ActionSpec {
        tool: ToolName::Openai,
        action: "complete",
        title: "Complete a prompt",
        description: "Send a prompt to a completion model; answers the completion.",
        permission: Permission::Read,
        idempotent: true,
        cacheable: false,
        open_world: false,
        params: params::OPENAI_COMPLETE,
    },
    ActionSpec {
        tool: ToolName::GmailSend,
        action: "send",
        title: "Send an e-mail",
        description:
            "Send an e-mail from the gateway's mailbox. Not retried: it is sent at most once.",
        permission: Permission::Write,
        idempotent: false,
        cacheable: false,
        open_world: true,
        params: params::GMAIL_SEND,
    },
    ActionSpec {
        tool: ToolName::GmailSend,
        action: "profile",
        title: "Mailbox profile",
        description: "The address and name of the gateway's mailbox.",
        permission: Permission::Read,
        idempotent: true,
        cacheable: false,
        open_world: false,
        params: &[],
    },
];

/// The action `action` of `tool`, if it exists.
pub fn find(tool: ToolName, action: &str) -> Option<&'static ActionSpec> {
    ACTIONS
        .iter()
        .find(|a| a.tool == tool && a.action == action)
}

/// The action called `tool:action` (a scope's form), if it exists.
pub fn find_scoped(scope: &str) -> Option<&'static ActionSpec> {
    let (tool, action) = scope.split_once(':')?;
    find(tool.parse().ok()?, action)
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
            assert_eq!(a.destructive(), sends_mail, "{a:?}");
        }
    }

    #[test]
    fn finds_known_actions_only() {
        assert!(find(ToolName::Serpapi, "search").is_some());
        assert!(find(ToolName::Serpapi, "get").is_none());
        assert_eq!(names_of(ToolName::Openai), ["chat", "complete"]);
        assert_eq!(
            find_scoped("http_fetch:head").unwrap().dotted(),
            "http_fetch.head"
        );
        assert!(find_scoped("http_fetch").is_none() && find_scoped("nope:get").is_none());
    }

    #[test]
    fn every_tool_has_an_action_and_every_action_a_unique_name() {
        for tool in ToolName::ALL {
            assert!(!names_of(tool).is_empty(), "{tool}");
        }
        let mut names: Vec<String> = ACTIONS.iter().map(ActionSpec::dotted).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len());
    }
}
