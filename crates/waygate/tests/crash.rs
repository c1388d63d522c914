//! Crash safety of the real binary: sends answered 200 survive a SIGKILL, whether SQLite had
//! committed them or only the journal held them, and each is charged exactly once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use common::{get_message, seed, Server, Tenant, CREDIT_UNITS};

/// The simulator's price of the seeded utility template to +1.
const PRICE_MICROS: i64 = 20_000;

/// Sends from several tasks until `count` were answered 200, then kills the server while
/// more are in flight; returns the ids answered 200.
async fn send_then_kill(
    http: &reqwest::Client,
    server: &mut Server,
    t: &Arc<Tenant>,
    round: usize,
    count: usize,
) -> Vec<i64> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (http, base, t, acked) = (http.clone(), server.base.clone(), t.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            // From 1: the simulator fails numbers ending in 0000 (and refunds them).
            for n in 1.. {
                let to = format!("+14155{round}{task}{n:04}");
                let body = t.template_send(&to);
                let url = format!("{base}/api/user/whatsapp/send");
                let Ok(resp) = http.post(url).bearer_auth(&t.key).json(&body).send().await else {
                    return;
                };
                if resp.status() != 200 {
                    return;
                }
                let Ok(reply) = resp.json::<Value>().await else {
                    return;
                };
                acked
                    .lock()
                    .unwrap()
                    .push(reply["whatsapp_message_id"].as_i64().unwrap());
            }
        }));
    }
    for _ in 0..30_000 {
        if acked.lock().unwrap().len() >= count || tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(acked.lock().unwrap().len() >= count, "sends stopped early");
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for task in tasks {
        let _ = task.await;
    }
    let ids = acked.lock().unwrap().clone();
    ids
}

/// Outbound messages and the balance in micros, read from the database file as the crash
/// left it (before any restart runs the journal again).
fn on_disk(dir: &std::path::Path) -> (i64, i64) {
    common::database(dir)
        .query_row(
            "SELECT (SELECT count(*) FROM messages WHERE direction = 'outbound'), \
         (SELECT sum(micros) FROM balances)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_sends_survive_sigkill_and_are_charged_once() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut server = Server::start(dir.path());
    server.ready(&http).await;
    let tenant = Arc::new(seed(&http, &server.base).await);
    let mut acked_total: Vec<i64> = Vec::new();
    let mut only_in_journal = 0;
    for round in 0..4 {
        let acked = send_then_kill(&http, &mut server, &tenant, round, 150).await;
        acked_total.extend(&acked);
        let (rows, _) = on_disk(dir.path());
        if (rows as usize) < acked_total.len() {
            only_in_journal += 1;
        }
        server = Server::start(dir.path());
        server.ready(&http).await;
        for id in &acked_total {
            let (status, message) = get_message(&http, &server.base, &tenant.key, *id).await;
            assert_eq!(status, 200, "answered send {id} lost in round {round}");
            assert_eq!(message["price"], json!(0.02));
        }
        // Every message that exists (answered or not) is charged once, and nothing else is.
        let (rows, balance) = on_disk(dir.path());
        assert!(rows as usize >= acked_total.len());
        assert_eq!(balance, CREDIT_UNITS * 1_000_000 - rows * PRICE_MICROS);
    }
    // The test means something only if some kill left answered sends outside SQLite.
    assert!(
        only_in_journal > 0,
        "no kill caught answered sends that only the journal held"
    );
}
