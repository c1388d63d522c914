//! Bad input never answers 5xx: it is refused with the JSON envelope, naming the field.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// The largest balance, i64::MAX micro-units, as the API writes it.
const LARGEST_BALANCE: f64 = i64::MAX as f64 / 1e6;

/// Asserts a 422 VALIDATION_ERROR whose `errors` names `field`.
fn expect_invalid(reply: &Reply, field: &str) {
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(
        reply.body["error_code"],
        json!("VALIDATION_ERROR"),
        "{}",
        reply.body
    );
    assert!(
        reply.body["errors"].get(field).is_some(),
        "errors does not name {field}: {}",
        reply.body
    );
}

/// Asserts the JSON error envelope (content type and body) with `status` and `code`.
fn expect_envelope(reply: &Reply, status: u16, code: &str, what: &str) {
    assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.body);
    let content_type = reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content-type {content_type:?}, body {}",
        reply.body
    );
    assert_eq!(
        reply.body["success"],
        json!(false),
        "{what}: {}",
        reply.body
    );
    assert_eq!(
        reply.body["error_code"],
        json!(code),
        "{what}: {}",
        reply.body
    );
}

#[tokio::test]
async fn a_blank_or_null_template_category_is_a_validation_error() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let path = format!("/api/admin/senders/{}/templates", t.sender_id);
    for category in [json!(""), json!("  "), Value::Null, json!(7)] {
        let reply = app
            .post(
                &path,
                ADMIN,
                json!({"name": "blank", "language": "en", "category": category,
                       "body_text": "Hello {{1}}."}),
            )
            .await;
        expect_invalid(&reply, "category");
    }
}

#[tokio::test]
async fn null_webhook_events_are_a_validation_error() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let reply = app
        .post(
            "/api/user/webhooks",
            &t.key,
            json!({"url": "http://127.0.0.1:9/hook", "events": null}),
        )
        .await;
    expect_invalid(&reply, "events");
}

/// A credit whose amount is written as given (JSON numbers beyond f64's exact range).
fn raw_credit(app: &TestApp, t: &Tenant, amount: &str, reference: &str) -> reqwest::RequestBuilder {
    app.http
        .post(format!(
            "{}/api/admin/users/{}/credits",
            app.base, t.user_id
        ))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"amount": {amount}, "reference": "{reference}"}}"#
        ))
}

#[tokio::test]
async fn a_credit_that_would_overflow_the_balance_is_refused_and_the_balance_stays_whole() {
    let app = spawn_app().await;
    let t = app.tenant_with_balance(0.0).await;
    let credit = |amount: &str, reference: &str| raw_credit(&app, &t, amount, reference);
    // 0.775807 short of the largest balance there is (i64::MAX micro-units).
    assert_eq!(answer(credit("9223372036854", "a")).await.status, 201);
    expect_invalid(&answer(credit("1", "b")).await, "amount");
    expect_invalid(&answer(credit("9223372036854", "c")).await, "amount");
    // Up to the largest balance exactly still goes through, and not a micro-unit more.
    assert_eq!(answer(credit("0.775807", "d")).await.status, 201);
    expect_invalid(&answer(credit("0.000001", "e")).await, "amount");
    // The balance is still an integer the API reads back.
    let me = app.get("/api/user/me", &t.key).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["total_balance"], json!(LARGEST_BALANCE));
}

#[tokio::test]
async fn a_refund_that_would_overflow_the_balance_leaves_it_whole() {
    let app = spawn_app().await;
    let t = app.tenant_with_balance(0.0).await;
    let credit = |amount: &str, reference: &str| raw_credit(&app, &t, amount, reference);
    assert_eq!(answer(credit("9223372036854", "a")).await.status, 201);
    assert_eq!(answer(credit("0.775807", "b")).await.status, 201);
    // The simulator reports a number ending in 0000 undelivered, which refunds its charge;
    // a credit of the charge in between leaves no room for the refund.
    let reply = app.send_template(&t, "+14155550000").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(answer(credit("0.02", "c")).await.status, 201);
    let id = reply.body["whatsapp_message_id"].as_i64().unwrap();
    for _ in 0..4 {
        app.advance(std::time::Duration::from_secs(1));
        app.run_jobs().await;
    }
    let message = app
        .get(&format!("/api/user/whatsapp/messages/{id}"), &t.key)
        .await;
    assert_eq!(message.body["status"], "undelivered", "{}", message.body);
    let me = app.get("/api/user/me", &t.key).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["total_balance"], json!(LARGEST_BALANCE));
}

/// Every route with a path parameter, with `id` in its place.
fn id_routes(id: &str) -> Vec<(Method, String, &'static str, &'static str)> {
    let tenant = "tenant";
    let admin = "admin";
    vec![
        (
            Method::GET,
            format!("/api/user/whatsapp/messages/{id}"),
            tenant,
            "NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/user/whatsapp/conversations/{id}/messages"),
            tenant,
            "NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/user/whatsapp/senders/{id}/templates"),
            tenant,
            "SENDER_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/user/webhooks/{id}"),
            tenant,
            "NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/user/webhooks/{id}/rotate-secret"),
            tenant,
            "NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/admin/users/{id}/api-keys"),
            admin,
            "NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/admin/api-keys/{id}"),
            admin,
            "NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/admin/users/{id}/senders"),
            admin,
            "NOT_FOUND",
        ),
        (
            Method::PATCH,
            format!("/api/admin/senders/{id}"),
            admin,
            "NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/admin/senders/{id}/templates"),
            admin,
            "NOT_FOUND",
        ),
        (
            Method::PATCH,
            format!("/api/admin/templates/{id}"),
            admin,
            "NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/admin/users/{id}/credits"),
            admin,
            "NOT_FOUND",
        ),
    ]
}

#[tokio::test]
async fn path_ids_that_are_not_utf8_get_the_json_envelope_on_every_route() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for bad in ["%FF", "%C3%28", "a%80b"] {
        for (method, path, who, code) in id_routes(bad) {
            let token = if who == "admin" {
                ADMIN
            } else {
                t.key.as_str()
            };
            let reply = app
                .request(method, &path, Some(token), Some(json!({})))
                .await;
            expect_envelope(&reply, 404, code, &path);
        }
    }
}

#[tokio::test]
async fn query_strings_and_headers_that_are_not_utf8_get_the_json_envelope() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for path in [
        "/api/user/whatsapp/senders?status=%FF".to_string(),
        format!(
            "/api/user/whatsapp/senders/{}/templates?status=%FF",
            t.sender_id
        ),
        "/api/user/whatsapp/conversations?per_page=%FF".to_string(),
        "/api/user/whatsapp/session-status?sender_id=%FF&recipient_phone=%FF".to_string(),
    ] {
        let reply = app.get(&path, &t.key).await;
        expect_envelope(&reply, 422, "VALIDATION_ERROR", &path);
    }
    let bad_value = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    let reply = answer(
        app.http
            .get(format!("{}/api/user/me", app.base))
            .header("authorization", bad_value),
    )
    .await;
    expect_envelope(&reply, 401, "UNAUTHENTICATED", "authorization");
    let reply = answer(
        app.http
            .post(format!("{}/api/user/whatsapp/send", app.base))
            .bearer_auth(&t.key)
            .header(
                "idempotency-key",
                reqwest::header::HeaderValue::from_bytes(b"\xff").unwrap(),
            )
            .json(
                &json!({"sender_id": t.sender_id, "template_id": t.template_id,
                          "recipient_phone": "+14155551234", "variables": {"1": "A", "2": "B"}}),
            ),
    )
    .await;
    expect_envelope(&reply, 422, "VALIDATION_ERROR", "idempotency-key");
}
