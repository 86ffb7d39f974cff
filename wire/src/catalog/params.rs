//! An action's parameters as data: each field with its names, bounds and form. From one
//! [`Param`] list come both the check a call's `params` must pass ([`problems`]) and the
//! JSON Schema that documents it ([`object_schema`]), so the two cannot disagree. A field
//! set to `null` counts as absent, as the original gateway's clients expect.

use serde_json::{json, Map, Value};

pub use super::tool_params::*;

/// One field of an action's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    /// Its name, then the other names the original gateway's clients use for it (the first
    /// one present wins).
    pub names: &'static [&'static str],
    /// What it means.
    pub description: &'static str,
    /// Whether it must be present (under one of its names).
    pub presence: Presence,
    /// Its type and bounds.
    pub kind: Kind,
}

/// Whether a field must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// It may be left out.
    Optional,
    /// It must be there.
    Required,
    /// It must be there unless a field named one of these is (`openai.chat`'s `messages`,
    /// unless its shorthand `input` is given).
    RequiredUnless(&'static [&'static str]),
}

/// A field's type and bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A string of 1 to `max_chars` characters.
    Text {
        /// Most characters (Unicode scalar values).
        max_chars: usize,
        /// What else it must be.
        format: Format,
        /// What an absent field means.
        default: Option<&'static str>,
    },
    /// A whole number in `min..=max`.
    Integer {
        /// Least value.
        min: i64,
        /// Greatest value.
        max: i64,
        /// What an absent field means.
        default: Option<i64>,
    },
    /// A number in `min..=max`.
    Number {
        /// Least value.
        min: f64,
        /// Greatest value.
        max: f64,
        /// What an absent field means.
        default: Option<f64>,
    },
    /// An object whose values are all strings.
    TextMap,
    /// A list of `min_items` to `max_items` objects, each with the fields `item`.
    List {
        /// Fewest items.
        min_items: usize,
        /// Most items.
        max_items: usize,
        /// Each item's fields.
        item: &'static [Param],
        /// What the list holds, for its error message ("messages").
        noun: &'static str,
    },
}

/// What a text field must be besides its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Any text.
    Plain,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// One line: no control characters (CR, LF, tab, …) and no Unicode line or paragraph
    /// separator, so it cannot break out of a header.
    HeaderLine,
    /// One e-mail address (one line, `local@domain.tld`).
    Email,
    /// An absolute `http` or `https` URL.
    HttpUrl,
}

/// The JSON Schema pattern of [`Format::HeaderLine`].
const HEADER_LINE_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$";
/// Every character Rust calls whitespace or control, as a regular expression's class
/// body: an address holds none of them.
macro_rules! not_in_an_address {
    () => {
        "\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
    };
}
/// The JSON Schema pattern of [`Format::Email`]: exactly what [`is_email`] accepts.
const EMAIL_PATTERN: &str = concat!(
    "^[^@",
    not_in_an_address!(),
    "]+@[^@.",
    not_in_an_address!(),
    "][^@",
    not_in_an_address!(),
    "]*\\.[^@",
    not_in_an_address!(),
    "]*[^@.",
    not_in_an_address!(),
    "]$"
);
/// The JSON Schema pattern of [`Format::HttpUrl`] (the scheme, in any case).
const HTTP_URL_PATTERN: &str = "^[Hh][Tt][Tt][Pp][Ss]?://";

impl Param {
    /// Its main name.
    pub fn name(&self) -> &'static str {
        self.names[0]
    }

    /// The first of its names present (and not `null`) in `params`, with its value.
    pub fn find<'a>(&self, params: &'a Map<String, Value>) -> Option<(&'static str, &'a Value)> {
        self.names
            .iter()
            .find_map(|n| params.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
    }

    /// The schema of one value of this field.
    fn value_schema(&self) -> Value {
        let mut schema = match self.kind {
            Kind::Text {
                max_chars,
                format,
                default,
            } => {
                let mut s = json!({"type": "string", "minLength": 1, "maxLength": max_chars});
                match format {
                    Format::Plain => {}
                    Format::OneOf(words) => s["enum"] = json!(words),
                    Format::HeaderLine => s["pattern"] = json!(HEADER_LINE_PATTERN),
                    Format::Email => {
                        s["format"] = json!("email");
                        s["pattern"] = json!(EMAIL_PATTERN);
                    }
                    Format::HttpUrl => {
                        s["format"] = json!("uri");
                        s["pattern"] = json!(HTTP_URL_PATTERN);
                    }
                }
                if let Some(d) = default {
                    s["default"] = json!(d);
                }
                s
            }
            Kind::Integer { min, max, default } => {
                let mut s = json!({"type": "integer", "minimum": min, "maximum": max});
                if let Some(d) = default {
                    s["default"] = json!(d);
                }
                s
            }
            Kind::Number { min, max, default } => {
                let mut s = json!({"type": "number", "minimum": min, "maximum": max});
                if let Some(d) = default {
                    s["default"] = json!(d);
                }
                s
            }
            Kind::TextMap => json!({"type": "object", "additionalProperties": {"type": "string"}}),
            Kind::List {
                min_items,
                max_items,
                item,
                ..
            } => json!({
                "type": "array",
                "minItems": min_items,
                "maxItems": max_items,
                "items": object_schema(item),
            }),
        };
        schema["description"] = json!(self.description);
        schema
    }

    /// What is wrong with `value` as this field (named `path` in the message), if anything.
    fn check(&self, path: &str, value: &Value, out: &mut Vec<String>) {
        match self.kind {
            Kind::Text {
                max_chars, format, ..
            } => match value.as_str() {
                Some(s) if s.is_empty() || s.chars().count() > max_chars => {
                    out.push(format!("{path}: must be 1 to {max_chars} characters"))
                }
                Some(s) => check_format(path, s, format, out),
                None => out.push(format!("{path}: must be a string")),
            },
            Kind::Integer { min, max, .. } => {
                if !whole_number(value).is_some_and(|n| (min..=max).contains(&n)) {
                    out.push(format!("{path}: must be an integer from {min} to {max}"));
                }
            }
            Kind::Number { min, max, .. } => {
                if !value.as_f64().is_some_and(|n| (min..=max).contains(&n)) {
                    out.push(format!("{path}: must be a number from {min} to {max}"));
                }
            }
            Kind::TextMap => {
                let all_strings = value
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string));
                if !all_strings {
                    out.push(format!("{path}: must be an object of strings"));
                }
            }
            Kind::List {
                min_items,
                max_items,
                item,
                noun,
            } => match value.as_array() {
                Some(items) if (min_items..=max_items).contains(&items.len()) => {
                    for (i, entry) in items.iter().enumerate() {
                        check_object(&format!("{path}.{i}"), item, entry, out);
                    }
                }
                _ => out.push(format!(
                    "{path}: must be a list of {min_items} to {max_items} {noun}"
                )),
            },
        }
    }
}

fn check_format(path: &str, s: &str, format: Format, out: &mut Vec<String>) {
    let breaks_a_line = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    match format {
        Format::Plain => {}
        Format::OneOf(words) => {
            if !words.contains(&s) {
                out.push(format!("{path}: must be {}", or_list(words)));
            }
        }
        Format::HeaderLine | Format::Email if s.chars().any(breaks_a_line) => out.push(format!(
            "{path}: must not contain line breaks or control characters"
        )),
        Format::HeaderLine => {}
        Format::Email => {
            if !is_email(s) {
                out.push(format!("{path}: must be an e-mail address"));
            }
        }
        Format::HttpUrl => {
            let scheme = s.split_once("://").map(|(scheme, _)| scheme);
            if !scheme
                .is_some_and(|p| p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https"))
            {
                out.push(format!("{path}: must be an http or https URL"));
            }
        }
    }
}

/// `a, b or c`.
fn or_list(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// `local@domain.tld` with no whitespace or control character.
fn is_email(s: &str) -> bool {
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_object(path: &str, fields: &[Param], value: &Value, out: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        out.push(format!("{path}: must be an object"));
        return;
    };
    for field in fields {
        // Every name given is checked, not only the one that is read: the schema says so.
        let mut given = false;
        for name in field.names {
            if let Some(v) = map.get(*name).filter(|v| !v.is_null()) {
                field.check(&join(path, name), v, out);
                given = true;
            }
        }
        if !given {
            match field.presence {
                Presence::Optional => {}
                Presence::Required => out.push(format!(
                    "{}: required",
                    join(path, &field.names.join(" or "))
                )),
                Presence::RequiredUnless(others) => {
                    let present = others
                        .iter()
                        .any(|n| map.get(*n).is_some_and(|v| !v.is_null()));
                    if !present {
                        let names: Vec<&str> = field.names.iter().chain(others).copied().collect();
                        out.push(format!("{}: required", join(path, &names.join(" or "))));
                    }
                }
            }
        }
    }
}

/// `value` as a whole number: an integer, or a number with no fraction (`1000.0`, as some
/// JSON encoders write whole floats), as JSON Schema's `integer` counts it.
pub fn whole_number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let f = value.as_f64()?;
        // i64::MAX as f64 rounds up to 2^63, which is out of range.
        (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
    })
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Every problem of `params` as the parameters `fields` (empty when they are valid).
/// Fields not listed are ignored, as the original gateway did.
pub fn problems(fields: &[Param], params: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if params.is_object() {
        check_object("", fields, params, &mut out);
    } else {
        out.push("params: must be an object".into());
    }
    out
}

/// The JSON Schema of an object with the fields `fields`. An optional field may also be
/// `null`; a required one with several names needs one of them, not `null`. (Only the
/// keywords OpenAPI 3.1 tools keep: `allOf`/`anyOf` of whole schemas, never `not`.)
pub fn object_schema(fields: &[Param]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut alternatives = Vec::new();
    let present = |name: &str, value: &Value| json!({"type": "object", "required": [name], "properties": {name: value}});
    for field in fields {
        let value = field.value_schema();
        let nullable = json!({"anyOf": [value.clone(), {"type": "null"}]});
        let others: &[&str] = match field.presence {
            Presence::Optional => {
                for n in field.names {
                    properties.insert((*n).to_string(), nullable.clone());
                }
                continue;
            }
            Presence::Required if field.names.len() == 1 => {
                required.push(json!(field.name()));
                properties.insert(field.name().to_string(), value);
                continue;
            }
            Presence::Required => &[],
            Presence::RequiredUnless(others) => others,
        };
        let mut one_of_them: Vec<Value> = field.names.iter().map(|n| present(n, &value)).collect();
        for other in others {
            if let Some(o) = fields.iter().find(|f| f.names.contains(other)) {
                one_of_them.push(present(other, &o.value_schema()));
            }
        }
        alternatives.push(json!({"anyOf": one_of_them}));
        for n in field.names {
            properties.insert((*n).to_string(), nullable.clone());
        }
    }
    let mut schema = json!({"type": "object"});
    if !properties.is_empty() {
        schema["properties"] = Value::Object(properties);
    }
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    if alternatives.is_empty() {
        return schema;
    }
    alternatives.insert(0, schema);
    json!({"allOf": alternatives})
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
