//! The faults suite: the fake Twilio fails half of the create calls (500 before or after
//! creating, 429, answers after the client's timeout, dropped connections), a good part of
//! the list and fetch calls, and drops, doubles and reorders its status callbacks. Every
//! message must still end with the status Twilio has for it, be refunded exactly once when it
//! failed, and reach Twilio exactly once.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use twilio_fake::{
    CallbackFaultRates, CallbackMode, Config as FakeConfig, CreateFaultRates, FaultRates,
    ReadFaultRates,
};

use crate::twilio::setup_with;

const SENDS: usize = 100;

fn read_faults() -> ReadFaultRates {
    ReadFaultRates {
        server_error: 0.15,
        too_many_requests: 0.1,
        slow: 0.05,
        drop_connection: 0.1,
        slow_ms: 2_000,
        ..ReadFaultRates::default()
    }
}

/// Recipient of send `n`: every tenth ends in 0000, which Twilio fails as undelivered.
fn recipient(n: usize) -> String {
    let line = if n.is_multiple_of(10) { 0 } else { 1000 + n };
    format!("+1415{}{line:04}", 200 + n / 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_ends_right_under_provider_and_network_faults() {
    let seed = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("faults suite seed: FAULTS_SEED={seed}");
    let rates = FaultRates {
        create: CreateFaultRates {
            server_error: 0.1,
            created_then_server_error: 0.1,
            too_many_requests: 0.1,
            slow: 0.1,
            drop_connection: 0.1,
            slow_ms: 2_000,
            ..CreateFaultRates::default()
        },
        list: read_faults(),
        fetch: read_faults(),
        callbacks: CallbackFaultRates {
            drop: 0.3,
            duplicate: 0.3,
            reorder: 0.3,
        },
    };
    let s = setup_with(
        FakeConfig {
            callbacks: CallbackMode::Auto { step_ms: 30 },
            fault_rates: rates,
            seed: Some(seed),
            ..FakeConfig::default()
        },
        "rate_limit_per_second = 100000\nsend_wait_ms = 300\nstatus_reconcile_after_ms = 5000\nreconcile_max_failures = 40\n",
    )
    .await;
    let before = s.app.balance(&s.t).await;

    let replies: Vec<(usize, i64)> = futures_util::stream::iter(0..SENDS)
        .map(|n| {
            let s = &s;
            async move {
                let reply = s.app.send_template(&s.t, &recipient(n)).await;
                assert_eq!(reply.status, 200, "send {n}: {}", reply.body);
                (n, reply.body["whatsapp_message_id"].as_i64().unwrap())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;

    // Virtual time moves on (retries, reconciliations, status checks) while the fake's
    // callbacks arrive in real time, until every message is final or the budget is spent.
    let mut unsettled = Vec::new();
    for _ in 0..300 {
        s.app.advance(Duration::from_secs(30));
        s.app.run_jobs().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        unsettled.clear();
        for &(n, id) in &replies {
            let msg = s.message(&json!(id)).await;
            let want = if n.is_multiple_of(10) {
                "undelivered"
            } else {
                "read"
            };
            if msg["status"] != want {
                unsettled.push((n, msg["status"].clone()));
            }
        }
        if unsettled.is_empty() {
            break;
        }
    }
    assert!(
        unsettled.is_empty(),
        "seed {seed}: {} not final, e.g. {:?}",
        unsettled.len(),
        &unsettled[..unsettled.len().min(5)]
    );

    let per_message = s.fake.messages_per_callback_param("message_id");
    for &(n, id) in &replies {
        assert_eq!(
            per_message.get(&id.to_string()),
            Some(&1),
            "seed {seed}: send {n} (message {id}) at Twilio"
        );
    }
    assert_eq!(
        s.fake.messages().len(),
        SENDS,
        "seed {seed}: nothing extra at Twilio"
    );
    let delivered = SENDS - SENDS / 10;
    let expected = before - 0.02 * delivered as f64;
    let balance = s.app.balance(&s.t).await;
    assert!(
        (balance - expected).abs() < 1e-9,
        "seed {seed}: balance {balance}, expected {expected}: each failure refunded once"
    );
    let stats = s.fake.callback_stats();
    eprintln!(
        "faults suite: {SENDS} sends, {} create requests, callbacks delivered {} dropped {} failed {}",
        s.fake.create_requests(),
        stats.delivered,
        stats.dropped,
        stats.failed
    );
    assert!(stats.dropped > 0, "the run lost callbacks");
}
