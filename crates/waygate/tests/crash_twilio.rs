//! The crash suite against the fake Twilio: the real binary is SIGKILLed at random points
//! while concurrent template sends are in flight, sometimes kept down longer than the fake's
//! whole callback sequence (those callbacks are lost: Twilio does not retry them), then
//! restarted. Clients retry unanswered requests with the same Idempotency-Key. In the end
//! every answered send exists once, Twilio received each message exactly once, every message
//! reached a final status, and every balance equals its ledger.
//!
//! The kill points come from a seed printed at the start (`CRASH_SEED` replays a run).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use twilio_fake::{CallbackMode, Config as FakeConfig, FakeTwilio};

use common::{admin_post, database, get_message, seed, Server, Tenant};

const CONTENT_SID: &str = "HX0123456789abcdef0123456789abcdef";
const ROUNDS: usize = 10;
const CLIENTS: usize = 16;
/// The fake reports sent, delivered and read this far apart.
const STEP_MS: u64 = 150;

/// The server on `addr`, talking to the fake with short waits, so that a taken-over send is
/// reconciled within a second and a lost callback is looked up a second after acceptance.
fn start(dir: &std::path::Path, addr: std::net::SocketAddr, fake: &FakeTwilio) -> Server {
    let public_url = format!("http://{addr}");
    let api_base = fake.base_url();
    Server::start_on(
        dir,
        addr,
        &[
            ("WAYGATE_PUBLIC_URL", public_url.as_str()),
            ("WAYGATE_TWILIO_ACCOUNT_SID", fake.account_sid()),
            ("WAYGATE_TWILIO_AUTH_TOKEN", fake.auth_token()),
            ("WAYGATE_TWILIO_API_BASE", api_base.as_str()),
            ("WAYGATE_TWILIO_SENDER_MPS", "100000"),
            ("WAYGATE_TWILIO_TIMEOUT_MS", "2000"),
            ("WAYGATE_TWILIO_RECONCILE_AFTER_MS", "300"),
            ("WAYGATE_JOB_LEASE_MS", "1000"),
            ("WAYGATE_STATUS_RECONCILE_AFTER_MS", "1000"),
            ("WAYGATE_SEND_WAIT_MS", "1000"),
        ],
    )
}

/// The seeded tenant, sending through a Twilio sender instead.
async fn on_twilio(http: &reqwest::Client, base: &str, mut t: Tenant) -> Tenant {
    let (_, sender) = admin_post(
        http,
        base,
        &format!("/api/admin/users/{}/senders", t.user_id),
        json!({"phone_number": "+14155550199", "display_name": "Acme", "provider": "twilio"}),
    )
    .await;
    t.sender_id = sender["id"].as_i64().unwrap();
    let (_, template) = admin_post(
        http,
        base,
        &format!("/api/admin/senders/{}/templates", t.sender_id),
        json!({"name": "code", "language": "en", "category": "utility", "provider_ref": CONTENT_SID,
               "body_text": "Hello {{1}}, your code is {{2}}.", "variables": ["name", "code"]}),
    )
    .await;
    t.template_id = template["id"].as_i64().unwrap();
    t
}

/// One send; each has its own recipient and Idempotency-Key. Every tenth recipient ends in
/// 0000, which the fake fails asynchronously (undelivered, refunded).
fn send_body(t: &Tenant, n: usize) -> (String, Value) {
    assert!(n < 8000, "recipients are unique up to 8,000 sends");
    let line = if n.is_multiple_of(10) {
        0
    } else {
        1000 + n % 10
    };
    let to = format!("+1415{}{line:04}", 200 + n / 10);
    let body = json!({"sender_id": t.sender_id, "template_id": t.template_id,
                      "recipient_phone": to, "variables": {"1": "Ada", "2": n.to_string()}});
    (format!("crash-{n}"), body)
}

/// `Some(whatsapp_message_id)` when answered 200; `None` when the server went away.
async fn send(http: &reqwest::Client, base: &str, t: &Tenant, n: usize) -> Option<i64> {
    let (key, body) = send_body(t, n);
    let resp = http
        .post(format!("{base}/api/user/whatsapp/send"))
        .bearer_auth(&t.key)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .ok()?;
    assert!(
        resp.status() == 200 || resp.status().is_server_error(),
        "send {n}: {}",
        resp.status()
    );
    let reply: Value = resp.json().await.ok()?;
    reply["whatsapp_message_id"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_twilio_sends_loses_nothing_and_doubles_nothing() {
    let seed_value = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash suite seed: CRASH_SEED={seed_value}");
    let mut rng = fastrand::Rng::with_seed(seed_value);
    let fake = FakeTwilio::start(FakeConfig {
        callbacks: CallbackMode::Auto { step_ms: STEP_MS },
        ..FakeConfig::default()
    })
    .await
    .expect("fake Twilio");
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut server = start(dir.path(), addr, &fake);
    server.ready(&http).await;
    let tenant = seed(&http, &server.base).await;
    let tenant = Arc::new(on_twilio(&http, &server.base, tenant).await);

    let next = Arc::new(Mutex::new(0usize));
    // Send number -> whatsapp_message_id, for the sends answered 200.
    let acked: Arc<Mutex<BTreeMap<usize, i64>>> = Arc::default();
    let mut unanswered: Vec<usize> = Vec::new();
    let mut long_downtimes = 0;
    for round in 0..ROUNDS {
        let run_for = Duration::from_millis(rng.u64(150..700));
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (http, base, t, next, acked) = (
                http.clone(),
                server.base.clone(),
                tenant.clone(),
                next.clone(),
                acked.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut lost = Vec::new();
                loop {
                    let n = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next
                    };
                    match send(&http, &base, &t, n).await {
                        Some(id) => {
                            acked.lock().unwrap().insert(n, id);
                        }
                        None => {
                            lost.push(n);
                            return lost;
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(run_for).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reaped");
        for task in tasks {
            unanswered.extend(task.await.expect("client task"));
        }
        // Some rounds stay down past the fake's whole callback sequence.
        let down = match round % 3 {
            0 => {
                long_downtimes += 1;
                Duration::from_millis(STEP_MS * 4 + rng.u64(0..500))
            }
            _ => Duration::from_millis(rng.u64(0..200)),
        };
        tokio::time::sleep(down).await;
        server = start(dir.path(), addr, &fake);
        server.ready(&http).await;
        // Clients retry what was not answered, with the same key.
        for n in unanswered.drain(..) {
            let id = send(&http, &server.base, &tenant, n)
                .await
                .expect("a retry after the restart is answered");
            acked.lock().unwrap().insert(n, id);
        }
    }
    assert!(long_downtimes >= 3);
    let acked = acked.lock().unwrap().clone();
    let sent = *next.lock().unwrap();
    eprintln!(
        "crash suite: {ROUNDS} rounds, {} sends answered, {} created at the fake",
        acked.len(),
        fake.messages().len()
    );

    // Every message reaches a final status (lost callbacks are fetched from the fake).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_pending = Vec::new();
    while Instant::now() < deadline {
        last_pending.clear();
        for (&n, &id) in &acked {
            let (_, msg) = get_message(&http, &server.base, &tenant.key, id).await;
            let want = if n.is_multiple_of(10) {
                "undelivered"
            } else {
                "read"
            };
            if msg["status"] != want {
                last_pending.push((n, id, msg["status"].clone()));
            }
        }
        if last_pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        last_pending.is_empty(),
        "{} messages not final, e.g. {:?}",
        last_pending.len(),
        &last_pending[..last_pending.len().min(5)]
    );
    server.signal("INT");
    assert!(
        server.exit_within(Duration::from_secs(15)).await.is_some(),
        "a clean stop"
    );

    // Twilio received each message exactly once, and each is the one waygate knows.
    let mut at_fake: HashMap<i64, Vec<String>> = HashMap::new();
    for m in fake.messages() {
        let id = m
            .status_callback
            .as_deref()
            .and_then(|u| u.split("message_id=").nth(1))
            .and_then(|id| id.parse().ok())
            .expect("waygate's callback carries its message id");
        at_fake.entry(id).or_default().push(m.sid);
    }
    let doubled: Vec<_> = at_fake.iter().filter(|(_, s)| s.len() > 1).collect();
    assert!(doubled.is_empty(), "sent twice: {doubled:?}");

    let db = database(dir.path());
    let rows: Vec<(i64, String, Option<String>)> = db
        .prepare(
            "SELECT id, recipient_phone, message_sid FROM messages WHERE direction = 'outbound'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut per_recipient: HashMap<&str, usize> = HashMap::new();
    for (id, to, sid) in &rows {
        *per_recipient.entry(to).or_default() += 1;
        let sids = at_fake.get(id).cloned().unwrap_or_default();
        assert_eq!(sids.len(), 1, "message {id} at Twilio: {sids:?}");
        assert_eq!(sid.as_deref(), Some(sids[0].as_str()), "message {id}");
    }
    assert_eq!(
        at_fake.len(),
        rows.len(),
        "Twilio holds nothing waygate does not know"
    );
    assert!(
        per_recipient.values().all(|&n| n == 1),
        "one message per Idempotency-Key"
    );
    for id in acked.values() {
        assert!(
            rows.iter().any(|(r, _, _)| r == id),
            "answered send {id} lost"
        );
    }
    assert!(rows.len() <= sent);

    // Every balance equals its ledger; each failure refunded exactly once.
    let (balance, ledger): (i64, i64) = db
        .query_row(
            "SELECT (SELECT SUM(micros) FROM balances), (SELECT SUM(amount_micros) FROM ledger_entries)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(balance, ledger);
    let (failed, refunds, charges): (i64, i64, i64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM message_status WHERE status = 'undelivered'), \
             (SELECT COUNT(*) FROM ledger_entries WHERE kind = 'refund'), \
             (SELECT COUNT(*) FROM ledger_entries WHERE kind = 'charge')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(refunds, failed, "each failure refunded once");
    assert_eq!(charges as usize, rows.len(), "each message charged once");
}
