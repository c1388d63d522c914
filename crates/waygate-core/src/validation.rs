//! Field-level validation errors, shaped like the API's `errors` object
//! (`{"field": ["message", ...]}`), so handlers can collect every problem before answering.

use std::collections::BTreeMap;

/// Messages per field. A `BTreeMap` keeps the serialised order stable for clients and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one more message for `field`; earlier messages for it are kept.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Folds in errors found by another check, appending messages for shared fields.
    pub fn merge(&mut self, other: FieldErrors) {
        for (field, messages) in other.0 {
            self.0.entry(field).or_default().extend(messages);
        }
    }

    /// Names of the fields that have errors, in sorted order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Shorthand for the common case of exactly one problem.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_is_empty_and_serialises_as_empty_object() {
        let errors = FieldErrors::new();
        assert!(errors.is_empty());
        assert_eq!(serde_json::to_value(&errors).unwrap(), json!({}));
    }

    #[test]
    fn add_appends_messages_per_field() {
        let mut errors = FieldErrors::new();
        errors.add("status", "is invalid");
        errors.add("status", "is required");
        errors.add("amount", "must be greater than zero");
        assert!(!errors.is_empty());
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            json!({
                "amount": ["must be greater than zero"],
                "status": ["is invalid", "is required"]
            })
        );
    }

    #[test]
    fn fields_lists_names_in_sorted_order() {
        let mut errors = FieldErrors::single("b", "x");
        errors.add("a", "y");
        assert_eq!(errors.fields().collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn merge_combines_fields_and_keeps_order_of_messages() {
        let mut first = FieldErrors::single("a", "one");
        let mut second = FieldErrors::single("a", "two");
        second.add("b", "three");
        first.merge(second);
        assert_eq!(
            serde_json::to_value(&first).unwrap(),
            json!({"a": ["one", "two"], "b": ["three"]})
        );
    }

    #[test]
    fn merge_of_empty_changes_nothing() {
        let mut errors = FieldErrors::single("a", "one");
        errors.merge(FieldErrors::new());
        assert_eq!(errors, FieldErrors::single("a", "one"));
    }
}
