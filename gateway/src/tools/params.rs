//! Reading an action's parameters: typed fields with bounds, accepting the alternative
//! names the original gateway's clients use, and collecting every problem at once.

use serde_json::{Map, Value};

/// Reads fields out of a parameters object, remembering every problem.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    problems: Vec<String>,
}

/// An empty object, for parameters that are not an object.
static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Fields<'a> {
    /// Starts reading `params`, which must be a JSON object.
    pub fn of(params: &'a Value) -> Self {
        match params.as_object() {
            Some(map) => Self {
                map,
                problems: Vec::new(),
            },
            None => Self {
                map: &EMPTY,
                problems: vec!["params: must be an object".into()],
            },
        }
    }

    fn first(&self, names: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        names
            .iter()
            .find_map(|n| self.map.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
    }

    /// Records a problem.
    pub fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// A required string under any of `names` (the first present wins), 1 to `max_chars`
    /// characters.
    pub fn required_str(&mut self, names: &[&'static str], max_chars: usize) -> String {
        match self.optional_str(names, max_chars) {
            Some(s) => s,
            None => {
                if self.first(names).is_none() {
                    self.problems
                        .push(format!("{}: required", names.join(" or ")));
                }
                String::new()
            }
        }
    }

    /// An optional string under any of `names`, 1 to `max_chars` characters.
    pub fn optional_str(&mut self, names: &[&'static str], max_chars: usize) -> Option<String> {
        let (name, value) = self.first(names)?;
        match value.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= max_chars => Some(s.to_string()),
            Some(_) => {
                self.problems
                    .push(format!("{name}: must be 1 to {max_chars} characters"));
                None
            }
            None => {
                self.problems.push(format!("{name}: must be a string"));
                None
            }
        }
    }

    /// An optional integer in `min..=max`.
    pub fn optional_int(&mut self, name: &'static str, min: i64, max: i64) -> Option<i64> {
        let (_, value) = self.first(&[name])?;
        match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problems
                    .push(format!("{name}: must be an integer from {min} to {max}"));
                None
            }
        }
    }

    /// An optional number in `min..=max`.
    pub fn optional_number(&mut self, name: &'static str, min: f64, max: f64) -> Option<f64> {
        let (_, value) = self.first(&[name])?;
        match value.as_f64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problems
                    .push(format!("{name}: must be a number from {min} to {max}"));
                None
            }
        }
    }

    /// The raw value under `name`, if present.
    pub fn raw(&self, name: &'static str) -> Option<&'a Value> {
        self.first(&[name]).map(|(_, v)| v)
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
    use serde_json::json;

    #[test]
    fn takes_the_first_present_alternative_name() {
        let params = json!({"query": "rust"});
        let mut f = Fields::of(&params);
        assert_eq!(f.required_str(&["q", "query"], 10), "rust");
        assert!(f.finish(()).is_ok());
    }

    #[test]
    fn collects_every_problem() {
        let params = json!({"q": "", "num": 500});
        let mut f = Fields::of(&params);
        f.required_str(&["q", "query"], 10);
        f.optional_int("num", 1, 100);
        f.required_str(&["to"], 10);
        let problems = f.finish(()).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[2].contains("to: required"));
    }

    #[test]
    fn refuses_non_objects() {
        let params = json!([1]);
        let f = Fields::of(&params);
        assert_eq!(f.finish(()).unwrap_err(), ["params: must be an object"]);
    }
}
