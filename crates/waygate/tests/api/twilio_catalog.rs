//! Templates reviewed through Twilio's Content API and senders read from its Senders API v2
//! (API.md §11), against the fake Twilio: submitted and approved or rejected, paused and
//! resumed, a sender taken offline and back, each change announced once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use twilio_fake::{Config as FakeConfig, Decision, ReadEndpoint, ReadFault, SenderState};

use crate::helpers::*;
use crate::twilio::{setup_with, Setup, CUSTOMER};
use crate::webhooks::{receiver, subscribe};

const SENDER_SID: &str = "XE0123456789abcdef0123456789abcdef";
/// Readings every second (pending), every 2 s (others) and every 3 s (senders).
const SYNC: &str = "template_pending_poll_s = 1\ntemplate_sync_s = 2\nsender_sync_s = 3\n";

fn submission(name: &str) -> Value {
    json!({
        "name": name, "language": "en", "category": "utility",
        "body_text": "Hi {{1}}, your order {{2}} ships today.",
        "samples": ["Ada", "#1042"],
        "footer_text": "Reply STOP to opt out",
        "buttons": [{"type": "quick_reply", "text": "Track"}]
    })
}

async fn submit(s: &Setup, name: &str) -> Value {
    let reply = s
        .app
        .post(
            &format!("/api/user/whatsapp/senders/{}/templates", s.t.sender_id),
            &s.t.key,
            submission(name),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

async fn template(s: &Setup, id: &Value) -> Value {
    s.app
        .get(&format!("/api/user/whatsapp/templates/{id}"), &s.t.key)
        .await
        .body
}

/// Lets the fake's review finish (real time) and the readings fall due (virtual time).
async fn settle(s: &Setup, by: Duration) {
    tokio::time::sleep(Duration::from_millis(250)).await;
    s.later(by).await;
}

async fn send_with(s: &Setup, template_id: &Value) -> Reply {
    s.app
        .post(
            "/api/user/whatsapp/send",
            &s.t.key,
            json!({"sender_id": s.t.sender_id, "template_id": template_id,
                   "recipient_phone": CUSTOMER, "variables": {"1": "Ada", "2": "#1042"}}),
        )
        .await
}

#[tokio::test]
async fn a_template_is_created_at_twilio_submitted_approved_and_sent_by_its_content_sid() {
    let s = setup_with(FakeConfig::default(), SYNC).await;
    let created = submit(&s, "order_update").await;
    assert_eq!(created["status"], "pending");
    let sid = created["provider_ref"].as_str().unwrap().to_string();
    assert!(sid.starts_with("HX"), "{created}");
    let contents = s.fake.contents();
    assert_eq!(contents.len(), 1);
    assert_eq!(contents[0].sid, sid);
    assert_eq!(contents[0].variables["1"], "Ada");
    assert!(contents[0].types.contains_key("twilio/quick-reply"));
    assert!(contents[0].types.contains_key("whatsapp/card"));
    assert!(contents[0].approval.is_some(), "submitted for approval");

    settle(&s, Duration::from_secs(2)).await;
    let approved = template(&s, &created["id"]).await;
    assert_eq!(approved["status"], "approved", "{approved}");
    let sent = send_with(&s, &created["id"]).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let at_twilio = s.fake.messages();
    assert_eq!(
        at_twilio.last().unwrap().content_sid.as_deref(),
        Some(sid.as_str())
    );
}

#[tokio::test]
async fn a_rejected_template_carries_twilios_reason() {
    let s = setup_with(FakeConfig::default(), SYNC).await;
    let created = submit(&s, "reject_order_update").await;
    settle(&s, Duration::from_secs(2)).await;
    let rejected = template(&s, &created["id"]).await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["rejection_reason"], "INVALID_FORMAT");
}

#[tokio::test]
async fn a_paused_template_refuses_sends_until_resumed_and_each_change_is_announced_once() {
    let s = setup_with(FakeConfig::default(), SYNC).await;
    let hook = receiver(0).await;
    subscribe(&s.app, &s.t, &hook.url, json!(["template.status"])).await;
    let created = submit(&s, "order_update").await;
    let sid = created["provider_ref"].as_str().unwrap().to_string();
    settle(&s, Duration::from_secs(2)).await;
    assert_eq!(template(&s, &created["id"]).await["status"], "approved");

    assert!(s.fake.set_template_decision(&sid, Decision::Paused));
    for _ in 0..3 {
        // Read again and again: the provider repeats `paused`, waygate announces it once.
        s.later(Duration::from_secs(3)).await;
    }
    assert_eq!(template(&s, &created["id"]).await["status"], "paused");
    let refused = send_with(&s, &created["id"]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error_code"], "TEMPLATE_NOT_APPROVED");

    assert!(s.fake.set_template_decision(&sid, Decision::Approved));
    s.later(Duration::from_secs(3)).await;
    assert_eq!(send_with(&s, &created["id"]).await.status, 200);

    let statuses: Vec<String> = hook
        .deliveries()
        .iter()
        .map(|d| serde_json::from_str::<Value>(&d.body).unwrap())
        .filter(|e| e["type"] == "template.status" && e["data"]["id"] == created["id"])
        .map(|e| e["data"]["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["approved", "paused", "approved"]);
}

#[tokio::test]
async fn a_sender_offline_at_twilio_refuses_sends_until_back_online() {
    let s = setup_with(FakeConfig::default(), SYNC).await;
    let hook = receiver(0).await;
    subscribe(&s.app, &s.t, &hook.url, json!(["sender.status"])).await;
    let sender = s
        .app
        .admin(
            Method::POST,
            &format!("/api/admin/users/{}/senders", s.t.user_id),
            json!({"phone_number": "+14155550177", "display_name": "Acme XE", "provider": "twilio",
                   "provider_ref": SENDER_SID}),
        )
        .await;
    let state = |status: &str| SenderState {
        sender_id: "whatsapp:+14155550177".into(),
        status: status.into(),
        quality_rating: Some("MEDIUM".into()),
        messaging_limit: Some("10K Customers/24hr".into()),
        offline_reasons: Vec::new(),
    };
    s.fake.set_sender(SENDER_SID, state("OFFLINE"));
    for _ in 0..2 {
        s.later(Duration::from_secs(4)).await;
    }
    let senders = s
        .app
        .get("/api/user/whatsapp/senders?status=all", &s.t.key)
        .await;
    let read = senders.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == sender["id"])
        .cloned()
        .unwrap();
    assert_eq!(read["status"], "offline", "{read}");
    assert_eq!(read["quality_rating"], "YELLOW");
    assert_eq!(read["messaging_limit"], 10_000);
    let freeform = json!({"sender_id": sender["id"], "recipient_phone": CUSTOMER, "message": "hi"});
    let refused = s
        .app
        .post(
            "/api/user/whatsapp/send-freeform",
            &s.t.key,
            freeform.clone(),
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.body["error_code"], "SENDER_OFFLINE");

    s.fake.set_sender(SENDER_SID, state("ONLINE"));
    s.later(Duration::from_secs(4)).await;
    let events: Vec<Value> = hook
        .deliveries()
        .iter()
        .map(|d| serde_json::from_str::<Value>(&d.body).unwrap())
        .filter(|e| e["data"]["id"] == sender["id"])
        .collect();
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["offline", "online"], "{events:?}");
}

#[tokio::test]
async fn a_failed_submission_keeps_nothing_here_or_at_twilio() {
    let s = setup_with(FakeConfig::default(), SYNC).await;
    s.fake
        .inject_reads(ReadEndpoint::ApprovalCreate, [ReadFault::ServerError]);
    let reply = s
        .app
        .post(
            &format!("/api/user/whatsapp/senders/{}/templates", s.t.sender_id),
            &s.t.key,
            submission("order_update"),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["error_code"], "PROVIDER_UNAVAILABLE");
    assert!(
        s.fake.contents().is_empty(),
        "the Content was deleted again"
    );
    let listed = s
        .app
        .get(
            &format!(
                "/api/user/whatsapp/senders/{}/templates?status=all",
                s.t.sender_id
            ),
            &s.t.key,
        )
        .await;
    assert!(listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["name"] != "order_update"));
    // Tried again, it goes through.
    assert_eq!(submit(&s, "order_update").await["status"], "pending");
}
