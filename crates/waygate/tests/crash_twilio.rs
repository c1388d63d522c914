//! The crash suite against the fake Twilio: the real binary is SIGKILLed at random points
//! while concurrent template sends are in flight, sometimes kept down longer than the fake's
//! whole callback sequence (those callbacks are lost: Twilio does not retry them), then
//! restarted. Clients retry unanswered requests with the same Idempotency-Key. In the end
//! every answered send exists once, Twilio received each message exactly once, every message
//! reached a final status, and every balance equals its ledger.
//!
//! The kill points come from a seed printed at the start (`CRASH_SEED` replays a run).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use twilio_fake::{CallbackMode, Config as FakeConfig, FakeTwilio};

use common::twilio::{
    self, await_final, check_messages, created_once, fake_env, on_twilio, Answer,
};
use common::{database, seed, Server, Tenant};

const ROUNDS: usize = 10;
const CLIENTS: usize = 16;
/// The fake reports sent, delivered and read this far apart.
const STEP_MS: u64 = 150;

fn start(dir: &std::path::Path, addr: std::net::SocketAddr, fake: &FakeTwilio) -> Server {
    let env = fake_env(fake, &format!("http://{addr}"));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_on(dir, addr, &env)
}

/// `Some(whatsapp_message_id)` when answered 200; `None` when the server went away.
async fn send(http: &reqwest::Client, base: &str, t: &Tenant, n: usize) -> Option<i64> {
    match twilio::send(http, base, t, n).await {
        Answer::Sent(id) => Some(id),
        Answer::Unanswered => None,
        Answer::Limited => panic!("send {n} hit the rate limit"),
    }
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
    await_final(&http, &server.base, &tenant, &acked).await;
    server.signal("INT");
    assert!(
        server.exit_within(Duration::from_secs(15)).await.is_some(),
        "a clean stop"
    );

    // Twilio received each message exactly once, and each is the one waygate knows.
    let at_fake = created_once(&fake);
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
    check_messages(&rows, &at_fake, &acked);
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
