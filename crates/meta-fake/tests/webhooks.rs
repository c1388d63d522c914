//! Webhooks received by a loopback receiver: statuses, batching, signatures, template and phone
//! number pushes, inbound messages.

mod common;

use axum::http::StatusCode;
use common::*;
use meta_fake::{
    signature, Config, FakeMeta, Inbound, InboundContent, MediaKind, PhoneNumberState,
    TemplateStatus, WebhookMode,
};
use serde_json::{json, Value};

#[tokio::test]
async fn manual_statuses_come_batched_signed_and_echo_the_callback_data() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(receiver.config()).await.unwrap();
    let first = send_text(&fake, TO, Some("msg-1")).await;
    let second = send_text(&fake, "15553334444", None).await;
    assert!(receiver.received().is_empty(), "manual mode waits");

    assert_eq!(
        fake.deliver_webhooks().await,
        [200],
        "six statuses, one POST"
    );
    let posts = receiver.received();
    let post = &posts[0];
    assert!(post.signed_with(fake.app_secret()), "{:?}", post.headers);
    assert!(!post.signed_with("another-secret"));
    assert_eq!(post.header("content-type"), "application/json");
    let changes = post.changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(post.json["entry"][0]["id"], fake.waba_id());
    let value = &changes[0]["value"];
    assert_eq!(changes[0]["field"], "messages");
    assert_eq!(value["messaging_product"], "whatsapp");
    assert_eq!(
        value["metadata"],
        json!({"display_phone_number": "15550783881", "phone_number_id": fake.phone_number_id()})
    );
    let statuses = post.statuses();
    assert_eq!(
        id_status(&statuses),
        [
            (first.clone(), "sent".to_string()),
            (first.clone(), "delivered".to_string()),
            (first.clone(), "read".to_string()),
            (second.clone(), "sent".to_string()),
            (second.clone(), "delivered".to_string()),
            (second.clone(), "read".to_string()),
        ]
    );
    for status in &statuses {
        let ts = status["timestamp"].as_str().unwrap();
        assert!(
            ts.len() >= 10 && ts.bytes().all(|b| b.is_ascii_digit()),
            "{ts}"
        );
        assert!(status.get("errors").is_none());
        if status["id"] == first.as_str() {
            assert_eq!(status["recipient_id"], TO);
            assert_eq!(status["biz_opaque_callback_data"], "msg-1");
        } else {
            assert_eq!(status["recipient_id"], "15553334444");
            assert!(status.get("biz_opaque_callback_data").is_none());
        }
        let pricing = &status["pricing"];
        if status["status"] == "read" {
            assert!(pricing.is_null());
        } else {
            assert_eq!(
                *pricing,
                json!({"billable": false, "pricing_model": "PMP",
                       "type": "free_customer_service", "category": "service"})
            );
        }
    }
    assert!(fake.messages().iter().all(|m| m.status == "read"));
    let stats = fake.webhook_stats();
    assert_eq!(
        (stats.delivered, stats.items_delivered, stats.failed),
        (1, 6, 0)
    );
    assert!(
        fake.deliver_webhooks().await.is_empty(),
        "nothing is posted twice"
    );
}

#[tokio::test]
async fn batches_hold_at_most_the_configured_number_of_items() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(Config {
        max_items_per_post: 4,
        ..receiver.config()
    })
    .await
    .unwrap();
    for _ in 0..3 {
        send_text(&fake, TO, None).await;
    }
    assert_eq!(fake.deliver_webhooks().await, [200, 200, 200]);
    let sizes: Vec<usize> = receiver
        .received()
        .iter()
        .map(|r| r.statuses().len())
        .collect();
    assert_eq!(sizes, [4, 4, 1]);
    for post in receiver.received() {
        assert!(post.signed_with(fake.app_secret()));
    }
}

#[tokio::test]
async fn failed_statuses_carry_the_error_and_no_pricing() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(receiver.config()).await.unwrap();
    let id = send_text(&fake, "15550001047", Some("late")).await;
    fake.deliver_webhooks().await;
    let statuses = receiver.statuses();
    assert_eq!(statuses.len(), 1);
    let failed = &statuses[0];
    assert_eq!(failed["id"], id.as_str());
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["biz_opaque_callback_data"], "late");
    assert!(failed.get("pricing").is_none());
    let error = &failed["errors"][0];
    assert_eq!(error["code"], 131047);
    assert_eq!(error["title"], "Re-engagement message");
    assert!(error["error_data"]["details"].is_string());
    assert!(error["href"].is_string());
    let message = &fake.messages()[0];
    assert_eq!(
        (message.status.as_str(), message.error_code),
        ("failed", Some(131047))
    );
}

#[tokio::test]
async fn auto_mode_posts_one_status_per_step_in_order() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(Config {
        webhooks: WebhookMode::Auto { step_ms: 30 },
        ..receiver.config()
    })
    .await
    .unwrap();
    let id = send_text(&fake, TO, Some("auto")).await;
    let statuses = receiver.wait_statuses(3).await;
    assert_eq!(
        id_status(&statuses),
        ["sent", "delivered", "read"].map(|s| (id.clone(), s.to_string()))
    );
    assert!(statuses
        .iter()
        .all(|s| s["biz_opaque_callback_data"] == "auto"));
    assert_eq!(receiver.received().len(), 3, "due apart, posted apart");
    assert!(receiver
        .received()
        .iter()
        .all(|r| r.signed_with(fake.app_secret())));
}

#[tokio::test]
async fn auto_mode_batches_statuses_due_together() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(Config {
        webhooks: WebhookMode::Auto { step_ms: 300 },
        ..receiver.config()
    })
    .await
    .unwrap();
    // Concurrent sends: their statuses fall due within a few ticks and share POSTs.
    let url = format!(
        "{}/{VERSION}/{}/messages",
        fake.base_url(),
        fake.phone_number_id()
    );
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (url, token) = (url.clone(), fake.access_token().to_string());
        sends.spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&text_body(&format!("1555000{i:04}"), "hi", None))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        });
    }
    sends.join_all().await;
    let statuses = receiver.wait_statuses(60).await;
    assert_eq!(statuses.len(), 60);
    let posts = receiver.received();
    assert!(posts.len() < 60, "{} posts for 60 statuses", posts.len());
    assert!(posts.iter().all(|p| p.statuses().len() <= 10));
}

#[tokio::test]
async fn template_decisions_and_status_changes_are_pushed() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(Config {
        template_review_ms: 10,
        ..receiver.config()
    })
    .await
    .unwrap();
    let path = format!("{}/message_templates", fake.waba_id());
    let ok = graph(
        &fake,
        reqwest::Method::POST,
        &path,
        Some(new_template("ok_one", "en_US")),
    )
    .await;
    let bad = graph(
        &fake,
        reqwest::Method::POST,
        &path,
        Some(new_template("reject_it", "en")),
    )
    .await;
    let (ok_id, bad_id) = (
        ok.json["id"].as_str().unwrap(),
        bad.json["id"].as_str().unwrap(),
    );
    wait_template_status(&fake, bad_id, "REJECTED").await;
    wait_template_status(&fake, ok_id, "APPROVED").await;
    assert_eq!(fake.deliver_webhooks().await, [200]);
    let changes = receiver.received()[0].changes();
    let mut values: Vec<Value> = changes
        .iter()
        .inspect(|c| assert_eq!(c["field"], "message_template_status_update"))
        .map(|c| c["value"].clone())
        .collect();
    values.sort_by_key(|v| v["message_template_name"].as_str().unwrap().to_string());
    assert_eq!(
        values,
        [
            json!({"event": "APPROVED", "message_template_id": ok_id.parse::<u64>().unwrap(),
                   "message_template_name": "ok_one", "message_template_language": "en_US",
                   "reason": "NONE"}),
            json!({"event": "REJECTED", "message_template_id": bad_id.parse::<u64>().unwrap(),
                   "message_template_name": "reject_it", "message_template_language": "en",
                   "reason": "INVALID_FORMAT"}),
        ]
    );

    fake.set_template_status(ok_id, TemplateStatus::Paused, Some("LOW_QUALITY"))
        .unwrap();
    assert_eq!(fake.deliver_webhooks().await, [200]);
    let post = &receiver.received()[1];
    assert!(post.signed_with(fake.app_secret()));
    let value = &post.changes()[0]["value"];
    assert_eq!(value["event"], "PAUSED");
    assert_eq!(value["reason"], "LOW_QUALITY");
    assert_eq!(
        wait_template_status(&fake, ok_id, "PAUSED").await["rejected_reason"],
        "LOW_QUALITY"
    );
    assert!(fake
        .set_template_status("1", TemplateStatus::Approved, None)
        .is_err());
}

#[tokio::test]
async fn phone_number_quality_changes_are_pushed() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(receiver.config()).await.unwrap();
    let id = fake.phone_number_id().to_string();
    let state = |quality: &str, tier: &str| PhoneNumberState {
        quality_rating: quality.to_string(),
        messaging_limit_tier: tier.to_string(),
        ..PhoneNumberState::default()
    };
    fake.set_phone_number_state(&id, state("GREEN", "TIER_10K"))
        .unwrap();
    fake.set_phone_number_state(&id, state("RED", "TIER_10K"))
        .unwrap();
    fake.set_phone_number_state(
        &id,
        PhoneNumberState {
            status: "DISCONNECTED".to_string(),
            ..state("RED", "TIER_10K")
        },
    )
    .unwrap();
    assert_eq!(fake.deliver_webhooks().await, [200]);
    let changes = receiver.received()[0].changes();
    assert_eq!(
        changes,
        [
            json!({"field": "phone_number_quality_update", "value": {
                "display_phone_number": "15550783881", "event": "UPGRADE",
                "current_limit": "TIER_10K"}}),
            json!({"field": "phone_number_quality_update", "value": {
                "display_phone_number": "15550783881", "event": "FLAGGED",
                "current_limit": "TIER_10K"}}),
        ],
        "a status-only change is no quality event"
    );
}

#[tokio::test]
async fn statuses_and_changes_due_together_share_a_post() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(receiver.config()).await.unwrap();
    send_text(&fake, TO, None).await;
    let template = fake
        .add_approved_template("hello", "en", "UTILITY", "Hello {{1}}")
        .unwrap();
    fake.set_template_status(&template.id, TemplateStatus::Disabled, None)
        .unwrap();
    assert_eq!(fake.deliver_webhooks().await, [200]);
    let fields: Vec<Value> = receiver.received()[0]
        .changes()
        .iter()
        .map(|c| c["field"].clone())
        .collect();
    assert_eq!(fields, ["messages", "message_template_status_update"]);
    assert_eq!(receiver.statuses().len(), 3);
}

#[tokio::test]
async fn inbound_messages_of_every_kind_share_one_signed_post() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(receiver.config()).await.unwrap();
    let replied = send_text(&fake, "16315551181", None).await;
    let from = |content: InboundContent| Inbound {
        from: "+16315551181".to_string(),
        profile_name: Some("Ada".to_string()),
        content,
        ..Inbound::default()
    };
    let messages = [
        Inbound {
            id: Some("wamid.in-1".to_string()),
            reply_to: Some(replied.clone()),
            ..from(InboundContent::Text("yes please".to_string()))
        },
        from(InboundContent::Media {
            kind: MediaKind::Image,
            id: "1037543291543636".to_string(),
            mime_type: "image/jpeg".to_string(),
            caption: Some("receipt".to_string()),
        }),
        from(InboundContent::Media {
            kind: MediaKind::Document,
            id: "2037543291543636".to_string(),
            mime_type: "application/pdf".to_string(),
            caption: None,
        }),
        from(InboundContent::Button {
            text: "Stop".to_string(),
            payload: "STOP".to_string(),
        }),
        from(InboundContent::ButtonReply {
            id: "confirm".to_string(),
            title: "Confirm".to_string(),
        }),
        Inbound {
            from: "447700900123".to_string(),
            profile_name: Some("Grace".to_string()),
            content: InboundContent::ListReply {
                id: "slot-2".to_string(),
                title: "Friday 10:00".to_string(),
                description: None,
            },
            ..Inbound::default()
        },
    ];
    assert_eq!(fake.send_inbound(&messages).await.unwrap(), 200);
    let posts = receiver.received();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert!(post.signed_with(fake.app_secret()));
    let changes = post.changes();
    assert_eq!(changes.len(), 1);
    let value = &changes[0]["value"];
    assert_eq!(value["metadata"]["phone_number_id"], fake.phone_number_id());
    assert_eq!(
        value["contacts"],
        json!([{"wa_id": "16315551181", "profile": {"name": "Ada"}},
               {"wa_id": "447700900123", "profile": {"name": "Grace"}}])
    );
    let got = value["messages"].as_array().unwrap();
    assert_eq!(got.len(), 6);
    for message in got {
        assert!(message["id"].as_str().unwrap().starts_with("wamid."));
        assert!(message["timestamp"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok());
    }
    assert_eq!(got[0]["id"], "wamid.in-1");
    assert_eq!(got[0]["from"], "16315551181");
    assert_eq!(got[0]["type"], "text");
    assert_eq!(got[0]["text"], json!({"body": "yes please"}));
    assert_eq!(
        got[0]["context"],
        json!({"from": "15550783881", "id": replied})
    );
    assert_eq!(got[1]["type"], "image");
    assert_eq!(got[1]["image"]["id"], "1037543291543636");
    assert_eq!(got[1]["image"]["mime_type"], "image/jpeg");
    assert_eq!(got[1]["image"]["caption"], "receipt");
    assert_eq!(got[1]["image"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(got[2]["type"], "document");
    assert_eq!(got[2]["document"]["mime_type"], "application/pdf");
    assert!(got[2]["document"].get("caption").is_none());
    assert_eq!(got[3]["type"], "button");
    assert_eq!(got[3]["button"], json!({"payload": "STOP", "text": "Stop"}));
    assert_eq!(got[4]["type"], "interactive");
    assert_eq!(
        got[4]["interactive"],
        json!({"type": "button_reply", "button_reply": {"id": "confirm", "title": "Confirm"}})
    );
    assert_eq!(
        got[5]["interactive"],
        json!({"type": "list_reply", "list_reply": {"id": "slot-2", "title": "Friday 10:00"}})
    );
    assert!(got[1].get("context").is_none());

    // The body a client would get can be re-signed and re-posted by a test.
    let body = fake.inbound_body(&messages[..1]);
    assert_eq!(
        signature(fake.app_secret(), &body),
        expected_signature(fake.app_secret(), &body)
    );
}

#[tokio::test]
async fn without_a_webhook_url_statuses_still_move_on() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    send_text(&fake, TO, None).await;
    assert!(fake.deliver_webhooks().await.is_empty());
    assert_eq!(fake.messages()[0].status, "read");
    assert!(fake.send_inbound(&[Inbound::default()]).await.is_err());
}

#[tokio::test]
async fn refused_and_unreachable_posts_are_counted_not_retried() {
    let refusing = Receiver::answering(StatusCode::INTERNAL_SERVER_ERROR).await;
    let fake = FakeMeta::start(refusing.config()).await.unwrap();
    send_text(&fake, TO, None).await;
    assert_eq!(fake.deliver_webhooks().await, [500]);
    assert!(fake.deliver_webhooks().await.is_empty());
    assert_eq!(refusing.received().len(), 1);
    let stats = fake.webhook_stats();
    assert_eq!(
        (stats.delivered, stats.failed, stats.items_delivered),
        (0, 1, 0)
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/meta", closed.local_addr().unwrap());
    drop(closed);
    let fake = FakeMeta::start(Config {
        webhook_url: Some(url),
        ..Config::default()
    })
    .await
    .unwrap();
    send_text(&fake, TO, None).await;
    assert_eq!(fake.deliver_webhooks().await, [0]);
    assert_eq!(fake.webhook_stats().failed, 1);
}

#[tokio::test]
async fn refused_posts_are_posted_again_when_retries_are_on() {
    let receiver = Receiver::refusing_first(2, StatusCode::SERVICE_UNAVAILABLE).await;
    let fake = FakeMeta::start(Config {
        webhook_retries: 3,
        ..receiver.config()
    })
    .await
    .unwrap();
    let id = send_text(&fake, TO, Some("again")).await;
    assert_eq!(fake.deliver_webhooks().await, [503]);
    assert_eq!(fake.deliver_webhooks().await, [503]);
    assert_eq!(fake.deliver_webhooks().await, [200]);
    assert!(
        fake.deliver_webhooks().await.is_empty(),
        "delivered once, done"
    );
    let posts = receiver.received();
    assert_eq!(posts.len(), 3);
    for post in &posts {
        assert!(post.signed_with(fake.app_secret()));
        assert_eq!(
            id_status(&post.statuses()),
            ["sent", "delivered", "read"].map(|s| (id.clone(), s.to_string()))
        );
    }
    let stats = fake.webhook_stats();
    assert_eq!(
        (stats.failed, stats.delivered, stats.items_delivered),
        (2, 1, 3)
    );
}

#[tokio::test]
async fn retries_stop_after_the_configured_attempts() {
    let receiver = Receiver::answering(StatusCode::INTERNAL_SERVER_ERROR).await;
    let fake = FakeMeta::start(Config {
        webhook_retries: 1,
        ..receiver.config()
    })
    .await
    .unwrap();
    send_text(&fake, TO, None).await;
    assert_eq!(fake.deliver_webhooks().await, [500]);
    assert_eq!(fake.deliver_webhooks().await, [500]);
    assert!(fake.deliver_webhooks().await.is_empty());
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn auto_mode_retries_with_backoff() {
    let receiver = Receiver::refusing_first(1, StatusCode::BAD_GATEWAY).await;
    let fake = FakeMeta::start(Config {
        webhooks: WebhookMode::Auto { step_ms: 20 },
        webhook_retries: 2,
        ..receiver.config()
    })
    .await
    .unwrap();
    let id = send_text(&fake, TO, None).await;
    let statuses = receiver.wait_statuses(4).await;
    let arrived = id_status(&statuses);
    for status in ["sent", "delivered", "read"] {
        let copies = arrived
            .iter()
            .filter(|(wamid, s)| *wamid == id && s == status)
            .count();
        let expected = if status == "sent" { 2 } else { 1 };
        assert_eq!(copies, expected, "{status}: {arrived:?}");
    }
}

#[tokio::test]
async fn the_subscription_handshake_echoes_the_challenge_only_for_the_right_token() {
    use std::collections::HashMap;

    use axum::extract::Query;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/meta", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/webhooks/meta",
        axum::routing::get(|Query(q): Query<HashMap<String, String>>| async move {
            let ok = q.get("hub.mode").map(String::as_str) == Some("subscribe")
                && q.get("hub.verify_token").map(String::as_str) == Some("verify-me");
            match (ok, q.get("hub.challenge")) {
                (true, Some(challenge)) => (StatusCode::OK, challenge.clone()),
                _ => (StatusCode::FORBIDDEN, String::new()),
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let fake = FakeMeta::start(Config {
        webhook_url: Some(url),
        ..Config::default()
    })
    .await
    .unwrap();
    assert!(fake.verify_webhook("verify-me").await.unwrap());
    assert!(!fake.verify_webhook("wrong").await.unwrap());
}
