//! The Content API and WhatsApp approval (PROVIDERS.md §4) over real HTTP: resource shapes,
//! validation, paging, the approval lifecycle and its test hooks, ContentSid acceptance, auth and
//! scripted faults.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use twilio_fake::{Config, Decision, FakeTwilio, ReadEndpoint, ReadFault};

fn text_template() -> Value {
    json!({
        "friendly_name": "order_update",
        "language": "en",
        "variables": {"1": "Ada", "2": "12345"},
        "types": {"twilio/text": {"body": "Hi {{1}}, your order {{2}} has shipped. Reply STOP to opt out."}},
    })
}

async fn start(approval_delay_ms: u64) -> FakeTwilio {
    FakeTwilio::start(Config {
        approval_delay_ms,
        ..Config::default()
    })
    .await
    .unwrap()
}

/// Creates a template; returns its SID.
async fn create_content(fake: &FakeTwilio, body: Value) -> String {
    let answer = call(fake, Method::POST, "/v1/Content", Some(body)).await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    answer.json["sid"].as_str().unwrap().to_string()
}

async fn submit(fake: &FakeTwilio, sid: &str, name: &str) -> Answer {
    call(
        fake,
        Method::POST,
        &format!("/v1/Content/{sid}/ApprovalRequests/whatsapp"),
        Some(json!({"name": name, "category": "UTILITY"})),
    )
    .await
}

/// The `whatsapp` object of `GET /v1/Content/{sid}/ApprovalRequests`.
async fn approval(fake: &FakeTwilio, sid: &str) -> Value {
    let answer = call(
        fake,
        Method::GET,
        &format!("/v1/Content/{sid}/ApprovalRequests"),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["whatsapp"].clone()
}

#[tokio::test]
async fn create_fetch_list_and_delete_a_template() {
    let fake = start(200).await;
    let created = call(&fake, Method::POST, "/v1/Content", Some(text_template())).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let c = &created.json;
    assert!(is_sid(&c["sid"], "HX"), "{c}");
    let sid = c["sid"].as_str().unwrap();
    let url = format!("{}/v1/Content/{sid}", fake.base_url());
    assert_eq!(c["account_sid"], fake.account_sid());
    assert_eq!(c["friendly_name"], "order_update");
    assert_eq!(c["language"], "en");
    assert_eq!(c["variables"], text_template()["variables"]);
    assert_eq!(c["types"], text_template()["types"]);
    assert_eq!(c["url"], url);
    assert!(is_iso8601(&c["date_created"]), "{c}");
    assert!(is_iso8601(&c["date_updated"]), "{c}");
    assert_eq!(
        c["links"],
        json!({
            "approval_create": format!("{url}/ApprovalRequests/whatsapp"),
            "approval_fetch": format!("{url}/ApprovalRequests"),
        })
    );

    let fetched = call(&fake, Method::GET, &format!("/v1/Content/{sid}"), None).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json, created.json);

    let listed = call(&fake, Method::GET, "/v1/Content", None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["contents"], json!([created.json]));
    let list_url = format!("{}/v1/Content?PageSize=50&Page=0", fake.base_url());
    assert_eq!(
        listed.json["meta"],
        json!({
            "page": 0, "page_size": 50, "first_page_url": list_url, "previous_page_url": null,
            "next_page_url": null, "url": list_url, "key": "contents",
        })
    );

    let contents = fake.contents();
    assert_eq!(contents.len(), 1);
    assert_eq!(contents[0].sid, sid);
    assert_eq!(contents[0].language, "en");
    assert_eq!(contents[0].approval, None);

    let deleted = call(&fake, Method::DELETE, &format!("/v1/Content/{sid}"), None).await;
    assert_eq!(deleted.status, 204);
    assert!(fake.contents().is_empty());
    let gone = call(&fake, Method::GET, &format!("/v1/Content/{sid}"), None).await;
    assert_error(&gone, 404, 20404);
    let again = call(&fake, Method::DELETE, &format!("/v1/Content/{sid}"), None).await;
    assert_error(&again, 404, 20404);
    let listed = call(&fake, Method::GET, "/v1/Content", None).await;
    assert_eq!(listed.json["contents"], json!([]));
}

#[tokio::test]
async fn quick_reply_and_call_to_action_templates_are_accepted() {
    let fake = start(200).await;
    let quick_reply = json!({
        "language": "en",
        "types": {"twilio/quick-reply": {"body": "Coming on {{1}}?", "actions": [
            {"title": "Yes", "id": "yes"}, {"type": "QUICK_REPLY", "title": "No", "id": "no"}]}},
        "variables": {"1": "Friday"},
    });
    let call_to_action = json!({
        "language": "pt_BR",
        "types": {
            "twilio/call-to-action": {"body": "Your code is ready", "actions": [
                {"type": "URL", "title": "Open", "url": "https://example.com/{{1}}"},
                {"type": "PHONE_NUMBER", "title": "Call us", "phone": "+15551234567"}]},
            "twilio/text": {"body": "Your code is ready"},
        },
    });
    let qr = create_content(&fake, quick_reply).await;
    let cta = create_content(&fake, call_to_action).await;
    let fetched = call(&fake, Method::GET, &format!("/v1/Content/{cta}"), None).await;
    assert_eq!(fetched.json["friendly_name"], "");
    assert_eq!(fetched.json["variables"], json!({}));
    assert_eq!(fake.contents().len(), 2);

    // An approval is for the richest type, not the text fallback.
    assert_eq!(
        submit(&fake, &qr, "rsvp").await.json["content_type"],
        "twilio/quick-reply"
    );
    assert_eq!(
        submit(&fake, &cta, "code_ready").await.json["content_type"],
        "twilio/call-to-action"
    );
}

#[tokio::test]
async fn invalid_templates_are_refused_with_400() {
    let fake = start(200).await;
    let text = |body: Value| json!({"language": "en", "types": {"twilio/text": body}});
    let long = "x".repeat(1601);
    let invalid = [
        json!({"types": {"twilio/text": {"body": "hi"}}}),
        json!({"language": "", "types": {"twilio/text": {"body": "hi"}}}),
        json!({"language": "en"}),
        json!({"language": "en", "types": {}}),
        json!({"language": "en", "types": {"twilio/fax": {"body": "hi"}}}),
        json!({"language": "en", "types": {"twilio/text": "hi"}}),
        json!({"language": "en", "types": {"twilio/text": {"body": "hi"}}, "colour": "red"}),
        json!({"language": "en", "types": {"twilio/text": {"body": "hi"}}, "variables": {"1": 7}}),
        json!({"language": "en", "types": {"twilio/text": {"body": "hi"}}, "variables": {"a b": "x"}}),
        json!({"language": "en", "types": {"twilio/text": {"body": "hi"}}, "variables": ["x"]}),
        json!({"language": 5, "types": {"twilio/text": {"body": "hi"}}}),
        text(json!({})),
        text(json!({"body": "hi", "footer": "no"})),
        text(json!({"body": long})),
        json!({"language": "en", "types": {"twilio/quick-reply": {"body": "Pick"}}}),
        json!({"language": "en", "types": {"twilio/quick-reply": {"body": "Pick", "actions": []}}}),
        json!({"language": "en", "types": {"twilio/quick-reply": {"body": "Pick", "actions": [{"id": "a"}]}}}),
        json!({"language": "en", "types": {"twilio/quick-reply": {"body": "Pick", "actions": [{"type": "URL", "title": "a"}]}}}),
        json!({"language": "en", "types": {"twilio/call-to-action": {"body": "Go", "actions": [{"title": "a", "url": "https://e.x"}]}}}),
        json!({"language": "en", "types": {"twilio/call-to-action": {"body": "Go", "actions": [{"type": "FAX", "title": "a"}]}}}),
        json!({"language": "en", "types": {"twilio/call-to-action": {"body": "Go", "actions": [{"type": "URL", "title": "a", "colour": "red"}]}}}),
        json!("not an object"),
    ];
    for body in invalid {
        let answer = call(&fake, Method::POST, "/v1/Content", Some(body.clone())).await;
        assert_error(&answer, 400, 20422);
        assert!(answer.json["message"].as_str().is_some(), "{body}");
    }
    let not_json = reqwest::Client::new()
        .post(format!("{}/v1/Content", fake.base_url()))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .body("language=en")
        .send()
        .await
        .unwrap();
    assert_error(&answer(not_json).await, 400, 20422);
    assert!(fake.contents().is_empty());
    // At the limit is fine.
    create_content(&fake, text(json!({"body": "x".repeat(1600)}))).await;
}

#[tokio::test]
async fn the_list_pages_through_absolute_links() {
    let fake = start(200).await;
    let mut sids = Vec::new();
    for _ in 0..3 {
        sids.push(create_content(&fake, text_template()).await);
    }
    let first = call(&fake, Method::GET, "/v1/Content?PageSize=2", None).await;
    let page_sids = |answer: &Answer| -> Vec<String> {
        answer.json["contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["sid"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(page_sids(&first), sids[..2]);
    assert_eq!(first.json["meta"]["page_size"], 2);
    assert!(first.json["meta"]["previous_page_url"].is_null());
    let next = first.json["meta"]["next_page_url"].as_str().unwrap();
    let second = call(&fake, Method::GET, next, None).await;
    assert_eq!(page_sids(&second), sids[2..]);
    assert_eq!(second.json["meta"]["page"], 1);
    assert!(second.json["meta"]["next_page_url"].is_null());
    assert_eq!(
        second.json["meta"]["previous_page_url"],
        first.json["meta"]["url"]
    );
}

#[tokio::test]
async fn an_approval_goes_received_then_pending_then_approved_after_the_delay() {
    let fake = start(600).await;
    let sid = create_content(&fake, text_template()).await;
    let unsubmitted = approval(&fake, &sid).await;
    assert_eq!(unsubmitted["status"], "unsubmitted");
    assert_eq!(unsubmitted["type"], "whatsapp");

    let submitted_at = Instant::now();
    let submitted = submit(&fake, &sid, "order_update").await;
    assert_eq!(submitted.status, 201, "{}", submitted.json);
    assert_eq!(
        submitted.json,
        json!({"name": "order_update", "category": "UTILITY", "content_type": "twilio/text",
               "status": "received", "rejection_reason": "", "allow_category_change": true})
    );

    let mut seen: Vec<String> = Vec::new();
    let approved_after = loop {
        let status = approval(&fake, &sid).await["status"]
            .as_str()
            .unwrap()
            .to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "approved" {
            break submitted_at.elapsed();
        }
        assert!(submitted_at.elapsed() < Duration::from_secs(10), "{seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen, ["received", "pending", "approved"]);
    assert!(
        approved_after >= Duration::from_millis(600),
        "{approved_after:?}"
    );

    let answer = call(
        &fake,
        Method::GET,
        &format!("/v1/Content/{sid}/ApprovalRequests"),
        None,
    )
    .await;
    assert_eq!(
        answer.json,
        json!({
            "sid": sid, "account_sid": fake.account_sid(),
            "url": format!("{}/v1/Content/{sid}/ApprovalRequests", fake.base_url()),
            "whatsapp": {"type": "whatsapp", "name": "order_update", "category": "UTILITY",
                "content_type": "twilio/text", "status": "approved", "rejection_reason": "",
                "allow_category_change": true, "flows": null},
        })
    );
    let approval = fake.contents()[0].approval.clone().unwrap();
    assert_eq!(approval.status, "approved");
    assert_eq!(approval.name, "order_update");
}

#[tokio::test]
async fn names_starting_reject_are_rejected_with_a_reason() {
    let fake = start(0).await;
    let sid = create_content(&fake, text_template()).await;
    let submitted = submit(&fake, &sid, "reject_this").await;
    assert_eq!(submitted.json["status"], "rejected");
    assert_eq!(submitted.json["rejection_reason"], "INVALID_FORMAT");
    let fetched = approval(&fake, &sid).await;
    assert_eq!(fetched["status"], "rejected");
    assert_eq!(fetched["rejection_reason"], "INVALID_FORMAT");

    // A new submission under another name starts a new review.
    let resubmitted = submit(&fake, &sid, "order_update").await;
    assert_eq!(resubmitted.json["status"], "approved");
}

#[tokio::test]
async fn tests_set_the_decision_and_change_it_later() {
    let fake = start(0).await;
    let sid = create_content(&fake, text_template()).await;
    assert!(fake.set_template_decision(
        &sid,
        Decision::Rejected {
            reason: "TAG_CONTENT_MISMATCH".to_string()
        }
    ));
    let submitted = submit(&fake, &sid, "order_update").await;
    assert_eq!(submitted.json["status"], "rejected");
    assert_eq!(submitted.json["rejection_reason"], "TAG_CONTENT_MISMATCH");

    for (decision, status) in [
        (Decision::Approved, "approved"),
        (Decision::Paused, "paused"),
        (Decision::Disabled, "disabled"),
        (Decision::Pending, "pending"),
    ] {
        assert!(fake.set_template_decision(&sid, decision));
        let fetched = approval(&fake, &sid).await;
        assert_eq!(fetched["status"], status);
        assert_eq!(fetched["rejection_reason"], "");
    }
    assert!(!fake.set_template_decision("HX00000000000000000000000000000000", Decision::Approved));

    // A decision set for a name starting reject_ wins over the default.
    let other = create_content(&fake, text_template()).await;
    assert!(fake.set_template_decision(&other, Decision::Approved));
    assert_eq!(
        submit(&fake, &other, "reject_me").await.json["status"],
        "approved"
    );
}

#[tokio::test]
async fn a_decision_waits_for_the_delay() {
    let fake = start(60_000).await;
    let sid = create_content(&fake, text_template()).await;
    assert!(fake.set_template_decision(&sid, Decision::Approved));
    assert_eq!(
        submit(&fake, &sid, "order_update").await.json["status"],
        "received"
    );
    assert_eq!(approval(&fake, &sid).await["status"], "received");
}

#[tokio::test]
async fn invalid_approval_requests_are_refused() {
    let fake = start(0).await;
    let sid = create_content(&fake, text_template()).await;
    let path = format!("/v1/Content/{sid}/ApprovalRequests/whatsapp");
    for body in [
        json!({"category": "UTILITY"}),
        json!({"name": "order_update"}),
        json!({"name": "order_update", "category": "TRANSACTIONAL"}),
        json!({"name": "Order Update", "category": "UTILITY"}),
        json!({"name": "order_update", "category": "UTILITY", "allow_category_change": "yes"}),
        json!({"name": "order_update", "category": "UTILITY", "language": "en"}),
        json!(["order_update"]),
    ] {
        let answer = call(&fake, Method::POST, &path, Some(body)).await;
        assert_error(&answer, 400, 20422);
    }
    assert_eq!(approval(&fake, &sid).await["status"], "unsubmitted");

    let kept = call(
        &fake,
        Method::POST,
        &path,
        Some(json!({"name": "order_update", "category": "MARKETING", "allow_category_change": false})),
    )
    .await;
    assert_eq!(kept.status, 201);
    assert_eq!(kept.json["allow_category_change"], false);
    assert_eq!(kept.json["category"], "MARKETING");
}

#[tokio::test]
async fn unknown_templates_are_404() {
    let fake = start(0).await;
    let unknown = "HX0123456789abcdef0123456789abcdef";
    for (method, path) in [
        (Method::GET, format!("/v1/Content/{unknown}")),
        (Method::DELETE, format!("/v1/Content/{unknown}")),
        (
            Method::GET,
            format!("/v1/Content/{unknown}/ApprovalRequests"),
        ),
        (Method::GET, "/v1/Content/not-a-sid".to_string()),
    ] {
        assert_error(&call(&fake, method, &path, None).await, 404, 20404);
    }
    let submitted = submit(&fake, unknown, "order_update").await;
    assert_error(&submitted, 404, 20404);
}

#[tokio::test]
async fn created_templates_are_valid_content_sids_until_deleted() {
    let fake = FakeTwilio::start(Config {
        content_sids: Some(vec![]),
        ..Config::default()
    })
    .await
    .unwrap();
    let sid = create_content(&fake, text_template()).await;
    let send = |sid: String| {
        let fake = &fake;
        async move {
            create(
                fake,
                &[
                    ("To", TO),
                    ("From", FROM),
                    ("ContentSid", &sid),
                    ("ContentVariables", r#"{"1":"Ada"}"#),
                ],
            )
            .await
        }
    };
    let sent = send(sid.clone()).await;
    assert_eq!(sent.status, 201, "{}", sent.json);
    assert_eq!(
        fake.messages()[0].content_sid.as_deref(),
        Some(sid.as_str())
    );

    assert_error(
        &send("HX0123456789abcdef0123456789abcdef".to_string()).await,
        400,
        21655,
    );
    let deleted = call(&fake, Method::DELETE, &format!("/v1/Content/{sid}"), None).await;
    assert_eq!(deleted.status, 204);
    assert_error(&send(sid).await, 400, 21655);
}

#[tokio::test]
async fn every_endpoint_needs_basic_auth() {
    let fake = FakeTwilio::start(Config {
        api_key: Some((
            "SKdddddddddddddddddddddddddddddddd".to_string(),
            "key-secret".to_string(),
        )),
        ..Config::default()
    })
    .await
    .unwrap();
    let sid = create_content(&fake, text_template()).await;
    let endpoints = [
        (Method::POST, "/v1/Content".to_string()),
        (Method::GET, "/v1/Content".to_string()),
        (Method::GET, format!("/v1/Content/{sid}")),
        (Method::DELETE, format!("/v1/Content/{sid}")),
        (
            Method::POST,
            format!("/v1/Content/{sid}/ApprovalRequests/whatsapp"),
        ),
        (Method::GET, format!("/v1/Content/{sid}/ApprovalRequests")),
    ];
    let client = reqwest::Client::new();
    for (method, path) in &endpoints {
        let url = format!("{}{path}", fake.base_url());
        let none = client.request(method.clone(), &url).json(&text_template());
        let wrong = client
            .request(method.clone(), &url)
            .basic_auth(fake.account_sid(), Some("wrong-token"))
            .json(&text_template());
        for request in [none, wrong] {
            let refused = answer(request.send().await.unwrap()).await;
            assert_error(&refused, 401, 20003);
            assert_eq!(
                refused.headers["www-authenticate"],
                "Basic realm=\"Twilio API\""
            );
        }
    }
    let with_key = client
        .get(format!("{}/v1/Content/{sid}", fake.base_url()))
        .basic_auth("SKdddddddddddddddddddddddddddddddd", Some("key-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 200);
    assert_eq!(
        fake.contents().len(),
        1,
        "nothing created or deleted unauthenticated"
    );
}

#[tokio::test]
async fn scripted_faults_hit_their_endpoint_only() {
    let fake = start(0).await;
    fake.inject_reads(
        ReadEndpoint::ContentCreate,
        [
            ReadFault::ServerError,
            ReadFault::TooManyRequests {
                retry_after_secs: 3,
            },
            ReadFault::DropConnection,
            ReadFault::Slow { delay_ms: 300 },
        ],
    );
    let create_once = || call(&fake, Method::POST, "/v1/Content", Some(text_template()));
    assert_error(&create_once().await, 500, 20500);
    let limited = create_once().await;
    assert_error(&limited, 429, 20429);
    assert_eq!(limited.headers["retry-after"], "3");
    let dropped = reqwest::Client::new()
        .post(format!("{}/v1/Content", fake.base_url()))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .json(&text_template())
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert!(fake.contents().is_empty(), "faulted creates create nothing");
    let started = Instant::now();
    let slow = create_once().await;
    assert_eq!(slow.status, 201);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let sid = slow.json["sid"].as_str().unwrap().to_string();

    let endpoints = [
        (
            ReadEndpoint::ContentFetch,
            Method::GET,
            format!("/v1/Content/{sid}"),
            200,
        ),
        (
            ReadEndpoint::ContentList,
            Method::GET,
            "/v1/Content".to_string(),
            200,
        ),
        (
            ReadEndpoint::ApprovalFetch,
            Method::GET,
            format!("/v1/Content/{sid}/ApprovalRequests"),
            200,
        ),
        (
            ReadEndpoint::ApprovalCreate,
            Method::POST,
            format!("/v1/Content/{sid}/ApprovalRequests/whatsapp"),
            201,
        ),
        (
            ReadEndpoint::ContentDelete,
            Method::DELETE,
            format!("/v1/Content/{sid}"),
            204,
        ),
    ];
    for (endpoint, method, path, ok) in endpoints {
        fake.inject_reads(endpoint, [ReadFault::ServerError]);
        let body = (method == Method::POST)
            .then(|| json!({"name": "order_update", "category": "UTILITY"}));
        let before = fake.contents();
        let faulted = call(&fake, method.clone(), &path, body.clone()).await;
        assert_error(&faulted, 500, 20500);
        assert_eq!(
            fake.contents(),
            before,
            "{endpoint:?} acted despite its fault"
        );
        let normal = call(&fake, method, &path, body).await;
        assert_eq!(normal.status, ok, "{endpoint:?}: {}", normal.json);
    }
    assert!(fake.contents().is_empty());
}
