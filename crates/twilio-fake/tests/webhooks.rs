//! Status callbacks and inbound messages, received by a loopback webhook receiver.

mod common;

use common::*;
use twilio_fake::{CallbackMode, Config, FakeTwilio, Inbound};

/// Creates a message whose status callback URL (with a query, to check it is signed as given)
/// points at the receiver; returns its SID.
async fn send(fake: &FakeTwilio, receiver: &Receiver, to: &str) -> String {
    let callback = format!("{}/twilio/status?tenant=a&b=2", receiver.base);
    send_to(fake, &callback, to).await
}

fn statuses(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.get("MessageStatus").unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn manual_callbacks_follow_the_lifecycle_signed() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let receiver = Receiver::start().await;
    let sid = send(&fake, &receiver, TO).await;
    assert!(
        receiver.received().is_empty(),
        "manual mode waits for deliver_callbacks"
    );

    assert_eq!(fake.deliver_callbacks().await, [204, 204, 204]);
    let got = receiver.received();
    assert_eq!(statuses(&got), ["sent", "delivered", "read"]);
    let mut tokens = std::collections::HashSet::new();
    for r in &got {
        assert!(r.signed_with(fake.auth_token()), "bad signature on {r:?}");
        assert!(!r.signed_with("other-token"));
        assert_eq!(
            r.url,
            format!("{}/twilio/status?tenant=a&b=2", receiver.base)
        );
        assert_eq!(r.header("user-agent"), "TwilioProxy/1.1");
        assert_eq!(
            r.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        assert!(tokens.insert(r.header("i-twilio-idempotency-token").to_string()));
        let status = r.get("MessageStatus").unwrap();
        assert_eq!(r.get("SmsStatus"), Some(status));
        assert_eq!(r.get("MessageSid"), Some(sid.as_str()));
        assert_eq!(r.get("SmsSid"), Some(sid.as_str()));
        assert_eq!(r.get("AccountSid"), Some(fake.account_sid()));
        assert_eq!(r.get("From"), Some(FROM));
        assert_eq!(r.get("To"), Some(TO));
        assert_eq!(r.get("ApiVersion"), Some("2010-04-01"));
        assert_eq!(r.get("ChannelPrefix"), Some("whatsapp"));
        assert_eq!(r.get("ChannelToAddress"), Some("+1555222XXXX"));
        assert!(r
            .get("ChannelInstallSid")
            .is_some_and(|s| s.starts_with("XE") && s.len() == 34));
        assert_eq!(r.get("StructuredMessage"), Some("false"));
        assert_eq!(r.get("ErrorCode"), None);
        let event = match status {
            "delivered" => Some("DELIVERED"),
            "read" => Some("READ"),
            _ => None,
        };
        assert_eq!(r.get("EventType"), event);
    }

    let fetched = get(
        &fake,
        &format!(
            "/2010-04-01/Accounts/{}/Messages/{sid}.json",
            fake.account_sid()
        ),
    )
    .await;
    assert_eq!(fetched.json["status"], "read");
    assert!(fetched.json["date_sent"].is_string());
    assert_eq!(fake.messages()[0].status, "read");
    assert!(
        fake.deliver_callbacks().await.is_empty(),
        "the queue was drained"
    );
}

#[tokio::test]
async fn statuses_advance_without_a_callback_url() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    create(&fake, &[("To", TO), ("From", FROM), ("Body", "hi")]).await;
    assert!(fake.deliver_callbacks().await.is_empty());
    assert_eq!(fake.messages()[0].status, "read");
}

#[tokio::test]
async fn async_failures_carry_error_codes() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let receiver = Receiver::start().await;
    let outside_window = send(&fake, &receiver, "whatsapp:+15550006316").await;
    let unreachable = send(&fake, &receiver, "whatsapp:+15550000000").await;

    assert_eq!(fake.deliver_callbacks().await, [204, 204]);
    let got = receiver.received();
    assert_eq!(statuses(&got), ["failed", "undelivered"]);
    assert_eq!(got[0].get("MessageSid"), Some(outside_window.as_str()));
    assert_eq!(got[0].get("ErrorCode"), Some("63016"));
    assert!(got[0].get("ErrorMessage").is_some_and(|m| !m.is_empty()));
    assert_eq!(got[1].get("MessageSid"), Some(unreachable.as_str()));
    assert_eq!(got[1].get("ErrorCode"), Some("30003"));
    assert!(got
        .iter()
        .all(|r| r.signed_with(fake.auth_token()) && r.get("EventType").is_none()));

    let fetched = get(
        &fake,
        &format!(
            "/2010-04-01/Accounts/{}/Messages/{outside_window}.json",
            fake.account_sid()
        ),
    )
    .await;
    assert_eq!(fetched.json["status"], "failed");
    assert_eq!(fetched.json["error_code"], 63016);
    assert!(fetched.json["error_message"].is_string());
    let messages = fake.messages();
    assert_eq!(
        (messages[0].status.as_str(), messages[0].error_code),
        ("failed", Some(63016))
    );
    assert_eq!(
        (messages[1].status.as_str(), messages[1].error_code),
        ("undelivered", Some(30003))
    );
}

#[tokio::test]
async fn reorder_and_duplicate_posts_each_status_twice() {
    let fake = FakeTwilio::start(Config {
        reorder_and_duplicate: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let a = send(&fake, &receiver, TO).await;
    let b = send(&fake, &receiver, "whatsapp:+15550006318").await;

    assert_eq!(fake.deliver_callbacks().await.len(), 8);
    let got = receiver.received();
    let mut seen = std::collections::HashMap::<(String, String), usize>::new();
    for r in &got {
        assert!(r.signed_with(fake.auth_token()));
        *seen
            .entry((
                r.get("MessageSid").unwrap().to_string(),
                r.get("MessageStatus").unwrap().to_string(),
            ))
            .or_default() += 1;
    }
    let expected = [
        (&a, "sent"),
        (&a, "delivered"),
        (&a, "read"),
        (&b, "failed"),
    ];
    assert_eq!(seen.len(), expected.len());
    for (sid, status) in expected {
        assert_eq!(
            seen.get(&(sid.clone(), status.to_string())),
            Some(&2),
            "{status}"
        );
    }
    // Late, duplicated callbacks never move the stored status backwards.
    let messages = fake.messages();
    assert_eq!(messages[0].status, "read");
    assert_eq!(
        (messages[1].status.as_str(), messages[1].error_code),
        ("failed", Some(63018))
    );
}

#[tokio::test]
async fn auto_mode_posts_in_the_background() {
    let fake = FakeTwilio::start(Config {
        callbacks: CallbackMode::Auto { step_ms: 30 },
        ..Config::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let sid = send(&fake, &receiver, TO).await;
    let got = receiver.wait_for(3).await;
    assert_eq!(statuses(&got), ["sent", "delivered", "read"]);
    assert!(got
        .iter()
        .all(|r| r.signed_with(fake.auth_token()) && r.get("MessageSid") == Some(sid.as_str())));
    assert_eq!(fake.messages()[0].status, "read");
    assert!(fake.deliver_callbacks().await.is_empty());
}

#[tokio::test]
async fn auto_mode_reorders_and_duplicates() {
    let fake = FakeTwilio::start(Config {
        callbacks: CallbackMode::Auto { step_ms: 10 },
        reorder_and_duplicate: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    send(&fake, &receiver, TO).await;
    let mut got = statuses(&receiver.wait_for(6).await);
    got.sort();
    assert_eq!(
        got,
        ["delivered", "delivered", "read", "read", "sent", "sent"]
    );
    assert_eq!(fake.messages()[0].status, "read");
}

#[tokio::test]
async fn inbound_messages_carry_the_webhook_params_signed() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let receiver = Receiver::start().await;
    let url = format!("{}/twilio/inbound?x=1", receiver.base);
    let inbound = Inbound {
        from: "+558282136275".to_string(),
        to: "+14155238886".to_string(),
        body: "Olá".to_string(),
        profile_name: Some("Jhonata".to_string()),
        media: vec![(
            "https://api.twilio.com/media/ME1".to_string(),
            "image/jpeg".to_string(),
        )],
        button: Some(("Yes".to_string(), "confirm-1".to_string())),
        ..Inbound::default()
    };
    assert_eq!(fake.send_inbound(&url, &inbound).await.unwrap(), 204);

    let got = receiver.received();
    let r = &got[0];
    assert_eq!(r.url, url);
    assert!(r.signed_with(fake.auth_token()));
    assert!(!r.header("i-twilio-idempotency-token").is_empty());
    let sid = r.get("MessageSid").unwrap();
    assert!(
        sid.starts_with("MM") && sid.len() == 34,
        "media messages are MM: {sid}"
    );
    assert_eq!(r.get("SmsMessageSid"), Some(sid));
    assert_eq!(r.get("SmsSid"), Some(sid));
    for (name, value) in [
        ("AccountSid", fake.account_sid()),
        ("From", "whatsapp:+558282136275"),
        ("To", "whatsapp:+14155238886"),
        ("WaId", "558282136275"),
        ("ProfileName", "Jhonata"),
        ("Body", "Olá"),
        ("NumMedia", "1"),
        ("MediaUrl0", "https://api.twilio.com/media/ME1"),
        ("MediaContentType0", "image/jpeg"),
        ("ButtonText", "Yes"),
        ("ButtonPayload", "confirm-1"),
        ("SmsStatus", "received"),
        ("NumSegments", "1"),
        ("ApiVersion", "2010-04-01"),
    ] {
        assert_eq!(r.get(name), Some(value), "{name}");
    }

    // A plain text message with a fixed SID; params are exactly what gets posted.
    let text = Inbound {
        sid: Some("SM11111111111111111111111111111111".to_string()),
        from: "+15551230000".to_string(),
        to: "+14155238886".to_string(),
        body: "hi".to_string(),
        ..Inbound::default()
    };
    let params = fake.inbound_params(&text);
    assert_eq!(fake.send_inbound(&url, &text).await.unwrap(), 204);
    let posted = &receiver.received()[1];
    assert_eq!(posted.params, params);
    assert_eq!(
        posted.get("MessageSid"),
        Some("SM11111111111111111111111111111111")
    );
    assert_eq!(posted.get("NumMedia"), Some("0"));
    assert_eq!(posted.get("ProfileName"), None);
    assert_eq!(posted.get("ButtonText"), None);
    assert_eq!(
        posted.header("X-Twilio-Signature"),
        twilio_fake::signature(fake.auth_token(), &url, &params)
    );
}
