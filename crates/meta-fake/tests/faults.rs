//! Scripted and random faults: sends, template and phone number reads, and webhooks.

mod common;

use std::time::Duration;

use common::*;
use meta_fake::{
    Config, FakeMeta, Fault, FaultRates, ReadEndpoint, ReadFault, ReadFaultRates, SendFaultRates,
    WebhookFaultRates, WebhookMode,
};

/// What one send came to, as a client can tell plus whether the fake accepted a message.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Outcome {
    Accepted,
    ServerError,
    AcceptedThenServerError,
    RateLimited,
    Dropped,
    TimedOut { accepted: bool },
}

/// Posts one send with a client timeout and classifies the result (sequential requests only).
async fn send_once(fake: &FakeMeta, timeout: Duration) -> Outcome {
    let before = fake.messages().len();
    let result = reqwest::Client::new()
        .post(format!(
            "{}/{VERSION}/{}/messages",
            fake.base_url(),
            fake.phone_number_id()
        ))
        .bearer_auth(fake.access_token())
        .timeout(timeout)
        .json(&text_body(TO, "hi", Some("m")))
        .send()
        .await;
    let accepted = fake.messages().len() - before;
    assert!(accepted <= 1, "one request accepted {accepted} messages");
    let accepted = accepted == 1;
    let response = match result {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return Outcome::TimedOut { accepted },
        Err(_) => {
            assert!(!accepted, "a dropped connection must not accept");
            return Outcome::Dropped;
        }
    };
    let answer = answer(response).await;
    match (answer.status, accepted) {
        (200, true) => Outcome::Accepted,
        (500, false) => {
            assert_graph_error(&answer, 500, 131000);
            Outcome::ServerError
        }
        (500, true) => Outcome::AcceptedThenServerError,
        (429, false) => {
            assert_graph_error(&answer, 429, 130429);
            Outcome::RateLimited
        }
        other => panic!("unexpected {other:?}: {}", answer.json),
    }
}

#[tokio::test]
async fn scripted_send_faults_happen_in_order() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    fake.inject([
        Fault::ServerError,
        Fault::AcceptedThenServerError,
        Fault::Error { code: 130429 },
        Fault::Slow { delay_ms: 400 },
        Fault::DropConnection,
    ]);
    let timeout = Duration::from_millis(200);
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(send_once(&fake, timeout).await);
    }
    assert_eq!(
        outcomes,
        [
            Outcome::ServerError,
            Outcome::AcceptedThenServerError,
            Outcome::RateLimited,
            Outcome::TimedOut { accepted: true },
            Outcome::Dropped,
            Outcome::Accepted,
        ]
    );
    assert_eq!(fake.send_requests(), 6);
    assert_eq!(fake.messages_per_callback_data()["m"], 3);
}

fn send_rates() -> FaultRates {
    FaultRates {
        send: SendFaultRates {
            server_error: 0.15,
            accepted_then_server_error: 0.15,
            rate_limited: 0.15,
            slow: 0.05,
            drop_connection: 0.15,
            slow_ms: 400,
        },
        ..FaultRates::default()
    }
}

async fn outcomes(seed: u64, requests: usize) -> Vec<Outcome> {
    let fake = FakeMeta::start(Config {
        fault_rates: send_rates(),
        seed: Some(seed),
        ..Config::default()
    })
    .await
    .unwrap();
    assert_eq!(fake.seed(), seed);
    let mut outcomes = Vec::with_capacity(requests);
    for _ in 0..requests {
        outcomes.push(send_once(&fake, Duration::from_millis(200)).await);
    }
    outcomes
}

#[tokio::test]
async fn random_send_faults_follow_their_rates_and_replay_by_seed() {
    let first = outcomes(11, 60).await;
    assert_eq!(first, outcomes(11, 60).await, "same seed, same faults");
    let kinds: std::collections::HashSet<_> = first.iter().copied().collect();
    for kind in [
        Outcome::Accepted,
        Outcome::ServerError,
        Outcome::AcceptedThenServerError,
        Outcome::RateLimited,
        Outcome::Dropped,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} never drawn in {first:?}");
    }
    let accepted = first.iter().filter(|o| **o == Outcome::Accepted).count();
    assert!((10..=40).contains(&accepted), "{accepted} of 60 accepted");
}

#[tokio::test]
async fn rates_can_change_at_run_time_but_not_to_impossible_ones() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    let mut rates = FaultRates::default();
    rates.send.rate_limited = 1.0;
    fake.set_fault_rates(rates).unwrap();
    assert_eq!(
        send_once(&fake, Duration::from_secs(5)).await,
        Outcome::RateLimited
    );
    rates.send.server_error = 0.5;
    assert!(fake.set_fault_rates(rates).is_err());
    assert_eq!(fake.fault_rates().send.server_error, 0.0, "old rates kept");
    fake.set_fault_rates(FaultRates::default()).unwrap();
    assert_eq!(
        send_once(&fake, Duration::from_secs(5)).await,
        Outcome::Accepted
    );
    assert!(FakeMeta::start(Config {
        fault_rates: FaultRates {
            webhooks: WebhookFaultRates {
                drop: 2.0,
                ..WebhookFaultRates::default()
            },
            ..FaultRates::default()
        },
        ..Config::default()
    })
    .await
    .is_err());
}

async fn read(fake: &FakeMeta, id: &str) -> Result<Answer, reqwest::Error> {
    let response = reqwest::Client::new()
        .get(format!("{}/{VERSION}/{id}?fields=status", fake.base_url()))
        .bearer_auth(fake.access_token())
        .timeout(Duration::from_millis(200))
        .send()
        .await?;
    Ok(answer(response).await)
}

#[tokio::test]
async fn scripted_read_faults_hit_their_endpoint_only() {
    let fake = FakeMeta::start(Config::default()).await.unwrap();
    let template = fake
        .add_approved_template("hello", "en", "UTILITY", "Hello {{1}}")
        .unwrap();
    let phone = fake.phone_number_id().to_string();
    fake.inject_reads(
        ReadEndpoint::PhoneNumber,
        [
            ReadFault::RateLimited,
            ReadFault::ServerError,
            ReadFault::DropConnection,
            ReadFault::Slow { delay_ms: 400 },
        ],
    );
    fake.inject_reads(ReadEndpoint::Template, [ReadFault::ServerError]);

    assert_eq!(read(&fake, &template.id).await.unwrap().status, 500);
    assert_eq!(read(&fake, &template.id).await.unwrap().status, 200);
    assert_graph_error(&read(&fake, &phone).await.unwrap(), 429, 80007);
    assert_graph_error(&read(&fake, &phone).await.unwrap(), 500, 131000);
    let dropped = read(&fake, &phone).await.unwrap_err();
    assert!(!dropped.is_timeout(), "{dropped}");
    assert!(read(&fake, &phone).await.unwrap_err().is_timeout());
    let ok = read(&fake, &phone).await.unwrap();
    assert_eq!(ok.json["status"], "CONNECTED");
}

#[tokio::test]
async fn random_read_faults_are_drawn_per_endpoint() {
    let fake = FakeMeta::start(Config {
        fault_rates: FaultRates {
            phone_number: ReadFaultRates {
                rate_limited: 1.0,
                ..ReadFaultRates::default()
            },
            ..FaultRates::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let template = fake
        .add_approved_template("hello", "en", "UTILITY", "Hello {{1}}")
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            read(&fake, fake.phone_number_id()).await.unwrap().status,
            429
        );
        assert_eq!(read(&fake, &template.id).await.unwrap().status, 200);
    }
}

fn webhook_config(receiver: &Receiver, mode: WebhookMode, rates: WebhookFaultRates) -> Config {
    Config {
        webhooks: mode,
        seed: Some(5),
        fault_rates: FaultRates {
            webhooks: rates,
            ..FaultRates::default()
        },
        ..receiver.config()
    }
}

#[tokio::test]
async fn dropped_webhooks_are_counted_and_statuses_still_advance() {
    let receiver = Receiver::start().await;
    let rates = WebhookFaultRates {
        drop: 1.0,
        ..WebhookFaultRates::default()
    };
    let fake = FakeMeta::start(webhook_config(&receiver, WebhookMode::Manual, rates))
        .await
        .unwrap();
    for _ in 0..3 {
        send_text(&fake, TO, None).await;
    }
    assert!(fake.deliver_webhooks().await.is_empty());
    assert!(receiver.received().is_empty());
    assert_eq!(fake.webhook_stats().dropped, 9);
    assert!(fake.messages().iter().all(|m| m.status == "read"));
}

#[tokio::test]
async fn duplicated_webhooks_carry_every_status_twice() {
    let receiver = Receiver::start().await;
    let rates = WebhookFaultRates {
        duplicate: 1.0,
        ..WebhookFaultRates::default()
    };
    let fake = FakeMeta::start(webhook_config(&receiver, WebhookMode::Manual, rates))
        .await
        .unwrap();
    let id = send_text(&fake, TO, None).await;
    assert_eq!(fake.deliver_webhooks().await, [200]);
    let statuses: Vec<String> = id_status(&receiver.statuses())
        .into_iter()
        .map(|(wamid, status)| {
            assert_eq!(wamid, id);
            status
        })
        .collect();
    assert_eq!(
        statuses,
        ["sent", "sent", "delivered", "delivered", "read", "read"]
    );
    assert_eq!(fake.webhook_stats().items_delivered, 6);
}

/// True when some message's status arrived after a later status of the same message.
fn overtaken(statuses: &[(String, String)]) -> bool {
    let rank = |s: &str| ["sent", "delivered", "read"].iter().position(|x| *x == s);
    statuses.iter().enumerate().any(|(i, (id, status))| {
        statuses[i + 1..]
            .iter()
            .any(|(later_id, later)| later_id == id && rank(later) < rank(status))
    })
}

#[tokio::test]
async fn reordered_webhooks_arrive_out_of_order_without_moving_statuses_back() {
    let receiver = Receiver::start().await;
    let rates = WebhookFaultRates {
        reorder: 0.5,
        ..WebhookFaultRates::default()
    };
    let fake = FakeMeta::start(webhook_config(&receiver, WebhookMode::Manual, rates))
        .await
        .unwrap();
    for _ in 0..10 {
        send_text(&fake, TO, None).await;
    }
    fake.deliver_webhooks().await;
    let arrivals = id_status(&receiver.statuses());
    assert_eq!(arrivals.len(), 30, "reordering loses nothing");
    assert!(overtaken(&arrivals), "seed 5 reorders some: {arrivals:?}");
    assert!(fake.messages().iter().all(|m| m.status == "read"));
}

#[tokio::test]
async fn auto_mode_reorders_and_duplicates_without_losing_any() {
    let receiver = Receiver::start().await;
    let rates = WebhookFaultRates {
        duplicate: 0.3,
        reorder: 0.5,
        ..WebhookFaultRates::default()
    };
    let fake = FakeMeta::start(webhook_config(
        &receiver,
        WebhookMode::Auto { step_ms: 20 },
        rates,
    ))
    .await
    .unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(send_text(&fake, TO, None).await);
    }
    receiver.wait_statuses(15).await;
    // Held-back copies come up to three steps late.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let arrivals = id_status(&receiver.statuses());
    for id in &ids {
        for status in ["sent", "delivered", "read"] {
            assert!(
                arrivals.contains(&(id.clone(), status.to_string())),
                "{status} of {id} lost"
            );
        }
    }
    assert_eq!(
        fake.webhook_stats().items_delivered,
        arrivals.len(),
        "every copy counted"
    );
    assert!(fake.messages().iter().all(|m| m.status == "read"));
}

#[tokio::test]
async fn stats_endpoint_counts_sends_and_webhooks() {
    let receiver = Receiver::start().await;
    let fake = FakeMeta::start(receiver.config()).await.unwrap();
    fake.inject([Fault::ServerError]);
    let _ = post_message(&fake, text_body(TO, "hi", None)).await;
    send_text(&fake, TO, None).await;
    fake.deliver_webhooks().await;
    let stats: serde_json::Value = reqwest::get(format!("{}/_fake/stats", fake.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        serde_json::json!({"send_requests": 2, "messages": 1, "webhooks_delivered": 1,
                           "webhooks_failed": 0, "webhooks_dropped": 0,
                           "webhook_items_delivered": 3})
    );
}
