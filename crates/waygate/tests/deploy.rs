//! Stopping the real binary as deployments do (SIGTERM from `docker stop`, systemd or
//! Kubernetes; SIGINT from a terminal): it stops accepting, answers what is in flight,
//! flushes and exits 0 within the drain bound, and no send is lost or charged twice.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use common::{call, get_message, seed, Server, Tenant};

const DRAIN_MS: u64 = 2_000;
/// How long after the drain bound the process may take to flush and exit.
const EXIT_MARGIN: Duration = Duration::from_secs(3);

fn exit_bound() -> Duration {
    Duration::from_millis(DRAIN_MS) + EXIT_MARGIN
}

/// One send as the client saw it.
struct Attempt {
    key: String,
    body: Value,
    /// The message id of a 200 answer; `None` when no answer came.
    answered: Option<i64>,
}

/// Sends (each with its own Idempotency-Key) from several tasks until told to stop or a
/// send goes unanswered; records every attempt.
fn send_load(
    http: &reqwest::Client,
    base: &str,
    tenant: &Arc<Tenant>,
    attempts: &Arc<Mutex<Vec<Attempt>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|task| {
            let (http, base, t, attempts) = (
                http.clone(),
                base.to_string(),
                tenant.clone(),
                attempts.clone(),
            );
            tokio::spawn(async move {
                // From 1: the simulator fails numbers ending in 0000 (and refunds them).
                for n in 1.. {
                    let key = format!("deploy-{task}-{n}");
                    let body = t.template_send(&format!("+14155{task}{n:05}"));
                    let reply = http
                        .post(format!("{base}/api/user/whatsapp/send"))
                        .bearer_auth(&t.key)
                        .header("Idempotency-Key", &key)
                        .json(&body)
                        .timeout(Duration::from_secs(20))
                        .send()
                        .await;
                    let answered = match reply {
                        Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
                        _ => None,
                    }
                    .and_then(|v| v["whatsapp_message_id"].as_i64());
                    attempts.lock().unwrap().push(Attempt {
                        key,
                        body,
                        answered,
                    });
                    if answered.is_none() {
                        return;
                    }
                }
            })
        })
        .collect()
}

/// Idempotency keys the server recorded, with their message ids.
fn recorded_keys(dir: &std::path::Path) -> HashMap<String, i64> {
    let db = common::database(dir);
    let mut rows = db
        .prepare("SELECT key, message_id FROM idempotency_keys")
        .unwrap();
    let keys = rows
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    keys
}

/// The user's balance, and credits − charges + refunds from the ledger (micros).
fn balance_and_ledger(dir: &std::path::Path, user_id: i64) -> (i64, i64) {
    common::database(dir)
        .query_row(
            "SELECT (SELECT micros FROM balances WHERE user_id = ?1), \
             (SELECT coalesce(sum(CASE kind WHEN 'credit' THEN amount_micros ELSE 0 END), 0) \
                   - coalesce(sum(CASE kind WHEN 'charge' THEN -amount_micros ELSE 0 END), 0) \
                   + coalesce(sum(CASE kind WHEN 'refund' THEN amount_micros ELSE 0 END), 0) \
              FROM ledger_entries WHERE user_id = ?1)",
            [user_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// Messages charged more than once, and outbound messages never charged.
fn charge_anomalies(dir: &std::path::Path) -> (i64, i64) {
    common::database(dir)
        .query_row(
            "SELECT (SELECT count(*) FROM (SELECT message_id FROM ledger_entries \
                      WHERE kind = 'charge' GROUP BY message_id HAVING count(*) > 1)), \
                    (SELECT count(*) FROM messages m WHERE direction = 'outbound' AND NOT EXISTS \
                      (SELECT 1 FROM ledger_entries l WHERE l.kind = 'charge' AND l.message_id = m.id))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_what_it_recorded_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("WAYGATE_SHUTDOWN_DRAIN_MS", "2000")];
    let http = reqwest::Client::new();
    let mut server = Server::start_with(dir.path(), &env);
    server.ready(&http).await;
    let tenant = Arc::new(seed(&http, &server.base).await);

    let attempts = Arc::new(Mutex::new(Vec::new()));
    let load = send_load(&http, &server.base, &tenant, &attempts);
    let answered = || {
        attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.answered.is_some())
            .count()
    };
    for _ in 0..3_000 {
        if answered() >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(answered() >= 100, "the load did not get going");
    server.signal("TERM");
    let status = server.exit_within(exit_bound()).await;
    let status = status.expect("waygate did not exit within the drain bound after SIGTERM");
    assert!(status.success(), "SIGTERM ended waygate with {status}");
    for task in load {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("a sender hung")
            .unwrap();
    }

    let server = Server::start_with(dir.path(), &env);
    server.ready(&http).await;
    let recorded = recorded_keys(dir.path());
    let attempts = std::mem::take(&mut *attempts.lock().unwrap());
    let mut unanswered_but_recorded = 0;
    for attempt in &attempts {
        match (attempt.answered, recorded.get(&attempt.key)) {
            (Some(id), recorded_id) => {
                assert_eq!(recorded_id, Some(&id), "key {} answered {id}", attempt.key);
                let (status, _) = get_message(&http, &server.base, &tenant.key, id).await;
                assert_eq!(status, 200, "answered send {id} lost");
            }
            (None, Some(&id)) => {
                unanswered_but_recorded += 1;
                let before = balance_and_ledger(dir.path(), tenant.user_id).0;
                let reply = http
                    .post(format!("{}/api/user/whatsapp/send", server.base))
                    .bearer_auth(&tenant.key)
                    .header("Idempotency-Key", &attempt.key)
                    .json(&attempt.body)
                    .send()
                    .await
                    .expect("retry");
                assert_eq!(reply.status(), 200, "retry of {}", attempt.key);
                let reply: Value = reply.json().await.unwrap();
                assert_eq!(reply["whatsapp_message_id"], id, "retry of {}", attempt.key);
                assert_eq!(balance_and_ledger(dir.path(), tenant.user_id).0, before);
            }
            (None, None) => {}
        }
    }
    // The drain answers every request it took on; the retries above are the safety net.
    assert_eq!(
        unanswered_but_recorded, 0,
        "sends recorded and charged but never answered"
    );
    let (balance, ledger) = balance_and_ledger(dir.path(), tenant.user_id);
    assert_eq!(balance, ledger, "balance differs from its ledger");
    assert_eq!(
        charge_anomalies(dir.path()),
        (0, 0),
        "(charged twice, never charged)"
    );
}

/// A client that sent half a request head and then went quiet: the drain bound, not the
/// client, decides when the process exits.
async fn half_sent_head_does_not_hold_exit(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    // Timeouts far beyond the drain bound, so that only the drain bound can end the wait.
    let env = [
        ("WAYGATE_SHUTDOWN_DRAIN_MS", "2000"),
        ("WAYGATE_HEADER_READ_TIMEOUT_MS", "600000"),
        ("WAYGATE_IDLE_TIMEOUT_MS", "600000"),
    ];
    let http = reqwest::Client::new();
    let mut server = Server::start_with(dir.path(), &env);
    server.ready(&http).await;
    let mut stuck = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(b"POST /api/user/whatsapp/send HTTP/1.1\r\nHost: waygate\r\nContent-Ty")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal(signal);
    let status = server.exit_within(exit_bound()).await;
    let status =
        status.unwrap_or_else(|| panic!("a half-sent head held waygate after SIG{signal}"));
    assert!(status.success(), "SIG{signal} ended waygate with {status}");
    let log = server.log();
    let cut = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("drain deadline passed: cut"))
        })
        .unwrap_or_else(|| panic!("no warning about the cut connection in:\n{log}"));
    assert_eq!(cut["level"], "WARN");
    assert_eq!(cut["fields"]["connections"], 1, "{log}");
}

#[tokio::test]
async fn sigterm_is_not_held_up_by_a_half_sent_request_head() {
    half_sent_head_does_not_hold_exit("TERM").await;
}

#[tokio::test]
async fn sigint_is_not_held_up_by_a_half_sent_request_head() {
    half_sent_head_does_not_hold_exit("INT").await;
}

/// A webhook delivery the tenant's endpoint never answers keeps the job runner busy for
/// its 10 s request timeout; the drain bound still decides when the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_not_held_up_by_a_job_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WAYGATE_SHUTDOWN_DRAIN_MS", "2000"),
        ("WAYGATE_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("WAYGATE_SIMULATOR_STEP_MS", "50"),
    ];
    let http = reqwest::Client::new();
    let mut server = Server::start_with(dir.path(), &env);
    server.ready(&http).await;
    let tenant = seed(&http, &server.base).await;

    // An endpoint that takes deliveries and never answers.
    let endpoint = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", endpoint.local_addr().unwrap());
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/user/webhooks", server.base),
        &tenant.key,
        Some(serde_json::json!({"url": url, "events": ["message.status"]})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/user/whatsapp/send", server.base),
        &tenant.key,
        Some(tenant.template_send("+14155550123")),
    )
    .await;
    assert_eq!(status, 200);
    let (_delivery, _) = tokio::time::timeout(Duration::from_secs(10), endpoint.accept())
        .await
        .expect("no webhook delivery started")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.signal("TERM");
    let status = server.exit_within(exit_bound()).await;
    let status = status.expect("a job in flight held waygate past the drain bound");
    assert!(status.success(), "SIGTERM ended waygate with {status}");
    assert!(
        server.log().contains("stopped the job runner"),
        "no warning about the job runner in:\n{}",
        server.log()
    );
}
