//! The error envelope (API.md §2): every code with its status and text, the 401 body, the rate
//! limit (§4), and the order in which the send endpoints check their rules.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const TO: &str = "+14155551234";
const OTHER: &str = "+14155551235";
const NO_SUCH_ID: i64 = 987_654_321;

const SENDER_NOT_FOUND: &str = "Sender not found or does not belong to you";
const TEMPLATE_NOT_FOUND: &str = "Template not found or does not belong to this sender";
const INSUFFICIENT_BALANCE: &str = "Insufficient balance. Please top up your account.";
const INVALID_PHONE: &str = "Invalid phone number format. Use E.164 format (e.g., +14155551234).";
const SENDER_OFFLINE: &str = "Sender is not online. Current status: Offline";
const SESSION_EXPIRED: &str =
    "The 24-hour messaging window is closed. Customer must reply first, or use a template message.";

const SEND: &str = "/api/user/whatsapp/send";
const FREEFORM: &str = "/api/user/whatsapp/send-freeform";

fn unauthenticated() -> Value {
    json!({"success": false, "message": "Unauthenticated.", "error": "Unauthenticated.",
           "error_code": "UNAUTHENTICATED"})
}

/// A server whose send rate limit does not get in the way of tests about something else.
async fn relaxed_app() -> TestApp {
    spawn_with("rate_limit_per_second = 1000\n").await
}

/// A relaxed server where freeform (`service`) messages cost 0.005 instead of nothing.
async fn priced_freeform_app() -> TestApp {
    spawn_with("rate_limit_per_second = 1000\n[rate_card.default]\nservice = 0.005\n").await
}

/// A server that allows one send per second, so that "the limit is used up" holds for a
/// whole second of real time.
async fn strict_app() -> TestApp {
    spawn_with("rate_limit_per_second = 1\n").await
}

/// Asserts the envelope: status, `success: false`, the code and a non-empty text.
fn expect_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["success"], json!(false), "{}", reply.body);
    assert_eq!(reply.body["error_code"], json!(code), "{}", reply.body);
    let text = reply.body["error"].as_str().unwrap_or_default();
    assert!(!text.trim().is_empty(), "no error text: {}", reply.body);
    // Extra fields only where the contract names them.
    let extra: &[&str] = match code {
        "UNAUTHENTICATED" => &["message"],
        "RATE_LIMITED" => &["message", "retry_after"],
        "SESSION_EXPIRED" => &["session_status"],
        "VALIDATION_ERROR" | "TEMPLATE_MISMATCH" => &["errors"],
        _ => &[],
    };
    for key in reply.body.as_object().into_iter().flat_map(|o| o.keys()) {
        assert!(
            ["success", "error", "error_code"].contains(&key.as_str())
                || extra.contains(&key.as_str()),
            "unexpected field {key}: {}",
            reply.body
        );
    }
    for key in extra {
        assert!(reply.body.get(*key).is_some(), "no {key}: {}", reply.body);
    }
}

/// The envelope with the exact text the contract gives.
fn expect_error_text(reply: &Reply, status: u16, code: &str, text: &str) {
    expect_error(reply, status, code);
    assert_eq!(reply.body["error"], json!(text), "{}", reply.body);
}

/// The fields named in a VALIDATION_ERROR / TEMPLATE_MISMATCH `errors` object, each with at
/// least one non-empty message.
fn error_fields(reply: &Reply) -> BTreeSet<String> {
    let errors = reply.body["errors"]
        .as_object()
        .unwrap_or_else(|| panic!("no errors object: {}", reply.body));
    for (field, messages) in errors {
        let messages = messages
            .as_array()
            .unwrap_or_else(|| panic!("errors.{field} is not an array: {}", reply.body));
        assert!(!messages.is_empty(), "errors.{field} is empty");
        for m in messages {
            assert!(
                m.as_str().is_some_and(|s| !s.trim().is_empty()),
                "errors.{field}: {m}"
            );
        }
    }
    errors.keys().cloned().collect()
}

fn fields(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Everything in `errors` (keys and messages) as one text, to look for names in.
fn errors_text(reply: &Reply) -> String {
    reply.body["errors"].to_string()
}

/// A request with raw headers and body bytes.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut req = app.http.request(method, format!("{}{}", app.base, path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    answer(req).await
}

fn template_body(t: &Tenant, to: &str) -> Value {
    json!({"sender_id": t.sender_id, "template_id": t.template_id, "recipient_phone": to,
           "variables": {"1": "Ada", "2": "1234"}})
}

/// A valid template send from `t`'s sender, authenticated with `key`.
async fn send_with_key(app: &TestApp, t: &Tenant, key: &str) -> Reply {
    app.post(SEND, key, template_body(t, TO)).await
}

async fn freeform(app: &TestApp, t: &Tenant, to: &str, message: &str) -> Reply {
    app.post(
        FREEFORM,
        &t.key,
        json!({"sender_id": t.sender_id, "recipient_phone": to, "message": message}),
    )
    .await
}

async fn patch_sender(app: &TestApp, sender_id: i64, patch: Value) {
    app.admin(
        Method::PATCH,
        &format!("/api/admin/senders/{sender_id}"),
        patch,
    )
    .await;
}

async fn patch_template(app: &TestApp, template_id: i64, patch: Value) {
    app.admin(
        Method::PATCH,
        &format!("/api/admin/templates/{template_id}"),
        patch,
    )
    .await;
}

/// A customer message, which opens the 24 h window.
async fn inbound(app: &TestApp, t: &Tenant, from: &str) {
    app.admin(
        Method::POST,
        "/api/admin/simulator/inbound",
        json!({"sender_id": t.sender_id, "from": from, "body": "hi"}),
    )
    .await;
}

/// A second template on the tenant's sender: "Hi {{1}}, order {{2}} shipped." with
/// variables ["customer", "order_ref"].
async fn order_template(app: &TestApp, t: &Tenant) -> i64 {
    let template = app
        .admin(
            Method::POST,
            &format!("/api/admin/senders/{}/templates", t.sender_id),
            json!({"name": "shipped", "language": "en", "category": "utility",
                   "body_text": "Hi {{1}}, order {{2}} shipped.",
                   "variables": ["customer", "order_ref"]}),
        )
        .await;
    template["id"].as_i64().unwrap()
}

/// A Twilio sender for the tenant's user with an approved template that has no provider
/// reference (no `HX…` ContentSid). Returns (sender_id, template_id).
async fn twilio_sender(app: &TestApp, t: &Tenant, template_status: &str) -> (i64, i64) {
    let sender = app
        .admin(
            Method::POST,
            &format!("/api/admin/users/{}/senders", t.user_id),
            json!({"phone_number": "+14155550111", "display_name": "Acme Twilio",
                   "provider": "twilio"}),
        )
        .await;
    let sender_id = sender["id"].as_i64().unwrap();
    let template = app
        .admin(
            Method::POST,
            &format!("/api/admin/senders/{sender_id}/templates"),
            json!({"name": "code", "language": "en", "category": "utility",
                   "body_text": "Hello {{1}}, your code is {{2}}.", "variables": ["name", "code"],
                   "status": template_status}),
        )
        .await;
    (sender_id, template["id"].as_i64().unwrap())
}

/// A new API key for `user_id`: (key id, key).
async fn new_key(app: &TestApp, user_id: i64) -> (i64, String) {
    let key = app
        .admin(
            Method::POST,
            &format!("/api/admin/users/{user_id}/api-keys"),
            json!({"name": "second"}),
        )
        .await;
    (
        key["id"].as_i64().unwrap(),
        key["key"].as_str().unwrap().to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// 401

#[tokio::test]
async fn missing_malformed_unknown_and_revoked_keys_get_the_401_body() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let (key_id, key) = new_key(&app, t.user_id).await;
    assert_eq!(app.get("/api/user/me", &key).await.status, 200);

    let bearer_key = format!("Bearer {key}");
    let basic = "Basic dXNlcjpwYXNz".to_string();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("missing", vec![]),
        ("empty bearer", vec![("authorization", "Bearer ")]),
        ("bare scheme", vec![("authorization", "Bearer")]),
        ("basic", vec![("authorization", basic.as_str())]),
        ("no scheme", vec![("authorization", key.as_str())]),
        (
            "unknown",
            vec![(
                "authorization",
                "Bearer wg_0123456789abcdef0123456789abcdef0123456789abcdef",
            )],
        ),
    ];
    for (what, headers) in &cases {
        for (method, path, body) in [
            (Method::GET, "/api/user/me", None),
            (Method::GET, "/api/user/whatsapp/senders", None),
            (
                Method::POST,
                SEND,
                Some(template_body(&t, TO).to_string().into_bytes()),
            ),
        ] {
            let mut headers = headers.clone();
            headers.push(("content-type", "application/json"));
            let reply = raw(&app, method, path, &headers, body).await;
            assert_eq!(reply.status, 401, "{what} on {path}: {}", reply.body);
            assert_eq!(reply.body, unauthenticated(), "{what} on {path}");
        }
    }

    app.admin(
        Method::DELETE,
        &format!("/api/admin/api-keys/{key_id}"),
        json!({}),
    )
    .await;
    let auth = [("authorization", bearer_key.as_str())];
    let revoked = raw(&app, Method::GET, "/api/user/me", &auth, None).await;
    assert_eq!(revoked.status, 401, "{}", revoked.body);
    assert_eq!(revoked.body, unauthenticated());
    let revoked = send_with_key(&app, &t, &key).await;
    assert_eq!(revoked.status, 401, "{}", revoked.body);
    assert_eq!(revoked.body, unauthenticated());
    // Only that key is revoked.
    assert_eq!(app.get("/api/user/me", &t.key).await.status, 200);
}

#[tokio::test]
async fn admin_endpoints_refuse_tenant_keys_wrong_and_missing_tokens() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let body = json!({"name": "Eve", "email": "eve@example.test"});
    for token in [Some(t.key.as_str()), Some("not-the-admin-token"), None] {
        for (method, path, body) in [
            (
                Method::POST,
                "/api/admin/users".to_string(),
                Some(body.clone()),
            ),
            (
                Method::PATCH,
                format!("/api/admin/senders/{}", t.sender_id),
                Some(json!({"status": "offline"})),
            ),
            (
                Method::POST,
                format!("/api/admin/users/{}/credits", t.user_id),
                Some(json!({"amount": 100, "reference": "steal"})),
            ),
        ] {
            let reply = app.request(method, &path, token, body).await;
            assert_eq!(reply.status, 401, "{token:?} {path}: {}", reply.body);
            assert_eq!(reply.body, unauthenticated(), "{token:?} {path}");
        }
    }
    // Nothing changed.
    assert!((app.balance(&t).await - 10.0).abs() < 1e-9);
    let senders = app.get("/api/user/whatsapp/senders", &t.key).await;
    assert_eq!(senders.body["data"][0]["status"], "online");
}

// ---------------------------------------------------------------------------------------------
// 404s with texts

#[tokio::test]
async fn sender_not_found_has_its_text_on_every_endpoint() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let mut body = template_body(&t, TO);
    body["sender_id"] = json!(NO_SUCH_ID);
    let reply = app.post(SEND, &t.key, body).await;
    expect_error_text(&reply, 404, "SENDER_NOT_FOUND", SENDER_NOT_FOUND);

    let reply = app
        .post(
            FREEFORM,
            &t.key,
            json!({"sender_id": NO_SUCH_ID, "recipient_phone": TO, "message": "hi"}),
        )
        .await;
    expect_error_text(&reply, 404, "SENDER_NOT_FOUND", SENDER_NOT_FOUND);

    let reply = app
        .get(
            &format!("/api/user/whatsapp/senders/{NO_SUCH_ID}/templates"),
            &t.key,
        )
        .await;
    expect_error_text(&reply, 404, "SENDER_NOT_FOUND", SENDER_NOT_FOUND);

    let reply = app
        .get(
            &format!(
                "/api/user/whatsapp/session-status?sender_id={NO_SUCH_ID}&recipient_phone=%2B14155551234"
            ),
            &t.key,
        )
        .await;
    expect_error_text(&reply, 404, "SENDER_NOT_FOUND", SENDER_NOT_FOUND);
}

#[tokio::test]
async fn template_not_found_for_unknown_templates_and_other_senders_templates() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let mut body = template_body(&t, TO);
    body["template_id"] = json!(NO_SUCH_ID);
    let reply = app.post(SEND, &t.key, body).await;
    expect_error_text(&reply, 404, "TEMPLATE_NOT_FOUND", TEMPLATE_NOT_FOUND);

    // The user's template, but attached to another of the user's senders.
    let (other_sender, _) = twilio_sender(&app, &t, "approved").await;
    let mut body = template_body(&t, TO);
    body["sender_id"] = json!(other_sender);
    let reply = app.post(SEND, &t.key, body).await;
    expect_error_text(&reply, 404, "TEMPLATE_NOT_FOUND", TEMPLATE_NOT_FOUND);
    assert!((app.balance(&t).await - 10.0).abs() < 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Money, phone, sender and template states

#[tokio::test]
async fn insufficient_balance_is_402_with_its_text_and_charges_nothing() {
    let app = priced_freeform_app().await;
    let broke = app.tenant_with_balance(0.0).await;
    let reply = app.send_template(&broke, TO).await;
    expect_error_text(&reply, 402, "INSUFFICIENT_BALANCE", INSUFFICIENT_BALANCE);

    // Below the price (utility to +1 costs 0.02) is not enough either.
    let short = app.tenant_with_balance(0.019999).await;
    let reply = app.send_template(&short, TO).await;
    expect_error_text(&reply, 402, "INSUFFICIENT_BALANCE", INSUFFICIENT_BALANCE);
    assert!((app.balance(&short).await - 0.019999).abs() < 1e-9);

    // Freeform (priced here) inside an open window with no money.
    inbound(&app, &broke, TO).await;
    let reply = freeform(&app, &broke, TO, "hello").await;
    expect_error_text(&reply, 402, "INSUFFICIENT_BALANCE", INSUFFICIENT_BALANCE);
    assert_eq!(app.balance(&broke).await, 0.0);
}

#[tokio::test]
async fn invalid_phone_has_its_text_on_both_send_endpoints() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    for phone in [
        "12345",
        "not a phone",
        "+1 415 555",
        "+1415555123a",
        "0151 12345678",
    ] {
        let reply = app.send_template(&t, phone).await;
        expect_error_text(&reply, 422, "INVALID_PHONE", INVALID_PHONE);
        let reply = freeform(&app, &t, phone, "hello").await;
        expect_error_text(&reply, 422, "INVALID_PHONE", INVALID_PHONE);
    }
    assert!((app.balance(&t).await - 10.0).abs() < 1e-9);
}

#[tokio::test]
async fn sender_offline_is_422_on_send_and_503_on_send_freeform() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    inbound(&app, &t, TO).await;
    patch_sender(&app, t.sender_id, json!({"status": "offline"})).await;

    let reply = app.send_template(&t, TO).await;
    expect_error_text(&reply, 422, "SENDER_OFFLINE", SENDER_OFFLINE);
    let reply = freeform(&app, &t, TO, "hello").await;
    expect_error_text(&reply, 503, "SENDER_OFFLINE", SENDER_OFFLINE);
    assert!((app.balance(&t).await - 10.0).abs() < 1e-9);

    patch_sender(&app, t.sender_id, json!({"status": "online"})).await;
    assert_eq!(app.send_template(&t, TO).await.status, 200);
}

#[tokio::test]
async fn template_not_approved_names_the_status() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    for status in ["pending", "rejected", "paused", "disabled"] {
        patch_template(&app, t.template_id, json!({"status": status})).await;
        let reply = app.send_template(&t, TO).await;
        expect_error_text(
            &reply,
            422,
            "TEMPLATE_NOT_APPROVED",
            &format!("Template is not approved. Current status: {status}"),
        );
    }
    assert!((app.balance(&t).await - 10.0).abs() < 1e-9);
}

#[tokio::test]
async fn template_not_synced_for_a_twilio_sender_without_a_provider_reference() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let (sender_id, template_id) = twilio_sender(&app, &t, "approved").await;
    let reply = app
        .post(
            SEND,
            &t.key,
            json!({"sender_id": sender_id, "template_id": template_id, "recipient_phone": TO,
                   "variables": {"name": "Ada", "code": "1234"}}),
        )
        .await;
    expect_error(&reply, 422, "TEMPLATE_NOT_SYNCED");
    assert!((app.balance(&t).await - 10.0).abs() < 1e-9);
}

#[tokio::test]
async fn session_expired_carries_the_session_status_of_the_pair() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let session = |to: &'static str| {
        let path = format!(
            "/api/user/whatsapp/session-status?sender_id={}&recipient_phone={}",
            t.sender_id,
            to.replace('+', "%2B")
        );
        let app = &app;
        let key = t.key.clone();
        async move {
            let reply = app.get(&path, &key).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.body["session_status"].clone()
        }
    };

    // No conversation yet.
    let reply = freeform(&app, &t, TO, "hello").await;
    expect_error_text(&reply, 403, "SESSION_EXPIRED", SESSION_EXPIRED);
    let expected = session(TO).await;
    assert_eq!(
        expected["message"],
        "No conversation exists with this recipient. Send a template message first."
    );
    assert_eq!(reply.body["session_status"], expected);

    // A conversation whose window closed.
    assert_eq!(app.send_template(&t, OTHER).await.status, 200);
    app.run_jobs().await;
    app.advance(Duration::from_secs(24 * 3600 + 60));
    app.run_jobs().await;
    let reply = freeform(&app, &t, OTHER, "hello").await;
    expect_error_text(&reply, 403, "SESSION_EXPIRED", SESSION_EXPIRED);
    let expected = session(OTHER).await;
    assert_eq!(expected["is_open"], false);
    assert!(expected["expired_at"].is_string(), "{expected}");
    assert_eq!(reply.body["session_status"], expected);
    // One template send, no freeform charge.
    assert!((app.balance(&t).await - 9.98).abs() < 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Bodies

#[tokio::test]
async fn invalid_json_for_bad_json_arrays_and_wrong_content_type() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let auth = format!("Bearer {}", t.key);
    let admin = format!("Bearer {ADMIN}");
    let valid = template_body(&t, TO).to_string();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "bad json",
            "application/json",
            b"{\"sender_id\": 1,".to_vec(),
        ),
        ("not json", "application/json", b"sender_id=1".to_vec()),
        ("array", "application/json", b"[1, 2, 3]".to_vec()),
        ("string", "application/json", b"\"hello\"".to_vec()),
        ("null", "application/json", b"null".to_vec()),
        ("empty", "application/json", Vec::new()),
        ("text/plain", "text/plain", valid.clone().into_bytes()),
        (
            "form",
            "application/x-www-form-urlencoded",
            b"sender_id=1&template_id=2".to_vec(),
        ),
    ];
    let endpoints = [
        (SEND, auth.as_str()),
        (FREEFORM, auth.as_str()),
        ("/api/user/webhooks", auth.as_str()),
        ("/api/admin/users", admin.as_str()),
    ];
    for (what, content_type, body) in &cases {
        for (path, authorization) in endpoints {
            let reply = raw(
                &app,
                Method::POST,
                path,
                &[
                    ("authorization", authorization),
                    ("content-type", content_type),
                ],
                Some(body.clone()),
            )
            .await;
            assert_eq!(reply.status, 400, "{what} on {path}: {}", reply.body);
            expect_error(&reply, 400, "INVALID_JSON");
        }
    }
    // No Content-Type at all.
    let reply = raw(
        &app,
        Method::POST,
        SEND,
        &[("authorization", auth.as_str())],
        Some(valid.into_bytes()),
    )
    .await;
    expect_error(&reply, 400, "INVALID_JSON");
    assert!((app.balance(&t).await - 10.0).abs() < 1e-9);
}

#[tokio::test]
async fn bodies_over_64_kib_are_payload_too_large() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let auth = format!("Bearer {}", t.key);
    let admin = format!("Bearer {ADMIN}");
    let json_headers = |authorization: &str| {
        vec![
            ("authorization".to_string(), authorization.to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ]
    };
    // A body of exactly `len` bytes: the freeform fields with `message` padded.
    let sized = |len: usize| {
        let head = format!(
            "{{\"sender_id\":{},\"recipient_phone\":\"{TO}\",\"message\":\"",
            t.sender_id
        );
        let pad = len - head.len() - 2;
        format!("{head}{}\"}}", "a".repeat(pad)).into_bytes()
    };
    for (path, authorization) in [
        (SEND, auth.as_str()),
        (FREEFORM, auth.as_str()),
        ("/api/user/webhooks", auth.as_str()),
        ("/api/admin/users", admin.as_str()),
    ] {
        let headers = json_headers(authorization);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = sized(64 * 1024 + 1);
        assert_eq!(body.len(), 65_537);
        let reply = raw(&app, Method::POST, path, &headers, Some(body)).await;
        expect_error(&reply, 413, "PAYLOAD_TOO_LARGE");
        let reply = raw(&app, Method::POST, path, &headers, Some(sized(200_000))).await;
        expect_error(&reply, 413, "PAYLOAD_TOO_LARGE");
    }
    // Exactly 64 KiB is not over the limit: it is read, and its 65,000-character message is a
    // field error.
    let headers = json_headers(&auth);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = sized(64 * 1024);
    assert_eq!(body.len(), 65_536);
    let reply = raw(&app, Method::POST, FREEFORM, &headers, Some(body)).await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(error_fields(&reply), fields(&["message"]));
}

#[tokio::test]
async fn validation_error_names_each_bad_field_on_the_send_endpoints() {
    let app = relaxed_app().await;
    let t = app.tenant().await;

    let reply = app.post(SEND, &t.key, json!({})).await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(
        error_fields(&reply),
        fields(&["sender_id", "template_id", "recipient_phone"])
    );

    let reply = app
        .post(
            SEND,
            &t.key,
            json!({"template_id": t.template_id, "recipient_phone": TO,
                   "variables": {"1": "Ada", "2": "1234"}}),
        )
        .await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(error_fields(&reply), fields(&["sender_id"]));

    let reply = app
        .post(
            SEND,
            &t.key,
            json!({"sender_id": "abc", "template_id": "seven", "recipient_phone": TO,
                   "recipient_name": "n".repeat(256), "variables": {"1": "Ada", "2": "1234"}}),
        )
        .await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(
        error_fields(&reply),
        fields(&["sender_id", "template_id", "recipient_name"])
    );

    let reply = app
        .post(
            SEND,
            &t.key,
            json!({"sender_id": t.sender_id, "template_id": t.template_id, "recipient_phone": 14155551234_i64,
                   "variables": ["Ada", "1234"]}),
        )
        .await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(
        error_fields(&reply),
        fields(&["recipient_phone", "variables"])
    );

    // 255 characters (not bytes) is the limit.
    let mut body = template_body(&t, TO);
    body["recipient_name"] = json!("é".repeat(255));
    let reply = app.post(SEND, &t.key, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let reply = app
        .post(
            FREEFORM,
            &t.key,
            json!({"recipient_phone": TO, "message": "m".repeat(4097)}),
        )
        .await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(error_fields(&reply), fields(&["sender_id", "message"]));

    let reply = app
        .post(
            FREEFORM,
            &t.key,
            json!({"sender_id": t.sender_id, "recipient_phone": TO, "message": "é".repeat(4097)}),
        )
        .await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(error_fields(&reply), fields(&["message"]));

    let reply = app
        .post(
            FREEFORM,
            &t.key,
            json!({"sender_id": t.sender_id, "recipient_phone": TO, "message": ""}),
        )
        .await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(error_fields(&reply), fields(&["message"]));

    // 4,096 characters (8,192 bytes here) is allowed; the window is open after the send above.
    let reply = freeform(&app, &t, TO, &"é".repeat(4096)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn validation_error_for_a_bad_status_filter_on_lists() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for path in [
        "/api/user/whatsapp/senders?status=bogus".to_string(),
        "/api/user/whatsapp/senders?status=ONLINE1".to_string(),
        format!(
            "/api/user/whatsapp/senders/{}/templates?status=bogus",
            t.sender_id
        ),
        format!(
            "/api/user/whatsapp/senders/{}/templates?status=approvedx",
            t.sender_id
        ),
    ] {
        let reply = app.get(&path, &t.key).await;
        expect_error(&reply, 422, "VALIDATION_ERROR");
        assert_eq!(error_fields(&reply), fields(&["status"]), "{path}");
    }
    // The valid values still work.
    for path in [
        "/api/user/whatsapp/senders?status=all".to_string(),
        format!(
            "/api/user/whatsapp/senders/{}/templates?status=all",
            t.sender_id
        ),
    ] {
        assert_eq!(app.get(&path, &t.key).await.status, 200, "{path}");
    }
}

#[tokio::test]
async fn template_mismatch_names_missing_unknown_and_bad_variables() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let template_id = order_template(&app, &t).await;
    let send = |variables: Value| {
        let body = json!({"sender_id": t.sender_id, "template_id": template_id,
                          "recipient_phone": TO, "variables": variables});
        let app = &app;
        let key = t.key.clone();
        async move { app.post(SEND, &key, body).await }
    };

    let reply = send(json!({"customer": "Ada"})).await;
    expect_error(&reply, 422, "TEMPLATE_MISMATCH");
    assert!(errors_text(&reply).contains("order_ref"), "{}", reply.body);

    let reply = send(json!({"1": "Ada"})).await;
    expect_error(&reply, 422, "TEMPLATE_MISMATCH");
    assert!(!error_fields(&reply).is_empty());

    let reply = send(json!({})).await;
    expect_error(&reply, 422, "TEMPLATE_MISMATCH");
    let text = errors_text(&reply);
    assert!(
        text.contains("customer") && text.contains("order_ref"),
        "{}",
        reply.body
    );

    let reply = send(json!({"customer": "Ada", "order_ref": "7", "coupon": "X"})).await;
    expect_error(&reply, 422, "TEMPLATE_MISMATCH");
    assert!(errors_text(&reply).contains("coupon"), "{}", reply.body);

    let reply = send(json!({"1": "Ada", "2": "7", "3": "X"})).await;
    expect_error(&reply, 422, "TEMPLATE_MISMATCH");
    assert!(errors_text(&reply).contains('3'), "{}", reply.body);

    // Mixed positional and named keys, even when together they cover every placeholder.
    let reply = send(json!({"1": "Ada", "order_ref": "7"})).await;
    expect_error(&reply, 422, "TEMPLATE_MISMATCH");
    assert!(!error_fields(&reply).is_empty());

    // Bad values.
    for bad in [
        json!(true),
        json!(null),
        json!({"a": 1}),
        json!(["x"]),
        json!("   "),
        json!("two\nlines"),
        json!("tab\there"),
        json!("five     spaces"),
        json!("x".repeat(1025)),
    ] {
        let reply = send(json!({"customer": bad, "order_ref": "7"})).await;
        expect_error(&reply, 422, "TEMPLATE_MISMATCH");
        assert!(
            errors_text(&reply).contains("customer"),
            "{bad}: {}",
            reply.body
        );
    }
    // Each value fits, the rendered body does not.
    let reply = send(json!({"customer": "x".repeat(600), "order_ref": "y".repeat(600)})).await;
    expect_error(&reply, 422, "TEMPLATE_MISMATCH");
    assert!(!error_fields(&reply).is_empty());
    assert!((app.balance(&t).await - 10.0).abs() < 1e-9);

    // A fitting set is accepted (numbers written as decimal text).
    let reply = send(json!({"customer": "Ada", "order_ref": 42})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.body["whatsapp_message_id"].as_i64().unwrap();
    let msg = app
        .get(&format!("/api/user/whatsapp/messages/{id}"), &t.key)
        .await;
    assert_eq!(msg.body["body"], "Hi Ada, order 42 shipped.");
}

#[tokio::test]
async fn messaging_limit_counts_distinct_new_recipients() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    patch_sender(&app, t.sender_id, json!({"messaging_limit": 1})).await;

    assert_eq!(app.send_template(&t, TO).await.status, 200);
    let reply = app.send_template(&t, OTHER).await;
    expect_error(&reply, 422, "MESSAGING_LIMIT_REACHED");
    // The first recipient's window is open: sends there never count.
    let reply = app.send_template(&t, TO).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!((app.balance(&t).await - 9.96).abs() < 1e-9);
}

#[tokio::test]
async fn idempotency_key_reused_with_another_body_is_409() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let auth = format!("Bearer {}", t.key);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("idempotency-key", "order-42"),
    ];
    let body = template_body(&t, TO).to_string().into_bytes();
    let first = raw(&app, Method::POST, SEND, &headers, Some(body.clone())).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = raw(&app, Method::POST, SEND, &headers, Some(body)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.body["whatsapp_message_id"],
        first.body["whatsapp_message_id"]
    );

    let other = template_body(&t, OTHER).to_string().into_bytes();
    let reply = raw(&app, Method::POST, SEND, &headers, Some(other)).await;
    expect_error(&reply, 409, "IDEMPOTENCY_KEY_REUSED");
    // Also across endpoints: the key is the user's.
    let other = json!({"sender_id": t.sender_id, "recipient_phone": TO, "message": "hi"})
        .to_string()
        .into_bytes();
    let reply = raw(&app, Method::POST, FREEFORM, &headers, Some(other)).await;
    expect_error(&reply, 409, "IDEMPOTENCY_KEY_REUSED");
    assert!((app.balance(&t).await - 9.98).abs() < 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Rate limit

#[tokio::test]
async fn the_sixth_send_in_an_instant_is_rate_limited() {
    let app = spawn_app().await;
    let t = app.tenant_with_balance(100.0).await;
    let recipients: Vec<String> = (0..6).map(|i| format!("+1415555{:04}", 1300 + i)).collect();
    // All six at once, so that they arrive within the same instant.
    let replies =
        futures_util::future::join_all(recipients.iter().map(|to| app.send_template(&t, to))).await;
    let (ok, limited): (Vec<&Reply>, Vec<&Reply>) = replies.iter().partition(|r| r.status == 200);
    assert_eq!(
        ok.len(),
        5,
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(limited.len(), 1);
    for r in &ok {
        assert_eq!(r.headers["x-ratelimit-limit"], "5");
    }
    let reply = limited[0];
    expect_error_text(reply, 429, "RATE_LIMITED", "Too Many Attempts.");
    let retry_after = reply.body["retry_after"]
        .as_u64()
        .unwrap_or_else(|| panic!("retry_after: {}", reply.body));
    assert!(retry_after >= 1);
    assert_eq!(
        reply.body,
        json!({"success": false, "error": "Too Many Attempts.", "error_code": "RATE_LIMITED",
               "message": "Too Many Attempts.", "retry_after": retry_after})
    );
    let header: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(header >= 1);
    assert_eq!(header, retry_after);
    assert_eq!(reply.headers["x-ratelimit-limit"], "5");
    assert_eq!(reply.headers["x-ratelimit-remaining"], "0");
    // Five charged, the sixth not.
    assert!((app.balance(&t).await - 99.9).abs() < 1e-9);

    // A second later there is a full burst again: the refused request did not count.
    app.advance(Duration::from_secs(1));
    let replies =
        futures_util::future::join_all(recipients[..5].iter().map(|to| app.send_template(&t, to)))
            .await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test]
async fn rate_limit_counts_both_send_endpoints_and_not_reads() {
    let app = strict_app().await;
    let t = app.tenant().await;
    inbound(&app, &t, TO).await;
    let reply = freeform(&app, &t, TO, "one").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.headers["x-ratelimit-limit"], "1");
    assert_eq!(reply.headers["x-ratelimit-remaining"], "0");
    // Reads are not limited.
    let reads = [
        "/api/user/me".to_string(),
        "/api/user/whatsapp/senders".to_string(),
        format!("/api/user/whatsapp/senders/{}/templates", t.sender_id),
        format!(
            "/api/user/whatsapp/session-status?sender_id={}&recipient_phone=%2B14155551234",
            t.sender_id
        ),
        "/api/user/whatsapp/conversations".to_string(),
        "/api/user/webhooks".to_string(),
    ];
    for _ in 0..2 {
        for path in &reads {
            let reply = app.get(path, &t.key).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        }
    }
    // The template endpoint shares the freeform one's limit.
    let reply = app.send_template(&t, TO).await;
    expect_error_text(&reply, 429, "RATE_LIMITED", "Too Many Attempts.");
    assert_eq!(reply.headers["x-ratelimit-limit"], "1");
    app.advance(Duration::from_secs(1));
    let reply = app.send_template(&t, TO).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

// ---------------------------------------------------------------------------------------------
// Tolerated input

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let mut body = template_body(&t, TO);
    body["priority"] = json!("high");
    body["metadata"] = json!({"order": [1, 2, 3], "note": null});
    let reply = app.post(SEND, &t.key, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let reply = app
        .post(
            FREEFORM,
            &t.key,
            json!({"sender_id": t.sender_id, "recipient_phone": TO, "message": "hi",
                   "template_id": 12345, "callback": "https://example.test"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let reply = app
        .post(
            "/api/user/webhooks",
            &t.key,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["message.status"], "colour": "red"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn unicode_names_and_bodies_come_back_intact() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let name = "Zoë Ñandú 山田太郎 🚀";
    let reply = app
        .post(
            SEND,
            &t.key,
            json!({"sender_id": t.sender_id, "template_id": t.template_id, "recipient_phone": TO,
                   "recipient_name": name, "variables": {"name": "Ада", "code": "٣٤٥"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.body["whatsapp_message_id"].as_i64().unwrap();
    let msg = app
        .get(&format!("/api/user/whatsapp/messages/{id}"), &t.key)
        .await;
    assert_eq!(msg.body["body"], "Hello Ада, your code is ٣٤٥.");

    let text = "Привет 👋 こんにちは — «ok?» 👨‍👩‍👧";
    let reply = freeform(&app, &t, TO, text).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.body["whatsapp_message_id"].as_i64().unwrap();
    let msg = app
        .get(&format!("/api/user/whatsapp/messages/{id}"), &t.key)
        .await;
    assert_eq!(msg.body["body"], text);

    let session = app
        .get(
            &format!(
                "/api/user/whatsapp/session-status?sender_id={}&recipient_phone=%2B14155551234",
                t.sender_id
            ),
            &t.key,
        )
        .await;
    assert_eq!(session.body["customer_name"], name);
    let conversations = app.get("/api/user/whatsapp/conversations", &t.key).await;
    assert_eq!(conversations.body["data"][0]["customer_name"], name);

    let sender = app
        .admin(
            Method::POST,
            &format!("/api/admin/users/{}/senders", t.user_id),
            json!({"phone_number": "+14155550112", "display_name": "Café Ωmega 🚀"}),
        )
        .await;
    let sender_id = sender["id"].as_i64().unwrap();
    app.admin(
        Method::POST,
        &format!("/api/admin/senders/{sender_id}/templates"),
        json!({"name": "grüße", "language": "de", "category": "marketing",
               "body_text": "¡Hola {{1}}! 🎉 Grüße"}),
    )
    .await;
    let senders = app
        .get("/api/user/whatsapp/senders?status=all", &t.key)
        .await;
    let names: Vec<&str> = senders.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["display_name"].as_str())
        .collect();
    assert!(names.contains(&"Café Ωmega 🚀"), "{names:?}");
    let templates = app
        .get(
            &format!("/api/user/whatsapp/senders/{sender_id}/templates"),
            &t.key,
        )
        .await;
    assert_eq!(templates.body["data"][0]["name"], "grüße");
    assert_eq!(
        templates.body["data"][0]["body_text"],
        "¡Hola {{1}}! 🎉 Grüße"
    );
}

// ---------------------------------------------------------------------------------------------
// Unknown ids and routes

#[tokio::test]
async fn non_numeric_and_negative_path_ids_are_404_envelopes() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for bad in ["abc", "-1", "0", "1.5", "99999999999999999999", "%20"] {
        for (method, path) in [
            (Method::GET, format!("/api/user/whatsapp/messages/{bad}")),
            (
                Method::GET,
                format!("/api/user/whatsapp/conversations/{bad}/messages"),
            ),
            (Method::DELETE, format!("/api/user/webhooks/{bad}")),
            (
                Method::POST,
                format!("/api/user/webhooks/{bad}/rotate-secret"),
            ),
        ] {
            let reply = app.request(method, &path, Some(&t.key), None).await;
            expect_error(&reply, 404, "NOT_FOUND");
        }
        let reply = app
            .get(
                &format!("/api/user/whatsapp/senders/{bad}/templates"),
                &t.key,
            )
            .await;
        expect_error_text(&reply, 404, "SENDER_NOT_FOUND", SENDER_NOT_FOUND);

        let reply = app
            .request(
                Method::PATCH,
                &format!("/api/admin/senders/{bad}"),
                Some(ADMIN),
                Some(json!({"status": "offline"})),
            )
            .await;
        expect_error(&reply, 404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn unknown_api_routes_are_404_envelopes() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (method, path, token) in [
        (
            Method::GET,
            "/api/user/whatsapp/nothing-here",
            t.key.as_str(),
        ),
        (Method::POST, "/api/user/whatsapp/sendx", t.key.as_str()),
        (Method::GET, "/api/user", t.key.as_str()),
        (Method::GET, "/api/nothing", t.key.as_str()),
        (Method::GET, "/api/admin/nothing", ADMIN),
    ] {
        let reply = app
            .request(method, path, Some(token), Some(json!({})))
            .await;
        expect_error(&reply, 404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn a_wrong_method_on_an_api_route_answers_with_the_envelope() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (method, path) in [
        (Method::GET, SEND),
        (Method::DELETE, "/api/user/whatsapp/senders"),
        (Method::PUT, "/api/user/me"),
    ] {
        let reply = app.request(method, path, Some(&t.key), None).await;
        assert_eq!(reply.status, 405, "{path}: {}", reply.body);
        assert_eq!(
            reply.body["success"],
            json!(false),
            "{path}: {}",
            reply.body
        );
        assert!(reply.body["error"].is_string(), "{path}: {}", reply.body);
        assert!(
            reply.body["error_code"].is_string(),
            "{path}: {}",
            reply.body
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Check order: auth → rate limit → JSON → field validation → sender (not found, offline) →
// template (not found, not approved, not synced, mismatch) → window → messaging limit → balance

#[tokio::test]
async fn order_auth_before_rate_limit_and_json() {
    let app = strict_app().await;
    let t = app.tenant().await;
    let (key_id, key) = new_key(&app, t.user_id).await;
    app.admin(
        Method::DELETE,
        &format!("/api/admin/api-keys/{key_id}"),
        json!({}),
    )
    .await;
    assert_eq!(app.send_template(&t, TO).await.status, 200);

    // The user's limit is used up; a revoked key of that user is still 401.
    let revoked = send_with_key(&app, &t, &key).await;
    assert_eq!(revoked.status, 401, "{}", revoked.body);
    assert_eq!(revoked.body, unauthenticated());
    // Bad JSON with no key, or a revoked one: 401.
    let bearer = format!("Bearer {key}");
    for headers in [
        vec![("content-type", "application/json")],
        vec![
            ("content-type", "application/json"),
            ("authorization", bearer.as_str()),
        ],
    ] {
        for path in [SEND, FREEFORM] {
            let reply = raw(&app, Method::POST, path, &headers, Some(b"{oops".to_vec())).await;
            assert_eq!(reply.status, 401, "{}", reply.body);
            assert_eq!(reply.body, unauthenticated());
        }
    }
    // And the limit was indeed used up.
    let reply = app.send_template(&t, TO).await;
    expect_error(&reply, 429, "RATE_LIMITED");
}

#[tokio::test]
async fn order_rate_limit_before_json_and_validation() {
    let app = strict_app().await;
    let t = app.tenant().await;
    assert_eq!(app.send_template(&t, TO).await.status, 200);
    let auth = format!("Bearer {}", t.key);
    for path in [SEND, FREEFORM] {
        let reply = raw(
            &app,
            Method::POST,
            path,
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ],
            Some(b"{oops".to_vec()),
        )
        .await;
        expect_error(&reply, 429, "RATE_LIMITED");
        let reply = app.post(path, &t.key, json!({})).await;
        expect_error(&reply, 429, "RATE_LIMITED");
    }
}

#[tokio::test]
async fn order_json_before_field_validation() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let auth = format!("Bearer {}", t.key);
    for path in [SEND, FREEFORM] {
        // Valid JSON with every field missing, but the wrong Content-Type.
        let reply = raw(
            &app,
            Method::POST,
            path,
            &[
                ("authorization", auth.as_str()),
                ("content-type", "text/plain"),
            ],
            Some(b"{}".to_vec()),
        )
        .await;
        expect_error(&reply, 400, "INVALID_JSON");
        // An array of the fields instead of an object.
        let reply = raw(
            &app,
            Method::POST,
            path,
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ],
            Some(format!("[{}]", template_body(&t, "bad")).into_bytes()),
        )
        .await;
        expect_error(&reply, 400, "INVALID_JSON");
    }
}

#[tokio::test]
async fn order_field_validation_before_sender() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    let mut body = template_body(&t, TO);
    body["sender_id"] = json!(NO_SUCH_ID);
    body["recipient_name"] = json!("n".repeat(256));
    let reply = app.post(SEND, &t.key, body).await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    assert_eq!(error_fields(&reply), fields(&["recipient_name"]));

    let mut body = template_body(&t, "12345");
    body["sender_id"] = json!(NO_SUCH_ID);
    let reply = app.post(SEND, &t.key, body).await;
    expect_error_text(&reply, 422, "INVALID_PHONE", INVALID_PHONE);

    let reply = app
        .post(
            FREEFORM,
            &t.key,
            json!({"sender_id": NO_SUCH_ID, "recipient_phone": TO, "message": "m".repeat(4097)}),
        )
        .await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
    let reply = app
        .post(
            FREEFORM,
            &t.key,
            json!({"sender_id": NO_SUCH_ID, "recipient_phone": "12345", "message": "hi"}),
        )
        .await;
    expect_error_text(&reply, 422, "INVALID_PHONE", INVALID_PHONE);

    // An offline sender too.
    patch_sender(&app, t.sender_id, json!({"status": "offline"})).await;
    let reply = app.send_template(&t, "12345").await;
    expect_error_text(&reply, 422, "INVALID_PHONE", INVALID_PHONE);
    let reply = freeform(&app, &t, TO, &"m".repeat(4097)).await;
    expect_error(&reply, 422, "VALIDATION_ERROR");
}

#[tokio::test]
async fn order_sender_before_template() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    // Unknown sender and unknown template.
    let reply = app
        .post(
            SEND,
            &t.key,
            json!({"sender_id": NO_SUCH_ID, "template_id": NO_SUCH_ID, "recipient_phone": TO,
                   "variables": {"1": "Ada", "2": "1234"}}),
        )
        .await;
    expect_error_text(&reply, 404, "SENDER_NOT_FOUND", SENDER_NOT_FOUND);

    // Offline sender and unknown template, or an unapproved one, or a mismatch.
    patch_sender(&app, t.sender_id, json!({"status": "offline"})).await;
    let mut body = template_body(&t, TO);
    body["template_id"] = json!(NO_SUCH_ID);
    let reply = app.post(SEND, &t.key, body).await;
    expect_error_text(&reply, 422, "SENDER_OFFLINE", SENDER_OFFLINE);
    let mut body = template_body(&t, TO);
    body["variables"] = json!({"nope": "x"});
    let reply = app.post(SEND, &t.key, body).await;
    expect_error_text(&reply, 422, "SENDER_OFFLINE", SENDER_OFFLINE);
    patch_template(&app, t.template_id, json!({"status": "pending"})).await;
    let reply = app.send_template(&t, TO).await;
    expect_error_text(&reply, 422, "SENDER_OFFLINE", SENDER_OFFLINE);
}

#[tokio::test]
async fn order_within_template_checks() {
    let app = relaxed_app().await;
    let t = app.tenant().await;
    // Not found (attached to another sender) before not approved.
    let (twilio, twilio_template) = twilio_sender(&app, &t, "pending").await;
    let reply = app
        .post(
            SEND,
            &t.key,
            json!({"sender_id": t.sender_id, "template_id": twilio_template, "recipient_phone": TO,
                   "variables": {"1": "Ada", "2": "1234"}}),
        )
        .await;
    expect_error_text(&reply, 404, "TEMPLATE_NOT_FOUND", TEMPLATE_NOT_FOUND);

    // Not approved before not synced (Twilio sender, pending template without a reference).
    let twilio_send = |variables: Value| {
        let body = json!({"sender_id": twilio, "template_id": twilio_template,
                          "recipient_phone": TO, "variables": variables});
        let app = &app;
        let key = t.key.clone();
        async move { app.post(SEND, &key, body).await }
    };
    let reply = twilio_send(json!({"1": "Ada", "2": "1234"})).await;
    expect_error_text(
        &reply,
        422,
        "TEMPLATE_NOT_APPROVED",
        "Template is not approved. Current status: pending",
    );
    // Not approved before mismatch.
    let reply = twilio_send(json!({"unknown": "x"})).await;
    expect_error(&reply, 422, "TEMPLATE_NOT_APPROVED");

    // Not synced before mismatch.
    patch_template(&app, twilio_template, json!({"status": "approved"})).await;
    let reply = twilio_send(json!({"unknown": "x"})).await;
    expect_error(&reply, 422, "TEMPLATE_NOT_SYNCED");
    let reply = twilio_send(json!({"1": "Ada", "2": "1234"})).await;
    expect_error(&reply, 422, "TEMPLATE_NOT_SYNCED");
}

#[tokio::test]
async fn order_template_before_messaging_limit_and_balance() {
    let app = relaxed_app().await;
    // Exactly one utility message to +1.
    let t = app.tenant_with_balance(0.02).await;
    patch_sender(&app, t.sender_id, json!({"messaging_limit": 1})).await;
    assert_eq!(app.send_template(&t, TO).await.status, 200);
    assert_eq!(app.balance(&t).await, 0.0);

    // To a new recipient the limit is reached and the balance is zero: a template mismatch
    // answers first, then an unapproved template.
    let mut body = template_body(&t, OTHER);
    body["variables"] = json!({"1": "Ada"});
    let reply = app.post(SEND, &t.key, body).await;
    expect_error(&reply, 422, "TEMPLATE_MISMATCH");
    let mut body = template_body(&t, OTHER);
    body["template_id"] = json!(NO_SUCH_ID);
    let reply = app.post(SEND, &t.key, body).await;
    expect_error_text(&reply, 404, "TEMPLATE_NOT_FOUND", TEMPLATE_NOT_FOUND);

    patch_template(&app, t.template_id, json!({"status": "pending"})).await;
    let reply = app.send_template(&t, OTHER).await;
    expect_error_text(
        &reply,
        422,
        "TEMPLATE_NOT_APPROVED",
        "Template is not approved. Current status: pending",
    );
    // Unapproved template and zero balance, where the limit does not apply.
    let reply = app.send_template(&t, TO).await;
    expect_error_text(
        &reply,
        422,
        "TEMPLATE_NOT_APPROVED",
        "Template is not approved. Current status: pending",
    );
}

#[tokio::test]
async fn order_sender_and_window_before_balance_on_freeform() {
    let app = priced_freeform_app().await;
    let t = app.tenant_with_balance(0.0).await;
    // Offline sender and no window: SENDER_OFFLINE (503).
    patch_sender(&app, t.sender_id, json!({"status": "offline"})).await;
    let reply = freeform(&app, &t, TO, "hello").await;
    expect_error_text(&reply, 503, "SENDER_OFFLINE", SENDER_OFFLINE);
    // No window and no money: SESSION_EXPIRED.
    patch_sender(&app, t.sender_id, json!({"status": "online"})).await;
    let reply = freeform(&app, &t, TO, "hello").await;
    expect_error_text(&reply, 403, "SESSION_EXPIRED", SESSION_EXPIRED);
    // With the window open, the balance answers.
    inbound(&app, &t, TO).await;
    let reply = freeform(&app, &t, TO, "hello").await;
    expect_error_text(&reply, 402, "INSUFFICIENT_BALANCE", INSUFFICIENT_BALANCE);
}

#[tokio::test]
async fn order_messaging_limit_before_balance() {
    let app = relaxed_app().await;
    let t = app.tenant_with_balance(0.02).await;
    patch_sender(&app, t.sender_id, json!({"messaging_limit": 1})).await;
    assert_eq!(app.send_template(&t, TO).await.status, 200);
    assert_eq!(app.balance(&t).await, 0.0);
    // New recipient, limit used up, no money.
    let reply = app.send_template(&t, OTHER).await;
    expect_error(&reply, 422, "MESSAGING_LIMIT_REACHED");
    // Within the open window the limit does not apply, so the balance answers.
    let reply = app.send_template(&t, TO).await;
    expect_error_text(&reply, 402, "INSUFFICIENT_BALANCE", INSUFFICIENT_BALANCE);
}
