//! The `meta-fake` binary: its flags reach the server it starts, and its webhooks are signed with
//! the secret it was given.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_meta-fake");

#[test]
fn help_lists_the_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--webhook-url",
        "--app-secret",
        "--access-token",
        "--step-ms",
        "--seed",
        "--max-items-per-post",
        "--webhook-retries",
        "--template-review-ms",
        "--any-template",
        "--no-webhooks",
        "--send-server-error-rate",
        "--send-accepted-then-error-rate",
        "--send-rate-limited-rate",
        "--send-slow-rate",
        "--send-drop-connection-rate",
        "--read-server-error-rate",
        "--read-rate-limited-rate",
        "--read-slow-rate",
        "--read-drop-connection-rate",
        "--webhook-drop-rate",
        "--webhook-duplicate-rate",
        "--webhook-reorder-rate",
        "--slow-ms",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn impossible_rates_are_refused_at_start() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--send-server-error-rate", "0.6", "--send-slow-rate", "0.6"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("above 1"));
}

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serves_sends_and_posts_signed_webhooks() {
    let receiver = Receiver::start().await;
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--seed", "5", "--step-ms", "20"])
        .args(["--webhook-url", &receiver.url, "--app-secret", "s3cret"])
        .args(["--access-token", "tok", "--max-items-per-post", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let mut base = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut base)
        .unwrap();
    let base = base.trim().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let mut seed_line = String::new();
    BufReader::new(child.0.stderr.take().unwrap())
        .read_line(&mut seed_line)
        .unwrap();
    assert_eq!(seed_line.trim(), "meta-fake seed 5");

    let url = format!("{base}/v23.0/106540352242922/messages");
    let refused = reqwest::Client::new()
        .post(&url)
        .bearer_auth("test-access-token")
        .json(&text_body(TO, "hi", None))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "only --access-token is accepted");
    let sent = answer(
        reqwest::Client::new()
            .post(&url)
            .bearer_auth("tok")
            .json(&text_body(TO, "hi", Some("bin-1")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.json);

    let statuses = receiver.wait_statuses(3).await;
    assert!(statuses
        .iter()
        .all(|s| s["biz_opaque_callback_data"] == "bin-1"));
    let posts = receiver.received();
    assert_eq!(posts.len(), 3, "one item per post");
    assert!(posts.iter().all(|p| p.signed_with("s3cret")));

    // The fake counts a post once its answer is in, just after the receiver saw it.
    let mut stats = serde_json::Value::Null;
    for _ in 0..100 {
        stats = reqwest::get(format!("{base}/_fake/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["webhook_items_delivered"] == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(stats["webhook_items_delivered"], 3, "{stats}");
    assert_eq!(stats["send_requests"], 2);
    assert_eq!(stats["messages"], 1);
}
