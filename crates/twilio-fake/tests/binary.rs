//! The `twilio-fake` binary: its fault flags reach the server it starts.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_twilio-fake");

#[test]
fn help_lists_the_fault_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--seed",
        "--create-server-error-rate",
        "--create-created-then-error-rate",
        "--create-too-many-requests-rate",
        "--create-slow-rate",
        "--create-drop-connection-rate",
        "--read-server-error-rate",
        "--read-too-many-requests-rate",
        "--read-slow-rate",
        "--read-drop-connection-rate",
        "--callback-drop-rate",
        "--callback-duplicate-rate",
        "--callback-reorder-rate",
        "--retry-after-secs",
        "--slow-ms",
        "--approval-delay-ms",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn impossible_rates_are_refused_at_start() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--read-server-error-rate", "0.7", "--read-slow-rate", "0.7"])
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

/// Starts the binary on a free port; returns it with its base URL and its first stderr line.
fn spawn(args: &[&str]) -> (Running, String, String) {
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let mut base = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut base)
        .unwrap();
    let mut first_stderr = String::new();
    BufReader::new(child.0.stderr.take().unwrap())
        .read_line(&mut first_stderr)
        .unwrap();
    (
        child,
        base.trim().to_string(),
        first_stderr.trim().to_string(),
    )
}

#[tokio::test]
async fn rate_flags_fault_the_served_api() {
    let (_child, base, seed_line) = spawn(&[
        "--seed",
        "5",
        "--create-too-many-requests-rate",
        "1",
        "--retry-after-secs",
        "4",
    ]);
    assert_eq!(seed_line, "twilio-fake seed 5");

    let account = "ACf4cef4cef4cef4cef4cef4cef4cef4ce";
    let answer = reqwest::Client::new()
        .post(format!(
            "{base}/2010-04-01/Accounts/{account}/Messages.json"
        ))
        .basic_auth(account, Some("test-auth-token"))
        .form(&[
            ("To", "whatsapp:+15552229999"),
            ("From", "whatsapp:+14155238886"),
            ("Body", "hi"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["retry-after"], "4");
}

/// Decided at once with a zero delay; the default keeps a fresh submission `received`.
#[tokio::test]
async fn the_approval_delay_flag_reaches_the_served_api() {
    for (args, status) in [
        (&["--approval-delay-ms", "0"][..], "approved"),
        (&[][..], "received"),
    ] {
        let (_child, base, _) = spawn(args);
        let client = reqwest::Client::new();
        let auth = (
            "ACf4cef4cef4cef4cef4cef4cef4cef4ce",
            Some("test-auth-token"),
        );
        let content: serde_json::Value = client
            .post(format!("{base}/v1/Content"))
            .basic_auth(auth.0, auth.1)
            .json(&serde_json::json!({"language": "en", "types": {"twilio/text": {"body": "Hi"}}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let approval: serde_json::Value = client
            .post(format!(
                "{}/ApprovalRequests/whatsapp",
                content["url"].as_str().unwrap()
            ))
            .basic_auth(auth.0, auth.1)
            .json(&serde_json::json!({"name": "hello", "category": "UTILITY"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(approval["status"], status, "{args:?}");
    }
}
