//! The JSON bodies of the Content API (§4): a template to create and an approval to submit, checked
//! against the schema's required fields, closed type objects and limits.

use serde_json::{Map, Value};

use crate::content::{NewApproval, NewContent};
use crate::errors::ApiError;
use crate::json_body::{invalid, object, only, required, string};

const MAX_BODY_CHARS: usize = 1600;
const MAX_VARIABLES: usize = 100;
const MAX_VARIABLE_KEY_CHARS: usize = 16;
const CATEGORIES: [&str; 3] = ["MARKETING", "UTILITY", "AUTHENTICATION"];
const CALL_TO_ACTION_TYPES: [&str; 5] = [
    "URL",
    "PHONE_NUMBER",
    "COPY_CODE",
    "VOICE_CALL",
    "VOICE_CALL_REQUEST",
];
/// Types the fake accepts without looking inside.
const OTHER_TYPES: [&str; 11] = [
    "twilio/media",
    "twilio/card",
    "whatsapp/card",
    "whatsapp/authentication",
    "twilio/list-picker",
    "twilio/location",
    "twilio/catalog",
    "twilio/carousel",
    "twilio/flows",
    "twilio/schedule",
    "whatsapp/flows",
];

/// `POST /v1/Content`: `language` and `types` required, `friendly_name` and `variables` optional.
pub(crate) fn parse_content(body: &[u8]) -> Result<NewContent, ApiError> {
    let fields = object(body)?;
    only(
        &fields,
        &["friendly_name", "language", "variables", "types"],
        "the content",
    )?;
    let language = required(&fields, "language")?.to_string();
    let friendly_name = string(&fields, "friendly_name")?.unwrap_or("").to_string();
    let variables = match fields.get("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(vars)) => {
            check_variables(vars)?;
            vars.clone()
        }
        Some(_) => return Err(invalid("variables must be an object")),
    };
    let types = match fields.get("types") {
        Some(Value::Object(types)) if !types.is_empty() => types.clone(),
        _ => {
            return Err(invalid(
                "Invalid types. At least one content type definition is required",
            ))
        }
    };
    for (name, definition) in &types {
        check_type(name, definition)?;
    }
    Ok(NewContent {
        friendly_name,
        language,
        variables,
        types,
    })
}

fn check_variables(vars: &Map<String, Value>) -> Result<(), ApiError> {
    if vars.len() > MAX_VARIABLES {
        return Err(invalid(format!("At most {MAX_VARIABLES} variables")));
    }
    for (key, value) in vars {
        let key_ok = !key.is_empty()
            && key.chars().count() <= MAX_VARIABLE_KEY_CHARS
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !key_ok {
            return Err(invalid(format!("Invalid variable name {key}")));
        }
        if !value.is_string() {
            return Err(invalid(format!("Variable {key} must be a string")));
        }
    }
    Ok(())
}

/// Checks one entry of `types`: a known type, and for text, quick-reply and call-to-action, its
/// closed set of fields.
fn check_type(name: &str, definition: &Value) -> Result<(), ApiError> {
    let Value::Object(fields) = definition else {
        return Err(invalid(format!("{name} must be an object")));
    };
    let (allowed, action_fields, action_types): (&[&str], &[&str], Option<&[&str]>) = match name {
        "twilio/text" => (&["body"], &[], None),
        "twilio/quick-reply" => (&["body", "actions"], &["type", "title", "id"], None),
        "twilio/call-to-action" => (
            &["body", "actions"],
            &["type", "title", "url", "phone", "code", "id"],
            Some(&CALL_TO_ACTION_TYPES),
        ),
        _ if OTHER_TYPES.contains(&name) => return Ok(()),
        _ => return Err(invalid(format!("Unknown content type {name}"))),
    };
    only(fields, allowed, name)?;
    let body = required(fields, "body").map_err(|_| invalid(format!("{name} needs a body")))?;
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(invalid(format!(
            "{name} body exceeds {MAX_BODY_CHARS} characters"
        )));
    }
    if allowed.contains(&"actions") {
        let actions = match fields.get("actions") {
            Some(Value::Array(actions)) if !actions.is_empty() => actions,
            _ => return Err(invalid(format!("{name} needs actions"))),
        };
        for action in actions {
            check_action(name, action, action_fields, action_types)?;
        }
    }
    Ok(())
}

/// A quick-reply action may omit its type (it can only be `QUICK_REPLY`); a call to action may not.
fn check_action(
    name: &str,
    action: &Value,
    allowed: &[&str],
    types: Option<&[&str]>,
) -> Result<(), ApiError> {
    let Value::Object(fields) = action else {
        return Err(invalid(format!("{name} actions must be objects")));
    };
    only(fields, allowed, &format!("{name} action"))?;
    required(fields, "title").map_err(|_| invalid(format!("{name} actions need a title")))?;
    let kind = string(fields, "type")?;
    let kind_ok = match types {
        Some(types) => kind.is_some_and(|k| types.contains(&k)),
        None => kind.is_none_or(|k| k == "QUICK_REPLY"),
    };
    if !kind_ok {
        return Err(invalid(format!(
            "Invalid action type {} in {name}",
            kind.unwrap_or("(none)")
        )));
    }
    Ok(())
}

/// `POST /v1/Content/{HX…}/ApprovalRequests/whatsapp`: `name` (Meta's rule: lower-case letters,
/// digits, underscores) and `category` required; `allow_category_change` defaults to true.
pub(crate) fn parse_approval(body: &[u8]) -> Result<NewApproval, ApiError> {
    let fields = object(body)?;
    only(
        &fields,
        &["name", "category", "allow_category_change"],
        "the approval request",
    )?;
    let name = required(&fields, "name")?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid(format!(
            "Invalid name {name}: only lower-case letters, digits and underscores"
        )));
    }
    let category = required(&fields, "category")?;
    if !CATEGORIES.contains(&category) {
        return Err(invalid(format!("Invalid category {category}")));
    }
    let allow_category_change = match fields.get("allow_category_change") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(allow)) => *allow,
        Some(_) => return Err(invalid("allow_category_change must be a boolean")),
    };
    Ok(NewApproval {
        name: name.to_string(),
        category: category.to_string(),
        allow_category_change,
    })
}
