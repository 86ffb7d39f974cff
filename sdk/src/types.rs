//! Plain Rust forms of the contract's types: the call a plugin is asked about
//! ([`Request`], read lazily from the host), and its answers.

use serde::{Deserialize, Serialize};
use std::cell::OnceCell;

/// One tool call, given as values: what native tests, `gateway plugin test` and the
/// examples in `sdk/examples/` describe (field names as the contract's `call` getters).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestFields {
    /// Correlation id of the HTTP request.
    pub correlation_id: String,
    /// Agent id.
    pub agent_id: String,
    /// Agent name.
    pub agent_name: String,
    /// Agent role.
    pub agent_role: String,
    /// Tool name.
    pub tool: String,
    /// Action of the tool.
    pub action: String,
    /// Parameters as JSON text.
    pub params: String,
    /// Declared intent.
    pub intent: Option<String>,
    /// Tools the token allows.
    pub token_tools: Vec<String>,
    /// Permissions the token carries.
    pub token_permissions: Vec<String>,
    /// The call's time, unix ms.
    pub now_ms: u64,
    /// Per-call random seed.
    pub seed: u64,
}

/// Where a request's values come from.
enum Source<'a> {
    /// Given values (native tests).
    Fields(Box<RequestFields>),
    /// The host's `call`, read on first use of each value.
    #[cfg(target_arch = "wasm32")]
    Guest(&'a crate::guest::Call),
    #[allow(dead_code)]
    Never(std::marker::PhantomData<&'a ()>),
}

/// Values already read from the host.
#[derive(Default)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Read {
    correlation_id: OnceCell<String>,
    agent_id: OnceCell<String>,
    agent_name: OnceCell<String>,
    agent_role: OnceCell<String>,
    tool: OnceCell<String>,
    action: OnceCell<String>,
    params: OnceCell<String>,
    intent: OnceCell<Option<String>>,
    token_tools: OnceCell<Vec<String>>,
    token_permissions: OnceCell<Vec<String>>,
}

/// One tool call, as the gateway sees it after the token was validated. Inside the gateway
/// each value is copied into the plugin only when first read, so a plugin pays for what it
/// reads and nothing else.
pub struct Request<'a> {
    source: Source<'a>,
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    read: Read,
}

impl From<RequestFields> for Request<'static> {
    fn from(fields: RequestFields) -> Self {
        Request {
            source: Source::Fields(Box::new(fields)),
            read: Read::default(),
        }
    }
}

macro_rules! text_getter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> &str {
            match &self.source {
                Source::Fields(f) => &f.$name,
                #[cfg(target_arch = "wasm32")]
                Source::Guest(call) => self.read.$name.get_or_init(|| call.$name()),
                Source::Never(_) => unreachable!(),
            }
        }
    };
}

macro_rules! list_getter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> &[String] {
            match &self.source {
                Source::Fields(f) => &f.$name,
                #[cfg(target_arch = "wasm32")]
                Source::Guest(call) => self.read.$name.get_or_init(|| call.$name()),
                Source::Never(_) => unreachable!(),
            }
        }
    };
}

impl<'a> Request<'a> {
    /// The request the host lends for one call.
    #[cfg(target_arch = "wasm32")]
    #[doc(hidden)]
    pub fn from_guest(call: &'a crate::guest::Call) -> Self {
        Request {
            source: Source::Guest(call),
            read: Read::default(),
        }
    }

    text_getter!(
        /// Correlation id of the HTTP request.
        correlation_id
    );
    text_getter!(
        /// The calling agent's id.
        agent_id
    );
    text_getter!(
        /// The calling agent's name.
        agent_name
    );
    text_getter!(
        /// The calling agent's role.
        agent_role
    );
    text_getter!(
        /// Tool name: serpapi, openai, gmail_send, http_fetch.
        tool
    );
    text_getter!(
        /// Action of the tool: search, get, head, chat, complete, send, profile.
        action
    );
    text_getter!(
        /// All parameters, as JSON text.
        params
    );
    list_getter!(
        /// Tools the agent's token allows.
        token_tools
    );
    list_getter!(
        /// Permissions the agent's token carries.
        token_permissions
    );

    /// What the agent says it is doing, when it says so.
    pub fn intent(&self) -> Option<&str> {
        match &self.source {
            Source::Fields(f) => f.intent.as_deref(),
            #[cfg(target_arch = "wasm32")]
            Source::Guest(call) => self.read.intent.get_or_init(|| call.intent()).as_deref(),
            Source::Never(_) => unreachable!(),
        }
    }

    /// One top-level parameter: a JSON string's text as is, any other value as JSON text;
    /// `None` when absent (or when the parameters are not a JSON object).
    pub fn param(&self, name: &str) -> Option<String> {
        match &self.source {
            Source::Fields(f) => {
                #[cfg(not(target_arch = "wasm32"))]
                {
                    let params: serde_json::Value = serde_json::from_str(&f.params).ok()?;
                    match params.get(name)? {
                        serde_json::Value::String(text) => Some(text.clone()),
                        other => Some(other.to_string()),
                    }
                }
                #[cfg(target_arch = "wasm32")]
                {
                    let _ = (f, name);
                    None
                }
            }
            #[cfg(target_arch = "wasm32")]
            Source::Guest(call) => call.param(name),
            Source::Never(_) => unreachable!(),
        }
    }

    /// The call's time, unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        match &self.source {
            Source::Fields(f) => f.now_ms,
            #[cfg(target_arch = "wasm32")]
            Source::Guest(call) => call.now_ms(),
            Source::Never(_) => unreachable!(),
        }
    }

    /// Random per call; the same seed must give the same answer.
    pub fn seed(&self) -> u64 {
        match &self.source {
            Source::Fields(f) => f.seed,
            #[cfg(target_arch = "wasm32")]
            Source::Guest(call) => call.seed(),
            Source::Never(_) => unreachable!(),
        }
    }
}

/// A policy's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The call may proceed.
    Allow,
    /// The call may proceed, and the plugin asks to see (and may rewrite) its successful
    /// response: `filter_response` is called on it, and only then.
    AllowAndFilter,
    /// The call is refused.
    Deny {
        /// Stable machine-readable code: 1–64 characters of `[a-z0-9_]`.
        code: String,
        /// Reason for the caller, at most 1024 bytes.
        reason: String,
    },
}

impl Decision {
    /// A denial with a code and a reason. A reason over 1024 bytes is cut at a character
    /// boundary and ends with [`crate::rules::CUT_MARKER`]: reasons often repeat what the
    /// agent sent (its intent, a domain), and a length the agent chooses must never make the
    /// plugin fail. The native harness warns when a reason was cut.
    ///
    /// # Panics
    /// When the code is not 1–64 characters of `[a-z0-9_]`: codes are the author's
    /// constants, and the host would refuse that answer, so it fails where it is written.
    pub fn deny(code: impl Into<String>, reason: impl Into<String>) -> Self {
        let code = code.into();
        if !crate::rules::valid_code(&code) {
            panic!("deny code {code:?} is not 1-64 characters of [a-z0-9_]");
        }
        Decision::Deny {
            code,
            reason: crate::rules::cut_message(reason.into()),
        }
    }
}

/// A fault to inject into one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// No fault.
    None,
    /// Hold the call, then go on.
    Delay {
        /// Milliseconds (at most 60000).
        ms: u32,
    },
    /// Answer an error without calling the tool.
    Error {
        /// HTTP status, 400–599.
        status: u16,
        /// Message, at most 1024 bytes.
        message: String,
    },
    /// Let the call time out.
    Timeout,
    /// Hold the call, then answer an error.
    DelayThenError {
        /// Milliseconds (at most 60000).
        ms: u32,
        /// HTTP status, 400–599.
        status: u16,
        /// Message, at most 1024 bytes.
        message: String,
    },
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// True when instances keep nothing between calls that changes an answer, so they may
    /// be reused.
    pub stateless: bool,
}

impl PluginInfo {
    /// Info for a plugin.
    pub fn new(name: &str, version: &str, stateless: bool) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            stateless,
        }
    }
}
