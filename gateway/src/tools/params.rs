//! Reading an action's parameters once they are checked: the catalog's [`Param`] list of
//! the action says what is valid ([`params::problems`]), and a tool reads its typed fields
//! through the same constants, so it never checks a bound of its own.

use crate::catalog::params::{self, Kind, Param};
use crate::catalog::ActionSpec;
use serde_json::{Map, Value};

/// The parameters of one call, checked against its action's catalog entry.
pub struct Fields<'a> {
    map: Option<&'a Map<String, Value>>,
    problems: Vec<String>,
}

impl<'a> Fields<'a> {
    /// Checks `params` as the parameters of `action`, remembering every problem.
    pub fn of(action: &ActionSpec, params: &'a Value) -> Self {
        Self {
            map: params.as_object(),
            problems: params::problems(action.params, params),
        }
    }

    /// The value of `field`, if present (and not `null`).
    pub fn raw(&self, field: &Param) -> Option<&'a Value> {
        field.find(self.map?).map(|(_, v)| v)
    }

    /// A text field (empty when absent or invalid: then a problem says so).
    pub fn text(&self, field: &Param) -> String {
        self.optional_text(field)
            .or_else(|| match field.kind {
                Kind::Text { default, .. } => default.map(str::to_string),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// An optional text field.
    pub fn optional_text(&self, field: &Param) -> Option<String> {
        self.raw(field).and_then(Value::as_str).map(str::to_string)
    }

    /// An integer field, as given.
    pub fn int(&self, field: &Param) -> Option<i64> {
        self.raw(field).and_then(params::whole_number)
    }

    /// An integer field, or the catalog's default for it.
    pub fn int_or_default(&self, field: &Param) -> Option<i64> {
        match (self.int(field), field.kind) {
            (Some(n), _) => Some(n),
            (None, Kind::Integer { default, .. }) => default,
            (None, _) => None,
        }
    }

    /// A number field, as given (its default applies where the upstream needs one).
    pub fn number(&self, field: &Param) -> Option<f64> {
        self.raw(field).and_then(Value::as_f64)
    }

    /// Records a problem the catalog cannot express.
    pub fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// The parsed value, or every problem found.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<String>> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(self.problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{params::serpapi, ToolName};
    use serde_json::json;

    #[test]
    fn reads_the_first_present_name_and_defaults() {
        let search = crate::catalog::find(ToolName::Serpapi, "search").unwrap();
        let params = json!({"query": "rust", "q": null});
        let f = Fields::of(search, &params);
        assert_eq!(f.text(&serpapi::Q), "rust");
        assert_eq!(f.int(&serpapi::NUM), None);
        assert_eq!(f.int_or_default(&serpapi::NUM), Some(10));
        assert!(f.finish(()).is_ok());
    }

    #[test]
    fn keeps_the_catalogs_problems() {
        let search = crate::catalog::find(ToolName::Serpapi, "search").unwrap();
        let params = json!({"q": "", "num": 500});
        let problems = Fields::of(search, &params).finish(()).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
