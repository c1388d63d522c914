//! Templates that tenants create (API.md §11), against the simulator's review: a template is
//! approved a step after it is submitted, one named `reject_…` is rejected; each rule of a
//! submission is checked field by field; a change of status is announced once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::webhooks::{receiver, subscribe};

/// Pending templates are read every second; the simulator decides after one second.
const POLLING: &str = "template_pending_poll_s = 1\nsimulator_step_ms = 1000\n";

fn submission(name: &str) -> Value {
    json!({
        "name": name, "language": "en_US", "category": "utility",
        "body_text": "Hi {{1}}, your order {{2}} ships today.",
        "samples": ["Ada", "#1042"],
        "header_text": "Order update", "footer_text": "Reply STOP to opt out",
        "buttons": [{"type": "quick_reply", "text": "Track"},
                    {"type": "url", "text": "Open", "url": "https://shop.example/track"}]
    })
}

async fn submit(app: &TestApp, t: &Tenant, body: Value) -> Reply {
    app.post(
        &format!("/api/user/whatsapp/senders/{}/templates", t.sender_id),
        &t.key,
        body,
    )
    .await
}

async fn template(app: &TestApp, t: &Tenant, id: &Value) -> Reply {
    app.get(&format!("/api/user/whatsapp/templates/{id}"), &t.key)
        .await
}

async fn send_with(app: &TestApp, t: &Tenant, template_id: &Value) -> Reply {
    app.post(
        "/api/user/whatsapp/send",
        &t.key,
        json!({"sender_id": t.sender_id, "template_id": template_id,
               "recipient_phone": "+14155551234", "variables": {"1": "Ada", "2": "#1042"}}),
    )
    .await
}

#[tokio::test]
async fn a_submitted_template_is_pending_then_approved_and_only_then_sends() {
    let app = spawn_with(POLLING).await;
    let t = app.tenant().await;
    let created = submit(&app, &t, submission("order_update")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].clone();
    assert_eq!(created.body["status"], "pending");
    assert_eq!(created.body["samples"], json!(["Ada", "#1042"]));
    assert_eq!(created.body["header_text"], "Order update");
    assert_eq!(
        created.body["buttons"][1]["url"],
        "https://shop.example/track"
    );
    assert_eq!(created.body["rejection_reason"], Value::Null);

    let refused = send_with(&app, &t, &id).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error_code"], "TEMPLATE_NOT_APPROVED");

    app.advance(Duration::from_millis(1500));
    app.run_jobs().await;
    let approved = template(&app, &t, &id).await;
    assert_eq!(approved.body["status"], "approved", "{}", approved.body);
    let listed = app
        .get(
            &format!("/api/user/whatsapp/senders/{}/templates", t.sender_id),
            &t.key,
        )
        .await;
    assert!(listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|tpl| tpl["id"] == id));
    let sent = send_with(&app, &t, &id).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
}

#[tokio::test]
async fn a_reject_template_is_rejected_with_its_reason_and_announced_once() {
    let app = spawn_with(POLLING).await;
    let t = app.tenant().await;
    let hook = receiver(0).await;
    subscribe(&app, &t, &hook.url, json!(["template.status"])).await;
    let created = submit(&app, &t, submission("reject_order_update")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].clone();
    for _ in 0..4 {
        app.advance(Duration::from_millis(1500));
        app.run_jobs().await;
    }
    let rejected = template(&app, &t, &id).await;
    assert_eq!(rejected.body["status"], "rejected");
    assert_eq!(rejected.body["rejection_reason"], "INVALID_FORMAT");
    let events: Vec<Value> = hook
        .deliveries()
        .iter()
        .map(|d| serde_json::from_str(&d.body).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "one event for one change: {events:?}");
    assert_eq!(events[0]["type"], "template.status");
    assert_eq!(events[0]["data"]["id"], id);
    assert_eq!(events[0]["data"]["status"], "rejected");
    assert_eq!(events[0]["data"]["rejection_reason"], "INVALID_FORMAT");
}

#[tokio::test]
async fn each_rule_of_a_submission_names_its_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let cases: Vec<(&str, Value)> = vec![
        ("name", json!("Order Update")),
        ("name", json!("")),
        ("language", json!("english")),
        ("category", json!("service")),
        ("category", json!(null)),
        ("body_text", json!("{{1}} is your order.")),
        ("body_text", json!("Hi {{1}}{{2}} there.")),
        ("body_text", json!(7)),
        ("samples", json!(["Ada"])),
        ("header_text", json!("x".repeat(61))),
        ("footer_text", json!("Hi {{1}}")),
        (
            "buttons",
            json!(vec![json!({"type": "quick_reply", "text": "x"}); 11]),
        ),
        (
            "buttons.0.text",
            json!([{"type": "quick_reply", "text": "y".repeat(26)}]),
        ),
        (
            "buttons.0.url",
            json!([{"type": "url", "text": "Open", "url": "/relative"}]),
        ),
        ("buttons.0.type", json!([{"type": "flow", "text": "Open"}])),
    ];
    for (field, value) in cases {
        let mut body = submission("order_update");
        let key = field.split('.').next().unwrap();
        body[key] = value.clone();
        let reply = submit(&app, &t, body).await;
        assert_eq!(reply.status, 422, "{field} = {value}: {}", reply.body);
        assert_eq!(reply.body["error_code"], "VALIDATION_ERROR");
        let fields: Vec<&String> = reply.body["errors"].as_object().unwrap().keys().collect();
        assert!(
            fields.iter().any(|f| f.as_str() == field),
            "{field} = {value}: {fields:?}"
        );
    }
    // Several at once are named together.
    let mut body = submission("Bad Name");
    body["language"] = json!("xx");
    let reply = submit(&app, &t, body).await;
    let errors = reply.body["errors"].as_object().unwrap();
    assert!(errors.contains_key("name") && errors.contains_key("language"));
    // Nothing was kept.
    let listed = app
        .get(
            &format!(
                "/api/user/whatsapp/senders/{}/templates?status=all",
                t.sender_id
            ),
            &t.key,
        )
        .await;
    assert!(listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|tpl| tpl["name"] != "order_update"));
}

#[tokio::test]
async fn a_name_is_taken_once_per_sender_and_language() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    assert_eq!(
        submit(&app, &t, submission("order_update")).await.status,
        201
    );
    let again = submit(&app, &t, submission("order_update")).await;
    assert_eq!(again.status, 422);
    assert!(again.body["errors"]["name"].is_array(), "{}", again.body);
    let mut other_language = submission("order_update");
    other_language["language"] = json!("pt_BR");
    assert_eq!(submit(&app, &t, other_language).await.status, 201);
}

#[tokio::test]
async fn templates_are_read_synced_and_deleted_by_their_tenant_only() {
    let app = spawn_with(POLLING).await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let created = submit(&app, &t, submission("order_update")).await;
    let id = created.body["id"].clone();
    assert_eq!(template(&app, &other, &id).await.status, 404);
    assert_eq!(
        app.request(
            Method::DELETE,
            &format!("/api/user/whatsapp/templates/{id}"),
            Some(&other.key),
            None
        )
        .await
        .status,
        404
    );
    // Sync now reads the provider at once, without waiting for the schedule.
    let sync = format!("/api/user/whatsapp/templates/{id}/sync");
    let pending = app.post(&sync, &t.key, json!({})).await;
    assert_eq!(pending.body["status"], "pending");
    app.advance(Duration::from_millis(1100));
    let synced = app.post(&sync, &t.key, json!({})).await;
    assert_eq!(synced.status, 200);
    assert_eq!(synced.body["status"], "approved");
    let sent = send_with(&app, &t, &id).await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/user/whatsapp/templates/{id}"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(template(&app, &t, &id).await.status, 404);
    // Its sent message keeps the template's id.
    let msg = app.message(&t, &sent.body["whatsapp_message_id"]).await;
    assert_eq!(msg["template_id"], id);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_sync_loses_nothing() {
    let app = spawn_with(POLLING).await;
    let t = app.tenant().await;
    let created = submit(&app, &t, submission("order_update")).await;
    let id = created.body["id"].clone();
    app.advance(Duration::from_millis(1500));
    // A reading is claimed, and the process stops before it is recorded.
    let claimed = app
        .worker
        .store
        .claim_template_syncs(app.clock.now_ms(), 60_000, 100)
        .await
        .unwrap();
    assert!(claimed.iter().any(|tpl| Some(tpl.id) == id.as_i64()));
    let app = app.restart().await;
    app.run_jobs().await;
    assert_eq!(
        template(&app, &t, &id).await.body["status"],
        "pending",
        "leased"
    );
    app.advance(Duration::from_secs(61));
    app.run_jobs().await;
    assert_eq!(template(&app, &t, &id).await.body["status"], "approved");
}
