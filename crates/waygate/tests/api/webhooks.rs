//! Outbound webhooks (API.md §7): subscriptions, Standard Webhooks signatures, durable retries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use waygate::signature::standard_webhook;

use crate::helpers::*;

#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
}

/// A tenant's endpoint that fails the first `failures` deliveries, then acknowledges.
pub(crate) struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Delivery>>>,
}

pub(crate) async fn receiver(failures: usize) -> Receiver {
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let log = seen.clone();
    let handler = move |headers: HeaderMap, body: String| {
        let log = log.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let mut log = log.lock().unwrap();
            log.push(Delivery {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
                signature: header("webhook-signature"),
                body,
            });
            if log.len() <= failures {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
    };
    let router = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Receiver { url, seen }
}

impl Receiver {
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().clone()
    }
}

pub(crate) async fn subscribe(app: &TestApp, t: &Tenant, url: &str, events: Value) -> Value {
    let reply = app
        .post(
            "/api/user/webhooks",
            &t.key,
            json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

fn verify(secret: &str, d: &Delivery) -> bool {
    let expected = standard_webhook(secret, &d.id, d.timestamp, &d.body).unwrap();
    d.signature.split(' ').any(|s| s == expected)
}

/// The simulator's later steps are a day away, so only the `queued` event is in play.
const SLOW_SIMULATOR: &str = "simulator_step_ms = 86400000\n";

#[tokio::test]
async fn failing_receiver_gets_the_event_once_acknowledged_with_valid_signatures() {
    let app = spawn_with(SLOW_SIMULATOR).await;
    let t = app.tenant().await;
    let hook = receiver(2).await;
    let sub = subscribe(&app, &t, &hook.url, json!(["message.status"])).await;
    let secret = sub["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let sent = app.send_template(&t, "+14155551234").await;
    assert_eq!(sent.status, 200);
    app.run_jobs().await;
    assert_eq!(hook.deliveries().len(), 1, "first attempt failed");
    app.run_jobs().await;
    assert_eq!(hook.deliveries().len(), 1, "no retry before the backoff");
    app.advance(Duration::from_secs(34));
    app.run_jobs().await;
    assert_eq!(hook.deliveries().len(), 2, "retried after ~30 s");
    app.advance(Duration::from_secs(34));
    app.run_jobs().await;
    assert_eq!(hook.deliveries().len(), 2, "the second retry waits ~60 s");
    app.advance(Duration::from_secs(33));
    app.run_jobs().await;
    let deliveries = hook.deliveries();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries.iter().all(|d| d.id == deliveries[0].id),
        "webhook-id is stable across retries"
    );
    assert!(
        deliveries.iter().all(|d| d.body == deliveries[0].body),
        "same bytes every time"
    );
    assert!(
        deliveries.iter().all(|d| verify(secret, d)),
        "every delivery is signed"
    );
    assert!(
        deliveries[2].timestamp > deliveries[0].timestamp,
        "the timestamp is the attempt's"
    );
    let event: Value = serde_json::from_str(&deliveries[0].body).unwrap();
    assert_eq!(event["type"], "message.status");
    assert_eq!(event["id"], deliveries[0].id.as_str());
    assert_eq!(event["data"]["id"], sent.body["whatsapp_message_id"]);
    assert_eq!(event["data"]["status"], "queued");
    // Acknowledged: never sent again.
    app.advance(Duration::from_secs(3600));
    app.run_jobs().await;
    assert_eq!(hook.deliveries().len(), 3);
}

#[tokio::test]
async fn pending_retries_survive_a_restart() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let hook = receiver(1).await;
    subscribe(&app, &t, &hook.url, json!(["message.received"])).await;
    app.admin(
        reqwest::Method::POST,
        "/api/admin/simulator/inbound",
        json!({"sender_id": t.sender_id, "from": "+14155551234", "body": "hi"}),
    )
    .await;
    app.run_jobs().await;
    assert_eq!(hook.deliveries().len(), 1);
    let app = app.restart().await;
    app.advance(Duration::from_secs(34));
    app.run_jobs().await;
    let deliveries = hook.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].id, deliveries[1].id);
    let event: Value = serde_json::from_str(&deliveries[1].body).unwrap();
    assert_eq!(event["type"], "message.received");
    assert_eq!(event["data"]["body"], "hi");
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_for_a_day() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let hook = receiver(0).await;
    let sub = subscribe(&app, &t, &hook.url, json!(["message.received"])).await;
    let old = sub["secret"].as_str().unwrap().to_string();
    let rotated = app
        .post(
            &format!("/api/user/webhooks/{}/rotate-secret", sub["id"]),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200);
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    let inbound = json!({"sender_id": t.sender_id, "from": "+14155551234", "body": "one"});
    app.admin(
        reqwest::Method::POST,
        "/api/admin/simulator/inbound",
        inbound.clone(),
    )
    .await;
    app.run_jobs().await;
    let first = hook.deliveries()[0].clone();
    assert_eq!(first.signature.split(' ').count(), 2);
    assert!(verify(&new, &first) && verify(&old, &first));
    app.advance(Duration::from_secs(24 * 3600 + 1));
    app.admin(
        reqwest::Method::POST,
        "/api/admin/simulator/inbound",
        inbound,
    )
    .await;
    app.run_jobs().await;
    let second = hook.deliveries()[1].clone();
    assert_eq!(second.signature.split(' ').count(), 1);
    assert!(verify(&new, &second) && !verify(&old, &second));
}

#[tokio::test]
async fn subscriptions_are_validated_listed_and_deleted() {
    let app = spawn_with("webhooks_allow_private = false\n").await;
    let t = app.tenant().await;
    let private = app
        .post(
            "/api/user/webhooks",
            &t.key,
            json!({"url": "http://127.0.0.1:9/x", "events": ["message.status"]}),
        )
        .await;
    assert_eq!(private.status, 422);
    assert!(private.body["errors"]["url"].is_array(), "{}", private.body);
    let bad = app
        .post(
            "/api/user/webhooks",
            &t.key,
            json!({"url": "ftp://example.com", "events": ["message.sent"]}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body["errors"]["url"].is_array() && bad.body["errors"]["events"].is_array());

    let open = spawn_app().await;
    let t = open.tenant().await;
    let sub = subscribe(
        &open,
        &t,
        "http://127.0.0.1:9/x",
        json!(["message.status", "message.received"]),
    )
    .await;
    let list = open.get("/api/user/webhooks", &t.key).await;
    assert_eq!(list.body["data"][0]["id"], sub["id"]);
    assert!(
        list.body["data"][0].get("secret").is_none(),
        "the secret is never listed"
    );
    let deleted = open
        .request(
            reqwest::Method::DELETE,
            &format!("/api/user/webhooks/{}", sub["id"]),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        open.get("/api/user/webhooks", &t.key).await.body["data"],
        json!([])
    );
}

/// Addresses that reach a host other than a public one, spelled so that a check for loopback
/// and RFC 1918 alone lets them through: IPv4 inside IPv6 (compatible, NAT64, 6to4),
/// benchmarking space and multicast.
#[tokio::test]
async fn non_public_addresses_in_any_spelling_are_refused() {
    let app = spawn_with("webhooks_allow_private = false\n").await;
    let t = app.tenant().await;
    for url in [
        "http://[::127.0.0.1]:9/x",
        "http://[64:ff9b::127.0.0.1]:9/x",
        "http://[2002:7f00:1::]:9/x",
        "http://198.18.0.1:9/x",
        "http://224.0.0.1:9/x",
        "http://[ff02::1]:9/x",
    ] {
        let reply = app
            .post(
                "/api/user/webhooks",
                &t.key,
                json!({"url": url, "events": ["message.status"]}),
            )
            .await;
        assert_eq!(reply.status, 422, "{url}: {}", reply.body);
        assert_eq!(reply.body["error_code"], "VALIDATION_ERROR", "{url}");
        assert!(
            reply.body["errors"]["url"].is_array(),
            "{url}: {}",
            reply.body
        );
    }
    assert_eq!(
        app.get("/api/user/webhooks", &t.key).await.body["data"],
        json!([]),
        "nothing was subscribed"
    );
}

/// The `message.status` events a receiver got, as (message id, status) in arrival order.
fn status_events(hook: &Receiver) -> Vec<(i64, String)> {
    hook.deliveries()
        .iter()
        .map(|d| serde_json::from_str::<Value>(&d.body).unwrap())
        .filter(|e| e["type"] == "message.status")
        .map(|e| {
            let data = &e["data"];
            (
                data["id"].as_i64().unwrap(),
                data["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Lets the simulator take `steps` status steps (one a second) and runs what falls due.
async fn simulator_steps(app: &TestApp, steps: usize) {
    for _ in 0..steps {
        app.advance(Duration::from_millis(1000));
        app.run_jobs().await;
    }
}

/// Sends accepted in the same transactions share status jobs; each message still walks its
/// own schedule, each subscriber hears of each step once, and a subscription made or removed
/// between steps takes effect at the next step.
#[tokio::test]
async fn concurrent_sends_each_walk_their_own_schedule_with_events_to_current_subscribers() {
    let app = spawn_with("rate_limit_per_second = 100\n").await;
    let (a, b) = (app.tenant().await, app.tenant().await);
    let hook_a = receiver(0).await;
    let sub_a = subscribe(&app, &a, &hook_a.url, json!(["message.status"])).await;
    // Recipients ending in 0000 are unreachable: queued, then undelivered with a refund.
    let to = |i: usize| match i % 3 {
        0 => format!("+1{}5550000", [212, 310, 415, 646][i / 3]),
        _ => format!("+1415555{:04}", 1000 + i),
    };
    let sends = (0..12).map(|i| {
        let (app, tenant, to) = (&app, if i % 2 == 0 { &a } else { &b }, to(i));
        async move { (i, app.send_template(tenant, &to).await) }
    });
    let mut ids = [Vec::new(), Vec::new()];
    let mut unreachable = std::collections::HashSet::new();
    for (i, reply) in futures_util::future::join_all(sends).await {
        assert_eq!(reply.status, 200, "{}", reply.body);
        let id = reply.body["message_id"].as_i64().unwrap();
        ids[i % 2].push(id);
        if i % 3 == 0 {
            unreachable.insert(id);
        }
    }
    app.run_jobs().await;
    let hook_b = receiver(0).await;
    // b subscribes after its messages were queued: it hears of their next steps.
    subscribe(&app, &b, &hook_b.url, json!(["message.status"])).await;
    simulator_steps(&app, 3).await;

    let expected = |id: i64, from_queued: bool| -> Vec<&str> {
        let steps: &[&str] = if unreachable.contains(&id) {
            &["queued", "undelivered"]
        } else {
            &["queued", "sent", "delivered", "read"]
        };
        steps[usize::from(!from_queued)..].to_vec()
    };
    for (tenant, hook, mine, from_queued) in
        [(&a, &hook_a, &ids[0], true), (&b, &hook_b, &ids[1], false)]
    {
        let events = status_events(hook);
        for id in mine {
            let heard: Vec<&str> = events
                .iter()
                .filter(|(m, _)| m == id)
                .map(|(_, s)| s.as_str())
                .collect();
            assert_eq!(heard, expected(*id, from_queued), "message {id}");
            let msg = app
                .get(&format!("/api/user/whatsapp/messages/{id}"), &tenant.key)
                .await;
            let history: Vec<&str> = msg.body["status_history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["status"].as_str().unwrap())
                .collect();
            assert_eq!(history[0], "pending");
            assert_eq!(history[1..], expected(*id, true)[..], "message {id}");
        }
        assert_eq!(
            events.len(),
            mine.iter()
                .map(|id| expected(*id, from_queued).len())
                .sum::<usize>()
        );
        // Six sends at 0.02 each; the two unreachable ones refunded.
        assert!((app.balance(tenant).await - (10.0 - 4.0 * 0.02)).abs() < 1e-9);
    }

    // Unsubscribed between steps: a's next message is heard of only until then.
    let heard_before = status_events(&hook_a).len();
    let late = app.send_template(&a, "+14155559999").await;
    app.run_jobs().await;
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/user/webhooks/{}", sub_a["id"]),
            Some(&a.key),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    app.advance(Duration::from_secs(10));
    app.run_jobs().await;
    let late_id = late.body["message_id"].as_i64().unwrap();
    assert_eq!(
        status_events(&hook_a)[heard_before..],
        [(late_id, "queued".to_string())]
    );
}

/// With no subscription anywhere a step looks nobody up; the first subscription made while a
/// message is on its way hears of the steps that follow.
#[tokio::test]
async fn the_first_subscription_anywhere_hears_of_the_next_step() {
    let app = spawn_with("rate_limit_per_second = 100\n").await;
    let t = app.tenant().await;
    let sent = app.send_template(&t, "+14155551234").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let id = sent.body["message_id"].as_i64().unwrap();
    simulator_steps(&app, 1).await;
    let hook = receiver(0).await;
    subscribe(&app, &t, &hook.url, json!(["message.status"])).await;
    simulator_steps(&app, 2).await;
    assert_eq!(
        status_events(&hook),
        [(id, "delivered".to_string()), (id, "read".to_string())]
    );
}
