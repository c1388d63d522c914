//! Typed access to the fields of a JSON object (request bodies, CLI arguments), collecting
//! every field error so that one VALIDATION_ERROR names them all.

use serde_json::{Map, Value};
use waygate_core::validation::FieldErrors;

use crate::service::ServiceError;

/// Typed access to an object's fields; every problem is recorded, then `finish` reports all.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Fields {
            map,
            errors: FieldErrors::new(),
        }
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A required field's value. Its one invariant: `None` only with an error recorded for
    /// `name` (a blank or null value counts as missing), so `finish_with` always names it.
    fn required<T>(&mut self, name: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.errors.fields().any(|f| f == name) {
            self.errors
                .add(name, format!("The {name} field is required."));
        }
        value
    }

    /// An integer id; numeric strings are accepted as clients of the portal send them.
    pub fn opt_int(&mut self, name: &str) -> Option<i64> {
        let value = self.present(name)?;
        let parsed = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.errors
                .add(name, format!("The {name} field must be an integer."));
        }
        parsed
    }

    pub fn int(&mut self, name: &str) -> Option<i64> {
        let v = self.opt_int(name);
        self.required(name, v)
    }

    /// A string of at most `max_chars` characters; empty after trimming counts as missing.
    pub fn opt_string(&mut self, name: &str, max_chars: usize) -> Option<String> {
        let value = self.present(name)?;
        let Value::String(s) = value else {
            self.errors
                .add(name, format!("The {name} field must be a string."));
            return None;
        };
        if s.trim().is_empty() {
            return None;
        }
        if s.chars().count() > max_chars {
            self.errors.add(
                name,
                format!("The {name} field must not be greater than {max_chars} characters."),
            );
            return None;
        }
        Some(s.clone())
    }

    pub fn string(&mut self, name: &str, max_chars: usize) -> Option<String> {
        let v = self.opt_string(name, max_chars);
        self.required(name, v)
    }

    pub fn opt_bool(&mut self, name: &str) -> Option<bool> {
        match self.present(name)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.errors
                    .add(name, format!("The {name} field must be true or false."));
                None
            }
        }
    }

    pub fn opt_object(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.present(name)? {
            Value::Object(m) => Some(m.clone()),
            _ => {
                self.errors
                    .add(name, format!("The {name} field must be an object."));
                None
            }
        }
    }

    pub fn opt_string_list(&mut self, name: &str) -> Option<Vec<String>> {
        let Value::Array(items) = self.present(name)? else {
            self.errors.add(
                name,
                format!("The {name} field must be an array of strings."),
            );
            return None;
        };
        let strings: Option<Vec<String>> = items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect();
        if strings.is_none() {
            self.errors.add(
                name,
                format!("The {name} field must be an array of strings."),
            );
        }
        strings
    }

    pub fn string_list(&mut self, name: &str) -> Option<Vec<String>> {
        let v = self.opt_string_list(name);
        self.required(name, v)
    }

    /// Whether the field is present at all (even as null), for PATCH semantics.
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A value from a closed set, e.g. a status.
    pub fn opt_choice<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        choices: &str,
    ) -> Option<T> {
        let text = self.opt_string(name, 64)?;
        let parsed = parse(&text);
        if parsed.is_none() {
            self.errors
                .add(name, format!("The {name} field must be one of: {choices}."));
        }
        parsed
    }

    pub fn choice<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        choices: &str,
    ) -> Option<T> {
        let v = self.opt_choice(name, parse, choices);
        self.required(name, v)
    }

    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.add(name, message);
    }

    /// Every error seen, as one VALIDATION_ERROR.
    pub fn finish(self) -> Result<(), ServiceError> {
        self.finish_with(())
    }

    /// Every error seen as one VALIDATION_ERROR; otherwise the required values, unwrapped.
    /// `required` makes a missing value without an error impossible; were it to happen, the
    /// answer is still a refusal, never a panic.
    pub fn finish_with<T: Required>(self, values: T) -> Result<T::Present, ServiceError> {
        match values.present() {
            Some(values) if self.errors.is_empty() => Ok(values),
            _ => Err(ServiceError::Validation(self.errors)),
        }
    }
}

/// A tuple of required fields' values, each an `Option`: all of them, or none.
pub trait Required {
    type Present;
    fn present(self) -> Option<Self::Present>;
}

macro_rules! required_tuple {
    ($($t:ident),*) => {
        impl<$($t),*> Required for ($(Option<$t>,)*) {
            type Present = ($($t,)*);
            #[allow(non_snake_case)]
            fn present(self) -> Option<Self::Present> {
                let ($($t,)*) = self;
                Some(($($t?,)*))
            }
        }
    };
}

required_tuple!();
required_tuple!(A, B);
required_tuple!(A, B, C);
required_tuple!(A, B, C, D, E);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: serde_json::Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    /// A required accessor reading the field `f`: whether it gave a value.
    type Read = fn(&mut Fields<'_>) -> bool;

    const ACCESSORS: [(&str, Read); 4] = [
        ("int", |f| f.int("f").is_some()),
        ("string", |f| f.string("f", 8).is_some()),
        ("string_list", |f| f.string_list("f").is_some()),
        ("choice", |f| {
            f.choice("f", |s| (s == "a").then_some(()), "a").is_some()
        }),
    ];

    #[test]
    fn every_required_accessor_names_a_missing_blank_null_or_mistyped_field() {
        for value in [
            json!({}),
            json!({"f": null}),
            json!({"f": ""}),
            json!({"f": "  "}),
            json!({"f": {}}),
            json!({"f": [1]}),
        ] {
            let body = object(value.clone());
            for (name, read) in ACCESSORS {
                let mut f = Fields::new(&body);
                assert!(!read(&mut f), "{name} {value}");
                match f.finish() {
                    Err(ServiceError::Validation(errors)) => {
                        assert_eq!(errors.fields().collect::<Vec<_>>(), ["f"], "{name} {value}")
                    }
                    other => panic!("{name} {value}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn present_values_come_back_unwrapped() {
        let body = object(json!({"a": 7, "b": "x"}));
        let mut f = Fields::new(&body);
        let values = (f.int("a"), f.string("b", 8));
        assert_eq!(f.finish_with(values).ok(), Some((7, "x".to_string())));
    }
}
