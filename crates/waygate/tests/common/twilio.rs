//! Template sends through the fake Twilio from many clients, and what the fake received: the
//! pieces the crash and multi-node suites share.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use twilio_fake::FakeTwilio;

use super::{admin_post, get_message, Tenant};

pub const CONTENT_SID: &str = "HX0123456789abcdef0123456789abcdef";

/// Server settings for talking to `fake` with short waits, so that a taken-over send is
/// reconciled within a second and a lost callback is looked up a second after acceptance.
pub fn fake_env(fake: &FakeTwilio, public_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WAYGATE_PUBLIC_URL", public_url.to_string()),
        ("WAYGATE_TWILIO_ACCOUNT_SID", fake.account_sid().to_string()),
        ("WAYGATE_TWILIO_AUTH_TOKEN", fake.auth_token().to_string()),
        ("WAYGATE_TWILIO_API_BASE", fake.base_url()),
        ("WAYGATE_TWILIO_SENDER_MPS", "100000".into()),
        ("WAYGATE_TWILIO_TIMEOUT_MS", "2000".into()),
        ("WAYGATE_TWILIO_RECONCILE_AFTER_MS", "300".into()),
        ("WAYGATE_JOB_LEASE_MS", "1000".into()),
        ("WAYGATE_STATUS_RECONCILE_AFTER_MS", "1000".into()),
        ("WAYGATE_SEND_WAIT_MS", "1000".into()),
    ]
}

/// The seeded tenant, sending through a Twilio sender instead.
pub async fn on_twilio(http: &reqwest::Client, base: &str, mut t: Tenant) -> Tenant {
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

/// Send number `n`'s body and Idempotency-Key; each has its own recipient. Every tenth
/// recipient ends in 0000, which the fake fails asynchronously (undelivered, refunded).
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

/// The status send number `n` ends in.
pub fn final_status(n: usize) -> &'static str {
    if n.is_multiple_of(10) {
        "undelivered"
    } else {
        "read"
    }
}

/// How a send was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200, with the `whatsapp_message_id`.
    Sent(i64),
    /// 429: the per-user limit.
    Limited,
    /// No answer: the server went away.
    Unanswered,
}

/// Send number `n` to `base`; anything but 200, 429 or a vanished server fails the test.
pub async fn send(http: &reqwest::Client, base: &str, t: &Tenant, n: usize) -> Answer {
    let (key, body) = send_body(t, n);
    let resp = match http
        .post(format!("{base}/api/user/whatsapp/send"))
        .bearer_auth(&t.key)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
    {
        Ok(resp) => resp,
        Err(_) => return Answer::Unanswered,
    };
    let status = resp.status();
    assert!(
        status == 200 || status == 429 || status.is_server_error(),
        "send {n}: {status}"
    );
    if status == 429 {
        return Answer::Limited;
    }
    match resp.json::<Value>().await {
        Ok(reply) => reply["whatsapp_message_id"]
            .as_i64()
            .map_or(Answer::Unanswered, Answer::Sent),
        Err(_) => Answer::Unanswered,
    }
}

/// Waits up to a minute for every answered send to reach its final status (lost callbacks
/// are fetched from the fake); fails naming some that did not.
pub async fn await_final(
    http: &reqwest::Client,
    base: &str,
    t: &Tenant,
    acked: &BTreeMap<usize, i64>,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending = Vec::new();
    while Instant::now() < deadline {
        pending.clear();
        for (&n, &id) in acked {
            let (_, msg) = get_message(http, base, &t.key, id).await;
            if msg["status"] != final_status(n) {
                pending.push((n, id, msg["status"].clone()));
            }
        }
        if pending.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!(
        "{} messages not final, e.g. {:?}",
        pending.len(),
        &pending[..pending.len().min(5)]
    );
}

/// The sids the fake created, by waygate's message id (from the status callback URL);
/// fails if any message was created twice.
pub fn created_once(fake: &FakeTwilio) -> HashMap<i64, String> {
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
    at_fake
        .into_iter()
        .map(|(id, mut sids)| (id, sids.remove(0)))
        .collect()
}

/// What the database holds, checked against the fake and the clients' answers: each message
/// is at the fake once under its own sid, the fake holds nothing else, one message per
/// Idempotency-Key, and no answered send is missing.
pub fn check_messages(
    rows: &[(i64, String, Option<String>)],
    at_fake: &HashMap<i64, String>,
    acked: &BTreeMap<usize, i64>,
) {
    let mut per_recipient: HashMap<&str, usize> = HashMap::new();
    for (id, to, sid) in rows {
        *per_recipient.entry(to).or_default() += 1;
        assert_eq!(
            sid.as_deref(),
            Some(
                at_fake
                    .get(id)
                    .map(String::as_str)
                    .unwrap_or("(not at the fake)")
            ),
            "message {id}"
        );
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
}
