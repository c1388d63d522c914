//! The send request body (§6.1), parsed into what the fake acts on or refused with Meta's
//! 400/100 naming the bad parameter.

use serde_json::Value;

use crate::errors::GraphError;

/// Meta's limit on `biz_opaque_callback_data`.
const MAX_CALLBACK_DATA: usize = 512;
/// Meta's limit on a text message body.
const MAX_TEXT: usize = 4096;

/// A template send as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TemplateSend {
    pub name: String,
    /// `language.code`, e.g. `en_US`.
    pub language: String,
    /// The `text` of each parameter of the `body` component, in order.
    pub body_parameters: Vec<String>,
}

/// What a send asks to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    Template(TemplateSend),
    Text(String),
}

#[derive(Clone, Debug)]
pub(crate) struct SendRequest {
    /// The recipient's digits, without `+`.
    pub(crate) to: String,
    /// `to` exactly as given (echoed as `contacts[].input`).
    pub(crate) input: String,
    pub(crate) content: Content,
    pub(crate) biz_opaque_callback_data: Option<String>,
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

pub(crate) fn parse(body: &[u8]) -> Result<SendRequest, GraphError> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| GraphError::invalid(format!("The request body is not valid JSON: {e}")))?;
    if text(&json, "/messaging_product") != Some("whatsapp") {
        return Err(GraphError::invalid(
            "The parameter messaging_product is required and must be \"whatsapp\".",
        ));
    }
    let input =
        text(&json, "/to").ok_or_else(|| GraphError::invalid("The parameter to is required."))?;
    let to = recipient(input)?;
    let biz_opaque_callback_data = match json.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(data)) if data.len() <= MAX_CALLBACK_DATA => Some(data.clone()),
        Some(_) => {
            return Err(GraphError::invalid(
                "biz_opaque_callback_data must be a string of at most 512 characters.",
            ))
        }
    };
    let content = match text(&json, "/type").unwrap_or("text") {
        "template" => Content::Template(template(&json)?),
        "text" => {
            let body = text(&json, "/text/body")
                .filter(|b| !b.is_empty() && b.chars().count() <= MAX_TEXT)
                .ok_or_else(|| {
                    GraphError::invalid("text.body is required, 1 to 4096 characters.")
                })?;
            Content::Text(body.to_string())
        }
        other => {
            return Err(GraphError::invalid(format!(
                "Param type must be one of {{template, text}} in this fake, not {other}."
            )))
        }
    };
    Ok(SendRequest {
        to,
        input: input.to_string(),
        content,
        biz_opaque_callback_data,
    })
}

/// A phone number: digits with an optional leading `+`, 7 to 15 digits.
fn recipient(to: &str) -> Result<String, GraphError> {
    let digits = to.strip_prefix('+').unwrap_or(to);
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits.to_string())
    } else {
        Err(GraphError::invalid(format!(
            "The parameter to is not a valid phone number: {to}"
        )))
    }
}

fn template(json: &Value) -> Result<TemplateSend, GraphError> {
    let name = text(json, "/template/name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| GraphError::invalid("template.name is required."))?;
    let language = text(json, "/template/language/code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| GraphError::invalid("template.language.code is required."))?;
    let components = match json.pointer("/template/components") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(components)) => components.as_slice(),
        Some(_) => return Err(GraphError::invalid("template.components must be an array.")),
    };
    let mut body_parameters = Vec::new();
    for component in components {
        if text(component, "/type").is_none_or(|t| !t.eq_ignore_ascii_case("body")) {
            // Header and button parameters are accepted as they come.
            continue;
        }
        let parameters = component
            .get("parameters")
            .and_then(Value::as_array)
            .ok_or_else(|| GraphError::invalid("A body component needs parameters."))?;
        for parameter in parameters {
            match (text(parameter, "/type"), text(parameter, "/text")) {
                (Some("text"), Some(value)) => body_parameters.push(value.to_string()),
                _ => {
                    return Err(GraphError::invalid(
                        "Body parameters must be {\"type\":\"text\",\"text\":…}.",
                    ))
                }
            }
        }
    }
    Ok(TemplateSend {
        name: name.to_string(),
        language: language.to_string(),
        body_parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_body_parameters_are_collected_in_order() {
        let body = br#"{"messaging_product":"whatsapp","to":"+15551234567","type":"template",
            "biz_opaque_callback_data":"msg-1",
            "template":{"name":"order_update","language":{"policy":"deterministic","code":"en_US"},
              "components":[{"type":"header","parameters":[{"type":"image","image":{"link":"x"}}]},
                {"type":"body","parameters":[{"type":"text","text":"Ada"},{"type":"text","text":"12345"}]}]}}"#;
        let req = parse(body).unwrap();
        assert_eq!(req.to, "15551234567");
        assert_eq!(req.input, "+15551234567");
        assert_eq!(req.biz_opaque_callback_data.as_deref(), Some("msg-1"));
        assert_eq!(
            req.content,
            Content::Template(TemplateSend {
                name: "order_update".into(),
                language: "en_US".into(),
                body_parameters: vec!["Ada".into(), "12345".into()],
            })
        );
    }

    #[test]
    fn bad_recipients_and_products_are_refused() {
        for body in [
            &br#"{"messaging_product":"whatsapp","to":"12ab","type":"text","text":{"body":"hi"}}"#[..],
            br#"{"messaging_product":"sms","to":"15551234567","type":"text","text":{"body":"hi"}}"#,
            br#"{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":""}}"#,
            br#"{"messaging_product":"whatsapp","to":"15551234567","type":"audio"}"#,
            b"not json",
        ] {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }
}
