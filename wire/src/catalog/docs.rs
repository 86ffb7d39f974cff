//! The catalog as the docs show it (`docs/tools.md`): per action, what it needs and does,
//! and a table of its parameters.

use super::params::{Format, Kind, Param, Presence};
use super::ACTIONS;

/// One section per action.
pub fn docs_tables() -> String {
    let mut out = String::new();
    for action in ACTIONS {
        let retried = if action.idempotent {
            "retried"
        } else {
            "never retried"
        };
        let cached = if action.cacheable { ", cached" } else { "" };
        out.push_str(&format!(
            "### `{}` — {}\n\n{} Needs `{}` (or `{}:{}`, `{}:*`); {retried}{cached}.\n\n",
            action.dotted(),
            action.title,
            action.description,
            action.permission,
            action.tool,
            action.action,
            action.tool,
        ));
        if action.params.is_empty() {
            out.push_str("No parameters (`{}`).\n\n");
            continue;
        }
        out.push_str("| field | type | required | meaning |\n|---|---|---|---|\n");
        for field in action.params {
            row(&mut out, "", field);
        }
        out.push('\n');
    }
    out
}

fn row(out: &mut String, prefix: &str, field: &Param) {
    let names: Vec<String> = field
        .names
        .iter()
        .map(|n| format!("`{prefix}{n}`"))
        .collect();
    let required = match field.presence {
        Presence::Optional => "no".to_string(),
        Presence::Required => "yes".to_string(),
        Presence::RequiredUnless(others) => format!("unless `{}`", others.join("`, `")),
    };
    out.push_str(&format!(
        "| {} | {} | {required} | {} |\n",
        names.join(" or "),
        kind(field.kind),
        field.description
    ));
    if let Kind::List { item, .. } = field.kind {
        for sub in item {
            row(out, &format!("{prefix}{}[].", field.name()), sub);
        }
    }
}

fn kind(kind: Kind) -> String {
    match kind {
        Kind::Text {
            max_chars,
            format,
            default,
        } => {
            let form = match format {
                Format::Plain => String::new(),
                Format::OneOf(words) => format!(", one of `{}`", words.join("`, `")),
                Format::HeaderLine => ", one line".to_string(),
                Format::Email => ", an e-mail address".to_string(),
                Format::HttpUrl => ", an http(s) URL".to_string(),
            };
            let default = default.map_or(String::new(), |d| format!(", default `{d}`"));
            format!("text, 1–{max_chars} characters{form}{default}")
        }
        Kind::Integer { min, max, default } => {
            let max = if max == i64::MAX {
                "…".to_string()
            } else {
                max.to_string()
            };
            let default = default.map_or(String::new(), |d| format!(", default {d}"));
            format!("integer, {min}–{max}{default}")
        }
        Kind::Number { min, max, default } => {
            let default = default.map_or(String::new(), |d| format!(", default {d}"));
            format!("number, {min}–{max}{default}")
        }
        Kind::TextMap => "object of text values".to_string(),
        Kind::List {
            min_items,
            max_items,
            ..
        } => format!("list of {min_items}–{max_items} objects"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_docs_list_the_catalog() {
        crate::generated_docs::assert_current(
            "docs/tools.md",
            "tools",
            "wire/src/catalog",
            &super::docs_tables(),
        );
    }
}
