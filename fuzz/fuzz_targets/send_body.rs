//! The send endpoints' input path: the body extractor (`http::body::json_object`) and then the
//! field reading both send handlers do (`input::Fields`), on any bytes under a few Content-Types.
//! No panic; the extractor accepts exactly JSON objects of at most 64 KiB sent as JSON; and whenever `finish`
//! passes, the required fields are present — what the handlers' `unreachable!` relies on.
#![no_main]

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use waygate::http::body::json_object;
use waygate::http::error::MAX_BODY_BYTES;
use waygate::input::Fields;
use waygate_core::phone::E164;

const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "Application/Problem+JSON; charset=utf-8",
    "text/plain",
    "application/jsonx",
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// `send_template`'s field reading; Some when it would reach the service.
fn template_fields(object: &Map<String, Value>) -> Option<()> {
    let mut f = Fields::new(object);
    let sender_id = f.int("sender_id");
    let template_id = f.int("template_id");
    let phone = f.string("recipient_phone", 64);
    let _ = f.opt_string("recipient_name", 255);
    let _ = f.opt_object("variables");
    f.finish().ok()?;
    assert!(sender_id.is_some() && template_id.is_some(), "{object:?}");
    let _ = E164::parse(&phone.unwrap_or_default());
    Some(())
}

/// `send_freeform`'s field reading.
fn freeform_fields(object: &Map<String, Value>) -> Option<()> {
    let mut f = Fields::new(object);
    let sender_id = f.int("sender_id");
    let phone = f.string("recipient_phone", 64);
    let message = f.string("message", 4096);
    f.finish().ok()?;
    assert!(sender_id.is_some() && message.is_some(), "{object:?}");
    assert!(message.is_some_and(|m| !m.trim().is_empty() && m.chars().count() <= 4096));
    let _ = E164::parse(&phone.unwrap_or_default());
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let parsed = runtime().block_on(json_object(&headers, Body::from(body.to_vec())));

    let is_json_type = selector % 4 < 2;
    let is_object = matches!(serde_json::from_slice(body), Ok(Value::Object(_)));
    let fits = body.len() <= MAX_BODY_BYTES;
    assert_eq!(
        parsed.is_ok(),
        is_json_type && is_object && fits,
        "{content_type}"
    );
    if let Ok(object) = parsed {
        let _ = template_fields(&object);
        let _ = freeform_fields(&object);
    }
});
