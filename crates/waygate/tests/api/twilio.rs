//! The Twilio provider against the fake Twilio on loopback: sends, every error class,
//! retries, unknown outcomes, callbacks (reordered, duplicated, forged) and inbound messages.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use twilio_fake::{Config as FakeConfig, FakeTwilio, Fault, Inbound};

use crate::helpers::*;

pub(crate) const CONTENT_SID: &str = "HX0123456789abcdef0123456789abcdef";
pub(crate) const SENDER: &str = "+14155550100";
pub(crate) const CUSTOMER: &str = "+14155551234";

pub(crate) struct Setup {
    pub app: TestApp,
    pub fake: FakeTwilio,
    pub t: Tenant,
}

/// The fake's credentials and short waits, then `extra`, whose keys replace these.
pub(crate) fn overrides(fake: &FakeTwilio, extra: &str) -> String {
    let base = format!(
        "twilio_account_sid = {:?}\ntwilio_auth_token = {:?}\ntwilio_api_base = {url:?}\n\
         twilio_content_api_base = {url:?}\ntwilio_messaging_api_base = {url:?}\n\
         twilio_reconcile_after_ms = 1000\ntwilio_timeout_ms = 500\n",
        fake.account_sid(),
        fake.auth_token(),
        url = fake.base_url()
    );
    let key = |line: &str| {
        line.split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let replaced: Vec<String> = extra.lines().map(key).collect();
    let kept: String = base
        .lines()
        .filter(|line| !replaced.contains(&key(line)))
        .map(|line| format!("{line}\n"))
        .collect();
    format!("{kept}{extra}")
}

/// A tenant whose sender is on Twilio, with the template synced to CONTENT_SID.
pub(crate) async fn twilio_tenant(app: &TestApp) -> Tenant {
    let mut t = app.tenant().await;
    let sender = app
        .admin(
            Method::POST,
            &format!("/api/admin/users/{}/senders", t.user_id),
            json!({"phone_number": SENDER, "display_name": "Acme on Twilio", "provider": "twilio"}),
        )
        .await;
    t.sender_id = sender["id"].as_i64().unwrap();
    let template = app
        .admin(
            Method::POST,
            &format!("/api/admin/senders/{}/templates", t.sender_id),
            json!({"name": "code", "language": "en", "category": "utility", "provider_ref": CONTENT_SID,
                   "body_text": "Hello {{1}}, your code is {{2}}.", "variables": ["name", "code"]}),
        )
        .await;
    t.template_id = template["id"].as_i64().unwrap();
    t
}

pub(crate) async fn setup_with(fake_config: FakeConfig, extra: &str) -> Setup {
    let fake = FakeTwilio::start(fake_config)
        .await
        .expect("fake Twilio starts");
    let app = spawn_with(&overrides(&fake, extra)).await;
    let t = twilio_tenant(&app).await;
    Setup { app, fake, t }
}

async fn setup() -> Setup {
    setup_with(FakeConfig::default(), "").await
}

impl Setup {
    pub async fn message(&self, id: &Value) -> Value {
        self.app.message(&self.t, id).await
    }

    fn statuses(msg: &Value) -> Vec<String> {
        msg["status_history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap().to_string())
            .collect()
    }

    /// The messages of the conversation with the newest activity, oldest first.
    async fn newest_conversation_messages(&self) -> Vec<Value> {
        let page = self
            .app
            .get("/api/user/whatsapp/conversations", &self.t.key)
            .await;
        let conv = &page.body["data"][0]["id"];
        let messages = self
            .app
            .get(
                &format!("/api/user/whatsapp/conversations/{conv}/messages"),
                &self.t.key,
            )
            .await;
        messages.body["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Lets the reconcile delay pass and runs what is due.
    pub async fn later(&self, by: Duration) {
        self.app.advance(by);
        self.app.run_jobs().await;
    }
}

#[tokio::test]
async fn template_send_speaks_twilio_and_follows_callbacks_to_read() {
    let s = setup().await;
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "queued");
    let sent = s.fake.messages();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(reply.body["message_sid"], m.sid.as_str());
    assert_eq!(m.to, format!("whatsapp:{CUSTOMER}"));
    assert_eq!(m.from, format!("whatsapp:{SENDER}"));
    assert_eq!(m.content_sid.as_deref(), Some(CONTENT_SID));
    assert_eq!(m.body, None);
    let vars: Value = serde_json::from_str(m.content_variables.as_deref().unwrap()).unwrap();
    assert_eq!(vars, json!({"1": "Ada", "2": "1234"}));
    let id = &reply.body["whatsapp_message_id"];
    assert_eq!(
        m.status_callback.as_deref(),
        Some(format!("{}/webhooks/twilio/status?message_id={id}", s.app.base).as_str())
    );
    let answers = s.fake.deliver_callbacks().await;
    assert!(
        !answers.is_empty() && answers.iter().all(|a| *a == 204),
        "{answers:?}"
    );
    let msg = s.message(id).await;
    assert_eq!(msg["status"], "read");
    assert_eq!(
        Setup::statuses(&msg),
        ["pending", "queued", "sent", "delivered", "read"]
    );
}

#[tokio::test]
async fn freeform_goes_as_body() {
    let s = setup().await;
    s.fake
        .send_inbound(
            &format!("{}/webhooks/twilio/inbound", s.app.base),
            &Inbound {
                from: CUSTOMER.into(),
                to: SENDER.into(),
                body: "hi".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let reply = s
        .app
        .post(
            "/api/user/whatsapp/send-freeform",
            &s.t.key,
            json!({"sender_id": s.t.sender_id, "recipient_phone": CUSTOMER, "message": "Hello 👋"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = s.fake.messages();
    assert_eq!(sent[0].body.as_deref(), Some("Hello 👋"));
    assert_eq!(sent[0].content_sid, None);
}

#[tokio::test]
async fn synchronous_rejection_fails_refunds_and_answers_twilio_error() {
    let s = setup_with(
        FakeConfig {
            content_sids: Some(vec![]),
            ..FakeConfig::default()
        },
        "",
    )
    .await;
    let before = s.app.balance(&s.t).await;
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["error_code"], "TWILIO_ERROR_21655");
    assert!(reply.body["error"].as_str().unwrap().len() > 5);
    assert_eq!(s.app.balance(&s.t).await, before, "refunded");
    let messages = s.newest_conversation_messages().await;
    let msg = &messages[0];
    assert_eq!(msg["status"], "failed");
    assert_eq!(msg["error_code"], 21655);
    s.later(Duration::from_secs(3600)).await;
    assert_eq!(s.fake.create_requests(), 1, "a rejection is not retried");
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after_then_sends_once() {
    let s = setup().await;
    s.fake.inject([Fault::TooManyRequests {
        retry_after_secs: 30,
    }]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(reply.body["message_sid"], Value::Null);
    s.later(Duration::from_secs(10)).await;
    assert_eq!(s.fake.create_requests(), 1, "Retry-After is honoured");
    s.later(Duration::from_secs(21)).await;
    assert_eq!(s.fake.create_requests(), 2);
    assert_eq!(s.fake.messages().len(), 1);
    let msg = s.message(&reply.body["whatsapp_message_id"]).await;
    assert_eq!(msg["message_sid"], s.fake.messages()[0].sid.as_str());
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_reconciled_then_resent_once() {
    let s = setup().await;
    s.fake.inject([Fault::ServerError, Fault::DropConnection]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.body["status"], "pending");
    // Reconcile: nothing was created, so it is sent again (and dropped), then again.
    for _ in 0..4 {
        s.later(Duration::from_secs(2)).await;
    }
    assert_eq!(s.fake.create_requests(), 3);
    assert_eq!(s.fake.messages().len(), 1, "exactly one message at Twilio");
    let msg = s.message(&reply.body["whatsapp_message_id"]).await;
    assert_eq!(msg["status"], "queued");
    assert_eq!(msg["message_sid"], s.fake.messages()[0].sid.as_str());
}

#[tokio::test]
async fn an_attempt_that_created_the_message_is_adopted_not_resent() {
    for fault in [
        Fault::CreatedThenServerError,
        Fault::Slow { delay_ms: 1500 },
    ] {
        let s = setup().await;
        s.fake.inject([fault.clone()]);
        let reply = s.app.send_template(&s.t, CUSTOMER).await;
        assert_eq!(reply.body["status"], "pending", "{fault:?}");
        s.later(Duration::from_secs(2)).await;
        s.later(Duration::from_secs(2)).await;
        assert_eq!(s.fake.create_requests(), 1, "{fault:?}: not sent twice");
        let msg = s.message(&reply.body["whatsapp_message_id"]).await;
        assert_eq!(
            msg["message_sid"],
            s.fake.messages()[0].sid.as_str(),
            "{fault:?}"
        );
        s.fake.deliver_callbacks().await;
        assert_eq!(
            s.message(&reply.body["whatsapp_message_id"]).await["status"],
            "read"
        );
    }
}

#[tokio::test]
async fn a_callback_settles_an_unknown_attempt_before_reconciliation() {
    let s = setup().await;
    s.fake.inject([Fault::CreatedThenServerError]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.body["message_sid"], Value::Null);
    s.fake.deliver_callbacks().await;
    let msg = s.message(&reply.body["whatsapp_message_id"]).await;
    assert_eq!(
        msg["message_sid"],
        s.fake.messages()[0].sid.as_str(),
        "adopted from the callback"
    );
    assert_eq!(msg["status"], "read");
    s.later(Duration::from_secs(5)).await;
    assert_eq!(s.fake.create_requests(), 1);
}

#[tokio::test]
async fn reordered_and_duplicated_callbacks_never_move_backwards_and_refund_once() {
    let s = setup_with(
        FakeConfig {
            reorder_and_duplicate: true,
            ..FakeConfig::default()
        },
        "",
    )
    .await;
    let ok = s.app.send_template(&s.t, CUSTOMER).await;
    let failing = s.app.send_template(&s.t, "+14155556316").await;
    let before = s.app.balance(&s.t).await;
    s.fake.deliver_callbacks().await;
    let msg = s.message(&ok.body["whatsapp_message_id"]).await;
    assert_eq!(msg["status"], "read");
    let ranks: Vec<usize> = Setup::statuses(&msg)
        .iter()
        .map(|st| {
            ["pending", "queued", "sending", "sent", "delivered", "read"]
                .iter()
                .position(|x| x == st)
                .unwrap()
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
    let failed = s.message(&failing.body["whatsapp_message_id"]).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error_code"], 63016);
    assert!(
        (s.app.balance(&s.t).await - before - 0.02).abs() < 1e-9,
        "refunded exactly once"
    );
    // Delivering the same callbacks again changes nothing.
    s.fake.deliver_callbacks().await;
    assert!((s.app.balance(&s.t).await - before - 0.02).abs() < 1e-9);
}

#[tokio::test]
async fn forged_or_unsigned_webhooks_are_refused_and_store_nothing() {
    let s = setup().await;
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    let sid = reply.body["message_sid"].as_str().unwrap().to_string();
    let url = format!("{}/webhooks/twilio/status", s.app.base);
    let params = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "failed"),
        ("ErrorCode", "30003"),
    ];
    let forged = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let unsigned = reqwest::Client::new()
        .post(&url)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    // Signed with another token.
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let wrong = reqwest::Client::new()
        .post(&url)
        .header(
            "X-Twilio-Signature",
            twilio_fake::signature("not-the-token", &url, &pairs),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let msg = s.message(&reply.body["whatsapp_message_id"]).await;
    assert_eq!(msg["status"], "queued", "nothing applied");

    let inbound = Inbound {
        from: CUSTOMER.into(),
        to: SENDER.into(),
        body: "forged".into(),
        ..Default::default()
    };
    let inbound_url = format!("{}/webhooks/twilio/inbound", s.app.base);
    let forged_in = reqwest::Client::new()
        .post(&inbound_url)
        .header(
            "X-Twilio-Signature",
            twilio_fake::signature(
                "not-the-token",
                &inbound_url,
                &s.fake.inbound_params(&inbound),
            ),
        )
        .form(&s.fake.inbound_params(&inbound))
        .send()
        .await
        .unwrap();
    assert_eq!(forged_in.status(), 403);
    let messages = s.newest_conversation_messages().await;
    assert_eq!(messages.len(), 1, "no inbound stored");
}

#[tokio::test]
async fn without_an_auth_token_every_webhook_is_refused() {
    let fake = FakeTwilio::start(FakeConfig::default()).await.unwrap();
    let app = spawn_with(&format!(
        "twilio_account_sid = {:?}\ntwilio_api_base = {:?}\ntwilio_api_key_sid = \"SK0123456789abcdef0123456789abcdef\"\ntwilio_api_key_secret = \"s\"\n",
        fake.account_sid(),
        fake.base_url()
    ))
    .await;
    let url = format!("{}/webhooks/twilio/inbound", app.base);
    let inbound = Inbound {
        from: CUSTOMER.into(),
        to: SENDER.into(),
        body: "hi".into(),
        ..Default::default()
    };
    let params = fake.inbound_params(&inbound);
    let signed_with_nothing = reqwest::Client::new()
        .post(&url)
        .header(
            "X-Twilio-Signature",
            twilio_fake::signature("", &url, &params),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_with_nothing.status(), 403);
}

#[tokio::test]
async fn inbound_messages_open_the_window_once_each() {
    let s = setup().await;
    let url = format!("{}/webhooks/twilio/inbound", s.app.base);
    let inbound = Inbound {
        sid: Some("MM0123456789abcdef0123456789abcdef".into()),
        from: CUSTOMER.into(),
        to: SENDER.into(),
        body: "Here is the photo".into(),
        profile_name: Some("Ada L.".into()),
        media: vec![(
            "https://api.twilio.com/media/ME1".into(),
            "image/jpeg".into(),
        )],
        button: None,
    };
    assert_eq!(s.fake.send_inbound(&url, &inbound).await.unwrap(), 200);
    assert_eq!(
        s.fake.send_inbound(&url, &inbound).await.unwrap(),
        200,
        "a retried webhook is acknowledged"
    );
    let session = s
        .app
        .get(
            &format!(
                "/api/user/whatsapp/session-status?sender_id={}&recipient_phone=%2B14155551234",
                s.t.sender_id
            ),
            &s.t.key,
        )
        .await;
    assert_eq!(session.body["session_status"]["is_open"], true);
    assert_eq!(session.body["customer_name"], "Ada L.");
    let conv = &session.body["conversation_id"];
    let messages = s
        .app
        .get(
            &format!("/api/user/whatsapp/conversations/{conv}/messages"),
            &s.t.key,
        )
        .await;
    let data = messages.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "stored once");
    assert_eq!(data[0]["direction"], "inbound");
    assert_eq!(data[0]["message_sid"], "MM0123456789abcdef0123456789abcdef");
    assert_eq!(
        data[0]["media"],
        json!([{"url": "https://api.twilio.com/media/ME1", "content_type": "image/jpeg"}])
    );

    let button = Inbound {
        from: CUSTOMER.into(),
        to: SENDER.into(),
        body: "Yes".into(),
        button: Some(("Yes".into(), "confirm-42".into())),
        ..Default::default()
    };
    assert_eq!(s.fake.send_inbound(&url, &button).await.unwrap(), 200);
    let messages = s
        .app
        .get(
            &format!("/api/user/whatsapp/conversations/{conv}/messages"),
            &s.t.key,
        )
        .await;
    assert_eq!(messages.body["data"][1]["button_payload"], "confirm-42");

    let stranger = Inbound {
        from: CUSTOMER.into(),
        to: "+14155550199".into(),
        body: "hello?".into(),
        ..Default::default()
    };
    assert_eq!(
        s.fake.send_inbound(&url, &stranger).await.unwrap(),
        200,
        "unknown numbers are acknowledged"
    );
    let all = s
        .app
        .get("/api/user/whatsapp/conversations", &s.t.key)
        .await;
    assert_eq!(
        all.body["data"].as_array().unwrap().len(),
        1,
        "and not stored"
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_retry_schedule_loses_nothing() {
    let s = setup().await;
    s.fake.inject([Fault::TooManyRequests {
        retry_after_secs: 60,
    }]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.body["status"], "pending");
    let Setup { app, fake, t } = s;
    let app = app.restart().await;
    app.advance(Duration::from_secs(61));
    app.run_jobs().await;
    assert_eq!(fake.messages().len(), 1);
    assert_eq!(fake.create_requests(), 2);
    let msg = app.message(&t, &reply.body["whatsapp_message_id"]).await;
    assert_eq!(msg["message_sid"], fake.messages()[0].sid.as_str());
}

#[tokio::test]
async fn unconfigured_twilio_keeps_messages_in_the_outbox() {
    let app = spawn_app().await;
    let t = twilio_tenant(&app).await;
    let reply = app.send_template(&t, CUSTOMER).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(reply.body["message_sid"], Value::Null);
}

#[tokio::test]
async fn wrong_credentials_keep_messages_waiting_instead_of_failing_them() {
    let fake = FakeTwilio::start(FakeConfig::default()).await.unwrap();
    let app = spawn_with(&format!(
        "twilio_account_sid = {:?}\ntwilio_auth_token = \"not-the-token\"\ntwilio_api_base = {:?}\n",
        fake.account_sid(),
        fake.base_url()
    ))
    .await;
    let t = twilio_tenant(&app).await;
    let before = app.balance(&t).await;
    let reply = app.send_template(&t, CUSTOMER).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(fake.create_requests(), 1);
    assert!(fake.messages().is_empty());
    let msg = app
        .get(
            &format!(
                "/api/user/whatsapp/messages/{}",
                reply.body["whatsapp_message_id"]
            ),
            &t.key,
        )
        .await
        .body;
    assert_eq!(
        msg["status"], "pending",
        "not failed: the configuration is at fault"
    );
    assert!(
        (app.balance(&t).await - (before - 0.02)).abs() < 1e-9,
        "still charged, not refunded"
    );
}
