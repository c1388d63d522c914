//! Tenancy (API.md §1): another user's id behaves exactly like a missing id, and lists never
//! show another user's rows.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const TO: &str = "+14155551234";
/// No row anywhere has this id.
const NO_SUCH_ID: i64 = 987_654_321;

/// Two tenants on one server, with a send rate limit that does not get in the way.
async fn two_tenants() -> (TestApp, Tenant, Tenant) {
    let app = spawn_with("rate_limit_per_second = 1000\n").await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    assert_ne!(a.user_id, b.user_id);
    assert_ne!(a.key, b.key);
    (app, a, b)
}

/// `other` (an id of the other tenant) and `missing` (no such id) get the same answer, which
/// is a 404 with `code`.
fn same_as_missing(other: &Reply, missing: &Reply, code: &str, what: &str) {
    assert_eq!(missing.status, 404, "{what}, missing id: {}", missing.body);
    assert_eq!(missing.body["success"], json!(false), "{what}");
    assert_eq!(missing.body["error_code"], json!(code), "{what}");
    assert_eq!(
        other.status, missing.status,
        "{what}, other tenant's id: {}",
        other.body
    );
    assert_eq!(other.body, missing.body, "{what}");
}

/// A's activity: a template send (conversation + message) and an inbound reply.
/// Returns (conversation_id, outbound message id, inbound message id).
async fn activity(app: &TestApp, t: &Tenant, to: &str) -> (i64, i64, i64) {
    let reply = app.send_template(t, to).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    app.advance(Duration::from_secs(1));
    app.run_jobs().await;
    let inbound = app
        .admin(
            Method::POST,
            "/api/admin/simulator/inbound",
            json!({"sender_id": t.sender_id, "from": to, "body": "thanks", "profile_name": "Ada"}),
        )
        .await;
    (
        reply.body["conversation_id"].as_i64().unwrap(),
        reply.body["whatsapp_message_id"].as_i64().unwrap(),
        inbound["id"].as_i64().unwrap(),
    )
}

async fn webhook(app: &TestApp, t: &Tenant, url: &str) -> i64 {
    let reply = app
        .post(
            "/api/user/webhooks",
            &t.key,
            json!({"url": url, "events": ["message.status", "message.received"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

fn ids(reply: &Reply) -> Vec<i64> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {}", reply.body))
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn another_tenants_sender_templates_are_a_missing_sender() {
    let (app, a, b) = two_tenants().await;
    for query in ["", "?status=all", "?status=pending"] {
        let other = app
            .get(
                &format!(
                    "/api/user/whatsapp/senders/{}/templates{query}",
                    a.sender_id
                ),
                &b.key,
            )
            .await;
        let missing = app
            .get(
                &format!("/api/user/whatsapp/senders/{NO_SUCH_ID}/templates{query}"),
                &b.key,
            )
            .await;
        same_as_missing(&other, &missing, "SENDER_NOT_FOUND", "templates");
    }
    // The owner sees them.
    let own = app
        .get(
            &format!("/api/user/whatsapp/senders/{}/templates", a.sender_id),
            &a.key,
        )
        .await;
    assert_eq!(ids(&own), [a.template_id]);
}

#[tokio::test]
async fn another_tenants_sender_and_template_on_send_are_missing_ones() {
    let (app, a, b) = two_tenants().await;
    let send = |sender_id: i64, template_id: i64| {
        let body = json!({"sender_id": sender_id, "template_id": template_id,
                          "recipient_phone": TO, "variables": {"1": "Ada", "2": "1234"}});
        let app = &app;
        let key = b.key.clone();
        async move { app.post("/api/user/whatsapp/send", &key, body).await }
    };
    // A's sender with A's template.
    let other = send(a.sender_id, a.template_id).await;
    let missing = send(NO_SUCH_ID, NO_SUCH_ID).await;
    same_as_missing(&other, &missing, "SENDER_NOT_FOUND", "send, A's sender");
    // A's sender with B's template.
    let other = send(a.sender_id, b.template_id).await;
    let missing = send(NO_SUCH_ID, b.template_id).await;
    same_as_missing(&other, &missing, "SENDER_NOT_FOUND", "send, A's sender");
    // B's sender with A's template.
    let other = send(b.sender_id, a.template_id).await;
    let missing = send(b.sender_id, NO_SUCH_ID).await;
    same_as_missing(&other, &missing, "TEMPLATE_NOT_FOUND", "send, A's template");

    // Nothing was sent or charged on either side.
    assert!((app.balance(&a).await - 10.0).abs() < 1e-9);
    assert!((app.balance(&b).await - 10.0).abs() < 1e-9);
    for t in [&a, &b] {
        let conversations = app.get("/api/user/whatsapp/conversations", &t.key).await;
        assert_eq!(ids(&conversations), Vec::<i64>::new());
    }
}

#[tokio::test]
async fn another_tenants_sender_on_send_freeform_is_a_missing_one() {
    let (app, a, b) = two_tenants().await;
    // A's window with TO is open, so only ownership can refuse B.
    activity(&app, &a, TO).await;
    let freeform = |sender_id: i64| {
        let body = json!({"sender_id": sender_id, "recipient_phone": TO, "message": "hi"});
        let app = &app;
        let key = b.key.clone();
        async move {
            app.post("/api/user/whatsapp/send-freeform", &key, body)
                .await
        }
    };
    let other = freeform(a.sender_id).await;
    let missing = freeform(NO_SUCH_ID).await;
    same_as_missing(&other, &missing, "SENDER_NOT_FOUND", "send-freeform");
}

#[tokio::test]
async fn another_tenants_sender_on_session_status_is_a_missing_one() {
    let (app, a, b) = two_tenants().await;
    activity(&app, &a, TO).await;
    let session = |sender_id: i64| {
        let path = format!(
            "/api/user/whatsapp/session-status?sender_id={sender_id}&recipient_phone=%2B14155551234"
        );
        let app = &app;
        let key = b.key.clone();
        async move { app.get(&path, &key).await }
    };
    let other = session(a.sender_id).await;
    let missing = session(NO_SUCH_ID).await;
    same_as_missing(&other, &missing, "SENDER_NOT_FOUND", "session-status");
    // The owner sees the conversation.
    let own = app
        .get(
            &format!(
                "/api/user/whatsapp/session-status?sender_id={}&recipient_phone=%2B14155551234",
                a.sender_id
            ),
            &a.key,
        )
        .await;
    assert_eq!(own.body["has_conversation"], true, "{}", own.body);
}

#[tokio::test]
async fn another_tenants_messages_are_missing_ones() {
    let (app, a, b) = two_tenants().await;
    let (_, outbound, inbound) = activity(&app, &a, TO).await;
    let missing = app
        .get(&format!("/api/user/whatsapp/messages/{NO_SUCH_ID}"), &b.key)
        .await;
    for id in [outbound, inbound] {
        let other = app
            .get(&format!("/api/user/whatsapp/messages/{id}"), &b.key)
            .await;
        same_as_missing(&other, &missing, "NOT_FOUND", "message");
        let own = app
            .get(&format!("/api/user/whatsapp/messages/{id}"), &a.key)
            .await;
        assert_eq!(own.status, 200, "{}", own.body);
    }
}

#[tokio::test]
async fn another_tenants_conversation_messages_are_a_missing_conversation() {
    let (app, a, b) = two_tenants().await;
    let (conversation, _, _) = activity(&app, &a, TO).await;
    for query in ["", "?per_page=1"] {
        let other = app
            .get(
                &format!("/api/user/whatsapp/conversations/{conversation}/messages{query}"),
                &b.key,
            )
            .await;
        let missing = app
            .get(
                &format!("/api/user/whatsapp/conversations/{NO_SUCH_ID}/messages{query}"),
                &b.key,
            )
            .await;
        same_as_missing(&other, &missing, "NOT_FOUND", "conversation messages");
    }
    let own = app
        .get(
            &format!("/api/user/whatsapp/conversations/{conversation}/messages"),
            &a.key,
        )
        .await;
    assert_eq!(ids(&own).len(), 2);
}

#[tokio::test]
async fn another_tenants_webhooks_cannot_be_deleted_or_rotated() {
    let (app, a, b) = two_tenants().await;
    let hook = webhook(&app, &a, "http://127.0.0.1:9/a").await;

    let other = app
        .request(
            Method::DELETE,
            &format!("/api/user/webhooks/{hook}"),
            Some(&b.key),
            None,
        )
        .await;
    let missing = app
        .request(
            Method::DELETE,
            &format!("/api/user/webhooks/{NO_SUCH_ID}"),
            Some(&b.key),
            None,
        )
        .await;
    same_as_missing(&other, &missing, "NOT_FOUND", "delete webhook");

    let other = app
        .request(
            Method::POST,
            &format!("/api/user/webhooks/{hook}/rotate-secret"),
            Some(&b.key),
            None,
        )
        .await;
    let missing = app
        .request(
            Method::POST,
            &format!("/api/user/webhooks/{NO_SUCH_ID}/rotate-secret"),
            Some(&b.key),
            None,
        )
        .await;
    same_as_missing(&other, &missing, "NOT_FOUND", "rotate webhook secret");

    // A's webhook is still there, and its owner can still manage it.
    let list = app.get("/api/user/webhooks", &a.key).await;
    assert_eq!(ids(&list), [hook]);
    let rotated = app
        .request(
            Method::POST,
            &format!("/api/user/webhooks/{hook}/rotate-secret"),
            Some(&a.key),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/user/webhooks/{hook}"),
            Some(&a.key),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
}

#[tokio::test]
async fn lists_never_show_another_tenants_rows() {
    let (app, a, b) = two_tenants().await;
    // A second, offline sender for A.
    let offline = app
        .admin(
            Method::POST,
            &format!("/api/admin/users/{}/senders", a.user_id),
            json!({"phone_number": "+14155550101", "display_name": "Acme 2", "status": "offline"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (a_conversation, _, _) = activity(&app, &a, TO).await;
    let (b_conversation, _, _) = activity(&app, &b, TO).await;
    let a_hook = webhook(&app, &a, "http://127.0.0.1:9/a").await;
    let b_hook = webhook(&app, &b, "http://127.0.0.1:9/b").await;

    for (t, senders, conversation, hook) in [
        (&a, vec![a.sender_id, offline], a_conversation, a_hook),
        (&b, vec![b.sender_id], b_conversation, b_hook),
    ] {
        let mut all = ids(&app
            .get("/api/user/whatsapp/senders?status=all", &t.key)
            .await);
        all.sort_unstable();
        assert_eq!(all, senders);
        assert_eq!(
            ids(&app.get("/api/user/whatsapp/senders", &t.key).await),
            [senders[0]]
        );
        let offline_only = ids(&app
            .get("/api/user/whatsapp/senders?status=offline", &t.key)
            .await);
        assert_eq!(offline_only, senders[1..]);

        assert_eq!(
            ids(&app.get("/api/user/whatsapp/conversations", &t.key).await),
            [conversation]
        );
        // The same recipient, filtered, and one row per page.
        assert_eq!(
            ids(&app
                .get(
                    "/api/user/whatsapp/conversations?recipient_phone=%2B14155551234&per_page=1",
                    &t.key
                )
                .await),
            [conversation]
        );
        assert_eq!(ids(&app.get("/api/user/webhooks", &t.key).await), [hook]);
    }

    // Filtering by the other tenant's sender shows nothing of theirs.
    let filtered = app
        .get(
            &format!("/api/user/whatsapp/conversations?sender_id={}", a.sender_id),
            &b.key,
        )
        .await;
    assert!(
        !ids(&filtered).contains(&a_conversation),
        "{}",
        filtered.body
    );
    let filtered = app
        .get(
            &format!("/api/user/whatsapp/conversations?sender_id={}", b.sender_id),
            &a.key,
        )
        .await;
    assert!(
        !ids(&filtered).contains(&b_conversation),
        "{}",
        filtered.body
    );
}

#[tokio::test]
async fn idempotency_keys_belong_to_one_tenant() {
    let (app, a, b) = two_tenants().await;
    let send = |t: &Tenant| {
        let request = app
            .http
            .post(format!("{}/api/user/whatsapp/send", app.base))
            .bearer_auth(&t.key)
            .header("idempotency-key", "same-key")
            .json(
                &json!({"sender_id": t.sender_id, "template_id": t.template_id,
                          "recipient_phone": TO, "variables": {"1": "Ada", "2": "1234"}}),
            );
        async move {
            let resp = request.send().await.expect("request");
            let status = resp.status();
            let body: Value = resp.json().await.expect("json");
            (status, body)
        }
    };
    let (status, first) = send(&a).await;
    assert_eq!(status, 200, "{first}");
    // B's key of the same name, with B's own (different) body: neither a conflict nor A's
    // answer.
    let (status, second) = send(&b).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["whatsapp_message_id"], first["whatsapp_message_id"]);
    assert!((app.balance(&a).await - 9.98).abs() < 1e-9);
    assert!((app.balance(&b).await - 9.98).abs() < 1e-9);
}

#[tokio::test]
async fn the_send_rate_limit_is_per_tenant() {
    let app = spawn_with("rate_limit_per_second = 1\n").await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    assert_eq!(app.send_template(&a, TO).await.status, 200);
    let limited = app.send_template(&a, TO).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    let reply = app.send_template(&b, TO).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
