//! `gmail_send.send` and `gmail_send.profile`: e-mail. Header fields never carry CR or LF,
//! so a caller cannot inject headers into the message.

use super::params::Fields;
use super::{Tool, ToolError, Upstream};
use crate::catalog::{params::gmail_send, ActionSpec, ToolName};
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use rand::Rng;
use serde_json::{json, Value};

/// The e-mail tool.
pub struct GmailSend;

/// Parameters of `send` (empty for `profile`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params {
    /// Recipient.
    pub to: String,
    /// Subject, 1–200 characters.
    pub subject: String,
    /// Plain-text body (`text` or `body`).
    pub text: String,
    /// Optional HTML body.
    pub html: Option<String>,
    /// Optional sender.
    pub from: Option<String>,
    /// Optional copy recipients.
    pub cc: Option<String>,
    /// Optional blind-copy recipients.
    pub bcc: Option<String>,
}

/// A header value: RFC 2047-encoded when it is not plain ASCII.
fn header_value(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(text))
    }
}

fn mime_message(p: &Params) -> String {
    let boundary = format!("gw{:016x}", rand::thread_rng().gen::<u64>());
    let mut m = String::new();
    m.push_str(&format!("To: {}\r\n", p.to));
    if let Some(from) = &p.from {
        m.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(cc) = &p.cc {
        m.push_str(&format!("Cc: {cc}\r\n"));
    }
    if let Some(bcc) = &p.bcc {
        m.push_str(&format!("Bcc: {bcc}\r\n"));
    }
    m.push_str(&format!("Subject: {}\r\n", header_value(&p.subject)));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        STANDARD.encode(&p.text)
    ));
    if let Some(html) = &p.html {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            STANDARD.encode(html)
        ));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m
}

impl Tool for GmailSend {
    type Params = Params;

    fn validate(&self, action: &ActionSpec, params: &Value) -> Result<Params, Vec<String>> {
        let f = Fields::of(action, params);
        if action.action == "profile" {
            return f.finish(Params::default());
        }
        // The catalog keeps line breaks out of every header field and checks addresses.
        let p = Params {
            to: f.text(&gmail_send::TO),
            subject: f.text(&gmail_send::SUBJECT),
            text: f.text(&gmail_send::TEXT),
            html: f.optional_text(&gmail_send::HTML),
            from: f.optional_text(&gmail_send::FROM),
            cc: f.optional_text(&gmail_send::CC),
            bcc: f.optional_text(&gmail_send::BCC),
        };
        f.finish(p)
    }

    fn mock(&self, action: &str, p: &Params) -> Value {
        if action == "profile" {
            return json!({ "email": "mock@example.com", "name": "Mock User", "status": "active" });
        }
        json!({
            "id": format!("mock_{}", base36(rand::thread_rng().gen::<u64>())),
            "to": p.to,
            "status": "queued",
            "subject_len": p.subject.chars().count(),
            "body_len": p.text.chars().count(),
        })
    }

    async fn live(
        &self,
        action: &str,
        p: &Params,
        up: &Upstream,
        _redirects: &dyn super::RedirectCheck,
    ) -> Result<Value, ToolError> {
        let token = up.credential(ToolName::GmailSend)?;
        let base = &up.bases.gmail;
        if action == "profile" {
            let request = up
                .client
                .get(format!("{base}/gmail/v1/users/me/profile"))
                .bearer_auth(&*token);
            return up.send_json(request).await;
        }
        let raw = URL_SAFE.encode(mime_message(p));
        let request = up
            .client
            .post(format!("{base}/gmail/v1/users/me/messages/send"))
            .bearer_auth(&*token)
            .json(&json!({ "raw": raw }));
        let sent = up.send_json(request).await?;
        Ok(json!({
            "success": true,
            "messageId": sent.get("id"),
            "threadId": sent.get("threadId"),
            "to": p.to,
            "subject": p.subject,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }))
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send() -> &'static ActionSpec {
        crate::catalog::find(ToolName::GmailSend, "send").unwrap()
    }

    #[test]
    fn refuses_line_breaks_and_controls_in_every_header_field() {
        for field in ["subject", "from", "to", "cc", "bcc"] {
            for separator in [
                "\r\n", "\n", "\r", "\u{b}", "\u{c}", "\u{85}", "\u{2028}", "\u{2029}", "\u{0}",
                "\t",
            ] {
                let mut params = json!({"to": "a@b.co", "subject": "s", "text": "t"});
                params[field] = json!(format!("x@y.co{separator}Bcc: victim@example.com"));
                let problems = GmailSend.validate(send(), &params).unwrap_err();
                assert!(
                    problems
                        .iter()
                        .any(|p| p.starts_with(field) && p.contains("line breaks")),
                    "{field} {separator:?}: {problems:?}"
                );
            }
        }
    }

    #[test]
    fn accepts_text_or_body() {
        for key in ["text", "body"] {
            let mut params = json!({"to": "a@b.co", "subject": "s"});
            params[key] = json!("hello");
            assert_eq!(GmailSend.validate(send(), &params).unwrap().text, "hello");
        }
    }

    #[test]
    fn mock_send_matches_the_original_shape() {
        let p = GmailSend
            .validate(
                send(),
                &json!({"to": "a@b.co", "subject": "hé", "text": "hello"}),
            )
            .unwrap();
        let v = GmailSend.mock("send", &p);
        assert!(v["id"].as_str().unwrap().starts_with("mock_"));
        assert_eq!(v["status"], "queued");
        assert_eq!(v["subject_len"], 2);
        assert_eq!(v["body_len"], 5);
    }

    #[test]
    fn message_encodes_a_non_ascii_subject() {
        let p = Params {
            to: "a@b.co".into(),
            subject: "héllo".into(),
            text: "t".into(),
            ..Params::default()
        };
        let m = mime_message(&p);
        assert!(m.contains("Subject: =?UTF-8?B?"));
        assert_eq!(m.matches("\r\nSubject:").count(), 1);
    }
}
