//! `openai.chat` and `openai.complete`: the LLM API.

use super::params::Fields;
use super::{Tool, ToolError, Upstream};
use crate::catalog::{params::openai, ActionSpec, Param, ToolName};
use serde_json::{json, Value};

/// The LLM tool.
pub struct Openai;

/// One chat message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Text, 1–4000 characters.
    pub content: String,
}

/// Parameters of a chat or completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Model name.
    pub model: String,
    /// Chat messages (`messages`, or `input` as one user message); empty for `complete`.
    pub messages: Vec<Message>,
    /// Prompt of `complete`.
    pub prompt: String,
    /// Sampling temperature, 0–2.
    pub temperature: Option<f64>,
    /// Longest answer, 1–4000 tokens.
    pub max_tokens: Option<i64>,
}

impl Params {
    /// The text the mock summarises: `input`, or the chat's contents joined.
    fn text(&self) -> String {
        if self.messages.is_empty() {
            return self.prompt.clone();
        }
        self.messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The chat's messages: `input` as one user message, or `messages` (checked by the
/// catalog: 1 to 50, each with a known role and its content).
fn messages(f: &Fields<'_>) -> Vec<Message> {
    if let Some(input) = f.optional_text(&openai::INPUT) {
        return vec![Message {
            role: "user".into(),
            content: input,
        }];
    }
    let items = f.raw(&openai::MESSAGES).and_then(Value::as_array);
    items
        .into_iter()
        .flatten()
        .map(|item| Message {
            role: text_of(item, &openai::ROLE),
            content: text_of(item, &openai::CONTENT),
        })
        .collect()
}

fn text_of(item: &Value, field: &Param) -> String {
    item.as_object()
        .and_then(|m| field.find(m))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn first_chars(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

fn tokens_estimate(text: &str) -> usize {
    text.chars().count().div_ceil(3)
}

impl Tool for Openai {
    type Params = Params;

    fn validate(&self, action: &ActionSpec, params: &Value) -> Result<Params, Vec<String>> {
        let f = Fields::of(action, params);
        let chat = action.action == "chat";
        let default_model = if chat {
            "gpt-3.5-turbo"
        } else {
            "text-davinci-003"
        };
        let p = Params {
            model: f
                .optional_text(&openai::MODEL)
                .unwrap_or_else(|| default_model.into()),
            messages: if chat { messages(&f) } else { Vec::new() },
            prompt: if chat {
                String::new()
            } else {
                f.text(&openai::PROMPT)
            },
            temperature: f.number(&openai::TEMPERATURE),
            max_tokens: f.int(&openai::MAX_TOKENS),
        };
        f.finish(p)
    }

    fn mock(&self, action: &str, p: &Params) -> Value {
        let text = p.text();
        let output = if action == "chat" {
            format!("SUMMARY: {}", first_chars(&text, 120))
        } else {
            format!("COMPLETION: {}...", first_chars(&text, 100))
        };
        json!({ "model": p.model, "output": output, "tokens_est": tokens_estimate(&text) })
    }

    async fn live(
        &self,
        action: &str,
        p: &Params,
        up: &Upstream,
        _redirects: &dyn super::RedirectCheck,
    ) -> Result<Value, ToolError> {
        let key = up.credential(ToolName::Openai)?;
        let (path, body) = if action == "chat" {
            (
                "/v1/chat/completions",
                json!({
                    "model": p.model,
                    "messages": p.messages,
                    "temperature": p.temperature.unwrap_or(0.7),
                    "max_tokens": p.max_tokens.unwrap_or(1000),
                }),
            )
        } else {
            (
                "/v1/completions",
                json!({
                    "model": p.model,
                    "prompt": p.prompt,
                    "temperature": p.temperature.unwrap_or(0.7),
                    "max_tokens": p.max_tokens.unwrap_or(100),
                }),
            )
        };
        let request = up
            .client
            .post(format!("{}{path}", up.bases.openai))
            .bearer_auth(&*key)
            .json(&body);
        up.send_json(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(name: &str) -> &'static ActionSpec {
        crate::catalog::find(ToolName::Openai, name).unwrap()
    }

    #[test]
    fn chat_accepts_input_or_messages() {
        let a = Openai
            .validate(action("chat"), &json!({"input": "hello"}))
            .unwrap();
        let b = Openai
            .validate(
                action("chat"),
                &json!({"messages": [{"role": "user", "content": "hello"}]}),
            )
            .unwrap();
        assert_eq!(a.messages, b.messages);
    }

    #[test]
    fn mock_chat_summarises_the_first_120_characters() {
        let long = "é".repeat(200);
        let p = Openai
            .validate(action("chat"), &json!({"input": long}))
            .unwrap();
        let v = Openai.mock("chat", &p);
        assert_eq!(
            v["output"].as_str().unwrap(),
            format!("SUMMARY: {}", "é".repeat(120))
        );
        assert_eq!(v["tokens_est"], 67);
        assert_eq!(v["model"], "gpt-3.5-turbo");
    }

    #[test]
    fn mock_complete_matches_the_original() {
        let p = Openai
            .validate(action("complete"), &json!({"prompt": "abc", "model": "m"}))
            .unwrap();
        assert_eq!(
            Openai.mock("complete", &p),
            json!({"model": "m", "output": "COMPLETION: abc...", "tokens_est": 1})
        );
    }

    #[test]
    fn refuses_bad_messages() {
        let problems = Openai
            .validate(
                action("chat"),
                &json!({"messages": [{"role": "robot", "content": ""}], "temperature": 3}),
            )
            .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
