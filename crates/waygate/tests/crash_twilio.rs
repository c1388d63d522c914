//! The crash suite against the fake Twilio: the real binary is SIGKILLed at random points
//! while concurrent template sends are in flight, sometimes kept down longer than the fake's
//! whole callback sequence (those callbacks are lost: Twilio does not retry them), then
//! restarted. Clients retry unanswered requests with the same Idempotency-Key. In the end
//! every answered send exists once, Twilio received each message exactly once, every message
//! reached a final status, and every balance equals its ledger.
//!
//! The kill points come from a seed printed at the start (`CRASH_SEED` replays a run).

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use twilio_fake::{CallbackMode, Config as FakeConfig, FakeTwilio};

const ADMIN: &str = "crash-admin-token";
const CONTENT_SID: &str = "HX0123456789abcdef0123456789abcdef";
const ROUNDS: usize = 10;
const CLIENTS: usize = 16;
/// The fake reports sent, delivered and read this far apart.
const STEP_MS: u64 = 150;

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &std::path::Path, port: u16, fake: &FakeTwilio) -> Server {
        let base = format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_waygate"))
            .arg("serve")
            .env_remove("WAYGATE_CONFIG")
            .env_remove("WAYGATE_DATABASE_URL")
            .env("WAYGATE_BIND", format!("127.0.0.1:{port}"))
            .env("WAYGATE_PUBLIC_URL", &base)
            .env("WAYGATE_DATA_DIR", dir)
            .env("WAYGATE_ADMIN_TOKEN", ADMIN)
            .env("WAYGATE_RATE_LIMIT_PER_SECOND", "100000")
            .env("WAYGATE_TWILIO_ACCOUNT_SID", fake.account_sid())
            .env("WAYGATE_TWILIO_AUTH_TOKEN", fake.auth_token())
            .env("WAYGATE_TWILIO_API_BASE", fake.base_url())
            .env("WAYGATE_TWILIO_SENDER_MPS", "100000")
            .env("WAYGATE_TWILIO_TIMEOUT_MS", "2000")
            .env("WAYGATE_TWILIO_RECONCILE_AFTER_MS", "300")
            .env("WAYGATE_JOB_LEASE_MS", "1000")
            .env("WAYGATE_STATUS_RECONCILE_AFTER_MS", "1000")
            .env("WAYGATE_SEND_WAIT_MS", "1000")
            .env("WAYGATE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start waygate");
        Server { child, base }
    }

    async fn ready(&self, http: &reqwest::Client) {
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("waygate did not become ready");
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Ctrl-C: the server finishes, flushes the store and exits.
    fn interrupt(&mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(status.success());
        self.child.wait().expect("exits");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn admin(http: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let resp = http
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("admin call");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("admin answer")
}

struct Tenant {
    key: String,
    sender_id: i64,
    template_id: i64,
}

async fn seed(http: &reqwest::Client, base: &str) -> Tenant {
    let user = admin(
        http,
        base,
        "/api/admin/users",
        json!({"name": "Acme", "email": "ops@acme.test"}),
    )
    .await;
    let user_id = user["id"].as_i64().unwrap();
    let key = admin(
        http,
        base,
        &format!("/api/admin/users/{user_id}/api-keys"),
        json!({"name": "k"}),
    )
    .await;
    let sender = admin(
        http,
        base,
        &format!("/api/admin/users/{user_id}/senders"),
        json!({"phone_number": "+14155550100", "display_name": "Acme", "provider": "twilio"}),
    )
    .await;
    let sender_id = sender["id"].as_i64().unwrap();
    let template = admin(
        http,
        base,
        &format!("/api/admin/senders/{sender_id}/templates"),
        json!({"name": "code", "language": "en", "category": "utility", "provider_ref": CONTENT_SID,
               "body_text": "Hello {{1}}, your code is {{2}}.", "variables": ["name", "code"]}),
    )
    .await;
    admin(
        http,
        base,
        &format!("/api/admin/users/{user_id}/credits"),
        json!({"amount": 1000, "reference": "seed"}),
    )
    .await;
    Tenant {
        key: key["key"].as_str().unwrap().to_string(),
        sender_id,
        template_id: template["id"].as_i64().unwrap(),
    }
}

/// One send; each has its own recipient and Idempotency-Key. Every tenth recipient ends in
/// 0000, which the fake fails asynchronously (undelivered, refunded).
fn send_body(t: &Tenant, n: usize) -> (String, Value) {
    assert!(n < 8000, "recipients are unique up to 8,000 sends");
    let line = if n.is_multiple_of(10) { 0 } else { 1000 + n % 10 };
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
    let port = free_port();
    let http = reqwest::Client::new();
    let mut server = Server::start(dir.path(), port, &fake);
    server.ready(&http).await;
    let tenant = Arc::new(seed(&http, &server.base).await);

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
        server.kill();
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
        server = Server::start(dir.path(), port, &fake);
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
            let msg: Value = http
                .get(format!("{}/api/user/whatsapp/messages/{id}", server.base))
                .bearer_auth(&tenant.key)
                .send()
                .await
                .expect("get message")
                .json()
                .await
                .expect("message");
            let want = if n.is_multiple_of(10) { "undelivered" } else { "read" };
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
    server.interrupt();

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

    let db = rusqlite::Connection::open(dir.path().join("waygate.db")).unwrap();
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
