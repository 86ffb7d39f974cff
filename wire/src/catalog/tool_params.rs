//! The parameters of every action, field by field (see [`super::params`] for what each
//! form means). The tools read their fields through these constants, so a bound written
//! here is the bound enforced and the bound documented.

use super::params::{Format, Kind, Param, Presence};

const fn text(
    names: &'static [&'static str],
    required: bool,
    max_chars: usize,
    format: Format,
    description: &'static str,
) -> Param {
    Param {
        names,
        description,
        presence: if required {
            Presence::Required
        } else {
            Presence::Optional
        },
        kind: Kind::Text {
            max_chars,
            format,
            default: None,
        },
    }
}

/// `serpapi.search`.
pub mod serpapi {
    use super::*;

    /// The query.
    pub const Q: Param = text(
        &["q", "query"],
        true,
        500,
        Format::Plain,
        "What to search for.",
    );
    /// The search engine.
    pub const ENGINE: Param = text(
        &["engine"],
        false,
        64,
        Format::Plain,
        "Search engine (default google).",
    );
    /// Where the search is made from.
    pub const LOCATION: Param = text(
        &["location"],
        false,
        200,
        Format::Plain,
        "Where the search is made from, e.g. Austin, Texas.",
    );
    /// How many results.
    pub const NUM: Param = Param {
        names: &["num"],
        description: "Results wanted.",
        presence: Presence::Optional,
        kind: Kind::Integer {
            min: 1,
            max: 100,
            default: Some(10),
        },
    };
    /// Offset of the first result.
    pub const START: Param = Param {
        names: &["start"],
        description: "Offset of the first result.",
        presence: Presence::Optional,
        kind: Kind::Integer {
            min: 0,
            max: 10_000,
            default: None,
        },
    };
    /// Safe search.
    pub const SAFE: Param = text(
        &["safe"],
        false,
        6,
        Format::OneOf(&["active", "off"]),
        "Safe search.",
    );
}

/// `serpapi.search`.
pub const SERPAPI_SEARCH: &[Param] = &[
    serpapi::Q,
    serpapi::ENGINE,
    serpapi::LOCATION,
    serpapi::NUM,
    serpapi::START,
    serpapi::SAFE,
];

/// `http_fetch.get` and `http_fetch.head`.
pub mod http_fetch {
    use super::*;

    /// What to fetch.
    pub const URL: Param = text(
        &["url"],
        true,
        8192,
        Format::HttpUrl,
        "An absolute http or https URL on the public internet.",
    );
    /// Per-attempt timeout.
    pub const TIMEOUT: Param = Param {
        names: &["timeout"],
        description: "Per-attempt timeout in milliseconds.",
        presence: Presence::Optional,
        kind: Kind::Integer {
            min: 1000,
            max: 30_000,
            default: Some(10_000),
        },
    };
    /// Largest body kept.
    pub const MAX_SIZE: Param = Param {
        names: &["maxSize"],
        description: "Largest body kept, in bytes (at most the gateway's own cap).",
        presence: Presence::Optional,
        kind: Kind::Integer {
            min: 1,
            max: i64::MAX,
            default: None,
        },
    };
    /// Request headers.
    pub const HEADERS: Param = Param {
        names: &["headers"],
        description: "Request headers to send.",
        presence: Presence::Optional,
        kind: Kind::TextMap,
    };
}

/// `http_fetch.get` and `http_fetch.head`.
pub const HTTP_FETCH: &[Param] = &[
    http_fetch::URL,
    http_fetch::TIMEOUT,
    http_fetch::MAX_SIZE,
    http_fetch::HEADERS,
];

/// `openai.chat` and `openai.complete`.
pub mod openai {
    use super::*;

    /// The model.
    pub const MODEL: Param = text(
        &["model"],
        false,
        100,
        Format::Plain,
        "Model (default gpt-3.5-turbo for chat, text-davinci-003 for complete).",
    );
    /// Sampling temperature.
    pub const TEMPERATURE: Param = Param {
        names: &["temperature"],
        description: "Sampling temperature.",
        presence: Presence::Optional,
        kind: Kind::Number {
            min: 0.0,
            max: 2.0,
            default: Some(0.7),
        },
    };
    /// Most tokens in the answer.
    pub const MAX_TOKENS: Param = Param {
        names: &["max_tokens"],
        description: "Most tokens in the answer (default 1000 for chat, 100 for complete).",
        presence: Presence::Optional,
        kind: Kind::Integer {
            min: 1,
            max: 4000,
            default: None,
        },
    };
    /// Who says a message.
    pub const ROLE: Param = text(
        &["role"],
        true,
        9,
        Format::OneOf(&["system", "user", "assistant"]),
        "Who says it.",
    );
    /// What a message says.
    pub const CONTENT: Param = text(&["content"], true, 4000, Format::Plain, "What it says.");
    /// The conversation.
    pub const MESSAGES: Param = Param {
        names: &["messages"],
        description: "The conversation so far.",
        presence: Presence::RequiredUnless(&["input"]),
        kind: Kind::List {
            min_items: 1,
            max_items: 50,
            item: &[ROLE, CONTENT],
            noun: "messages",
        },
    };
    /// A chat's one user message, instead of `messages`.
    pub const INPUT: Param = text(
        &["input"],
        false,
        16_000,
        Format::Plain,
        "Shorthand for one user message, instead of messages.",
    );
    /// The prompt.
    pub const PROMPT: Param = text(
        &["prompt", "input"],
        true,
        4000,
        Format::Plain,
        "The prompt to complete.",
    );
}

/// `openai.chat`.
pub const OPENAI_CHAT: &[Param] = &[
    openai::MODEL,
    openai::INPUT,
    openai::MESSAGES,
    openai::TEMPERATURE,
    openai::MAX_TOKENS,
];

/// `openai.complete`.
pub const OPENAI_COMPLETE: &[Param] = &[
    openai::MODEL,
    openai::PROMPT,
    openai::TEMPERATURE,
    openai::MAX_TOKENS,
];

/// `gmail_send.send`.
pub mod gmail_send {
    use super::*;

    /// Recipient.
    pub const TO: Param = text(&["to"], true, 320, Format::Email, "Recipient's address.");
    /// Subject.
    pub const SUBJECT: Param = text(&["subject"], true, 200, Format::HeaderLine, "Subject line.");
    /// Plain-text body.
    pub const TEXT: Param = text(
        &["text", "body"],
        true,
        10_000,
        Format::Plain,
        "Plain-text body.",
    );
    /// HTML body.
    pub const HTML: Param = text(
        &["html"],
        false,
        100_000,
        Format::Plain,
        "HTML body, sent beside the text.",
    );
    /// Sender.
    pub const FROM: Param = text(
        &["from"],
        false,
        320,
        Format::Email,
        "Sender's address (default the mailbox's).",
    );
    /// Copy recipients.
    pub const CC: Param = text(
        &["cc"],
        false,
        2_000,
        Format::HeaderLine,
        "Copy recipients, comma-separated.",
    );
    /// Blind-copy recipients.
    pub const BCC: Param = text(
        &["bcc"],
        false,
        2_000,
        Format::HeaderLine,
        "Blind-copy recipients, comma-separated.",
    );
}

/// `gmail_send.send`.
pub const GMAIL_SEND: &[Param] = &[
    gmail_send::TO,
    gmail_send::SUBJECT,
    gmail_send::TEXT,
    gmail_send::HTML,
    gmail_send::FROM,
    gmail_send::CC,
    gmail_send::BCC,
];
