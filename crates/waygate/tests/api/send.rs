//! The template and freeform send paths, end to end through the simulator.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn template_send_goes_through_the_simulator_to_read() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let reply = app.send_template(&t, "+1 (415) 555-1234").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sid = reply.body["message_sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(reply.body["status"], "queued");
    assert_eq!(reply.body["success"], true);
    let id = reply.body["whatsapp_message_id"].as_i64().unwrap();

    for _ in 0..3 {
        app.advance(Duration::from_millis(1000));
        app.run_jobs().await;
    }
    let msg = app
        .get(&format!("/api/user/whatsapp/messages/{id}"), &t.key)
        .await;
    assert_eq!(msg.status, 200);
    assert_eq!(msg.body["status"], "read");
    assert_eq!(msg.body["recipient_phone"], "+14155551234");
    assert_eq!(msg.body["body"], "Hello Ada, your code is 1234.");
    let history: Vec<_> = msg.body["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(history, ["pending", "queued", "sent", "delivered", "read"]);
    // utility to +1 at the default rate: 0.02
    assert_eq!(msg.body["price"], json!(0.02));
    assert!((app.balance(&t).await - 9.98).abs() < 1e-9);
}

#[tokio::test]
async fn a_send_recorded_before_a_crash_is_dispatched_after_the_lease() {
    use waygate::store::Dispatch;

    let app = spawn_app().await;
    let t = app.tenant().await;
    // As if the process died right after the commit, before talking to the provider.
    let recorded = app
        .worker
        .store
        .record_send(app.new_send(
            &t,
            "+14155551234",
            Dispatch::Queue {
                lease_ms: app.worker.lease_ms,
            },
        ))
        .await
        .unwrap();
    let path = format!("/api/user/whatsapp/messages/{}", recorded.message_id);
    app.run_jobs().await;
    assert_eq!(
        app.get(&path, &t.key).await.body["status"],
        "pending",
        "leased: not yet"
    );
    app.advance(Duration::from_millis(app.worker.lease_ms as u64 + 1));
    app.run_jobs().await;
    let msg = app.get(&path, &t.key).await.body;
    assert_eq!(msg["status"], "queued");
    assert!(msg["message_sid"].as_str().unwrap().starts_with("SM"));
    app.advance(Duration::from_secs(3600));
    app.run_jobs().await;
    assert_eq!(app.get(&path, &t.key).await.body["status"], "read");
}

#[tokio::test]
async fn freeform_and_named_variables_and_recipient_name() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let reply = app
        .post(
            "/api/user/whatsapp/send",
            &t.key,
            json!({"sender_id": t.sender_id.to_string(), "template_id": t.template_id, "recipient_phone": "+447911123456",
                   "recipient_name": "Ørjan", "variables": {"name": "Ørjan", "code": 42}, "extra": "ignored"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.body["whatsapp_message_id"].as_i64().unwrap();
    let msg = app
        .get(&format!("/api/user/whatsapp/messages/{id}"), &t.key)
        .await
        .body;
    assert_eq!(msg["body"], "Hello Ørjan, your code is 42.");
    // The UK utility rate from the default rate card.
    assert_eq!(msg["price"], json!(0.0292));
    let session = app
        .get(
            &format!(
                "/api/user/whatsapp/session-status?sender_id={}&recipient_phone=%2B447911123456",
                t.sender_id
            ),
            &t.key,
        )
        .await;
    assert_eq!(session.body["customer_name"], "Ørjan");
    let free = app
        .post(
            "/api/user/whatsapp/send-freeform",
            &t.key,
            json!({"sender_id": t.sender_id, "recipient_phone": "+44 7911 123456", "message": "Ça marche 👍"}),
        )
        .await;
    assert_eq!(free.status, 200, "{}", free.body);
    assert_eq!(free.body["conversation_id"], reply.body["conversation_id"]);
    assert_eq!(free.body["session_status"]["is_open"], true);
    let fid = free.body["message_id"].as_i64().unwrap();
    let fmsg = app
        .get(&format!("/api/user/whatsapp/messages/{fid}"), &t.key)
        .await
        .body;
    assert_eq!(fmsg["template_id"], serde_json::Value::Null);
    assert_eq!(
        fmsg["price"],
        json!(0.0),
        "freeform is a free service message by default"
    );
}
