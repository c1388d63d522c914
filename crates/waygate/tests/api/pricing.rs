//! Pricing as WhatsApp charges since July 2025: per template by category and country, and a
//! utility template sent inside an open customer-service window (the customer wrote in the
//! last 24 h) is free; marketing is charged either way.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

const CUSTOMER: &str = "+14155551234";

async fn customer_writes(app: &TestApp, t: &Tenant) {
    app.admin(
        Method::POST,
        "/api/admin/simulator/inbound",
        json!({"sender_id": t.sender_id, "from": CUSTOMER, "body": "Where is my order?"}),
    )
    .await;
}

#[tokio::test]
async fn a_utility_template_is_free_inside_the_customer_service_window_only() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let marketing = app
        .admin(
            Method::POST,
            &format!("/api/admin/senders/{}/templates", t.sender_id),
            json!({"name": "promo", "language": "en", "category": "marketing",
                   "body_text": "Hello {{1}}, your code is {{2}}.", "variables": ["name", "code"]}),
        )
        .await;

    // No customer message yet: the utility template pays its rate.
    let outside = app.send_template(&t, CUSTOMER).await;
    assert_eq!(outside.status, 200, "{}", outside.body);
    let msg = app.message(&t, &outside.body["whatsapp_message_id"]).await;
    assert_eq!(msg["price"], 0.02);

    customer_writes(&app, &t).await;
    let before = app.balance(&t).await;
    let inside = app.send_template(&t, CUSTOMER).await;
    let msg = app.message(&t, &inside.body["whatsapp_message_id"]).await;
    assert_eq!(msg["price"], 0.0, "{msg}");
    assert_eq!(app.balance(&t).await, before);

    let promo = app
        .post(
            "/api/user/whatsapp/send",
            &t.key,
            json!({"sender_id": t.sender_id, "template_id": marketing["id"], "recipient_phone": CUSTOMER,
                   "variables": {"1": "Ada", "2": "1"}}),
        )
        .await;
    let msg = app.message(&t, &promo.body["whatsapp_message_id"]).await;
    assert_eq!(msg["price"], 0.0625, "marketing pays inside the window too");

    // A day after the customer's message the window is closed again.
    app.advance(Duration::from_secs(24 * 3600 + 60));
    let later = app.send_template(&t, CUSTOMER).await;
    let msg = app.message(&t, &later.body["whatsapp_message_id"]).await;
    assert_eq!(msg["price"], 0.02);
}
