//! The names of the tools agents call through the gateway.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A tool that agents call through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    /// Web search API.
    Serpapi,
    /// LLM API.
    Openai,
    /// E-mail sending.
    GmailSend,
    /// Outbound web requests.
    HttpFetch,
}

impl ToolName {
    /// Every tool, in a stable order.
    pub const ALL: [ToolName; 4] = [
        ToolName::Serpapi,
        ToolName::Openai,
        ToolName::GmailSend,
        ToolName::HttpFetch,
    ];

    /// The wire name of the tool.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::Serpapi => "serpapi",
            ToolName::Openai => "openai",
            ToolName::GmailSend => "gmail_send",
            ToolName::HttpFetch => "http_fetch",
        }
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ToolName {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ToolName::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(())
    }
}
