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
