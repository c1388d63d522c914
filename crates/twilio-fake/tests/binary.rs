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

#[tokio::test]
async fn rate_flags_fault_the_served_api() {
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--seed", "5"])
        .args([
            "--create-too-many-requests-rate",
            "1",
            "--retry-after-secs",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let mut base = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut base)
        .unwrap();
    let mut seed_line = String::new();
    BufReader::new(child.0.stderr.take().unwrap())
        .read_line(&mut seed_line)
        .unwrap();
    assert_eq!(seed_line.trim(), "twilio-fake seed 5");

    let account = "ACf4cef4cef4cef4cef4cef4cef4cef4ce";
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{account}/Messages.json",
            base.trim()
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
