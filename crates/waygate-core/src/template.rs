//! Template bodies with `{{n}}` placeholders, their variable names, and the request rules for
//! filling them in (API.md §3 "variables", following WhatsApp's parameter rules).

use std::collections::BTreeSet;
use std::ops::Range;

use serde_json::{Map, Value};

use crate::decimal::Decimal;
use crate::validation::FieldErrors;

/// WhatsApp's limit for a template body, and for the rendered message and each value.
const MAX_CHARS: usize = 1024;
/// WhatsApp refuses parameters with a longer run of spaces than this.
const MAX_SPACE_RUN: usize = 4;

/// A template body whose placeholders are known to be `{{1}}`…`{{n}}` in order of first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateBody {
    text: String,
    slots: Vec<Slot>,
    placeholder_count: usize,
}

/// One occurrence of a placeholder: where it sits in the text and which value fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    span: Range<usize>,
    index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 1024 characters")]
    TooLong,
    #[error("invalid placeholder {0}: placeholders must be {{{{1}}}}, {{{{2}}}}, … in order")]
    BadPlaceholder(String),
    #[error("placeholder {{{{{found}}}}} comes before {{{{{expected}}}}}")]
    OutOfOrder { expected: usize, found: usize },
    #[error("{0}")]
    VariableNames(String),
}

impl TemplateBody {
    /// Placeholders must be `{{1}}`…`{{n}}`, each new one the next number (a placeholder may
    /// repeat); anything else in double braces (`{{name}}`, `{{0}}`, `{{ 1 }}`) is an error.
    /// Body 1..=1024 chars, not blank.
    pub fn parse(text: &str) -> Result<TemplateBody, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        if text.chars().count() > MAX_CHARS {
            return Err(TemplateError::TooLong);
        }
        let mut slots = Vec::new();
        let mut placeholder_count = 0;
        let mut from = 0;
        while let Some(offset) = text[from..].find("{{") {
            let start = from + offset;
            let inner = start + 2;
            let Some(length) = text[inner..].find("}}") else {
                let snippet: String = text[start..].chars().take(12).collect();
                return Err(TemplateError::BadPlaceholder(snippet));
            };
            let end = inner + length + 2;
            let number = placeholder_number(&text[inner..inner + length])
                .ok_or_else(|| TemplateError::BadPlaceholder(text[start..end].to_owned()))?;
            if number == placeholder_count + 1 {
                placeholder_count = number;
            } else if number > placeholder_count {
                return Err(TemplateError::OutOfOrder {
                    expected: placeholder_count + 1,
                    found: number,
                });
            }
            slots.push(Slot {
                span: start..end,
                index: number - 1,
            });
            from = end;
        }
        Ok(TemplateBody {
            text: text.to_owned(),
            slots,
            placeholder_count,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn placeholder_count(&self) -> usize {
        self.placeholder_count
    }

    /// Where each placeholder occurrence sits in `as_str()`, in order of appearance.
    pub(crate) fn placeholder_spans(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.slots.iter().map(|slot| slot.span.clone())
    }

    /// Substitutes `values[i]` for `{{i+1}}`. Caller guarantees
    /// `values.len() == placeholder_count()`; a placeholder without a value is left as written
    /// rather than panicking.
    pub fn render(&self, values: &[String]) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut from = 0;
        for slot in &self.slots {
            out.push_str(&self.text[from..slot.span.start]);
            match values.get(slot.index) {
                Some(value) => out.push_str(value),
                None => out.push_str(&self.text[slot.span.clone()]),
            }
            from = slot.span.end;
        }
        out.push_str(&self.text[from..]);
        out
    }
}

/// `1`, `2`, … without sign, spaces or leading zeros.
fn placeholder_number(inner: &str) -> Option<usize> {
    let well_formed =
        !inner.is_empty() && !inner.starts_with('0') && inner.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| inner.parse().ok()).flatten()
}

/// The positional key of placeholder `index` (0-based): "1", "2", …
fn positional_key(index: usize) -> String {
    (index + 1).to_string()
}

/// Names for each placeholder: given names must be exactly one per placeholder, non-empty,
/// unique; None -> ["1", "2", …]. Err text is a human message for the `variables` field.
///
/// Names are trimmed. An all-digit name must be its own position ("2" may only name `{{2}}`), so
/// a request key like "2" can never mean two different placeholders.
pub fn variable_names(
    body: &TemplateBody,
    given: Option<Vec<String>>,
) -> Result<Vec<String>, TemplateError> {
    let count = body.placeholder_count();
    let Some(given) = given else {
        return Ok((0..count).map(positional_key).collect());
    };
    let invalid = |message: String| Err(TemplateError::VariableNames(message));
    if given.len() != count {
        return invalid(format!(
            "must name each of the template's {count} placeholders exactly once (got {} names)",
            given.len()
        ));
    }
    let names: Vec<String> = given.iter().map(|name| name.trim().to_owned()).collect();
    let mut seen = BTreeSet::new();
    for (index, name) in names.iter().enumerate() {
        if name.is_empty() {
            return invalid(format!("name {} must not be empty", index + 1));
        }
        if name.bytes().all(|b| b.is_ascii_digit()) && *name != positional_key(index) {
            return invalid(format!(
                "numeric name {name} must match its position ({})",
                index + 1
            ));
        }
        if !seen.insert(name.as_str()) {
            return invalid(format!("name {name} is used more than once"));
        }
    }
    Ok(names)
}

/// How a request key refers to a placeholder (0-based index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Positional(usize),
    Named(usize),
    /// Both positional and a name for the same placeholder (e.g. the default names "1", "2").
    Either(usize),
    Unknown,
}

impl Key {
    fn classify(key: &str, count: usize, names: &[String]) -> Key {
        // Written exactly as the number ("1", not "01" or "+1"), without formatting it back.
        let positional = placeholder_number(key)
            .filter(|n| (1..=count).contains(n))
            .map(|n| n - 1);
        let named = names.iter().take(count).position(|name| name == key);
        match (positional, named) {
            (Some(p), Some(n)) if p == n => Key::Either(p),
            (Some(p), _) => Key::Positional(p),
            (None, Some(n)) => Key::Named(n),
            (None, None) => Key::Unknown,
        }
    }

    fn index(self) -> Option<usize> {
        match self {
            Key::Positional(i) | Key::Named(i) | Key::Either(i) => Some(i),
            Key::Unknown => None,
        }
    }
}

/// A template filled in: the text, and the values in placeholder order (providers such as
/// Twilio take them apart from the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub values: Vec<String>,
}

/// Applies the contract's rules (API.md §3 "variables") to the request's `variables` object
/// (None = absent): keys all positional ("1".."n") or all names from `names`, never mixed; every
/// placeholder needs a value; unknown keys are errors; values are strings or numbers (numbers
/// written as decimal text, e.g. 5 -> "5", 2.5 -> "2.5"); after trimming non-empty, at most
/// 1,024 chars, no newline or tab, no run of more than 4 spaces; then the rendered body must be
/// at most 1,024 chars. Returns the rendered body, with trimmed values substituted.
///
/// Errors are keyed "variables" (missing/unknown/mixed keys, rendered too long) or
/// `"variables.<key>"` (bad value), with messages that name the missing/unknown keys.
pub fn render_with(
    body: &TemplateBody,
    names: &[String],
    variables: Option<&Map<String, Value>>,
) -> Result<Rendered, FieldErrors> {
    let count = body.placeholder_count();
    let empty = Map::new();
    let variables = variables.unwrap_or(&empty);
    let mut errors = FieldErrors::new();
    let mut values: Vec<Option<String>> = vec![None; count];
    let mut given = vec![false; count];
    let mut unknown = BTreeSet::new();
    let (mut positional, mut named) = (false, false);

    for (key, value) in variables {
        let kind = Key::classify(key, count, names);
        positional |= matches!(kind, Key::Positional(_));
        named |= matches!(kind, Key::Named(_));
        let Some(index) = kind.index() else {
            unknown.insert(key.as_str());
            continue;
        };
        given[index] = true;
        match value_text(value) {
            Ok(text) => values[index] = Some(text),
            Err(messages) => {
                for message in messages {
                    errors.add(format!("variables.{key}"), message);
                }
            }
        }
    }

    if positional && named {
        errors.add(
            "variables",
            "keys must be all positional (1, 2, …) or all variable names, not a mix",
        );
    }
    // Name missing keys the way the caller wrote the others.
    let label = |index: usize| match names.get(index) {
        Some(name) if !positional => name.clone(),
        _ => positional_key(index),
    };
    let missing: Vec<String> = (0..count).filter(|&i| !given[i]).map(label).collect();
    if !missing.is_empty() {
        errors.add(
            "variables",
            format!("missing {}", listing("value for", "values for", &missing)),
        );
    }
    if !unknown.is_empty() {
        let unknown: Vec<String> = unknown.into_iter().map(str::to_owned).collect();
        errors.add(
            "variables",
            format!(
                "unknown {} ({})",
                listing("key", "keys", &unknown),
                accepted_keys(count, names)
            ),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let values: Vec<String> = values.into_iter().map(Option::unwrap_or_default).collect();
    let rendered = body.render(&values);
    let length = rendered.chars().count();
    if length > MAX_CHARS {
        return Err(FieldErrors::single(
            "variables",
            format!("rendered message is {length} characters; at most {MAX_CHARS} are allowed"),
        ));
    }
    Ok(Rendered {
        text: rendered,
        values,
    })
}

/// "key: a" or "keys: a, b".
fn listing(singular: &str, plural: &str, items: &[String]) -> String {
    let noun = if items.len() == 1 { singular } else { plural };
    format!("{noun}: {}", items.join(", "))
}

/// What the caller could have sent, for the unknown-keys message.
fn accepted_keys(count: usize, names: &[String]) -> String {
    if count == 0 {
        return "this template takes no variables".to_owned();
    }
    let positional: Vec<String> = (0..count).map(positional_key).collect();
    let named: Vec<String> = names.iter().take(count).cloned().collect();
    if named.is_empty() || named == positional {
        format!("this template takes {}", positional.join(", "))
    } else {
        format!(
            "this template takes {} or {}",
            positional.join(", "),
            named.join(", ")
        )
    }
}

/// The trimmed text of one value, or every rule it breaks.
fn value_text(value: &Value) -> Result<String, Vec<&'static str>> {
    match value {
        Value::String(text) => parameter_text(text),
        Value::Number(number) => parameter_text(&number_text(number)),
        _ => Err(vec!["must be a string or a number"]),
    }
}

/// WhatsApp's rules for a parameter's text, shared by send variables and the sample values of a
/// submission: the trimmed text, or every rule it breaks.
pub(crate) fn parameter_text(raw: &str) -> Result<String, Vec<&'static str>> {
    let text = raw.trim();
    let mut broken = Vec::new();
    if text.is_empty() {
        broken.push("must not be empty");
    }
    if text.chars().count() > MAX_CHARS {
        broken.push("must be at most 1024 characters");
    }
    if text.contains(['\n', '\r', '\t']) {
        broken.push("must not contain newlines or tabs");
    }
    if text.contains(&" ".repeat(MAX_SPACE_RUN + 1)) {
        broken.push("must not contain more than 4 consecutive spaces");
    }
    if broken.is_empty() {
        Ok(text.to_owned())
    } else {
        Err(broken)
    }
}

/// Plain decimal text of a JSON number (serde_json prints small floats as "1e-6").
fn number_text(number: &serde_json::Number) -> String {
    let text = number.to_string();
    Decimal::parse(&text).map_or(text, |decimal| decimal.to_plain())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_text(
        body: &TemplateBody,
        names: &[String],
        variables: Option<&Map<String, Value>>,
    ) -> Result<String, FieldErrors> {
        render_with(body, names, variables).map(|r| r.text)
    }
    use serde_json::json;

    fn body(text: &str) -> TemplateBody {
        TemplateBody::parse(text).unwrap()
    }

    fn vars(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn errors_json(result: Result<String, FieldErrors>) -> Value {
        serde_json::to_value(result.unwrap_err()).unwrap()
    }

    // --- body parsing ---

    #[test]
    fn counts_placeholders_in_order() {
        let b = body("Hi {{1}}, your order {{2}} ships {{3}}.");
        assert_eq!(b.placeholder_count(), 3);
        assert_eq!(b.as_str(), "Hi {{1}}, your order {{2}} ships {{3}}.");
    }

    #[test]
    fn body_without_placeholders_has_none() {
        assert_eq!(body("Your code is ready.").placeholder_count(), 0);
        // Single braces are plain text.
        assert_eq!(body("Use {x} and }} freely").placeholder_count(), 0);
    }

    #[test]
    fn placeholders_may_repeat() {
        let b = body("{{1}} {{2}} {{1}} {{2}}");
        assert_eq!(b.placeholder_count(), 2);
        assert_eq!(b.render(&names(&["a", "b"])), "a b a b");
    }

    #[test]
    fn refuses_out_of_order_placeholders() {
        assert_eq!(
            TemplateBody::parse("{{2}}"),
            Err(TemplateError::OutOfOrder {
                expected: 1,
                found: 2
            })
        );
        assert_eq!(
            TemplateBody::parse("{{1}} {{3}} {{2}}"),
            Err(TemplateError::OutOfOrder {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn refuses_anything_else_in_double_braces() {
        for (text, bad) in [
            ("Hi {{name}}", "{{name}}"),
            ("Hi {{0}}", "{{0}}"),
            ("Hi {{ 1 }}", "{{ 1 }}"),
            ("Hi {{01}}", "{{01}}"),
            ("Hi {{}}", "{{}}"),
            ("Hi {{-1}}", "{{-1}}"),
            ("Hi {{1.5}}", "{{1.5}}"),
            ("Hi {{{1}}}", "{{{1}}"),
            (
                "Hi {{99999999999999999999999}}",
                "{{99999999999999999999999}}",
            ),
        ] {
            assert_eq!(
                TemplateBody::parse(text),
                Err(TemplateError::BadPlaceholder(bad.to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn refuses_unclosed_placeholder() {
        assert_eq!(
            TemplateBody::parse("Hi {{1"),
            Err(TemplateError::BadPlaceholder("{{1".to_owned()))
        );
    }

    #[test]
    fn body_length_limits() {
        assert_eq!(TemplateBody::parse(""), Err(TemplateError::Empty));
        assert_eq!(TemplateBody::parse(" \n\t "), Err(TemplateError::Empty));
        assert!(TemplateBody::parse("x").is_ok());
        assert!(TemplateBody::parse(&"é".repeat(1024)).is_ok());
        assert_eq!(
            TemplateBody::parse(&"é".repeat(1025)),
            Err(TemplateError::TooLong)
        );
    }

    #[test]
    fn error_messages_show_placeholders() {
        assert_eq!(
            TemplateError::OutOfOrder {
                expected: 2,
                found: 3
            }
            .to_string(),
            "placeholder {{3}} comes before {{2}}"
        );
        assert_eq!(
            TemplateError::BadPlaceholder("{{name}}".into()).to_string(),
            "invalid placeholder {{name}}: placeholders must be {{1}}, {{2}}, … in order"
        );
    }

    #[test]
    fn render_substitutes_and_keeps_unfilled_placeholders() {
        let b = body("Hello {{1}}, order {{2}}!");
        assert_eq!(b.render(&names(&["Ann", "#7"])), "Hello Ann, order #7!");
        assert_eq!(b.render(&names(&["Ann"])), "Hello Ann, order {{2}}!");
        assert_eq!(body("plain").render(&[]), "plain");
    }

    // --- variable names ---

    #[test]
    fn default_names_are_positions() {
        assert_eq!(
            variable_names(&body("{{1}} {{2}}"), None),
            Ok(names(&["1", "2"]))
        );
        assert_eq!(variable_names(&body("none"), None), Ok(vec![]));
    }

    #[test]
    fn given_names_are_trimmed_and_kept_in_order() {
        let given = names(&[" first_name ", "order_id"]);
        assert_eq!(
            variable_names(&body("{{1}} {{2}}"), Some(given)),
            Ok(names(&["first_name", "order_id"]))
        );
        assert_eq!(
            variable_names(&body("{{1}} {{2}}"), Some(names(&["1", "2"]))),
            Ok(names(&["1", "2"]))
        );
    }

    #[test]
    fn given_names_must_match_placeholder_count() {
        let Err(TemplateError::VariableNames(message)) =
            variable_names(&body("{{1}} {{2}}"), Some(names(&["a"])))
        else {
            panic!("expected an error")
        };
        assert!(
            message.contains("2 placeholders") && message.contains("got 1"),
            "{message}"
        );
        assert!(variable_names(&body("none"), Some(names(&["a"]))).is_err());
        assert_eq!(variable_names(&body("none"), Some(vec![])), Ok(vec![]));
    }

    #[test]
    fn given_names_must_be_non_empty_unique_and_unambiguous() {
        let b = body("{{1}} {{2}}");
        assert_eq!(
            variable_names(&b, Some(names(&["a", "  "]))),
            Err(TemplateError::VariableNames(
                "name 2 must not be empty".into()
            ))
        );
        assert_eq!(
            variable_names(&b, Some(names(&["a", " a"]))),
            Err(TemplateError::VariableNames(
                "name a is used more than once".into()
            ))
        );
        assert_eq!(
            variable_names(&b, Some(names(&["2", "1"]))),
            Err(TemplateError::VariableNames(
                "numeric name 2 must match its position (1)".into()
            ))
        );
        assert_eq!(
            variable_names(&b, Some(names(&["a", "7"]))),
            Err(TemplateError::VariableNames(
                "numeric name 7 must match its position (2)".into()
            ))
        );
    }

    // --- rendering requests ---

    fn order_body() -> TemplateBody {
        body("Hi {{1}}, order {{2}} is ready.")
    }

    fn order_names() -> Vec<String> {
        names(&["name", "order"])
    }

    #[test]
    fn renders_positional_keys() {
        let v = vars(json!({"1": "Ann", "2": "A-17"}));
        assert_eq!(
            render_text(&order_body(), &order_names(), Some(&v)),
            Ok("Hi Ann, order A-17 is ready.".to_owned())
        );
    }

    #[test]
    fn renders_named_keys() {
        let v = vars(json!({"order": "A-17", "name": "Ann"}));
        assert_eq!(
            render_text(&order_body(), &order_names(), Some(&v)),
            Ok("Hi Ann, order A-17 is ready.".to_owned())
        );
    }

    #[test]
    fn renders_with_default_names() {
        let b = order_body();
        let defaults = variable_names(&b, None).unwrap();
        let v = vars(json!({"1": "Ann", "2": "A-17"}));
        assert_eq!(
            render_text(&b, &defaults, Some(&v)),
            Ok("Hi Ann, order A-17 is ready.".to_owned())
        );
    }

    #[test]
    fn refuses_mixed_keys() {
        let v = vars(json!({"1": "Ann", "order": "A-17"}));
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&v))),
            json!({"variables": ["keys must be all positional (1, 2, …) or all variable names, not a mix"]})
        );
    }

    #[test]
    fn names_missing_keys_in_the_style_used() {
        let v = vars(json!({"name": "Ann"}));
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&v))),
            json!({"variables": ["missing value for: order"]})
        );
        let v = vars(json!({"2": "A-17"}));
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&v))),
            json!({"variables": ["missing value for: 1"]})
        );
    }

    #[test]
    fn absent_or_empty_variables_miss_every_placeholder() {
        let expected = json!({"variables": ["missing values for: name, order"]});
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), None)),
            expected
        );
        let empty = Map::new();
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&empty))),
            expected
        );
    }

    #[test]
    fn refuses_unknown_keys_and_says_what_is_accepted() {
        let v = vars(json!({"name": "Ann", "order": "A-17", "zip": "1", "3": "x"}));
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&v))),
            json!({"variables": ["unknown keys: 3, zip (this template takes 1, 2 or name, order)"]})
        );
        let defaults = names(&["1", "2"]);
        let v = vars(json!({"1": "Ann", "2": "A-17", "01": "x"}));
        assert_eq!(
            errors_json(render_text(&order_body(), &defaults, Some(&v))),
            json!({"variables": ["unknown key: 01 (this template takes 1, 2)"]})
        );
        let v = vars(json!({"1": "Ann", "2": "A-17", "+2": "x"}));
        assert_eq!(
            errors_json(render_text(&order_body(), &defaults, Some(&v))),
            json!({"variables": ["unknown key: +2 (this template takes 1, 2)"]})
        );
    }

    #[test]
    fn reports_missing_and_unknown_together() {
        let v = vars(json!({"nme": "Ann", "order": "A-17"}));
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&v))),
            json!({"variables": [
                "missing value for: name",
                "unknown key: nme (this template takes 1, 2 or name, order)"
            ]})
        );
    }

    #[test]
    fn numbers_are_written_as_decimal_text() {
        let b = body("{{1}}|{{2}}|{{3}}|{{4}}|{{5}}");
        let v = vars(json!({"1": 5, "2": 2.5, "3": -3, "4": 0.000001, "5": 100.0}));
        assert_eq!(
            render_text(&b, &variable_names(&b, None).unwrap(), Some(&v)),
            Ok("5|2.5|-3|0.000001|100".to_owned())
        );
    }

    #[test]
    fn refuses_values_that_are_not_strings_or_numbers() {
        let b = body("{{1}} {{2}} {{3}} {{4}}");
        let v = vars(json!({"1": true, "2": null, "3": ["a"], "4": {"a": 1}}));
        let message = json!(["must be a string or a number"]);
        assert_eq!(
            errors_json(render_text(
                &b,
                &variable_names(&b, None).unwrap(),
                Some(&v)
            )),
            json!({
                "variables.1": message,
                "variables.2": message,
                "variables.3": message,
                "variables.4": message
            })
        );
    }

    #[test]
    fn values_are_trimmed_and_must_not_be_blank() {
        let v = vars(json!({"name": "  Ann  ", "order": "\tA-17 \n"}));
        assert_eq!(
            render_text(&order_body(), &order_names(), Some(&v)),
            Ok("Hi Ann, order A-17 is ready.".to_owned())
        );
        let v = vars(json!({"name": "", "order": "   "}));
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&v))),
            json!({
                "variables.name": ["must not be empty"],
                "variables.order": ["must not be empty"]
            })
        );
    }

    #[test]
    fn refuses_newlines_and_tabs_inside_values() {
        let v = vars(json!({"name": "Ann\nMarie", "order": "A\t17"}));
        let message = json!(["must not contain newlines or tabs"]);
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&v))),
            json!({"variables.name": message, "variables.order": message})
        );
        let v = vars(json!({"name": "Ann\r\nMarie", "order": "1"}));
        assert!(render_text(&order_body(), &order_names(), Some(&v)).is_err());
    }

    #[test]
    fn allows_four_spaces_but_not_five() {
        let v = vars(json!({"name": "A    B", "order": "1"}));
        assert_eq!(
            render_text(&order_body(), &order_names(), Some(&v)),
            Ok("Hi A    B, order 1 is ready.".to_owned())
        );
        let v = vars(json!({"name": "A     B", "order": "1"}));
        assert_eq!(
            errors_json(render_text(&order_body(), &order_names(), Some(&v))),
            json!({"variables.name": ["must not contain more than 4 consecutive spaces"]})
        );
    }

    #[test]
    fn value_length_limit_counts_characters() {
        let b = body("{{1}}");
        let defaults = variable_names(&b, None).unwrap();
        let v = vars(json!({"1": "é".repeat(1024)}));
        assert_eq!(render_text(&b, &defaults, Some(&v)), Ok("é".repeat(1024)));
        let v = vars(json!({"1": "x".repeat(1025)}));
        assert_eq!(
            errors_json(render_text(&b, &defaults, Some(&v))),
            json!({"variables.1": ["must be at most 1024 characters"]})
        );
    }

    #[test]
    fn one_value_can_break_several_rules() {
        let b = body("{{1}}");
        let v = vars(json!({"1": format!("a\tb     {}", "x".repeat(1024))}));
        assert_eq!(
            errors_json(render_text(
                &b,
                &variable_names(&b, None).unwrap(),
                Some(&v)
            )),
            json!({"variables.1": [
                "must be at most 1024 characters",
                "must not contain newlines or tabs",
                "must not contain more than 4 consecutive spaces"
            ]})
        );
    }

    #[test]
    fn refuses_rendered_body_over_the_limit() {
        let b = body("{{1}} {{2}}");
        let defaults = variable_names(&b, None).unwrap();
        let v = vars(json!({"1": "x".repeat(600), "2": "y".repeat(423)}));
        assert_eq!(
            render_text(&b, &defaults, Some(&v)).map(|s| s.len()),
            Ok(1024)
        );
        let v = vars(json!({"1": "x".repeat(600), "2": "y".repeat(424)}));
        assert_eq!(
            errors_json(render_text(&b, &defaults, Some(&v))),
            json!({"variables": ["rendered message is 1025 characters; at most 1024 are allowed"]})
        );
    }

    #[test]
    fn template_without_variables_accepts_empty_or_absent() {
        let b = body("Your code is ready.");
        let v = Map::new();
        assert_eq!(
            render_text(&b, &[], Some(&v)),
            Ok("Your code is ready.".to_owned())
        );
        assert_eq!(
            render_text(&b, &[], None),
            Ok("Your code is ready.".to_owned())
        );
        let v = vars(json!({"1": "x"}));
        assert_eq!(
            errors_json(render_text(&b, &[], Some(&v))),
            json!({"variables": ["unknown key: 1 (this template takes no variables)"]})
        );
    }

    #[test]
    fn repeated_placeholder_needs_one_value() {
        let b = body("{{1}} and {{1}}");
        let v = vars(json!({"1": "x"}));
        assert_eq!(
            render_text(&b, &names(&["1"]), Some(&v)),
            Ok("x and x".to_owned())
        );
    }
}
