//! The error answers every operation of a kind gives, added to the generated document so that
//! no handler's attribute can leave one out: 408 on every operation (`request_timeout_ms`),
//! 401 wherever a key or token is required (every operation that does not declare
//! `security(())`), and 400, 413 and 422 wherever a JSON body is read (`body::json_object`).

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};

/// Status, and what it means here.
const ANY: [(&str, &str); 1] = [(
    "408",
    "REQUEST_TIMEOUT: the request was not received and answered within request_timeout_ms",
)];
const AUTHENTICATED: [(&str, &str); 1] = [(
    "401",
    "UNAUTHENTICATED: the key or token is missing, unknown or revoked",
)];
const JSON_BODY: [(&str, &str); 3] = [
    (
        "400",
        "INVALID_JSON: the body is not a JSON object, or the Content-Type is not JSON",
    ),
    ("413", "PAYLOAD_TOO_LARGE: the body is over 64 KiB"),
    (
        "422",
        "VALIDATION_ERROR: fields that break their rules, by name",
    ),
];

pub fn add(doc: &mut OpenApi) {
    let public = [SecurityRequirement::default()];
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            answer(operation, &ANY);
            if operation.security.as_deref() != Some(&public[..]) {
                answer(operation, &AUTHENTICATED);
            }
            let reads_json = operation
                .request_body
                .as_ref()
                .is_some_and(|body| body.content.contains_key("application/json"));
            if reads_json {
                answer(operation, &JSON_BODY);
            }
        }
    }
}

/// Adds each answer the operation does not describe yet, with the error envelope.
fn answer(operation: &mut Operation, answers: &[(&str, &str)]) {
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(*description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build()
                    .into()
            });
    }
}
