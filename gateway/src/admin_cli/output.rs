//! How a command prints an answer: the server's JSON for scripts (`--json`), or a table of
//! chosen fields for people.

use serde_json::Value;
use std::io::Write;

/// Prints `value` as indented JSON.
pub fn json(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Prints `rows` (JSON objects) as a table of `columns`: (header, field name). A missing
/// field prints `-`; text is never cut.
pub fn table(rows: &[Value], columns: &[(&str, &str)]) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|(_, field)| cell(row.get(*field)))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (header, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line(columns.iter().map(|(h, _)| *h).collect()));
    for row in &cells {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// Prints the fields of one object, one per line.
pub fn fields(value: &Value, names: &[(&str, &str)]) {
    let width = names
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (label, field) in names {
        let _ = writeln!(out, "{label:<width$}  {}", cell(value.get(*field)));
    }
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| cell(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::cell;
    use serde_json::json;

    #[test]
    fn cells_print_text_lists_and_absence_plainly() {
        assert_eq!(cell(Some(&json!("a"))), "a");
        assert_eq!(cell(Some(&json!(["serpapi", "openai"]))), "serpapi,openai");
        assert_eq!(cell(Some(&json!(null))), "-");
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&json!(3))), "3");
    }
}
