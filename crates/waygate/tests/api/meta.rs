//! The Meta provider against the fake Meta on loopback: template and text sends, statuses and
//! inbound messages by signed webhooks (batched, repeated, forged), every error class, unknown
//! outcomes settled by a webhook or sent again once, the subscription handshake, and templates
//! and senders kept in step by push and by polling.

use std::net::SocketAddr;
use std::time::Duration;

use meta_fake::{
    Config as FakeConfig, FakeMeta, Fault, Inbound, InboundContent, MediaKind, PhoneNumber,
    PhoneNumberState, TemplateSend,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::webhooks::{receiver, subscribe};

const SENDER: &str = "+14155550199";
const CUSTOMER: &str = "+14155551234";
const VERIFY_TOKEN: &str = "let-meta-in";
/// `meta_unknown_wait_ms` in these tests.
const WAIT: Duration = Duration::from_secs(60);

struct Setup {
    app: TestApp,
    fake: FakeMeta,
    t: Tenant,
}

/// An address for the fake, known before the server that it calls back starts.
fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// The server pointed at the fake at `fake`, checking webhooks with `app_secret`.
fn settings(fake: SocketAddr, app_secret: &str) -> String {
    let defaults = FakeConfig::default();
    format!(
        "meta_access_token = {:?}\nmeta_app_secret = {app_secret:?}\nmeta_verify_token = {VERIFY_TOKEN:?}\n\
         meta_api_base = \"http://{fake}\"\nmeta_timeout_ms = 500\nmeta_unknown_wait_ms = {}\n\
         template_pending_poll_s = 1\n",
        defaults.access_token,
        WAIT.as_millis()
    )
}

/// A tenant whose sender is the fake's phone number, with the two-variable template approved
/// at Meta.
async fn meta_tenant(app: &TestApp, fake: &FakeMeta) -> Tenant {
    let mut t = app.tenant().await;
    let sender = app
        .admin(
            Method::POST,
            &format!("/api/admin/users/{}/senders", t.user_id),
            json!({"phone_number": SENDER, "display_name": "Acme on Meta", "provider": "meta",
                   "provider_ref": fake.phone_number_id(), "waba_id": fake.waba_id()}),
        )
        .await;
    t.sender_id = sender["id"].as_i64().unwrap();
    let at_meta = fake
        .add_approved_template("code", "en", "utility", "Hello {{1}}, your code is {{2}}.")
        .expect("the fake takes the template");
    let template = app
        .admin(
            Method::POST,
            &format!("/api/admin/senders/{}/templates", t.sender_id),
            json!({"name": "code", "language": "en", "category": "utility", "provider_ref": at_meta.id,
                   "body_text": "Hello {{1}}, your code is {{2}}.", "variables": ["name", "code"]}),
        )
        .await;
    t.template_id = template["id"].as_i64().unwrap();
    t
}

async fn setup_with_secret(app_secret: &str) -> Setup {
    let address = free_address();
    let app = spawn_with(&settings(address, app_secret)).await;
    let fake = FakeMeta::start_on(
        FakeConfig {
            webhook_url: Some(format!("{}/webhooks/meta", app.base)),
            phone_numbers: vec![PhoneNumber {
                id: "106540352242922".into(),
                display_phone_number: SENDER.trim_start_matches('+').into(),
            }],
            ..FakeConfig::default()
        },
        address,
    )
    .await
    .expect("fake Meta starts");
    let t = meta_tenant(&app, &fake).await;
    // The first reading of the new sender and template, out of the way of what tests count.
    app.run_jobs().await;
    Setup { app, fake, t }
}

async fn setup() -> Setup {
    setup_with_secret(FakeConfig::default().app_secret.as_str()).await
}

fn statuses(msg: &Value) -> Vec<String> {
    msg["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

fn text_from(from: &str, text: &str) -> Inbound {
    Inbound {
        from: from.to_string(),
        content: InboundContent::Text(text.to_string()),
        ..Inbound::default()
    }
}

impl Setup {
    async fn message(&self, id: &Value) -> Value {
        self.app.message(&self.t, id).await
    }

    /// Posts `body` to /webhooks/meta with `signature` as X-Hub-Signature-256 (none: unsigned).
    async fn post_webhook(&self, body: Vec<u8>, signature: Option<String>) -> u16 {
        let mut req = self
            .app
            .http
            .post(format!("{}/webhooks/meta", self.app.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            req = req.header("x-hub-signature-256", signature);
        }
        answer(req).await.status.as_u16()
    }

    /// Posts `body` signed as Meta signs it.
    async fn post_signed(&self, body: Vec<u8>) -> u16 {
        let signature = meta_fake::signature(self.fake.app_secret(), &body);
        self.post_webhook(body, Some(signature)).await
    }

    async fn conversations(&self) -> Vec<Value> {
        let page = self
            .app
            .get("/api/user/whatsapp/conversations", &self.t.key)
            .await;
        page.body["data"].as_array().cloned().unwrap_or_default()
    }

    /// The messages of the conversation with `customer`, oldest first.
    async fn messages_with(&self, customer: &str) -> Vec<Value> {
        let conversations = self.conversations().await;
        let Some(conv) = conversations
            .iter()
            .find(|c| c["recipient_phone"] == customer && c["sender_id"] == self.t.sender_id)
        else {
            return Vec::new();
        };
        let messages = self
            .app
            .get(
                &format!("/api/user/whatsapp/conversations/{}/messages", conv["id"]),
                &self.t.key,
            )
            .await;
        messages.body["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn deliver(&self) {
        let posts = self.fake.deliver_webhooks().await;
        assert!(posts.iter().all(|s| *s == 200), "{posts:?}");
    }

    /// Lets `by` pass and runs what is due.
    async fn later(&self, by: Duration) {
        self.app.advance(by);
        self.app.run_jobs().await;
    }

    fn reached_meta(&self, id: &Value) -> usize {
        self.fake
            .messages_per_callback_data()
            .get(&id.to_string())
            .copied()
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn a_template_send_names_the_template_and_follows_signed_statuses_to_read() {
    let s = setup().await;
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "accepted");
    let id = reply.body["whatsapp_message_id"].clone();
    let sent = s.fake.messages();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(reply.body["message_sid"], m.id.as_str());
    assert!(m.id.starts_with("wamid."));
    assert_eq!(m.phone_number_id, s.fake.phone_number_id());
    assert_eq!(m.to, "14155551234");
    assert_eq!(m.biz_opaque_callback_data, Some(id.to_string()));
    assert_eq!(
        m.template,
        Some(TemplateSend {
            name: "code".into(),
            language: "en".into(),
            body_parameters: vec!["Ada".into(), "1234".into()],
        })
    );
    s.deliver().await;
    let msg = s.message(&id).await;
    assert_eq!(msg["status"], "read", "{msg}");
    assert_eq!(
        statuses(&msg),
        ["pending", "accepted", "sent", "delivered", "read"]
    );
}

#[tokio::test]
async fn a_text_send_inside_the_window_is_a_text_message() {
    let s = setup().await;
    assert_eq!(
        s.fake
            .send_inbound(&[text_from(CUSTOMER, "Is my order on its way?")])
            .await
            .unwrap(),
        200
    );
    let reply = s
        .app
        .post(
            "/api/user/whatsapp/send-freeform",
            &s.t.key,
            json!({"sender_id": s.t.sender_id, "recipient_phone": CUSTOMER, "message": "It ships today."}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = s.fake.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text.as_deref(), Some("It ships today."));
    assert_eq!(sent[0].template, None);
    s.deliver().await;
    let msg = s.message(&reply.body["whatsapp_message_id"]).await;
    assert_eq!(msg["status"], "read", "{msg}");
}

#[tokio::test]
async fn a_failed_status_refunds_once_however_often_it_comes() {
    let s = setup().await;
    let before = s.app.balance(&s.t).await;
    // The fake fails recipients ending in 1026 with 131026 (undeliverable).
    let reply = s.app.send_template(&s.t, "+14155551026").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.body["whatsapp_message_id"].clone();
    assert!(s.app.balance(&s.t).await < before, "charged");
    s.deliver().await;
    let msg = s.message(&id).await;
    assert_eq!(msg["status"], "failed", "{msg}");
    assert_eq!(msg["error_code"], 131026);
    assert!(
        (s.app.balance(&s.t).await - before).abs() < 1e-9,
        "refunded"
    );

    // Meta posts the same status again.
    let again = json!({"object": "whatsapp_business_account", "entry": [{"id": s.fake.waba_id(), "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": SENDER.trim_start_matches('+'), "phone_number_id": s.fake.phone_number_id()},
        "statuses": [{"id": msg["message_sid"], "status": "failed", "timestamp": "1750030073",
            "recipient_id": "14155551026", "biz_opaque_callback_data": id.to_string(),
            "errors": [{"code": 131026, "title": "Message undeliverable"}]}]}}]}]});
    assert_eq!(s.post_signed(again.to_string().into_bytes()).await, 200);
    s.app.run_jobs().await;
    assert!(
        (s.app.balance(&s.t).await - before).abs() < 1e-9,
        "refunded once"
    );
    assert_eq!(statuses(&s.message(&id).await).last().unwrap(), "failed");
}

#[tokio::test]
async fn inbound_messages_keep_their_text_media_buttons_and_context() {
    let s = setup().await;
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    let wamid = reply.body["message_sid"].as_str().unwrap().to_string();
    let inbound = [
        Inbound {
            profile_name: Some("Ada Lovelace".into()),
            ..text_from(CUSTOMER, "hello")
        },
        Inbound {
            from: CUSTOMER.into(),
            content: InboundContent::Media {
                kind: MediaKind::Image,
                id: "1479537139650973".into(),
                mime_type: "image/jpeg".into(),
                caption: Some("my receipt".into()),
            },
            ..Inbound::default()
        },
        Inbound {
            from: CUSTOMER.into(),
            content: InboundContent::Button {
                text: "Track".into(),
                payload: "track-1042".into(),
            },
            ..Inbound::default()
        },
        Inbound {
            from: CUSTOMER.into(),
            reply_to: Some(wamid.clone()),
            content: InboundContent::ButtonReply {
                id: "confirm-yes".into(),
                title: "Yes".into(),
            },
            ..Inbound::default()
        },
        Inbound {
            from: CUSTOMER.into(),
            content: InboundContent::ListReply {
                id: "slot-tuesday".into(),
                title: "Tuesday".into(),
                description: None,
            },
            ..Inbound::default()
        },
    ];
    for message in &inbound {
        assert_eq!(
            s.fake
                .send_inbound(std::slice::from_ref(message))
                .await
                .unwrap(),
            200
        );
    }
    let conversation = s
        .conversations()
        .await
        .into_iter()
        .find(|c| c["recipient_phone"] == CUSTOMER)
        .unwrap();
    assert_eq!(conversation["customer_name"], "Ada Lovelace");
    assert_eq!(
        conversation["session_status"]["is_open"], true,
        "{conversation}"
    );
    let messages = s.messages_with(CUSTOMER).await;
    let inbound: Vec<&Value> = messages
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(inbound.len(), 5, "{messages:?}");
    assert_eq!(inbound[0]["body"], "hello");
    assert!(inbound[0]["message_sid"]
        .as_str()
        .unwrap()
        .starts_with("wamid."));
    assert_eq!(inbound[0]["reply_to_sid"], Value::Null);
    assert_eq!(inbound[1]["body"], "my receipt");
    assert_eq!(
        inbound[1]["media"],
        json!([{"content_type": "image/jpeg", "provider_media_id": "1479537139650973"}])
    );
    assert_eq!(inbound[2]["button_payload"], "track-1042");
    assert_eq!(inbound[2]["body"], "Track");
    assert_eq!(inbound[3]["button_payload"], "confirm-yes");
    assert_eq!(inbound[3]["reply_to_sid"], wamid.as_str());
    assert_eq!(inbound[4]["button_payload"], "slot-tuesday");
    assert_eq!(inbound[4]["body"], "Tuesday");
}

#[tokio::test]
async fn a_repeated_inbound_message_is_kept_once() {
    let s = setup().await;
    let message = Inbound {
        id: Some("wamid.REPEATED".into()),
        ..text_from(CUSTOMER, "hello")
    };
    let body = s.fake.inbound_body(&[message]);
    assert_eq!(s.post_signed(body.clone()).await, 200);
    assert_eq!(s.post_signed(body).await, 200);
    let messages = s.messages_with(CUSTOMER).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
}

#[tokio::test]
async fn forged_and_unsigned_webhooks_are_refused_and_change_nothing() {
    let s = setup().await;
    let body = s.fake.inbound_body(&[text_from(CUSTOMER, "let me in")]);
    let forged = meta_fake::signature("not-the-app-secret", &body);
    assert_eq!(s.post_webhook(body.clone(), Some(forged)).await, 403);
    assert_eq!(s.post_webhook(body.clone(), None).await, 403);
    // A valid signature over other bytes does not cover these.
    let other = meta_fake::signature(s.fake.app_secret(), b"{}");
    assert_eq!(s.post_webhook(body, Some(other)).await, 403);
    assert!(s.messages_with(CUSTOMER).await.is_empty());
    assert!(s
        .conversations()
        .await
        .iter()
        .all(|c| c["recipient_phone"] != CUSTOMER));
}

#[tokio::test]
async fn without_an_app_secret_every_webhook_is_refused() {
    let s = setup_with_secret("").await;
    let status = s
        .fake
        .send_inbound(&[text_from(CUSTOMER, "hello")])
        .await
        .unwrap();
    assert_eq!(status, 403);
    assert!(s.messages_with(CUSTOMER).await.is_empty());
}

#[tokio::test]
async fn one_post_may_carry_several_statuses_and_messages() {
    let s = setup().await;
    let others = ["+14155552001", "+14155552002"];
    let mut ids = Vec::new();
    for to in others {
        let reply = s.app.send_template(&s.t, to).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        ids.push(reply.body["whatsapp_message_id"].clone());
    }
    let posts = s.fake.deliver_webhooks().await;
    assert_eq!(posts, [200], "six statuses in one POST");
    for id in &ids {
        assert_eq!(s.message(id).await["status"], "read");
    }
    let status = s
        .fake
        .send_inbound(&[
            text_from(others[0], "first"),
            text_from(others[1], "second"),
        ])
        .await
        .unwrap();
    assert_eq!(status, 200);
    for (customer, text) in [(others[0], "first"), (others[1], "second")] {
        let messages = s.messages_with(customer).await;
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[1]["body"], text);
    }
}

#[tokio::test]
async fn a_refusal_fails_the_send_with_metas_code_and_refunds() {
    let s = setup().await;
    s.fake.inject([Fault::Error { code: 132001 }]);
    let before = s.app.balance(&s.t).await;
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["error_code"], "META_ERROR_132001");
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("Template name does not exist"),
        "{}",
        reply.body
    );
    assert!(
        (s.app.balance(&s.t).await - before).abs() < 1e-9,
        "refunded"
    );
    let messages = s.messages_with(CUSTOMER).await;
    assert_eq!(messages[0]["status"], "failed");
}

#[tokio::test]
async fn rate_limits_wait_and_then_send_once() {
    for code in [130429, 131056, 80007] {
        let s = setup().await;
        s.fake.inject([Fault::Error { code }]);
        let reply = s.app.send_template(&s.t, CUSTOMER).await;
        assert_eq!(reply.body["status"], "pending", "{code}: {}", reply.body);
        let id = reply.body["whatsapp_message_id"].clone();
        assert_eq!(s.reached_meta(&id), 0);
        s.later(Duration::from_secs(5)).await;
        assert_eq!(s.reached_meta(&id), 1, "{code}");
        assert_eq!(s.message(&id).await["status"], "accepted");
        s.later(WAIT * 2).await;
        assert_eq!(s.reached_meta(&id), 1, "{code}: sent once");
    }
}

#[tokio::test]
async fn an_expired_token_keeps_the_message_in_the_outbox() {
    let s = setup().await;
    let before = s.app.balance(&s.t).await;
    s.fake
        .inject([Fault::Error { code: 190 }, Fault::Error { code: 190 }]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "pending");
    let id = reply.body["whatsapp_message_id"].clone();
    s.later(Duration::from_secs(5)).await;
    let msg = s.message(&id).await;
    assert_eq!(msg["status"], "pending", "not failed: {msg}");
    assert!(s.app.balance(&s.t).await < before, "not refunded");
    s.later(Duration::from_secs(10)).await;
    assert_eq!(s.reached_meta(&id), 1, "sent once the token works");
    assert_eq!(s.message(&id).await["status"], "accepted");
}

#[tokio::test]
async fn a_lost_answer_is_settled_by_a_status_webhook_carrying_the_message_id() {
    let s = setup().await;
    s.fake.inject([Fault::AcceptedThenServerError]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.body["status"], "pending", "{}", reply.body);
    let id = reply.body["whatsapp_message_id"].clone();
    s.deliver().await;
    let msg = s.message(&id).await;
    assert_eq!(msg["message_sid"], s.fake.messages()[0].id.as_str());
    assert_eq!(msg["status"], "read", "{msg}");
    s.later(WAIT + Duration::from_secs(1)).await;
    s.later(WAIT * 2).await;
    assert_eq!(s.fake.send_requests(), 1, "never sent again");
    assert_eq!(s.reached_meta(&id), 1);
}

#[tokio::test]
async fn an_unknown_outcome_without_news_is_sent_again_once_after_the_wait() {
    let s = setup().await;
    s.fake.inject([Fault::ServerError]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.body["status"], "pending", "{}", reply.body);
    let id = reply.body["whatsapp_message_id"].clone();
    s.later(WAIT / 2).await;
    assert_eq!(s.fake.send_requests(), 1, "waits for a webhook first");
    assert_eq!(s.reached_meta(&id), 0);
    s.later(WAIT).await;
    assert_eq!(s.fake.send_requests(), 2, "sent again");
    assert_eq!(s.reached_meta(&id), 1);
    assert_eq!(s.message(&id).await["status"], "accepted");
    s.later(WAIT * 3).await;
    assert_eq!(s.fake.send_requests(), 2, "once");
}

#[tokio::test]
async fn a_timed_out_send_is_sent_again_exactly_once() {
    let s = setup().await;
    // Meta takes the message but answers after waygate gave up (meta_timeout_ms = 500).
    s.fake.inject([Fault::Slow { delay_ms: 1500 }]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.body["status"], "pending", "{}", reply.body);
    let id = reply.body["whatsapp_message_id"].clone();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(s.reached_meta(&id), 1);
    s.later(WAIT + Duration::from_secs(1)).await;
    s.later(WAIT * 3).await;
    assert_eq!(s.reached_meta(&id), 2, "no webhook came: sent again, once");
}

#[tokio::test]
async fn the_subscription_handshake_needs_the_verify_token() {
    let s = setup().await;
    assert!(s.fake.verify_webhook(VERIFY_TOKEN).await.unwrap());
    assert!(!s.fake.verify_webhook("guess").await.unwrap());
    let wrong_mode = s
        .app
        .request(
            Method::GET,
            &format!(
                "/webhooks/meta?hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=7"
            ),
            None,
            None,
        )
        .await;
    assert_eq!(wrong_mode.status, 403);
    let right = s
        .app
        .request(
            Method::GET,
            &format!("/webhooks/meta?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"),
            None,
            None,
        )
        .await;
    assert_eq!(right.status, 200);
    assert_eq!(right.headers["content-type"], "text/plain");
    assert_eq!(right.body, json!(1158201444));
}

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

impl Setup {
    async fn submit(&self, name: &str) -> Value {
        let created = self
            .app
            .post(
                &format!("/api/user/whatsapp/senders/{}/templates", self.t.sender_id),
                &self.t.key,
                submission(name),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.body
    }

    async fn template(&self, id: &Value) -> Value {
        self.app
            .get(&format!("/api/user/whatsapp/templates/{id}"), &self.t.key)
            .await
            .body
    }
}

/// Longer than the fake's review (100 ms).
async fn review_passes() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_submitted_template_is_approved_by_metas_push() {
    let s = setup().await;
    let created = s.submit("order_update").await;
    assert_eq!(created["status"], "pending");
    let at_meta = s
        .fake
        .templates()
        .into_iter()
        .find(|t| t.name == "order_update")
        .expect("created at Meta");
    assert_eq!(created["provider_ref"], at_meta.id.as_str());
    assert_eq!(at_meta.language, "en_US");
    assert_eq!(at_meta.category, "UTILITY");
    let components = at_meta.components.as_array().unwrap();
    let kinds: Vec<&str> = components
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["HEADER", "BODY", "FOOTER", "BUTTONS"]);
    assert_eq!(
        components[1]["example"]["body_text"],
        json!([["Ada", "#1042"]])
    );
    assert_eq!(components[3]["buttons"][1]["type"], "URL");

    review_passes().await;
    assert_eq!(s.template(&created["id"]).await["status"], "pending");
    s.deliver().await;
    let approved = s.template(&created["id"]).await;
    assert_eq!(approved["status"], "approved", "{approved}");

    let reply = s
        .app
        .post(
            "/api/user/whatsapp/send",
            &s.t.key,
            json!({"sender_id": s.t.sender_id, "template_id": created["id"], "recipient_phone": CUSTOMER,
                   "variables": {"1": "Ada", "2": "#1042"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = s.fake.messages();
    assert_eq!(sent[0].template.as_ref().unwrap().name, "order_update");
}

#[tokio::test]
async fn a_deleted_template_is_deleted_at_meta_too() {
    let s = setup().await;
    let created = s.submit("order_update").await;
    let deleted = s
        .app
        .request(
            Method::DELETE,
            &format!("/api/user/whatsapp/templates/{}", created["id"]),
            Some(&s.t.key),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert!(s.fake.templates().iter().all(|t| t.name != "order_update"));
    // The two-variable template of the same account is left alone.
    assert!(s.fake.templates().iter().any(|t| t.name == "code"));
}

#[tokio::test]
async fn templates_are_read_back_from_meta_when_synced() {
    let s = setup().await;
    let approved = s.submit("order_update").await;
    let rejected = s.submit("reject_order_update").await;
    review_passes().await;
    for (created, status) in [(&approved, "approved"), (&rejected, "rejected")] {
        let synced = s
            .app
            .post(
                &format!("/api/user/whatsapp/templates/{}/sync", created["id"]),
                &s.t.key,
                json!({}),
            )
            .await;
        assert_eq!(synced.status, 200, "{}", synced.body);
        assert_eq!(synced.body["status"], status);
    }
    let rejected = s.template(&rejected["id"]).await;
    assert_eq!(rejected["rejection_reason"], "INVALID_FORMAT");
    assert_eq!(
        s.template(&approved["id"]).await["rejection_reason"],
        Value::Null
    );
}

#[tokio::test]
async fn a_quality_update_push_changes_the_sender_and_is_announced_once() {
    let s = setup().await;
    let hook = receiver(0).await;
    subscribe(&s.app, &s.t, &hook.url, json!(["sender.status"])).await;
    s.fake
        .set_phone_number_state(
            s.fake.phone_number_id(),
            PhoneNumberState {
                status: "CONNECTED".into(),
                quality_rating: "RED".into(),
                messaging_limit_tier: "TIER_250".into(),
            },
        )
        .unwrap();
    s.deliver().await;
    let senders = s.app.get("/api/user/whatsapp/senders", &s.t.key).await;
    let sender = senders.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == s.t.sender_id)
        .cloned()
        .unwrap();
    assert_eq!(sender["quality_rating"], "RED", "{sender}");
    assert_eq!(sender["messaging_limit"], 250);
    assert_eq!(sender["status"], "online");
    s.app.run_jobs().await;
    // The scheduled reading finds nothing new.
    s.later(Duration::from_secs(600)).await;
    let events: Vec<Value> = hook
        .deliveries()
        .iter()
        .map(|d| serde_json::from_str(&d.body).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "one event for one change: {events:?}");
    assert_eq!(events[0]["type"], "sender.status");
    assert_eq!(events[0]["data"]["quality_rating"], "RED");
}
