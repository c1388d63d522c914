//! The real `waygate` binary under test: started on a free loopback port with a data
//! directory, seeded over the admin API, signalled, and called with plain or raw HTTP.
// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

pub mod twilio;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const ADMIN: &str = "test-admin-token";
/// The seeded tenant's credit, in account-currency units.
pub const CREDIT_UNITS: i64 = 1_000;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub addr: std::net::SocketAddr,
    log: PathBuf,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// Starts `waygate serve` on `dir` with extra `WAYGATE_*` variables; its log (stderr)
    /// goes to `server.log` in `dir`, appended across restarts.
    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Server {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        Server::start_on(dir, addr, env)
    }

    /// `start_with` on a given address (a restart keeps the address providers call back).
    pub fn start_on(dir: &Path, addr: std::net::SocketAddr, env: &[(&str, &str)]) -> Server {
        let log = dir.join("server.log");
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("server log");
        let child = Command::new(env!("CARGO_BIN_EXE_waygate"))
            .arg("serve")
            .env_remove("WAYGATE_CONFIG")
            .env_remove("WAYGATE_DATABASE_URL")
            .env("WAYGATE_BIND", addr.to_string())
            .env("WAYGATE_DATA_DIR", dir)
            .env("WAYGATE_ADMIN_TOKEN", ADMIN)
            .env("WAYGATE_RATE_LIMIT_PER_SECOND", "100000")
            .env("WAYGATE_LOG", "warn")
            .env("WAYGATE_LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start waygate");
        Server {
            child,
            base: format!("http://{addr}"),
            addr,
            log,
        }
    }

    pub async fn ready(&self, http: &reqwest::Client) {
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("waygate did not become ready");
    }

    /// Sends `signal` (e.g. "TERM", "INT") to the server process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// The process's exit status if it exits within `bound`.
    pub async fn exit_within(&mut self, bound: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < bound {
            if let Some(status) = self.child.try_wait().expect("wait for waygate") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// What the server has logged so far (JSON lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET /api/user/whatsapp/messages/{id}` as the tenant holding `key`.
pub async fn get_message(http: &reqwest::Client, base: &str, key: &str, id: i64) -> (u16, Value) {
    call(
        http,
        reqwest::Method::GET,
        format!("{base}/api/user/whatsapp/messages/{id}"),
        key,
        None,
    )
    .await
}

/// An admin `POST` of `body` to `path`.
pub async fn admin_post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    call(
        http,
        reqwest::Method::POST,
        format!("{base}{path}"),
        ADMIN,
        Some(body),
    )
    .await
}

pub struct Tenant {
    pub user_id: i64,
    pub key: String,
    pub sender_id: i64,
    pub template_id: i64,
}

impl Tenant {
    /// The body of a send of the seeded utility template to `to`.
    pub fn template_send(&self, to: &str) -> Value {
        json!({"sender_id": self.sender_id, "template_id": self.template_id,
               "recipient_phone": to, "variables": {"1": "Ada", "2": "1"}})
    }
}

/// One tenant with a simulator sender, an approved utility template and `CREDIT_UNITS`.
pub async fn seed(http: &reqwest::Client, base: &str) -> Tenant {
    let (_, user) = admin_post(
        http,
        base,
        "/api/admin/users",
        json!({"name": "Acme", "email": "ops@acme.test"}),
    )
    .await;
    let user_id = user["id"].as_i64().unwrap();
    let (_, key) = admin_post(
        http,
        base,
        &format!("/api/admin/users/{user_id}/api-keys"),
        json!({"name": "k"}),
    )
    .await;
    let (_, sender) = admin_post(
        http,
        base,
        &format!("/api/admin/users/{user_id}/senders"),
        json!({"phone_number": "+14155550100", "display_name": "Acme"}),
    )
    .await;
    let sender_id = sender["id"].as_i64().unwrap();
    let (_, template) = admin_post(
        http,
        base,
        &format!("/api/admin/senders/{sender_id}/templates"),
        json!({"name": "code", "language": "en", "category": "utility",
               "body_text": "Hello {{1}}, your code is {{2}}.", "variables": ["name", "code"]}),
    )
    .await;
    let (status, _) = admin_post(
        http,
        base,
        &format!("/api/admin/users/{user_id}/credits"),
        json!({"amount": CREDIT_UNITS, "reference": "seed"}),
    )
    .await;
    assert!((200..300).contains(&status), "credit: {status}");
    Tenant {
        user_id,
        key: key["key"].as_str().unwrap().to_string(),
        sender_id,
        template_id: template["id"].as_i64().unwrap(),
    }
}

/// What a raw HTTP exchange came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The status code and the whole response.
    Answered(u16, String),
    /// The server closed (or reset) the connection without a response.
    Closed,
    /// Nothing happened within the time given.
    TimedOut,
}

/// GET `path` on a new connection (closed after the response), within `within`.
pub async fn raw_get(addr: std::net::SocketAddr, path: &str, within: Duration) -> Reply {
    let exchange = async {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            return Reply::Closed;
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: waygate\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            return Reply::Closed;
        }
        read_reply(&mut stream).await
    };
    tokio::time::timeout(within, exchange)
        .await
        .unwrap_or(Reply::TimedOut)
}

/// Reads a response to its end (the server closes the connection after it).
pub async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut response = Vec::new();
    // A reset after part of a response still leaves what was read.
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    match text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
    {
        Some(code) => Reply::Answered(code, text),
        None => Reply::Closed,
    }
}

/// The value of an unlabelled metric in a Prometheus text page.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Opens a database file the server wrote (WAL mode lets it be read while the server runs).
pub fn database(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("waygate.db")).expect("open the database")
}
