//! Message templates of the business account (API.md §11): creation with WhatsApp's rules,
//! review, status changes, reads and deletion.

use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use crate::errors::GraphError;

/// A template's review status, as Graph spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateStatus {
    Pending,
    Approved,
    Rejected,
    Paused,
    Disabled,
}

impl TemplateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateStatus::Pending => "PENDING",
            TemplateStatus::Approved => "APPROVED",
            TemplateStatus::Rejected => "REJECTED",
            TemplateStatus::Paused => "PAUSED",
            TemplateStatus::Disabled => "DISABLED",
        }
    }
}

/// One template as the fake holds it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    pub status: TemplateStatus,
    /// Meta's reason for the last REJECTED/PAUSED/DISABLED decision, else None (`"NONE"`).
    pub rejected_reason: Option<String>,
    /// How many `{{n}}` placeholders the body has: a send must give as many body parameters.
    pub placeholders: usize,
    /// The components exactly as created.
    pub components: Value,
}

/// What a creation request asks for, once it passed WhatsApp's rules.
pub(crate) struct NewTemplate {
    pub(crate) name: String,
    pub(crate) language: String,
    pub(crate) category: String,
    pub(crate) placeholders: usize,
    pub(crate) components: Value,
}

const MAX_BODY: usize = 1024;
const MAX_HEADER_FOOTER: usize = 60;
const MAX_BUTTONS: usize = 10;
const MAX_BUTTON_TEXT: usize = 25;

fn field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name).and_then(Value::as_str)
}

fn length_within(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.chars().count())
}

/// Checks a `POST /{waba_id}/message_templates` body.
pub(crate) fn parse_create(body: &[u8]) -> Result<NewTemplate, GraphError> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| GraphError::invalid(format!("The request body is not valid JSON: {e}")))?;
    let name = field(&json, "name")
        .filter(|n| {
            length_within(n, 1, 512)
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .ok_or_else(|| {
            GraphError::invalid("name: 1-512 lower-case letters, digits and underscores.")
        })?;
    let language = field(&json, "language")
        .filter(|l| {
            length_within(l, 2, 15) && l.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
        })
        .ok_or_else(|| GraphError::invalid("language: a WhatsApp locale code like en_US."))?;
    let category = field(&json, "category")
        .map(str::to_ascii_uppercase)
        .filter(|c| ["MARKETING", "UTILITY", "AUTHENTICATION"].contains(&c.as_str()))
        .ok_or_else(|| GraphError::invalid("category: MARKETING, UTILITY or AUTHENTICATION."))?;
    let components = json
        .get("components")
        .and_then(Value::as_array)
        .ok_or_else(|| GraphError::invalid("components: an array is required."))?;
    let mut placeholders = None;
    for component in components {
        match field(component, "type")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("BODY") => placeholders = Some(body_component(component)?),
            Some("HEADER") => header_or_footer(component, "HEADER")?,
            Some("FOOTER") => header_or_footer(component, "FOOTER")?,
            Some("BUTTONS") => buttons(component)?,
            other => {
                return Err(GraphError::invalid(format!(
                    "components: unknown type {}",
                    other.unwrap_or("(none)")
                )))
            }
        }
    }
    let placeholders =
        placeholders.ok_or_else(|| GraphError::invalid("components: a BODY is required."))?;
    Ok(NewTemplate {
        name: name.to_string(),
        language: language.to_string(),
        category,
        placeholders,
        components: Value::Array(components.clone()),
    })
}

/// The body's text rules and its samples; returns its placeholder count.
fn body_component(component: &Value) -> Result<usize, GraphError> {
    let text = field(component, "text")
        .filter(|t| length_within(t, 1, MAX_BODY))
        .ok_or_else(|| GraphError::invalid("BODY text: 1-1024 characters."))?;
    let count = placeholders(text).ok_or_else(|| {
        GraphError::invalid("BODY text: placeholders must be {{1}}…{{n}} in order.")
    })?;
    if count > 0 {
        let samples = component
            .pointer("/example/body_text/0")
            .and_then(Value::as_array)
            .map(|samples| {
                samples
                    .iter()
                    .filter(|s| s.as_str().is_some_and(|s| !s.is_empty()))
                    .count()
            });
        if samples != Some(count) {
            return Err(GraphError::invalid(format!(
                "BODY example.body_text: {count} non-empty samples are required."
            )));
        }
    }
    Ok(count)
}

/// How many `{{n}}` a text has, or None unless they are `{{1}}`, `{{2}}`, … in order.
pub(crate) fn placeholders(text: &str) -> Option<usize> {
    let mut count = 0;
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let index: usize = after[..end].trim().parse().ok()?;
        if index != count + 1 {
            return None;
        }
        count = index;
        rest = &after[end + 2..];
    }
    Some(count)
}

fn header_or_footer(component: &Value, kind: &str) -> Result<(), GraphError> {
    let format = field(component, "format").unwrap_or("TEXT");
    if kind == "HEADER" && !format.eq_ignore_ascii_case("TEXT") {
        // Media headers carry an example handle instead of text.
        return Ok(());
    }
    field(component, "text")
        .filter(|t| length_within(t, 1, MAX_HEADER_FOOTER) && !t.contains("{{"))
        .map(|_| ())
        .ok_or_else(|| {
            GraphError::invalid(format!(
                "{kind} text: 1-60 characters without placeholders."
            ))
        })
}

fn buttons(component: &Value) -> Result<(), GraphError> {
    let buttons = component
        .get("buttons")
        .and_then(Value::as_array)
        .filter(|b| (1..=MAX_BUTTONS).contains(&b.len()))
        .ok_or_else(|| GraphError::invalid("BUTTONS: 1 to 10 buttons."))?;
    for button in buttons {
        let text_ok = field(button, "text").is_some_and(|t| length_within(t, 1, MAX_BUTTON_TEXT));
        let ok = text_ok
            && match field(button, "type")
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("QUICK_REPLY") => true,
                Some("URL") => field(button, "url").is_some_and(|u| u.starts_with("http")),
                Some("PHONE_NUMBER") => field(button, "phone_number").is_some_and(|p| {
                    let digits = p.strip_prefix('+').unwrap_or(p);
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                }),
                _ => false,
            };
        if !ok {
            return Err(GraphError::invalid(format!(
                "BUTTONS: bad button {button} (QUICK_REPLY, URL with url or PHONE_NUMBER with \
                 phone_number, text 1-25 characters)."
            )));
        }
    }
    Ok(())
}

/// The account's templates in creation order.
#[derive(Default)]
pub(crate) struct Templates(Mutex<Vec<Template>>);

impl Templates {
    fn lock(&self) -> MutexGuard<'_, Vec<Template>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a new template with this status, unless its name and language exist already.
    pub(crate) fn create(
        &self,
        id: String,
        new: NewTemplate,
        status: TemplateStatus,
    ) -> Result<Template, GraphError> {
        let mut templates = self.lock();
        if templates
            .iter()
            .any(|t| t.name == new.name && t.language == new.language)
        {
            return Err(GraphError::duplicate_template(&new.name, &new.language));
        }
        let template = Template {
            id,
            name: new.name,
            language: new.language,
            category: new.category,
            status,
            rejected_reason: None,
            placeholders: new.placeholders,
            components: new.components,
        };
        templates.push(template.clone());
        Ok(template)
    }

    pub(crate) fn all(&self) -> Vec<Template> {
        self.lock().clone()
    }

    pub(crate) fn get(&self, id: &str) -> Option<Template> {
        self.lock().iter().find(|t| t.id == id).cloned()
    }

    pub(crate) fn find(&self, name: &str, language: &str) -> Option<Template> {
        self.lock()
            .iter()
            .find(|t| t.name == name && t.language == language)
            .cloned()
    }

    /// Deletes every language of `name`, or only the one with `hsm_id` when given; returns how
    /// many went.
    pub(crate) fn delete(&self, name: &str, hsm_id: Option<&str>) -> usize {
        let mut templates = self.lock();
        let before = templates.len();
        templates.retain(|t| !(t.name == name && hsm_id.is_none_or(|id| id == t.id)));
        before - templates.len()
    }

    /// Sets a template's status (and reason); returns it changed, or None if unknown or when
    /// `only_if_pending` and it was decided meanwhile.
    pub(crate) fn set_status(
        &self,
        id: &str,
        status: TemplateStatus,
        reason: Option<String>,
        only_if_pending: bool,
    ) -> Option<Template> {
        let mut templates = self.lock();
        let template = templates.iter_mut().find(|t| t.id == id)?;
        if only_if_pending && template.status != TemplateStatus::Pending {
            return None;
        }
        template.status = status;
        template.rejected_reason = reason;
        Some(template.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_must_count_up_from_one() {
        assert_eq!(placeholders("Hello"), Some(0));
        assert_eq!(placeholders("Hi {{1}}, order {{2}} ships"), Some(2));
        assert_eq!(placeholders("Hi {{2}}"), None);
        assert_eq!(placeholders("Hi {{1}} {{1}}"), None);
        assert_eq!(placeholders("Hi {{x}}"), None);
        assert_eq!(placeholders("Hi {{1"), None);
    }

    fn create(body: &str) -> Result<NewTemplate, GraphError> {
        parse_create(body.as_bytes())
    }

    #[test]
    fn whatsapp_rules_are_enforced() {
        let ok = r#"{"name":"order_update","language":"en_US","category":"utility","components":[
            {"type":"HEADER","format":"TEXT","text":"Your order"},
            {"type":"BODY","text":"Hi {{1}}, order {{2}} ships","example":{"body_text":[["Ada","42"]]}},
            {"type":"FOOTER","text":"Thanks"},
            {"type":"BUTTONS","buttons":[{"type":"QUICK_REPLY","text":"Stop"},
              {"type":"URL","text":"Track","url":"https://example.com/t"},
              {"type":"PHONE_NUMBER","text":"Call","phone_number":"+15550001111"}]}]}"#;
        let new = create(ok).unwrap();
        assert_eq!(new.category, "UTILITY");
        assert_eq!(new.placeholders, 2);
        for bad in [
            ok.replace("order_update", "Order-Update"),
            ok.replace("utility", "promo"),
            ok.replace(r#"["Ada","42"]"#, r#"["Ada"]"#),
            ok.replace("Your order", "Your {{1}}"),
            ok.replace(
                r#""text":"Stop""#,
                r#""text":"This text is longer than twenty-five""#,
            ),
            ok.replace(r#""url":"https://example.com/t""#, r#""url":"""#),
            ok.replace("QUICK_REPLY", "COPY_CODE"),
        ] {
            assert!(create(&bad).is_err(), "{bad}");
        }
        assert!(
            create(r#"{"name":"x","language":"en","category":"UTILITY","components":[]}"#).is_err()
        );
    }
}
