//! Billing (API.md §6): charges, refunds once, credits once per reference, never negative;
//! idempotent sends charge once.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn balance_never_goes_negative_under_parallel_sends() {
    let app = spawn_with("rate_limit_per_second = 1000\n").await;
    // Five utility sends at 0.02 each.
    let t = app.tenant_with_balance(0.1).await;
    let sends = (0..20).map(|i| {
        let app = &app;
        let t = &t;
        async move {
            app.send_template(t, &format!("+1415555{:04}", 2000 + i))
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(sends).await;
    let ok = statuses.iter().filter(|s| s.as_u16() == 200).count();
    let broke = statuses.iter().filter(|s| s.as_u16() == 402).count();
    assert_eq!((ok, broke), (5, 15), "{statuses:?}");
    assert_eq!(app.balance(&t).await, 0.0);
}

#[tokio::test]
async fn undeliverable_message_is_refunded_once() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let reply = app.send_template(&t, "+14155550000").await;
    assert_eq!(reply.status, 200);
    assert!((app.balance(&t).await - 9.98).abs() < 1e-9);
    let id = reply.body["whatsapp_message_id"].as_i64().unwrap();
    for _ in 0..4 {
        app.advance(Duration::from_secs(1));
        app.run_jobs().await;
    }
    let msg = app
        .get(&format!("/api/user/whatsapp/messages/{id}"), &t.key)
        .await
        .body;
    assert_eq!(msg["status"], "undelivered");
    assert_eq!(msg["error_code"], 30003);
    assert_eq!(msg["error_message"], "Unreachable destination handset");
    assert_eq!(app.balance(&t).await, 10.0);
}

#[tokio::test]
async fn credits_apply_once_per_reference() {
    let app = spawn_app().await;
    let t = app.tenant_with_balance(0.0).await;
    let path = format!("/api/admin/users/{}/credits", t.user_id);
    let first = app
        .request(
            Method::POST,
            &path,
            Some(ADMIN),
            Some(json!({"amount": 12.5, "reference": "inv-1"})),
        )
        .await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body["total_balance"], json!(12.5));
    let again = app
        .request(
            Method::POST,
            &path,
            Some(ADMIN),
            Some(json!({"amount": 12.5, "reference": "inv-1"})),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["total_balance"], json!(12.5));
    let tiny = app
        .request(
            Method::POST,
            &path,
            Some(ADMIN),
            Some(json!({"amount": 0.0000001, "reference": "inv-2"})),
        )
        .await;
    assert_eq!(tiny.status, 422);
    assert_eq!(
        tiny.body["errors"]["amount"].as_array().map(Vec::len),
        Some(1)
    );
    let negative = app
        .request(
            Method::POST,
            &path,
            Some(ADMIN),
            Some(json!({"amount": -5, "reference": "inv-3"})),
        )
        .await;
    assert_eq!(negative.status, 422);
    assert_eq!(app.balance(&t).await, 12.5);
}

#[tokio::test]
async fn idempotent_send_charges_once() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let body = json!({"sender_id": t.sender_id, "template_id": t.template_id,
                      "recipient_phone": "+14155551234", "variables": {"name": "Ada", "code": "9"}});
    let send = |body: serde_json::Value, key: &'static str| {
        let req = app
            .http
            .post(format!("{}/api/user/whatsapp/send", app.base))
            .bearer_auth(&t.key)
            .header("Idempotency-Key", key)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (s1, b1) = send(body.clone(), "order-77").await;
    let (s2, b2) = send(body.clone(), "order-77").await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(b1, b2);
    assert!((app.balance(&t).await - 9.98).abs() < 1e-9, "charged once");
    let mut other = body.clone();
    other["recipient_phone"] = json!("+14155559999");
    let (s3, b3) = send(other, "order-77").await;
    assert_eq!(s3, 409);
    assert_eq!(b3["error_code"], "IDEMPOTENCY_KEY_REUSED");
    // After 24 h the key is free again.
    app.advance(Duration::from_secs(24 * 3600 + 1));
    let (s4, b4) = send(body, "order-77").await;
    assert_eq!(s4, 200);
    assert_ne!(b4["message_id"], b1["message_id"]);
}

/// The send path runs without a savepoint: a send that fails after its first write (here, a
/// provider id already taken) must undo its whole batch, charge included.
#[tokio::test]
async fn a_send_that_fails_after_writing_leaves_nothing_behind() {
    use waygate::store::{Dispatch, SendRefused};
    use waygate_core::status::MessageStatus;

    let app = spawn_app().await;
    let t = app.tenant().await;
    let send = |to: &str| {
        let taken = Dispatch::Accepted {
            sid: "SM00000000000000000000000000000042".into(),
            status: MessageStatus::Queued,
            followups: Vec::new(),
        };
        app.new_send(&t, to, taken)
    };
    let store = &app.worker.store;
    store.record_send(send("+14155551234")).await.unwrap();
    let again = store.record_send(send("+14155554321")).await;
    assert!(matches!(again, Err(SendRefused::Store(_))), "{again:?}");
    assert!((app.balance(&t).await - 9.98).abs() < 1e-9, "charged once");
    let conversations = app
        .get(
            "/api/user/whatsapp/conversations?recipient_phone=%2B14155554321",
            &t.key,
        )
        .await;
    assert_eq!(
        conversations.body["data"],
        json!([]),
        "no conversation left behind"
    );
    // The writer goes on: the next send commits.
    let next = app.send_template(&t, "+14155557777").await;
    assert_eq!(next.status, 200, "{}", next.body);
}

/// Dispatch results are recorded without a savepoint too: one that fails leaves the message
/// and its job as they were, so the job runs again.
#[tokio::test]
async fn a_dispatch_record_that_fails_leaves_the_job_to_run_again() {
    use waygate::store::{Dispatch, DispatchResult};
    use waygate_core::status::MessageStatus;

    let app = spawn_app().await;
    let t = app.tenant().await;
    let store = &app.worker.store;
    let taken = "SM00000000000000000000000000000042";
    let first = Dispatch::Accepted {
        sid: taken.into(),
        status: MessageStatus::Queued,
        followups: Vec::new(),
    };
    store
        .record_send(app.new_send(&t, "+14155551234", first))
        .await
        .unwrap();
    let queued = store
        .record_send(app.new_send(&t, "+14155554321", Dispatch::Queue { lease_ms: 60_000 }))
        .await
        .unwrap();
    let job_id = queued.job_id.expect("a queued send has a job");
    let depth = store.queue_gauges().await.unwrap().live;
    let accepted = |sid: &str| DispatchResult::Accepted {
        sid: sid.into(),
        status: MessageStatus::Queued,
        followups: Vec::new(),
        recheck_at: None,
    };

    let clash = store
        .record_dispatch(
            job_id,
            queued.message_id,
            accepted(taken),
            app.clock.now_ms(),
        )
        .await;
    assert!(
        clash.is_err(),
        "a second message with the same SID: {clash:?}"
    );
    let path = format!("/api/user/whatsapp/messages/{}", queued.message_id);
    let message = app.get(&path, &t.key).await;
    assert_eq!(message.body["message_sid"], json!(null), "{}", message.body);
    assert_eq!(message.body["status"], "pending");
    assert_eq!(
        store.queue_gauges().await.unwrap().live,
        depth,
        "the job is still there"
    );

    let sid = "SM00000000000000000000000000000043";
    store
        .record_dispatch(job_id, queued.message_id, accepted(sid), app.clock.now_ms())
        .await
        .unwrap();
    let message = app.get(&path, &t.key).await;
    assert_eq!(message.body["message_sid"], sid);
    assert_eq!(message.body["status"], "queued");
    assert_eq!(
        store.queue_gauges().await.unwrap().live,
        depth - 1,
        "the job is done"
    );
}
