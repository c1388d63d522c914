//! The Senders API v2 (PROVIDERS.md §5) over real HTTP: the sender object, states set by tests,
//! registration, verification, listing, deletion, validation, auth and scripted faults.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use twilio_fake::{Config, FakeTwilio, OfflineReason, ReadEndpoint, ReadFault, SenderState};

const SENDER: &str = "XE0123456789abcdef0123456789abcdef";

fn sender_path(sid: &str) -> String {
    format!("/v2/Channels/Senders/{sid}")
}

fn registration() -> Value {
    json!({
        "sender_id": "whatsapp:+15017122661",
        "configuration": {"waba_id": "1234567890", "verification_method": "sms"},
        "webhook": {"callback_url": "https://app.example/inbound", "callback_method": "POST",
                    "status_callback_url": "https://app.example/status"},
        "profile": {"name": "Acme", "vertical": "Automotive",
                    "websites": [{"website": "https://acme.example", "label": "Website"}]},
    })
}

#[tokio::test]
async fn a_sender_set_by_a_test_is_served_with_the_v2_shape() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    fake.set_sender(
        SENDER,
        SenderState {
            status: "ONLINE".to_string(),
            quality_rating: Some("HIGH".to_string()),
            messaging_limit: Some("10K Customers/24hr".to_string()),
            ..SenderState::default()
        },
    );
    let fetched = call(&fake, Method::GET, &sender_path(SENDER), None).await;
    assert_eq!(fetched.status, 200, "{}", fetched.json);
    let null_section = |keys: &[&str]| -> Value {
        keys.iter()
            .map(|k| (k.to_string(), Value::Null))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    assert_eq!(
        fetched.json,
        json!({
            "sid": SENDER,
            "status": "ONLINE",
            "sender_id": "whatsapp:+14155238886",
            "configuration": null_section(&["waba_id", "verification_method", "verification_code",
                "voice_application_sid", "account_type"]),
            "webhook": null_section(&["callback_url", "callback_method", "fallback_url",
                "fallback_method", "status_callback_url", "status_callback_method"]),
            "profile": null_section(&["name", "about", "address", "description", "logo_url",
                "banner_url", "privacy_url", "terms_of_service_url", "accent_color", "vertical",
                "websites", "emails", "phone_numbers"]),
            "properties": {"quality_rating": "HIGH", "messaging_limit": "10K Customers/24hr"},
            "offline_reasons": null,
            "compliance": null,
            "url": format!("{}/v2/Channels/Senders/{SENDER}", fake.base_url()),
        })
    );

    // Later changes show on the next fetch.
    fake.set_sender(
        SENDER,
        SenderState {
            status: "OFFLINE".to_string(),
            quality_rating: Some("LOW".to_string()),
            messaging_limit: Some("250 Customers/24hr".to_string()),
            offline_reasons: vec![OfflineReason {
                code: "63020".to_string(),
                message: "Meta invitation not accepted".to_string(),
            }],
            ..SenderState::default()
        },
    );
    let offline = call(&fake, Method::GET, &sender_path(SENDER), None)
        .await
        .json;
    assert_eq!(offline["status"], "OFFLINE");
    assert_eq!(
        offline["properties"],
        json!({"quality_rating": "LOW", "messaging_limit": "250 Customers/24hr"})
    );
    assert_eq!(
        offline["offline_reasons"],
        json!([{"code": "63020", "message": "Meta invitation not accepted",
                "more_info": "https://www.twilio.com/docs/errors/63020"}])
    );
    assert_eq!(fake.senders().len(), 1);
    assert_eq!(fake.senders()[0].1.status, "OFFLINE");
}

#[tokio::test]
async fn unknown_senders_are_404() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let path = sender_path(SENDER);
    assert_error(&call(&fake, Method::GET, &path, None).await, 404, 20404);
    assert_error(&call(&fake, Method::DELETE, &path, None).await, 404, 20404);
    let update = call(
        &fake,
        Method::POST,
        &path,
        Some(json!({"profile": {"name": "X"}})),
    )
    .await;
    assert_error(&update, 404, 20404);
    assert!(fake.senders().is_empty());
}

#[tokio::test]
async fn register_verify_list_and_delete_a_sender() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let created = call(
        &fake,
        Method::POST,
        "/v2/Channels/Senders",
        Some(registration()),
    )
    .await;
    assert_eq!(created.status, 202, "{}", created.json);
    let s = &created.json;
    assert!(is_sid(&s["sid"], "XE"), "{s}");
    let sid = s["sid"].as_str().unwrap().to_string();
    assert_eq!(s["status"], "CREATING");
    assert_eq!(s["sender_id"], "whatsapp:+15017122661");
    assert_eq!(s["configuration"]["waba_id"], "1234567890");
    assert_eq!(s["configuration"]["verification_code"], Value::Null);
    assert_eq!(
        s["webhook"]["status_callback_url"],
        "https://app.example/status"
    );
    assert_eq!(s["webhook"]["fallback_url"], Value::Null);
    assert_eq!(
        s["profile"]["websites"],
        registration()["profile"]["websites"]
    );
    assert_eq!(
        s["properties"],
        json!({"quality_rating": null, "messaging_limit": null})
    );
    assert_eq!(
        s["url"],
        format!("{}/v2/Channels/Senders/{sid}", fake.base_url())
    );

    let verified = call(
        &fake,
        Method::POST,
        &sender_path(&sid),
        Some(
            json!({"configuration": {"verification_code": "123456"}, "profile": {"about": "Cars"}}),
        ),
    )
    .await;
    assert_eq!(verified.status, 202, "{}", verified.json);
    assert_eq!(verified.json["status"], "VERIFYING");
    assert_eq!(
        verified.json["configuration"]["verification_code"],
        "123456"
    );
    assert_eq!(
        verified.json["configuration"]["waba_id"], "1234567890",
        "merged, not replaced"
    );
    assert_eq!(verified.json["profile"]["about"], "Cars");
    assert_eq!(verified.json["profile"]["name"], "Acme");

    let updated = call(
        &fake,
        Method::POST,
        &sender_path(&sid),
        Some(json!({"webhook": {"callback_url": "https://app.example/v2/inbound"}})),
    )
    .await;
    assert_eq!(updated.json["status"], "VERIFYING");
    let fetched = call(&fake, Method::GET, &sender_path(&sid), None).await;
    assert_eq!(fetched.json, updated.json);

    fake.set_sender(SENDER, SenderState::default());
    let listed = call(
        &fake,
        Method::GET,
        "/v2/Channels/Senders?Channel=whatsapp",
        None,
    )
    .await;
    assert_eq!(listed.status, 200);
    let sids: Vec<&str> = listed.json["senders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, [sid.as_str(), SENDER]);
    assert_eq!(listed.json["senders"][0], fetched.json);
    let url = format!(
        "{}/v2/Channels/Senders?Channel=whatsapp&PageSize=50&Page=0",
        fake.base_url()
    );
    assert_eq!(
        listed.json["meta"],
        json!({"page": 0, "page_size": 50, "first_page_url": url, "previous_page_url": null,
               "next_page_url": null, "url": url, "key": "senders"})
    );
    let first = call(
        &fake,
        Method::GET,
        "/v2/Channels/Senders?Channel=whatsapp&PageSize=1",
        None,
    )
    .await;
    assert_eq!(first.json["senders"].as_array().unwrap().len(), 1);
    let next = first.json["meta"]["next_page_url"].as_str().unwrap();
    assert!(next.contains("Channel=whatsapp"), "{next}");
    let second = call(&fake, Method::GET, next, None).await;
    assert_eq!(second.json["senders"][0]["sid"], SENDER);

    let deleted = call(&fake, Method::DELETE, &sender_path(&sid), None).await;
    assert_eq!(deleted.status, 204);
    assert_error(
        &call(&fake, Method::GET, &sender_path(&sid), None).await,
        404,
        20404,
    );
    let left: Vec<String> = fake.senders().into_iter().map(|(sid, _)| sid).collect();
    assert_eq!(left, [SENDER]);
}

#[tokio::test]
async fn invalid_sender_bodies_are_refused() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    for body in [
        json!({}),
        json!({"sender_id": ""}),
        json!({"sender_id": "+15017122661"}),
        json!({"sender_id": "whatsapp:+1501712266x"}),
        json!({"sender_id": "whatsapp:+15017122661", "configuration": "sms"}),
        json!({"sender_id": "whatsapp:+15017122661", "profile": {"nickname": "A"}}),
        json!({"sender_id": "whatsapp:+15017122661", "colour": "red"}),
        json!("whatsapp:+15017122661"),
    ] {
        let answer = call(&fake, Method::POST, "/v2/Channels/Senders", Some(body)).await;
        assert_error(&answer, 400, 20422);
    }
    assert!(fake.senders().is_empty());

    fake.set_sender(SENDER, SenderState::default());
    for body in [
        json!({"sender_id": "whatsapp:+15550000000"}),
        json!({"webhook": {"callback": "https://x.example"}}),
    ] {
        let answer = call(&fake, Method::POST, &sender_path(SENDER), Some(body)).await;
        assert_error(&answer, 400, 20422);
    }
    assert_eq!(fake.senders()[0].1, SenderState::default());
}

#[tokio::test]
async fn every_endpoint_needs_basic_auth() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    fake.set_sender(SENDER, SenderState::default());
    let client = reqwest::Client::new();
    for (method, path) in [
        (Method::POST, "/v2/Channels/Senders".to_string()),
        (Method::GET, "/v2/Channels/Senders".to_string()),
        (Method::GET, sender_path(SENDER)),
        (Method::POST, sender_path(SENDER)),
        (Method::DELETE, sender_path(SENDER)),
    ] {
        let url = format!("{}{path}", fake.base_url());
        let none = client.request(method.clone(), &url).json(&registration());
        let wrong = client
            .request(method.clone(), &url)
            .basic_auth(fake.account_sid(), Some("wrong-token"))
            .json(&registration());
        for request in [none, wrong] {
            let refused = answer(request.send().await.unwrap()).await;
            assert_error(&refused, 401, 20003);
            assert_eq!(
                refused.headers["www-authenticate"],
                "Basic realm=\"Twilio API\""
            );
        }
    }
    assert_eq!(
        fake.senders(),
        [(SENDER.to_string(), SenderState::default())]
    );
}

#[tokio::test]
async fn scripted_faults_hit_their_endpoint_only() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    fake.set_sender(SENDER, SenderState::default());
    fake.inject_reads(
        ReadEndpoint::SenderFetch,
        [
            ReadFault::TooManyRequests {
                retry_after_secs: 2,
            },
            ReadFault::DropConnection,
        ],
    );
    let limited = call(&fake, Method::GET, &sender_path(SENDER), None).await;
    assert_error(&limited, 429, 20429);
    assert_eq!(limited.headers["retry-after"], "2");
    let dropped = reqwest::Client::new()
        .get(format!("{}{}", fake.base_url(), sender_path(SENDER)))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(
        call(&fake, Method::GET, &sender_path(SENDER), None)
            .await
            .status,
        200
    );

    let update = json!({"configuration": {"verification_code": "123456"}});
    let endpoints = [
        (
            ReadEndpoint::SenderCreate,
            Method::POST,
            "/v2/Channels/Senders".to_string(),
            Some(registration()),
            202,
        ),
        (
            ReadEndpoint::SenderList,
            Method::GET,
            "/v2/Channels/Senders".to_string(),
            None,
            200,
        ),
        (
            ReadEndpoint::SenderUpdate,
            Method::POST,
            sender_path(SENDER),
            Some(update),
            202,
        ),
        (
            ReadEndpoint::SenderDelete,
            Method::DELETE,
            sender_path(SENDER),
            None,
            204,
        ),
    ];
    for (endpoint, method, path, body, ok) in endpoints {
        fake.inject_reads(endpoint, [ReadFault::ServerError]);
        let before = fake.senders();
        let faulted = call(&fake, method.clone(), &path, body.clone()).await;
        assert_error(&faulted, 500, 20500);
        assert_eq!(
            fake.senders(),
            before,
            "{endpoint:?} acted despite its fault"
        );
        let normal = call(&fake, method, &path, body).await;
        assert_eq!(normal.status, ok, "{endpoint:?}: {}", normal.json);
    }
    assert_eq!(fake.senders().len(), 1, "one created, the set one deleted");
}
