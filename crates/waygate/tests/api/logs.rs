//! What the binary logs: customers' phone numbers masked unless debug logging is on, and
//! business refusals never at ERROR.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const ADMIN: &str = "logs-admin-token";
const CUSTOMER: &str = "+14155559876";
const CUSTOMER_DIGITS: &str = "14155559876";
/// A number no sender has, which a provider webhook names.
const UNKNOWN_SENDER: &str = "+14155554321";
const TWILIO_TOKEN: &str = "logs-twilio-token";

/// The binary serving on a free loopback port, its log lines (JSON) going to a file.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(log_filter: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = dir.path().join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_waygate"))
            .arg("serve")
            .env_remove("WAYGATE_CONFIG")
            .env_remove("WAYGATE_DATABASE_URL")
            .env("WAYGATE_BIND", format!("127.0.0.1:{port}"))
            .env("WAYGATE_DATA_DIR", dir.path())
            .env("WAYGATE_ADMIN_TOKEN", ADMIN)
            .env("WAYGATE_LOG", log_filter)
            .env("WAYGATE_LOG_FORMAT", "json")
            .env("WAYGATE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("WAYGATE_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start waygate");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await {
                if r.status().is_success() {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("waygate did not become ready");
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        let resp = if method == reqwest::Method::GET {
            resp
        } else {
            resp.json(&body)
        };
        let resp = resp.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A signed Twilio inbound message from CUSTOMER to `to`.
    async fn twilio_inbound(&self, to: &str) -> u16 {
        let path = "/webhooks/twilio/inbound";
        let params: Vec<(String, String)> = [
            (
                "MessageSid",
                "SM00000000000000000000000000000001".to_string(),
            ),
            ("From", format!("whatsapp:{CUSTOMER}")),
            ("To", format!("whatsapp:{to}")),
            ("Body", "hello".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let url = format!("{}{path}", self.base);
        let signature = waygate::provider::twilio::signature::compute(TWILIO_TOKEN, &url, &params);
        reqwest::Client::new()
            .post(url)
            .header("x-twilio-signature", signature)
            .form(&params)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    /// Stops the server and returns its log lines.
    fn stop(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.log).expect("log");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect()
    }
}

/// A send to CUSTOMER, session-status and conversation queries for it (with the `+` encoded
/// and raw), a freeform send from an offline sender, and Twilio inbound messages from it to
/// an unknown and a known number; returns the log lines.
async fn traffic(log_filter: &str) -> Vec<Value> {
    use reqwest::Method;
    let server = Server::start(log_filter).await;
    let (_, user) = server
        .call(
            Method::POST,
            "/api/admin/users",
            ADMIN,
            json!({"name": "A", "email": "a@x.test"}),
        )
        .await;
    let user_id = user["id"].as_i64().expect("user id");
    let (_, key) = server
        .call(
            Method::POST,
            &format!("/api/admin/users/{user_id}/api-keys"),
            ADMIN,
            json!({}),
        )
        .await;
    let key = key["key"].as_str().expect("key").to_string();
    let sender = |phone: &str, status: &str| json!({"phone_number": phone, "display_name": "A", "status": status});
    let senders = format!("/api/admin/users/{user_id}/senders");
    let (_, online) = server
        .call(
            Method::POST,
            &senders,
            ADMIN,
            sender("+14155550100", "online"),
        )
        .await;
    let (_, offline) = server
        .call(
            Method::POST,
            &senders,
            ADMIN,
            sender("+14155550101", "offline"),
        )
        .await;
    let online = online["id"].as_i64().expect("sender id");
    let (_, template) = server
        .call(
            Method::POST,
            &format!("/api/admin/senders/{online}/templates"),
            ADMIN,
            json!({"name": "hi", "language": "en", "category": "utility", "body_text": "Hi there."}),
        )
        .await;
    server
        .call(
            Method::POST,
            &format!("/api/admin/users/{user_id}/credits"),
            ADMIN,
            json!({"amount": 10, "reference": "seed"}),
        )
        .await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/user/whatsapp/send",
            &key,
            json!({"sender_id": online, "template_id": template["id"], "recipient_phone": CUSTOMER}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for phone in ["%2B14155559876", "+14155559876"] {
        let path =
            format!("/api/user/whatsapp/session-status?sender_id={online}&recipient_phone={phone}");
        let (status, body) = server.call(Method::GET, &path, &key, Value::Null).await;
        assert_eq!(status, 200, "{body}");
    }
    let path = format!("/api/user/whatsapp/conversations?recipient_phone=%2B{CUSTOMER_DIGITS}");
    assert_eq!(
        server.call(Method::GET, &path, &key, Value::Null).await.0,
        200
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/user/whatsapp/send-freeform",
            &key,
            json!({"sender_id": offline["id"], "recipient_phone": CUSTOMER, "message": "hi"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error_code"], json!("SENDER_OFFLINE"));
    assert_eq!(server.twilio_inbound(UNKNOWN_SENDER).await, 200);
    assert_eq!(server.twilio_inbound("+14155550100").await, 200);
    server.stop()
}

/// The log lines of requests to `path`.
fn requests_to<'a>(lines: &'a [Value], path: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    lines.iter().filter(move |line| {
        line["span"]["uri"]
            .as_str()
            .is_some_and(|uri| uri.starts_with(path))
    })
}

#[tokio::test]
async fn phone_numbers_are_masked_and_refusals_are_not_errors_at_the_default_level() {
    let lines = traffic("info").await;
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    for line in &text {
        assert!(
            !line.contains(CUSTOMER_DIGITS),
            "a full phone number: {line}"
        );
    }
    let session = requests_to(&lines, "/api/user/whatsapp/session-status").count();
    assert!(
        session >= 2,
        "the session-status requests are logged: {text:#?}"
    );
    assert!(
        text.iter().any(|line| line.contains("*******9876")),
        "the masked number keeps its last four digits: {text:#?}"
    );
    assert!(
        text.iter().any(|line| line.contains("*******4321")),
        "the provider webhook's number is logged masked: {text:#?}"
    );
    assert!(
        !text.iter().any(|line| line.contains(&UNKNOWN_SENDER[1..])),
        "{text:#?}"
    );
    let errors: Vec<&String> = text
        .iter()
        .filter(|l| l.contains(r#""level":"ERROR""#))
        .collect();
    assert!(
        errors.is_empty(),
        "business refusals logged as errors: {errors:#?}"
    );
}

#[tokio::test]
async fn phone_numbers_are_logged_in_full_with_debug_logging() {
    let lines = traffic("waygate=debug,info").await;
    assert!(
        requests_to(&lines, "/api/user/whatsapp/session-status")
            .any(|line| line.to_string().contains(CUSTOMER_DIGITS)),
        "debug logging shows the number: {lines:#?}"
    );
}
