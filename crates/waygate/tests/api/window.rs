//! The 24 h customer-service window (API.md §5) and the session-status endpoint.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const TO: &str = "+14155551234";

async fn session(app: &TestApp, t: &Tenant, phone_query: &str) -> Value {
    let reply = app
        .get(
            &format!(
                "/api/user/whatsapp/session-status?sender_id={}&recipient_phone={phone_query}",
                t.sender_id
            ),
            &t.key,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn freeform(app: &TestApp, t: &Tenant, text: &str) -> Reply {
    app.post(
        "/api/user/whatsapp/send-freeform",
        &t.key,
        json!({"sender_id": t.sender_id, "recipient_phone": TO, "message": text}),
    )
    .await
}

async fn inbound(app: &TestApp, t: &Tenant, body: &str, profile: Option<&str>) -> Value {
    app.admin(
        Method::POST,
        "/api/admin/simulator/inbound",
        json!({"sender_id": t.sender_id, "from": TO, "body": body, "profile_name": profile}),
    )
    .await
}

#[tokio::test]
async fn no_conversation_shape() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let body = session(&app, &t, "%2B14155551234").await;
    assert_eq!(
        body,
        json!({"success": true, "has_conversation": false, "session_status": {
            "is_open": false, "can_send_freeform": false, "requires_template": true,
            "message": "No conversation exists with this recipient. Send a template message first."}})
    );
}

#[tokio::test]
async fn template_send_opens_the_window_and_raw_plus_works() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    assert_eq!(app.send_template(&t, TO).await.status, 200);
    // 14.5 minutes later: 23 h 45.5 min remain, which rounds down to 1425 whole minutes.
    app.advance(Duration::from_secs(14 * 60 + 30));
    // A raw "+" arrives as a space; both spellings give the same answer.
    let raw = session(&app, &t, "+14155551234").await;
    let encoded = session(&app, &t, "%2B14155551234").await;
    assert_eq!(raw, encoded);
    let status = &raw["session_status"];
    assert_eq!(raw["has_conversation"], true);
    assert_eq!(raw["last_customer_message_at"], Value::Null);
    assert_eq!(status["is_open"], true);
    assert_eq!(status["can_send_freeform"], true);
    assert_eq!(status["requires_template"], false);
    assert_eq!(status["minutes_remaining"], 1425);
    assert_eq!(
        status["message"],
        "Session open (23 hr 45 min remaining). Unlimited free-form messages allowed."
    );
    let reply = freeform(&app, &t, "Thanks — we’re on it ✅").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["session_status"]["is_open"], true);
    assert_eq!(reply.body["status"], "queued");
}

#[tokio::test]
async fn freeform_does_not_extend_and_the_window_expires() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    assert_eq!(app.send_template(&t, TO).await.status, 200);
    let opened = session(&app, &t, "%2B14155551234").await;
    let expires = opened["session_status"]["expires_at"].clone();
    app.advance(Duration::from_secs(23 * 3600));
    assert_eq!(freeform(&app, &t, "still open").await.status, 200);
    assert_eq!(
        session(&app, &t, "%2B14155551234").await["session_status"]["expires_at"],
        expires
    );
    app.advance(Duration::from_secs(3600));
    let expired = session(&app, &t, "%2B14155551234").await;
    assert_eq!(
        expired["session_status"],
        json!({"is_open": false, "can_send_freeform": false, "requires_template": true,
               "message": "Session expired. Send a template or wait for customer to reply.",
               "expired_at": expires})
    );
    let refused = freeform(&app, &t, "too late").await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error_code"], "SESSION_EXPIRED");
    assert_eq!(refused.body["session_status"], expired["session_status"]);
}

#[tokio::test]
async fn inbound_message_opens_the_window_and_names_the_customer() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let msg = inbound(&app, &t, "Hola 👋", Some("José")).await;
    assert_eq!(msg["direction"], "inbound");
    assert_eq!(msg["status"], "received");
    assert_eq!(msg["price"], json!(0.0));
    // Half a minute later, 23 h 59.5 min remain: 1439 whole minutes.
    app.advance(Duration::from_secs(30));
    let body = session(&app, &t, "+14155551234").await;
    assert_eq!(body["customer_name"], "José");
    assert_eq!(body["last_customer_message_at"], msg["created_at"]);
    assert_eq!(body["session_status"]["minutes_remaining"], 1440 - 1);
    assert_eq!(freeform(&app, &t, "¡Hola!").await.status, 200);
    // Each inbound message resets the window.
    app.advance(Duration::from_secs(20 * 3600));
    inbound(&app, &t, "another", None).await;
    app.advance(Duration::from_secs(20 * 3600));
    assert_eq!(freeform(&app, &t, "still open").await.status, 200);
    let body = session(&app, &t, "+14155551234").await;
    assert_eq!(
        body["customer_name"], "José",
        "a message without a profile name keeps the name"
    );
}

#[tokio::test]
async fn template_does_not_open_when_configured_off() {
    let app = spawn_with("window_template_opens = false\n").await;
    let t = app.tenant().await;
    assert_eq!(app.send_template(&t, TO).await.status, 200);
    let refused = freeform(&app, &t, "hi").await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["session_status"]["is_open"], false);
}

#[tokio::test]
async fn conversation_is_reused_and_listed_by_activity() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let first = app.send_template(&t, TO).await.body["conversation_id"].clone();
    app.advance(Duration::from_secs(1));
    let other = app.send_template(&t, "+14155559876").await.body["conversation_id"].clone();
    app.advance(Duration::from_secs(1));
    let again = app.send_template(&t, TO).await.body["conversation_id"].clone();
    assert_eq!(first, again);
    assert_ne!(first, other);
    let page = app
        .get("/api/user/whatsapp/conversations?per_page=1", &t.key)
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["data"][0]["id"], first, "newest activity first");
    let cursor = page.body["next_cursor"].as_str().unwrap().to_string();
    let next = app
        .get(
            &format!("/api/user/whatsapp/conversations?per_page=1&cursor={cursor}"),
            &t.key,
        )
        .await;
    assert_eq!(next.body["data"][0]["id"], other);
    assert_eq!(next.body["next_cursor"], Value::Null);
    let messages = app
        .get(
            &format!("/api/user/whatsapp/conversations/{first}/messages"),
            &t.key,
        )
        .await;
    let ids: Vec<i64> = messages.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1], "oldest first");
}
