//! Status callbacks that get lost, doubled, overtaken or refused, while the message's status moves
//! on regardless; and counting created messages per client message id.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use twilio_fake::{
    CallbackFaultRates, CallbackMode, CallbackStats, Config, FakeTwilio, FaultRates,
};

fn with_callback_rates(mode: CallbackMode, callbacks: CallbackFaultRates) -> Config {
    Config {
        callbacks: mode,
        fault_rates: FaultRates {
            callbacks,
            ..FaultRates::default()
        },
        seed: Some(11),
        ..Config::default()
    }
}

/// Sends `n` messages whose callbacks go to the receiver; returns their SIDs.
async fn send_many(fake: &FakeTwilio, receiver: &Receiver, n: usize) -> Vec<String> {
    let callback = format!("{}/status", receiver.base);
    let mut sids = Vec::with_capacity(n);
    for _ in 0..n {
        sids.push(send_to(fake, &callback, TO).await);
    }
    sids
}

/// `(MessageSid, MessageStatus)` of each callback received, in arrival order.
fn arrivals(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .received()
        .iter()
        .map(|r| {
            (
                r.get("MessageSid").unwrap().to_string(),
                r.get("MessageStatus").unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn dropped_callbacks_are_counted_and_statuses_still_advance() {
    let fake = FakeTwilio::start(with_callback_rates(
        CallbackMode::Manual,
        CallbackFaultRates {
            drop: 0.3,
            ..CallbackFaultRates::default()
        },
    ))
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let sids = send_many(&fake, &receiver, 100).await;

    let posted = fake.deliver_callbacks().await;
    let stats = fake.callback_stats();
    // 300 callbacks at p = 0.3: mean 90, sd 8.
    assert!((60..=120).contains(&stats.dropped), "{stats:?}");
    assert_eq!(stats.delivered + stats.dropped, 300, "{stats:?}");
    assert_eq!(stats.failed, 0);
    assert_eq!(posted.len(), stats.delivered);
    assert_eq!(receiver.received().len(), stats.delivered);
    assert!(fake.deliver_callbacks().await.is_empty(), "lost is lost");

    // Every message read, whichever of its callbacks were lost.
    assert!(fake.messages().iter().all(|m| m.status == "read"));
    let heard: std::collections::HashSet<String> = arrivals(&receiver)
        .into_iter()
        .map(|(sid, _)| sid)
        .collect();
    let silent = sids.iter().filter(|sid| !heard.contains(*sid)).count();
    for sid in &sids {
        assert_eq!(fetched_status(&fake, sid).await, "read");
    }
    // 0.3^3 = 2.7% of messages lose all three callbacks.
    assert!(silent <= 10, "{silent} messages lost every callback");
}

#[tokio::test]
async fn duplicated_callbacks_are_posted_twice() {
    let fake = FakeTwilio::start(with_callback_rates(
        CallbackMode::Manual,
        CallbackFaultRates {
            duplicate: 0.25,
            ..CallbackFaultRates::default()
        },
    ))
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    send_many(&fake, &receiver, 100).await;
    fake.deliver_callbacks().await;

    let mut per_callback = HashMap::<(String, String), usize>::new();
    for arrival in arrivals(&receiver) {
        *per_callback.entry(arrival).or_default() += 1;
    }
    assert_eq!(per_callback.len(), 300, "every callback arrives");
    assert!(per_callback.values().all(|n| (1..=2).contains(n)));
    let doubled = per_callback.values().filter(|n| **n == 2).count();
    // 300 at p = 0.25: mean 75, sd 7.5.
    assert!((50..=100).contains(&doubled), "{doubled} doubled");
    assert_eq!(fake.callback_stats().delivered, 300 + doubled);
}

/// True when some message's callbacks arrived in another order than sent → delivered → read.
fn overtaken(arrivals: &[(String, String)]) -> bool {
    let rank = |status: &str| {
        ["sent", "delivered", "read"]
            .iter()
            .position(|s| *s == status)
    };
    let mut last = HashMap::<&str, usize>::new();
    arrivals.iter().any(|(sid, status)| {
        let rank = rank(status).unwrap();
        let before = last.insert(sid, rank);
        before.is_some_and(|before| before > rank)
    })
}

#[tokio::test]
async fn reordered_callbacks_arrive_out_of_order_but_statuses_do_not_go_back() {
    let fake = FakeTwilio::start(with_callback_rates(
        CallbackMode::Manual,
        CallbackFaultRates {
            reorder: 0.5,
            ..CallbackFaultRates::default()
        },
    ))
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let sids = send_many(&fake, &receiver, 20).await;
    assert_eq!(fake.deliver_callbacks().await.len(), 60);
    let got = arrivals(&receiver);
    assert_eq!(got.len(), 60, "reordered, not lost or doubled");
    assert!(overtaken(&got), "no callback was overtaken: {got:?}");
    for sid in &sids {
        assert_eq!(fetched_status(&fake, sid).await, "read");
    }
}

#[tokio::test]
async fn auto_mode_reorders_without_losing_any() {
    let fake = FakeTwilio::start(with_callback_rates(
        CallbackMode::Auto { step_ms: 30 },
        CallbackFaultRates {
            reorder: 1.0,
            ..CallbackFaultRates::default()
        },
    ))
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    send_many(&fake, &receiver, 30).await;
    let got = receiver.wait_for(90).await;
    let got: Vec<_> = got
        .iter()
        .map(|r| {
            (
                r.get("MessageSid").unwrap().to_string(),
                r.get("MessageStatus").unwrap().to_string(),
            )
        })
        .collect();
    assert!(overtaken(&got), "no callback was overtaken");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 90, "no copy more");
    assert!(fake.messages().iter().all(|m| m.status == "read"));
}

/// Polls the messages' fetched statuses until all are `read`; returns the distinct statuses
/// each went through.
async fn watch_until_read(fake: &FakeTwilio, sids: &[String]) -> Vec<Vec<String>> {
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); sids.len()];
    for _ in 0..500 {
        for (sid, seen) in sids.iter().zip(&mut seen) {
            let status = fetched_status(fake, sid).await;
            if seen.last() != Some(&status) {
                seen.push(status);
            }
        }
        if seen.iter().all(|s| s.last().is_some_and(|s| s == "read")) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("not all read; saw {seen:?}");
}

const LIFECYCLE: [&str; 4] = ["queued", "sent", "delivered", "read"];

#[tokio::test]
async fn auto_mode_status_moves_on_its_schedule_when_every_callback_is_lost() {
    let fake = FakeTwilio::start(with_callback_rates(
        CallbackMode::Auto { step_ms: 150 },
        CallbackFaultRates {
            drop: 1.0,
            ..CallbackFaultRates::default()
        },
    ))
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let sids = send_many(&fake, &receiver, 1).await;
    assert_eq!(watch_until_read(&fake, &sids).await, [LIFECYCLE]);
    assert!(receiver.received().is_empty());
    assert_eq!(
        fake.callback_stats(),
        CallbackStats {
            delivered: 0,
            failed: 0,
            dropped: 3
        }
    );
}

#[tokio::test]
async fn auto_mode_reorder_and_duplicate_keeps_the_status_schedule() {
    let fake = FakeTwilio::start(Config {
        callbacks: CallbackMode::Auto { step_ms: 150 },
        reorder_and_duplicate: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let sids = send_many(&fake, &receiver, 4).await;
    assert_eq!(
        watch_until_read(&fake, &sids).await,
        [LIFECYCLE; 4],
        "held-back callbacks must not change when the status changes"
    );
    receiver.wait_for(24).await;
}

#[tokio::test]
async fn refused_and_unreachable_callbacks_are_lost_not_retried() {
    for mode in [CallbackMode::Manual, CallbackMode::Auto { step_ms: 20 }] {
        let fake = FakeTwilio::start(Config {
            callbacks: mode,
            ..Config::default()
        })
        .await
        .unwrap();
        let failing = Receiver::answering(StatusCode::SERVICE_UNAVAILABLE).await;
        let refused = send_many(&fake, &failing, 1).await.remove(0);
        // A port nobody listens on: bound, then closed.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nowhere = format!("http://{}/status", closed.local_addr().unwrap());
        drop(closed);
        let unreachable = send_to(&fake, &nowhere, TO).await;

        if mode == CallbackMode::Manual {
            let mut posted = fake.deliver_callbacks().await;
            posted.sort_unstable();
            assert_eq!(posted, [0, 0, 0, 503, 503, 503]);
        }
        for _ in 0..500 {
            if fake.callback_stats().failed == 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Time for any retry to show up.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(failing.received().len(), 3, "{mode:?}: one post per status");
        assert_eq!(
            fake.callback_stats(),
            CallbackStats {
                delivered: 0,
                failed: 6,
                dropped: 0
            },
            "{mode:?}"
        );
        for sid in [&refused, &unreachable] {
            assert_eq!(fetched_status(&fake, sid).await, "read", "{mode:?}");
        }
        let stats = get(&fake, "/_fake/stats").await.json;
        assert_eq!(stats["callbacks_failed"], 6);
        assert_eq!(stats["callbacks_delivered"], 0);
        assert_eq!(stats["callbacks_dropped"], 0);
    }
}

#[tokio::test]
async fn stats_count_delivered_and_dropped_callbacks() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let receiver = Receiver::start().await;
    send_many(&fake, &receiver, 2).await;
    fake.deliver_callbacks().await;
    fake.set_fault_rates(FaultRates {
        callbacks: CallbackFaultRates {
            drop: 1.0,
            ..CallbackFaultRates::default()
        },
        ..FaultRates::default()
    })
    .unwrap();
    send_many(&fake, &receiver, 1).await;
    assert!(fake.deliver_callbacks().await.is_empty());
    let stats = get(&fake, "/_fake/stats").await.json;
    assert_eq!(stats["callbacks_delivered"], 6);
    assert_eq!(stats["callbacks_dropped"], 3);
    assert_eq!(stats["callbacks_failed"], 0);
    assert_eq!(stats["messages"], 3);
}

#[tokio::test]
async fn messages_are_counted_per_client_message_id() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let base = "https://gw.example/webhooks/twilio/status";
    for id in ["m-1", "m-2", "m-1"] {
        send_to(&fake, &format!("{base}?message_id={id}"), TO).await;
    }
    send_to(&fake, &format!("{base}?other=x"), TO).await;
    create(
        &fake,
        &[("To", TO), ("From", FROM), ("Body", "no callback")],
    )
    .await;

    let counts = fake.messages_per_callback_param("message_id");
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [("m-1".to_string(), 2), ("m-2".to_string(), 1)]
    );
    let messages = fake.messages();
    assert_eq!(
        messages[1].status_callback_param("message_id").as_deref(),
        Some("m-2")
    );
    assert_eq!(messages[3].status_callback_param("message_id"), None);
    assert_eq!(messages[4].status_callback_param("message_id"), None);
}
