//! Nothing doubled, nothing stuck: a send whose attempt never settled is reconciled with
//! Twilio before any resend; statuses whose callbacks were lost are fetched from Twilio; a
//! reconciliation that keeps failing is set aside where an operator sees it.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use twilio_fake::{Config as FakeConfig, FakeTwilio, Fault};

use crate::helpers::*;
use crate::twilio::{setup_with, Setup, CUSTOMER};

/// The fake's listening address, to start another fake in its place.
fn fake_addr(fake: &FakeTwilio) -> SocketAddr {
    fake.base_url()
        .trim_start_matches("http://")
        .parse()
        .expect("fake address")
}

async fn metric(app: &TestApp, name_and_labels: &str) -> f64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)?
                .strip_prefix(' ')?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_send_whose_attempt_never_settled_is_reconciled_not_sent_again() {
    // The provider takes the message but its answer never arrives, as when the process dies
    // (or hangs) mid-call: the job's lease runs out and the runner takes it over.
    let s = setup_with(
        FakeConfig::default(),
        "job_lease_ms = 2000\nsend_wait_ms = 200\ntwilio_timeout_ms = 600000\n",
    )
    .await;
    s.fake.inject([Fault::Slow { delay_ms: 600_000 }]);
    let reply = s.app.send_template(&s.t, CUSTOMER).await;
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(s.fake.messages().len(), 1, "Twilio has the message");
    s.later(Duration::from_secs(3)).await;
    s.later(Duration::from_secs(3)).await;
    assert_eq!(s.fake.create_requests(), 1, "not sent a second time");
    let msg = s.message(&reply.body["whatsapp_message_id"]).await;
    assert_eq!(msg["message_sid"], s.fake.messages()[0].sid.as_str());
    assert_eq!(msg["status"], "queued");
    assert_eq!(msg["status_unknown"], Value::Null);
}

#[tokio::test]
async fn an_interrupted_attempt_that_created_nothing_is_resent_once_and_counted() {
    use waygate::store::Dispatch;

    let s = setup_with(FakeConfig::default(), "job_lease_ms = 2000\n").await;
    // As if the process died after recording the send, before (or while) calling Twilio.
    let recorded = s
        .app
        .worker
        .store
        .record_send(s.app.new_send(
            &s.t,
            CUSTOMER,
            Dispatch::Queue {
                lease_ms: s.app.worker.lease_ms,
            },
        ))
        .await
        .unwrap();
    let label = "waygate_resends_total{reason=\"reconciled_not_created\"}";
    let before = metric(&s.app, label).await;
    s.later(Duration::from_secs(1)).await;
    assert_eq!(s.fake.create_requests(), 0, "leased: not yet");
    s.later(Duration::from_secs(2)).await;
    assert_eq!(
        s.fake.messages().len(),
        1,
        "sent once it was known not created"
    );
    s.later(Duration::from_secs(60)).await;
    assert_eq!(s.fake.create_requests(), 1);
    let msg = s.message(&json!(recorded.message_id)).await;
    assert_eq!(msg["message_sid"], s.fake.messages()[0].sid.as_str());
    let after = metric(&s.app, label).await;
    assert!(
        after > before,
        "the resend is counted ({before} -> {after})"
    );
}

#[tokio::test]
async fn statuses_whose_callbacks_were_lost_are_fetched_from_twilio_and_refunded_once() {
    // Callbacks go to a closed port, so every one of them is lost (Twilio does not retry).
    let s = setup_with(
        FakeConfig::default(),
        "status_reconcile_after_ms = 60000\npublic_url = \"http://127.0.0.1:9\"\n",
    )
    .await;
    let balance = s.app.balance(&s.t).await;
    let read = s.app.send_template(&s.t, CUSTOMER).await;
    let unreachable = s.app.send_template(&s.t, "+14155550000").await;
    assert_eq!(read.body["status"], "queued");
    assert_eq!(unreachable.body["status"], "queued");
    s.fake.deliver_callbacks().await;
    s.later(Duration::from_secs(30)).await;
    let msg = s.message(&read.body["whatsapp_message_id"]).await;
    assert_eq!(msg["status"], "queued", "no callback arrived, not due yet");

    s.later(Duration::from_secs(31)).await;
    let msg = s.message(&read.body["whatsapp_message_id"]).await;
    assert_eq!(msg["status"], "read", "{msg}");
    let failed = s.message(&unreachable.body["whatsapp_message_id"]).await;
    assert_eq!(failed["status"], "undelivered");
    assert_eq!(failed["error_code"], 30003);
    let charged_once = balance - 0.02;
    assert!((s.app.balance(&s.t).await - charged_once).abs() < 1e-9);

    // Later checks, and a callback arriving late after all, change nothing.
    s.later(Duration::from_secs(3600)).await;
    assert!((s.app.balance(&s.t).await - charged_once).abs() < 1e-9);
    assert_eq!(
        s.message(&unreachable.body["whatsapp_message_id"]).await["status_history"]
            .as_array()
            .map(Vec::len),
        failed["status_history"].as_array().map(Vec::len)
    );
}

#[tokio::test]
async fn a_message_twilio_does_not_know_is_marked_for_an_operator() {
    let Setup { app, fake, t } = setup_with(
        FakeConfig::default(),
        "status_reconcile_after_ms = 60000\npublic_url = \"http://127.0.0.1:9\"\n",
    )
    .await;
    let reply = app.send_template(&t, CUSTOMER).await;
    assert_eq!(reply.body["status"], "queued");
    // Another Twilio account answers in its place: the message is unknown there.
    let addr = fake_addr(&fake);
    fake.stop().await;
    let _other = FakeTwilio::start_on(FakeConfig::default(), addr)
        .await
        .expect("another fake in its place");
    app.advance(Duration::from_secs(61));
    app.run_jobs().await;
    let msg = app.message(&t, &reply.body["whatsapp_message_id"]).await;
    assert_eq!(msg["status"], "queued");
    let reason = msg["status_unknown"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("does not know"), "{msg}");
    assert!(metric(&app, "waygate_messages_status_unknown").await >= 1.0);
}

#[tokio::test]
async fn a_reconciliation_that_keeps_failing_is_set_aside_where_an_operator_sees_it() {
    let Setup { app, fake, t } = setup_with(
        FakeConfig::default(),
        "reconcile_max_failures = 3\nsend_wait_ms = 2000\n",
    )
    .await;
    fake.inject([Fault::CreatedThenServerError]);
    let reply = app.send_template(&t, CUSTOMER).await;
    assert_eq!(reply.body["status"], "pending");
    // Twilio is unreachable from now on: the message list cannot be read.
    fake.stop().await;
    for _ in 0..8 {
        app.advance(Duration::from_secs(10));
        app.run_jobs().await;
    }
    let listed = app
        .request(Method::GET, "/api/admin/jobs/set-aside", Some(ADMIN), None)
        .await
        .body;
    let jobs = listed["data"].as_array().expect("a list").clone();
    assert_eq!(jobs.len(), 1, "{listed}");
    assert_eq!(jobs[0]["kind"], "send");
    assert_eq!(jobs[0]["message_id"], reply.body["whatsapp_message_id"]);
    let why = jobs[0]["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("failed 3 times"), "{why}");
    let msg = app.message(&t, &reply.body["whatsapp_message_id"]).await;
    assert_eq!(msg["status"], "pending");
    assert!(msg["status_unknown"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("reconciliation failed")));
    assert!(metric(&app, "waygate_jobs_set_aside").await >= 1.0);

    // Put back by the operator, it is live again (and gone from the list).
    let id = jobs[0]["id"].as_i64().unwrap();
    let retried = app
        .request(
            Method::POST,
            &format!("/api/admin/jobs/{id}/retry"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(retried.status, 204);
    let listed = app
        .request(Method::GET, "/api/admin/jobs/set-aside", Some(ADMIN), None)
        .await
        .body;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0));
    let missing = app
        .request(
            Method::POST,
            "/api/admin/jobs/999999/retry",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error_code"], "NOT_FOUND");
}
