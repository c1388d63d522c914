//! Several nodes as one (API.md §13): two `waygate serve` processes on one PostgreSQL
//! database and one Redis, sending through the fake Twilio. Clients spread template sends
//! over both nodes; one node is SIGKILLed mid-run, stays down past its job leases (the other
//! node takes its jobs over) and is restarted. A client whose request went unanswered retries
//! it on the other node with the same Idempotency-Key. Afterwards every answered send exists
//! once, the fake received each message exactly once, every balance equals its ledger, the
//! per-user limit held across both nodes, a key revoked or a template paused on one node was
//! refused on the other within 2 s, and a webhook subscribed on one node got the events of
//! sends made on the other.

mod common;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/redis.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use twilio_fake::{CallbackMode, Config as FakeConfig, FakeTwilio};

use common::twilio::{
    self, await_final, check_messages, created_once, fake_env, on_twilio, Answer,
};
use common::{admin_post, call, seed, Server, Tenant, ADMIN};
use postgres::{connect, PgSchema};
use redis_server::Prefix;

const CLIENTS: usize = 16;
/// The per-user limit (and burst): below what the clients ask of either node alone, so that
/// nodes limiting alone would let through about twice what one shared limit does.
const LIMIT: u32 = 30;
/// The fake reports sent, delivered and read this far apart.
const STEP_MS: u64 = 150;

struct Cluster {
    schema: PgSchema,
    redis: Prefix,
    fake: FakeTwilio,
}

impl Cluster {
    fn start(&self, dir: &std::path::Path, addr: std::net::SocketAddr) -> Server {
        let mut env = fake_env(&self.fake, &format!("http://{addr}"));
        env.extend([
            ("WAYGATE_DATABASE_URL", self.schema.url.clone()),
            ("WAYGATE_DATABASE_POOL_SIZE", "8".to_string()),
            ("WAYGATE_REDIS_URL", self.redis.url.clone()),
            ("WAYGATE_REDIS_KEY_PREFIX", self.redis.prefix.clone()),
            ("WAYGATE_RATE_LIMIT_PER_SECOND", LIMIT.to_string()),
            ("WAYGATE_WEBHOOKS_ALLOW_PRIVATE", "true".to_string()),
        ]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start_on(dir, addr, &env)
    }
}

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Send number -> whatsapp_message_id, for the sends answered 200.
    acked: Mutex<BTreeMap<usize, i64>>,
    /// 200 answers by node (0 = the node that is killed).
    by_node: [AtomicUsize; 2],
    limited: AtomicUsize,
    /// Requests that went unanswered and were retried on the other node.
    retried: AtomicUsize,
}

/// Sends number `n` on `nodes[first]`, and on the other node whenever a node does not answer,
/// until one answers 200; a 429 ends it unsent.
async fn send_once(
    http: &reqwest::Client,
    nodes: &[String; 2],
    t: &Tenant,
    n: usize,
    first: usize,
    tally: &Tally,
) {
    let mut node = first;
    loop {
        match twilio::send(http, &nodes[node], t, n).await {
            Answer::Sent(id) => {
                tally.acked.lock().unwrap().insert(n, id);
                tally.by_node[node].fetch_add(1, Ordering::Relaxed);
                return;
            }
            Answer::Limited => {
                tally.limited.fetch_add(1, Ordering::Relaxed);
                // A 429 is quick: without a pause the clients would use up the recipients.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            Answer::Unanswered => {
                tally.retried.fetch_add(1, Ordering::Relaxed);
                node = 1 - node;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Polls `ask` on a node every 50 ms until it holds; how long that took (fails past 5 s).
async fn within<F, Fut>(what: &str, mut ask: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if ask().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not seen on the other node within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_work_and_a_sigkill_loses_and_doubles_nothing() {
    let fake = FakeTwilio::start(FakeConfig {
        callbacks: CallbackMode::Auto { step_ms: STEP_MS },
        ..FakeConfig::default()
    })
    .await
    .expect("fake Twilio");
    let cluster = Cluster {
        schema: PgSchema::create().await,
        redis: Prefix::new().await,
        fake,
    };
    let http = reqwest::Client::new();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let addr_a = free_addr();
    let mut node_a = cluster.start(dir_a.path(), addr_a);
    let node_b = cluster.start(dir_b.path(), free_addr());
    node_a.ready(&http).await;
    node_b.ready(&http).await;
    let tenant = seed(&http, &node_a.base).await;
    // The seeded simulator template, for the pause below (its sends never reach the fake).
    let simulator_template = (tenant.sender_id, tenant.template_id);
    let tenant = Arc::new(on_twilio(&http, &node_a.base, tenant).await);
    let nodes = [node_a.base.clone(), node_b.base.clone()];

    // Sends across both nodes; node A is killed 1.5 s in and restarted 2 s later.
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let run_for = Duration::from_millis(5_000);
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, nodes, t, next, tally) = (
            http.clone(),
            nodes.clone(),
            tenant.clone(),
            next.clone(),
            tally.clone(),
        );
        clients.push(tokio::spawn(async move {
            while started.elapsed() < run_for {
                let n = next.fetch_add(1, Ordering::Relaxed) + 1;
                send_once(&http, &nodes, &t, n, (client + n) % 2, &tally).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    node_a.child.kill().expect("SIGKILL");
    node_a.child.wait().expect("reaped");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    node_a = cluster.start(dir_a.path(), addr_a);
    node_a.ready(&http).await;
    for client in clients {
        client.await.expect("client");
    }
    let elapsed = started.elapsed();
    let acked = tally.acked.lock().unwrap().clone();
    let by_node = [
        tally.by_node[0].load(Ordering::Relaxed),
        tally.by_node[1].load(Ordering::Relaxed),
    ];
    let limited = tally.limited.load(Ordering::Relaxed);

    // Every answered send reaches its final status; lost callbacks are fetched by either node.
    await_final(&http, &node_a.base, &tenant, &acked).await;

    // A key revoked, and a template paused, on node A is refused on node B within 2 s.
    let (_, key) = admin_post(
        &http,
        &node_a.base,
        &format!("/api/admin/users/{}/api-keys", tenant.user_id),
        json!({"name": "second"}),
    )
    .await;
    let second = key["key"].as_str().unwrap().to_string();
    let me = |token: String| {
        let (http, base) = (http.clone(), node_b.base.clone());
        async move {
            call(
                &http,
                reqwest::Method::GET,
                format!("{base}/api/user/me"),
                &token,
                None,
            )
            .await
            .0
        }
    };
    assert_eq!(me(second.clone()).await, 200, "node B knows the new key");
    let (revoked, _) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{}/api/admin/api-keys/{}", node_a.base, key["id"]),
        ADMIN,
        None,
    )
    .await;
    assert!((200..300).contains(&revoked), "revoke: {revoked}");
    let key_seen = within("a revoked key", || {
        let ask = me(second.clone());
        async move { ask.await == 401 }
    })
    .await;
    // Node B has the template and the webhook list cached (it sends with them) when node A
    // pauses the template and subscribes a webhook.
    let simulator_send = |http: reqwest::Client, base: String, t: Arc<Tenant>| async move {
        let (sender_id, template_id) = simulator_template;
        let body = json!({"sender_id": sender_id, "template_id": template_id,
                          "recipient_phone": "+14155550142", "variables": {"1": "Ada", "2": "1"}});
        call(
            &http,
            reqwest::Method::POST,
            format!("{base}/api/user/whatsapp/send"),
            &t.key,
            Some(body),
        )
        .await
        .0
    };
    assert_eq!(
        simulator_send(http.clone(), node_b.base.clone(), tenant.clone()).await,
        200,
        "node B sends with the template"
    );
    // A webhook subscribed on node A gets the events of a send made on node B 2 s later.
    let (hook_url, hook) = receiver().await;
    let (subscribed, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/user/webhooks", node_a.base),
        &tenant.key,
        Some(json!({"url": hook_url, "events": ["message.status"]})),
    )
    .await;
    assert_eq!(subscribed, 201, "subscribe on node A");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        simulator_send(http.clone(), node_b.base.clone(), tenant.clone()).await,
        200,
        "node B sends after the subscription"
    );
    // The `queued` event is queued by node B's send itself (the later steps may run anywhere).
    within("node B's event to a webhook made on node A", || {
        let hook = hook.clone();
        async move {
            let bodies = hook.lock().unwrap();
            bodies.iter().any(|b| {
                serde_json::from_str::<serde_json::Value>(b)
                    .is_ok_and(|event| event["data"]["status"] == "queued")
            })
        }
    })
    .await;
    let (paused, _) = call(
        &http,
        reqwest::Method::PATCH,
        format!(
            "{}/api/admin/templates/{}",
            node_a.base, simulator_template.1
        ),
        ADMIN,
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(paused, 200, "pause the template");
    let template_seen = within("a paused template", || {
        let ask = simulator_send(http.clone(), node_b.base.clone(), tenant.clone());
        async move { ask.await == 422 }
    })
    .await;
    assert!(
        key_seen <= Duration::from_secs(2),
        "revoked key seen after {key_seen:?}"
    );
    assert!(
        template_seen <= Duration::from_secs(2),
        "paused template seen after {template_seen:?}"
    );

    node_a.signal("INT");
    node_b.signal("INT");
    let mut node_b = node_b;
    assert!(node_a.exit_within(Duration::from_secs(15)).await.is_some());
    assert!(node_b.exit_within(Duration::from_secs(15)).await.is_some());

    // Twilio received each message exactly once, and each is the one waygate knows.
    let at_fake = created_once(&cluster.fake);
    let db = connect(&cluster.schema.url).await;
    let rows: Vec<(i64, String, Option<String>)> = db
        .query(
            "SELECT id, recipient_phone, message_sid FROM messages \
             WHERE direction = 'outbound' AND template_id = $1",
            &[&tenant.template_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    check_messages(&rows, &at_fake, &acked);

    // Every balance equals its ledger; each failure refunded once, each message charged once.
    let money = db
        .query_one(
            "SELECT (SELECT SUM(micros) FROM balances)::BIGINT, \
             (SELECT SUM(amount_micros) FROM ledger_entries)::BIGINT, \
             (SELECT COUNT(*) FROM message_status WHERE status = 'undelivered'), \
             (SELECT COUNT(*) FROM ledger_entries WHERE kind = 'refund'), \
             (SELECT COUNT(*) FROM ledger_entries WHERE kind = 'charge'), \
             (SELECT COUNT(*) FROM messages WHERE direction = 'outbound')",
            &[],
        )
        .await
        .unwrap();
    let (balance, ledger): (i64, i64) = (money.get(0), money.get(1));
    let (failed, refunds, charges, outbound): (i64, i64, i64, i64) =
        (money.get(2), money.get(3), money.get(4), money.get(5));
    assert_eq!(balance, ledger, "balances equal the ledger");
    assert_eq!(refunds, failed, "each failure refunded once");
    assert_eq!(charges, outbound, "each message charged once");

    let allowed = f64::from(LIMIT) * (1.0 + elapsed.as_secs_f64());
    eprintln!(
        "multi-node: {} sends accepted in {:.1} s (node A {}, node B {}), {limited} refused by \
         the shared limit of {LIMIT}/s (at most {allowed:.0}), {} retried on the other node; \
         {} at the fake, each once; {failed} failed and refunded once; revoked key refused on \
         the other node after {} ms, paused template after {} ms",
        rows.len(),
        elapsed.as_secs_f64(),
        by_node[0],
        by_node[1],
        tally.retried.load(Ordering::Relaxed),
        at_fake.len(),
        key_seen.as_millis(),
        template_seen.as_millis(),
    );
    // The limit held across both nodes: one burst plus the rate over the run, not twice it.
    assert!(limited > 0, "the clients asked for more than the limit");
    assert!(
        (rows.len() as f64) <= allowed * 1.02,
        "{} sends accepted in {elapsed:?}: the limit allows {allowed}",
        rows.len()
    );
    assert!(
        by_node[0] > 0 && by_node[1] > 0,
        "both nodes answered: {by_node:?}"
    );
    cluster.redis.delete_keys().await;
}

#[tokio::test]
async fn a_node_on_postgres_without_redis_warns_that_it_limits_alone() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let node = Server::start_with(dir.path(), &[("WAYGATE_DATABASE_URL", schema.url.as_str())]);
    node.ready(&http).await;
    let log = node.log();
    assert!(
        log.contains("each node keeps the per-user send limit alone"),
        "{log}"
    );
}

/// A webhook endpoint on loopback: its URL, and the bodies it received.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(body);
                reqwest::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}
