//! The Graph API over real HTTP: sends, their validation and auth errors, templates and phone
//! numbers.

mod common;

use common::*;
use meta_fake::{Config, FakeMeta, Fault, PhoneNumberState, TemplateStatus};
use reqwest::Method;
use serde_json::json;

fn quick_review() -> Config {
    Config {
        template_review_ms: 10,
        ..Config::default()
    }
}

#[tokio::test]
async fn text_send_answers_with_contacts_and_a_wamid() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    let answer = post_message(&fake, text_body("+15551234567", "Hello", Some("msg-1"))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let id = answer.json["messages"][0]["id"].as_str().unwrap();
    assert!(id.starts_with("wamid.") && id.len() > 20, "{id}");
    assert_eq!(
        answer.json,
        json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "+15551234567", "wa_id": "15551234567"}],
            "messages": [{"id": id}],
        })
    );
    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.id, id);
    assert_eq!(m.to, "15551234567");
    assert_eq!(m.phone_number_id, fake.phone_number_id());
    assert_eq!(m.text.as_deref(), Some("Hello"));
    assert_eq!(m.template, None);
    assert_eq!(m.biz_opaque_callback_data.as_deref(), Some("msg-1"));
    assert_eq!(m.status, "accepted");
    assert_eq!(fake.send_requests(), 1);
}

#[tokio::test]
async fn any_graph_version_is_served_and_malformed_ones_are_refused() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    for (version, status) in [
        ("v21.0", 200),
        ("v24.0", 200),
        ("23.0", 400),
        ("latest", 400),
    ] {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/{version}/{}/messages",
                fake.base_url(),
                fake.phone_number_id()
            ))
            .bearer_auth(fake.access_token())
            .json(&text_body(TO, "hi", None))
            .send()
            .await
            .unwrap();
        let answer = answer(response).await;
        assert_eq!(answer.status, status, "{version}: {}", answer.json);
        if status == 400 {
            assert_graph_error(&answer, 400, 100);
        }
    }
    assert_eq!(fake.messages().len(), 2);
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_190() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    let url = format!(
        "{}/{VERSION}/{}/messages",
        fake.base_url(),
        fake.phone_number_id()
    );
    let none = answer(
        reqwest::Client::new()
            .post(&url)
            .json(&text_body(TO, "hi", None))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_graph_error(&none, 401, 190);
    let wrong = answer(
        reqwest::Client::new()
            .post(&url)
            .bearer_auth("expired-token")
            .json(&text_body(TO, "hi", None))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_graph_error(&wrong, 401, 190);
    assert_eq!(wrong.json["error"]["type"], "OAuthException");
    assert_eq!(wrong.json["error"]["error_subcode"], 463);
    let phone = answer(
        reqwest::Client::new()
            .get(format!(
                "{}/{VERSION}/{}",
                fake.base_url(),
                fake.phone_number_id()
            ))
            .bearer_auth("expired-token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_graph_error(&phone, 401, 190);
    assert!(fake.messages().is_empty());
    assert_eq!(fake.send_requests(), 2);
}

#[tokio::test]
async fn invalid_sends_are_refused_with_code_100() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    let mut no_product = text_body(TO, "hi", None);
    no_product
        .as_object_mut()
        .unwrap()
        .remove("messaging_product");
    let long_data = "x".repeat(513);
    for body in [
        no_product,
        text_body("12-34", "hi", None),
        text_body(TO, "", None),
        text_body(TO, "hi", Some(&long_data)),
        json!({"messaging_product": "whatsapp", "to": TO, "type": "template",
               "template": {"name": "x"}}),
    ] {
        let answer = post_message(&fake, body.clone()).await;
        assert_graph_error(&answer, 400, 100);
        assert_eq!(
            answer.json["error"]["error_data"]["messaging_product"],
            "whatsapp"
        );
        assert!(
            answer.json["error"]["error_data"]["details"].is_string(),
            "{body}"
        );
    }
    let unknown_number = graph(
        &fake,
        Method::POST,
        "999999999/messages",
        Some(text_body(TO, "hi", None)),
    )
    .await;
    assert_graph_error(&unknown_number, 400, 100);
    assert_eq!(unknown_number.json["error"]["error_subcode"], 33);
    assert_eq!(unknown_number.json["error"]["type"], "GraphMethodException");
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn template_sends_need_an_approved_template_with_matching_parameters() {
    let fake = FakeMeta::start(Config {
        template_review_ms: 200,
        ..Config::default()
    })
    .await
    .unwrap();
    let path = format!("{}/message_templates", fake.waba_id());
    let created = graph(
        &fake,
        Method::POST,
        &path,
        Some(new_template("order_update", "en_US")),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_string();
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    assert_eq!(
        created.json,
        json!({"id": id, "status": "PENDING", "category": "UTILITY"})
    );

    let pending = post_message(
        &fake,
        template_body("order_update", "en_US", &["Ada", "1"], None),
    )
    .await;
    assert_graph_error(&pending, 404, 132001);

    wait_template_status(&fake, &id, "APPROVED").await;
    let too_few = post_message(
        &fake,
        template_body("order_update", "en_US", &["Ada"], None),
    )
    .await;
    assert_graph_error(&too_few, 400, 132000);
    let other_language = post_message(
        &fake,
        template_body("order_update", "pt_BR", &["Ada", "1"], None),
    )
    .await;
    assert_graph_error(&other_language, 404, 132001);
    let sent = post_message(
        &fake,
        template_body("order_update", "en_US", &["Ada", "12345"], Some("m-7")),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.json);
    assert_eq!(sent.json["contacts"][0]["input"], format!("+{TO}"));
    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    let template = messages[0].template.as_ref().unwrap();
    assert_eq!(template.name, "order_update");
    assert_eq!(template.language, "en_US");
    assert_eq!(template.body_parameters, ["Ada", "12345"]);
    assert_eq!(messages[0].category, "utility");

    fake.set_template_status(&id, TemplateStatus::Paused, Some("LOW_QUALITY"))
        .unwrap();
    let paused = post_message(
        &fake,
        template_body("order_update", "en_US", &["a", "b"], None),
    )
    .await;
    assert_graph_error(&paused, 400, 132015);
    fake.set_template_status(&id, TemplateStatus::Disabled, None)
        .unwrap();
    let disabled = post_message(
        &fake,
        template_body("order_update", "en_US", &["a", "b"], None),
    )
    .await;
    assert_graph_error(&disabled, 400, 132016);
}

#[tokio::test]
async fn unknown_templates_pass_when_the_fake_is_told_not_to_check() {
    let fake = FakeMeta::start(Config {
        known_templates_only: false,
        ..Config::default()
    })
    .await
    .unwrap();
    let answer = post_message(&fake, template_body("anything", "en", &["x"], None)).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let strict = FakeMeta::start(Config::default()).await.unwrap();
    let approved = strict
        .add_approved_template("welcome", "en", "MARKETING", "Hello {{1}}!")
        .unwrap();
    assert_eq!(approved.status, TemplateStatus::Approved);
    let answer = post_message(&strict, template_body("welcome", "en", &["Ada"], None)).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(strict.messages()[0].category, "marketing");
}

#[tokio::test]
async fn template_reads_answer_the_fields_asked_for() {
    let fake = FakeMeta::start(quick_review()).await.unwrap();
    let path = format!("{}/message_templates", fake.waba_id());
    let created = graph(
        &fake,
        Method::POST,
        &path,
        Some(new_template("reminder", "en")),
    )
    .await;
    let id = created.json["id"].as_str().unwrap().to_string();
    wait_template_status(&fake, &id, "APPROVED").await;

    let fields = format!("{id}?fields=status,name,language,category,rejected_reason");
    let read = graph(&fake, Method::GET, &fields, None).await;
    assert_eq!(
        read.json,
        json!({"id": id, "status": "APPROVED", "name": "reminder", "language": "en",
               "category": "UTILITY", "rejected_reason": "NONE"})
    );
    let all = graph(&fake, Method::GET, &id, None).await;
    assert_eq!(all.json["quality_score"]["score"], "UNKNOWN");
    assert_eq!(all.json["components"][1]["type"], "BODY");
    let bad_field = graph(
        &fake,
        Method::GET,
        &format!("{id}?fields=status,colour"),
        None,
    )
    .await;
    assert_graph_error(&bad_field, 400, 100);

    let rejected = graph(
        &fake,
        Method::POST,
        &path,
        Some(new_template("reject_me", "en")),
    )
    .await;
    let rejected_id = rejected.json["id"].as_str().unwrap();
    let json = wait_template_status(&fake, rejected_id, "REJECTED").await;
    assert_eq!(json["rejected_reason"], "INVALID_FORMAT");
    let stored = fake.templates();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].rejected_reason.as_deref(), Some("INVALID_FORMAT"));
}

#[tokio::test]
async fn template_creation_enforces_whatsapp_rules_and_uniqueness() {
    let fake = FakeMeta::start(quick_review()).await.unwrap();
    let path = format!("{}/message_templates", fake.waba_id());
    let mut bad_name = new_template("Order Update", "en");
    bad_name["name"] = "Order Update".into();
    let mut missing_samples = new_template("a", "en");
    missing_samples["components"][1]["example"] = json!({"body_text": [["Ada"]]});
    let mut gap = new_template("b", "en");
    gap["components"][1]["text"] = "Hi {{1}} and {{3}}".into();
    let mut long_button = new_template("c", "en");
    long_button["components"][3]["buttons"][0]["text"] = "a quick reply far too long".into();
    let mut bad_category = new_template("d", "en");
    bad_category["category"] = "PROMOTIONAL".into();
    for body in [bad_name, missing_samples, gap, long_button, bad_category] {
        let answer = graph(&fake, Method::POST, &path, Some(body.clone())).await;
        assert_graph_error(&answer, 400, 100);
    }
    assert!(fake.templates().is_empty());

    let first = graph(
        &fake,
        Method::POST,
        &path,
        Some(new_template("promo", "en")),
    )
    .await;
    assert_eq!(first.status, 200);
    let again = graph(
        &fake,
        Method::POST,
        &path,
        Some(new_template("promo", "en")),
    )
    .await;
    assert_graph_error(&again, 400, 100);
    assert_eq!(again.json["error"]["error_subcode"], 2388024);
    let other_language = graph(
        &fake,
        Method::POST,
        &path,
        Some(new_template("promo", "es")),
    )
    .await;
    assert_eq!(other_language.status, 200);

    let other_waba = graph(
        &fake,
        Method::POST,
        "123456789/message_templates",
        Some(new_template("x", "en")),
    )
    .await;
    assert_graph_error(&other_waba, 400, 100);
    assert_eq!(other_waba.json["error"]["error_subcode"], 33);
}

#[tokio::test]
async fn templates_are_deleted_by_name_or_by_id() {
    let fake = FakeMeta::start(quick_review()).await.unwrap();
    let path = format!("{}/message_templates", fake.waba_id());
    let mut ids = Vec::new();
    for (name, language) in [("promo", "en"), ("promo", "es"), ("notice", "en")] {
        let created = graph(
            &fake,
            Method::POST,
            &path,
            Some(new_template(name, language)),
        )
        .await;
        ids.push(created.json["id"].as_str().unwrap().to_string());
    }
    let by_id = graph(
        &fake,
        Method::DELETE,
        &format!("{path}?name=promo&hsm_id={}", ids[1]),
        None,
    )
    .await;
    assert_eq!(by_id.status, 200, "{}", by_id.json);
    assert_eq!(by_id.json, json!({"success": true}));
    let gone = graph(&fake, Method::GET, &ids[1], None).await;
    assert_graph_error(&gone, 400, 100);
    assert_eq!(gone.json["error"]["error_subcode"], 33);
    assert_eq!(graph(&fake, Method::GET, &ids[0], None).await.status, 200);

    let by_name = graph(&fake, Method::DELETE, &format!("{path}?name=promo"), None).await;
    assert_eq!(by_name.status, 200);
    let names: Vec<String> = fake.templates().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["notice"]);
    let again = graph(&fake, Method::DELETE, &format!("{path}?name=promo"), None).await;
    assert_graph_error(&again, 400, 100);
    let no_name = graph(&fake, Method::DELETE, &path, None).await;
    assert_graph_error(&no_name, 400, 100);
}

#[tokio::test]
async fn phone_numbers_report_status_quality_and_tier() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    let path = format!(
        "{}?fields=status,quality_rating,messaging_limit_tier",
        fake.phone_number_id()
    );
    let read = graph(&fake, Method::GET, &path, None).await;
    assert_eq!(read.status, 200, "{}", read.json);
    assert_eq!(
        read.json,
        json!({"id": fake.phone_number_id(), "status": "CONNECTED", "quality_rating": "GREEN",
               "messaging_limit_tier": "TIER_1K"})
    );
    fake.set_phone_number_state(
        fake.phone_number_id(),
        PhoneNumberState {
            status: "FLAGGED".to_string(),
            quality_rating: "RED".to_string(),
            messaging_limit_tier: "TIER_250".to_string(),
        },
    )
    .unwrap();
    let read = graph(&fake, Method::GET, &path, None).await;
    assert_eq!(read.json["status"], "FLAGGED");
    assert_eq!(read.json["quality_rating"], "RED");
    assert_eq!(read.json["messaging_limit_tier"], "TIER_250");
    let all = graph(&fake, Method::GET, fake.phone_number_id(), None).await;
    assert_eq!(all.json["display_phone_number"], "15550783881");
    assert!(fake
        .set_phone_number_state("42", PhoneNumberState::default())
        .is_err());
    let unknown = graph(&fake, Method::GET, "42?fields=status", None).await;
    assert_graph_error(&unknown, 400, 100);
}

#[tokio::test]
async fn scripted_errors_answer_with_the_status_of_metas_table() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    let table = [
        (130429, 429),
        (131056, 400),
        (80007, 429),
        (131026, 400),
        (131047, 400),
        (132001, 404),
        (131031, 403),
        (190, 401),
        (2, 503),
    ];
    fake.inject(table.iter().map(|&(code, _)| Fault::Error { code }));
    for (code, status) in table {
        let answer = post_message(&fake, text_body(TO, "hi", None)).await;
        assert_graph_error(&answer, status, code);
        let message = answer.json["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("(#{code})")), "{message}");
    }
    assert!(fake.messages().is_empty(), "refused sends are not accepted");
    assert_eq!(
        post_message(&fake, text_body(TO, "hi", None)).await.status,
        200
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_are_graph_errors() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    let path = format!("{}/conversations", fake.phone_number_id());
    assert_graph_error(&graph(&fake, Method::GET, &path, None).await, 400, 100);
    let messages = format!("{}/messages", fake.phone_number_id());
    assert_graph_error(&graph(&fake, Method::GET, &messages, None).await, 400, 100);
}
