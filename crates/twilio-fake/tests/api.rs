//! The Messages API over real HTTP: resource shape, validation, auth, faults, fetch and list.

mod common;

use std::time::Duration;

use common::*;
use twilio_fake::{Config, FakeTwilio, Fault};

fn is_rfc2822(value: &serde_json::Value) -> bool {
    // "Wed, 14 Aug 2024 12:08:41 +0000"
    value.as_str().is_some_and(|s| {
        let parts: Vec<&str> = s.split(' ').collect();
        s.len() == 31 && parts.len() == 6 && parts[0].ends_with(',') && parts[5] == "+0000"
    })
}

#[tokio::test]
async fn create_answers_201_with_the_message_resource() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let answer = create(
        &fake,
        &[
            ("To", TO),
            ("From", FROM),
            ("Body", "Hello"),
            ("StatusCallback", "https://example.com/cb"),
        ],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let m = &answer.json;
    assert!(is_sid(&m["sid"], "SM"), "{m}");
    assert_eq!(m["account_sid"], fake.account_sid());
    assert_eq!(m["to"], TO);
    assert_eq!(m["from"], FROM);
    assert_eq!(m["body"], "Hello");
    assert_eq!(m["status"], "queued");
    assert_eq!(m["direction"], "outbound-api");
    assert_eq!(m["num_segments"], "1");
    assert_eq!(m["num_media"], "0");
    assert_eq!(m["api_version"], "2010-04-01");
    for null in [
        "price",
        "price_unit",
        "error_code",
        "error_message",
        "date_sent",
        "messaging_service_sid",
    ] {
        assert!(m[null].is_null(), "{null} in {m}");
    }
    assert!(is_rfc2822(&m["date_created"]), "{m}");
    assert!(is_rfc2822(&m["date_updated"]), "{m}");
    let sid = m["sid"].as_str().unwrap();
    let base = format!("/2010-04-01/Accounts/{}/Messages/{sid}", fake.account_sid());
    assert_eq!(m["uri"], format!("{base}.json"));
    assert_eq!(m["subresource_uris"]["media"], format!("{base}/Media.json"));

    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].sid, sid);
    assert_eq!(messages[0].status, "queued");
    assert_eq!(
        messages[0].status_callback.as_deref(),
        Some("https://example.com/cb")
    );
    assert_eq!(fake.create_requests(), 1);
}

#[tokio::test]
async fn templates_and_messaging_services_are_accepted() {
    let fake = FakeTwilio::start(Config {
        content_sids: Some(vec!["HXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string()]),
        ..Config::default()
    })
    .await
    .unwrap();
    let answer = create(
        &fake,
        &[
            ("To", TO),
            ("From", FROM),
            ("ContentSid", "HXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("ContentVariables", r#"{"1":"Ada","2":"Fri 10:00"}"#),
            ("MessagingServiceSid", "MGbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
            ("MediaUrl", "https://example.com/a.jpg"),
            ("MediaUrl", "https://example.com/b.jpg"),
        ],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["status"], "accepted");
    assert_eq!(
        answer.json["messaging_service_sid"],
        "MGbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    );
    assert_eq!(answer.json["num_media"], "2");
    let stored = &fake.messages()[0];
    assert_eq!(
        stored.content_sid.as_deref(),
        Some("HXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    );
    assert_eq!(
        stored.content_variables.as_deref(),
        Some(r#"{"1":"Ada","2":"Fri 10:00"}"#)
    );
    assert_eq!(stored.body, None);
}

#[tokio::test]
async fn validation_errors_use_twilio_codes() {
    let fake = FakeTwilio::start(Config {
        content_sids: Some(vec!["HXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string()]),
        ..Config::default()
    })
    .await
    .unwrap();
    let long_body = "x".repeat(1601);
    let hx = "HXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let cases: Vec<(Vec<(&str, &str)>, i64)> = vec![
        (
            vec![("To", "+15552229999"), ("From", FROM), ("Body", "hi")],
            21211,
        ),
        (
            vec![("To", "whatsapp:+1555"), ("From", FROM), ("Body", "hi")],
            21211,
        ),
        (
            vec![
                ("To", "whatsapp:+1555222999912345"),
                ("From", FROM),
                ("Body", "hi"),
            ],
            21211,
        ),
        (
            vec![
                ("To", "whatsapp:+1555abc9999"),
                ("From", FROM),
                ("Body", "hi"),
            ],
            21211,
        ),
        (
            vec![("To", TO), ("From", "+14155238886"), ("Body", "hi")],
            21212,
        ),
        (
            vec![("To", TO), ("From", "whatsapp:+"), ("Body", "hi")],
            21212,
        ),
        (vec![("To", TO), ("From", FROM)], 21619),
        (vec![("To", TO), ("From", FROM), ("Body", "")], 21619),
        (
            vec![
                ("To", TO),
                ("From", FROM),
                ("Body", "hi"),
                ("ContentVariables", r#"{"1":"a"}"#),
            ],
            21654,
        ),
        (
            vec![("To", TO), ("From", FROM), ("ContentSid", "HXnothex")],
            21655,
        ),
        (
            vec![
                ("To", TO),
                ("From", FROM),
                ("ContentSid", "HXcccccccccccccccccccccccccccccccc"),
            ],
            21655,
        ),
        (
            vec![
                ("To", TO),
                ("From", FROM),
                ("ContentSid", hx),
                ("ContentVariables", "[1]"),
            ],
            21656,
        ),
        (
            vec![
                ("To", TO),
                ("From", FROM),
                ("ContentSid", hx),
                ("ContentVariables", r#"{"1":2}"#),
            ],
            21656,
        ),
        (
            vec![
                ("To", TO),
                ("From", FROM),
                ("ContentSid", hx),
                ("ContentVariables", "{"),
            ],
            21656,
        ),
        (
            vec![("To", TO), ("From", FROM), ("Body", &long_body)],
            21617,
        ),
        (
            vec![
                ("To", TO),
                ("From", FROM),
                ("Body", "hi"),
                ("StatusCallback", "not a url"),
            ],
            21609,
        ),
    ];
    for (form, code) in &cases {
        let answer = create(&fake, form).await;
        assert_error(&answer, 400, *code);
    }
    assert!(fake.messages().is_empty());
    assert_eq!(fake.create_requests(), cases.len());

    // The limits themselves are fine, and repeated keys take their first value.
    let ok = create(
        &fake,
        &[
            ("To", TO),
            ("To", "junk"),
            ("From", FROM),
            ("Body", &"é".repeat(1600)),
        ],
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.json);
    assert_eq!(ok.json["to"], TO);
}

#[tokio::test]
async fn authentication() {
    let fake = FakeTwilio::start(Config {
        api_key: Some((
            "SKdddddddddddddddddddddddddddddddd".to_string(),
            "key-secret".to_string(),
        )),
        ..Config::default()
    })
    .await
    .unwrap();
    let form = [("To", TO), ("From", FROM), ("Body", "hi")];

    let wrong = create_as(&fake, fake.account_sid(), "wrong-token", &form).await;
    assert_error(&wrong, 401, 20003);
    assert!(wrong.headers.get("www-authenticate").is_some());

    let unauthenticated = reqwest::Client::new()
        .post(messages_url(&fake))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_error(&answer(unauthenticated).await, 401, 20003);

    let wrong_secret = create_as(
        &fake,
        "SKdddddddddddddddddddddddddddddddd",
        fake.auth_token(),
        &form,
    )
    .await;
    assert_error(&wrong_secret, 401, 20003);

    let api_key = create_as(
        &fake,
        "SKdddddddddddddddddddddddddddddddd",
        "key-secret",
        &form,
    )
    .await;
    assert_eq!(api_key.status, 201, "{}", api_key.json);
    assert_eq!(api_key.json["account_sid"], fake.account_sid());

    let other_account = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json",
            fake.base_url()
        ))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_error(&answer(other_account).await, 404, 20404);

    let list = reqwest::Client::new()
        .get(messages_url(&fake))
        .basic_auth(fake.account_sid(), Some("wrong-token"))
        .send()
        .await
        .unwrap();
    assert_error(&answer(list).await, 401, 20003);

    assert_eq!(fake.messages().len(), 1);
    assert_eq!(fake.create_requests(), 5);
}

#[tokio::test]
async fn faults_are_consumed_in_order() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    fake.inject([
        Fault::ServerError,
        Fault::TooManyRequests {
            retry_after_secs: 7,
        },
        Fault::CreatedThenServerError,
        Fault::DropConnection,
    ]);
    fake.inject([Fault::Slow { delay_ms: 400 }]);
    let form = [("To", TO), ("From", FROM), ("Body", "hi")];

    assert_error(&create(&fake, &form).await, 500, 20500);
    assert!(fake.messages().is_empty(), "ServerError must not create");

    let limited = create(&fake, &form).await;
    assert_error(&limited, 429, 20429);
    assert_eq!(limited.headers["retry-after"], "7");
    assert!(fake.messages().is_empty(), "429 must not create");

    assert_error(&create(&fake, &form).await, 500, 20500);
    assert_eq!(fake.messages().len(), 1, "CreatedThenServerError creates");

    let dropped = reqwest::Client::new()
        .post(messages_url(&fake))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .form(&form)
        .send()
        .await;
    assert!(dropped.is_err(), "expected no answer, got {dropped:?}");
    assert_eq!(fake.messages().len(), 1, "DropConnection must not create");

    let slow = reqwest::Client::new()
        .post(messages_url(&fake))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .timeout(Duration::from_millis(100))
        .form(&form)
        .send()
        .await;
    assert!(slow.is_err_and(|e| e.is_timeout()));
    assert_eq!(
        fake.messages().len(),
        2,
        "Slow creates even when the client gives up"
    );

    let normal = create(&fake, &form).await;
    assert_eq!(normal.status, 201, "faults are used up");
    assert_eq!(fake.messages().len(), 3);
    assert_eq!(fake.create_requests(), 6);
}

#[tokio::test]
async fn slow_answers_normally_after_the_delay() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    fake.inject([Fault::Slow { delay_ms: 200 }]);
    let started = std::time::Instant::now();
    let answer = create(&fake, &[("To", TO), ("From", FROM), ("Body", "hi")]).await;
    assert_eq!(answer.status, 201);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn fetch_and_list() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let other = "whatsapp:+447700900123";
    let mut sids = Vec::new();
    for to in [TO, other, TO] {
        let answer = create(&fake, &[("To", to), ("From", FROM), ("Body", "hi")]).await;
        sids.push(answer.json["sid"].as_str().unwrap().to_string());
    }
    let base = format!("/2010-04-01/Accounts/{}/Messages", fake.account_sid());

    let fetched = get(&fake, &format!("{base}/{}.json", sids[1])).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json["sid"], sids[1].as_str());
    assert_eq!(fetched.json["to"], other);
    assert!(is_rfc2822(&fetched.json["date_created"]));

    assert_error(
        &get(
            &fake,
            &format!("{base}/SM00000000000000000000000000000000.json"),
        )
        .await,
        404,
        20404,
    );
    assert_error(
        &get(&fake, &format!("{base}/{}", sids[1])).await,
        404,
        20404,
    );

    let all = get(&fake, &format!("{base}.json")).await;
    assert_eq!(all.status, 200);
    let listed: Vec<&str> = all.json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [&sids[2], &sids[1], &sids[0]], "newest first");
    assert_eq!(all.json["page"], 0);
    assert_eq!(all.json["page_size"], 50);
    assert!(all.json["next_page_uri"].is_null());
    assert!(all.json["uri"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{base}.json?")));

    let to = get(&fake, &format!("{base}.json?To=whatsapp%3A%2B15552229999")).await;
    let listed: Vec<&str> = to.json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [&sids[2], &sids[0]]);

    let page = get(
        &fake,
        &format!("{base}.json?To=whatsapp%3A%2B15552229999&PageSize=1"),
    )
    .await;
    assert_eq!(page.json["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page.json["messages"][0]["sid"], sids[2].as_str());
    assert_eq!(page.json["page_size"], 1);

    let from = get(
        &fake,
        &format!("{base}.json?From=whatsapp%3A%2B10000000000"),
    )
    .await;
    assert!(from.json["messages"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn stats_endpoint_counts() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    create(&fake, &[("To", TO), ("From", FROM), ("Body", "hi")]).await;
    create(&fake, &[("To", TO), ("From", FROM)]).await;
    let stats = get(&fake, "/_fake/stats").await;
    assert_eq!(stats.json["create_requests"], 2);
    assert_eq!(stats.json["messages"], 1);
    assert_error(&get(&fake, "/nowhere").await, 404, 20404);
}

#[tokio::test]
async fn concurrent_creates_are_counted_exactly() {
    let fake = std::sync::Arc::new(FakeTwilio::start(Config::default()).await.unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let fake = fake.clone();
            tokio::spawn(async move {
                create(&fake, &[("To", TO), ("From", FROM), ("Body", "hi")])
                    .await
                    .status
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 201);
    }
    let messages = fake.messages();
    let sids: std::collections::HashSet<_> = messages.iter().map(|m| m.sid.clone()).collect();
    assert_eq!(
        (messages.len(), sids.len(), fake.create_requests()),
        (200, 200, 200)
    );
}
