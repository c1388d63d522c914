//! A real server on a loopback port with a temporary database, driven over HTTP. Jobs run
//! only when a test calls `run_jobs`, and time moves only when it calls `advance`.
//!
//! The database is SQLite in a temporary directory, or, with `WAYGATE_TEST_BACKEND=postgres`,
//! a fresh PostgreSQL schema (`support/postgres.rs`) dropped when the test ends.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use waygate::clock::Clock;
use waygate::config::Config;
use waygate::jobs::Worker;
use waygate::App;

pub const ADMIN: &str = "test-admin-token";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Clock,
    pub worker: Arc<Worker>,
    pub services: Arc<waygate::service::Services>,
    stop: CancellationToken,
    storage: Option<Storage>,
    overrides: String,
}

/// The test's database: its data directory, and its PostgreSQL schema when the suite runs
/// against PostgreSQL.
pub struct Storage {
    dir: tempfile::TempDir,
    postgres: Option<crate::postgres::PgSchema>,
}

impl Storage {
    pub async fn new() -> Storage {
        let postgres = match std::env::var("WAYGATE_TEST_BACKEND").as_deref() {
            Ok("postgres") => Some(crate::postgres::PgSchema::create().await),
            Ok("sqlite") | Err(_) => None,
            Ok(other) => panic!("WAYGATE_TEST_BACKEND must be sqlite or postgres, not {other}"),
        };
        Storage {
            dir: tempfile::tempdir().expect("temp dir"),
            postgres,
        }
    }

    /// The configuration lines that point a server at this database.
    fn config(&self) -> String {
        let mut lines = format!("data_dir = {:?}\n", self.dir.path().display().to_string());
        if let Some(schema) = &self.postgres {
            lines.push_str(&format!("database_url = {:?}\n", schema.url));
        }
        lines
    }
}

/// A tenant with one online simulator sender, templates and a balance.
pub struct Tenant {
    pub user_id: i64,
    pub key: String,
    pub sender_id: i64,
    /// "Hello {{1}}, your code is {{2}}." with variables ["name", "code"], utility.
    pub template_id: i64,
}

/// Sends `req` and reads the answer; a body that is not JSON is kept as a string.
pub async fn answer(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with("").await
}

/// Starts the server with `overrides` (TOML) over the test defaults.
pub async fn spawn_with(overrides: &str) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    start(Storage::new().await, overrides, Clock::default(), listener).await
}

/// Binds `addr` again once the server that held it has let go.
async fn rebind(addr: std::net::SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr} again");
}

async fn start(
    storage: Storage,
    overrides: &str,
    clock: Clock,
    listener: tokio::net::TcpListener,
) -> TestApp {
    let addr = listener.local_addr().expect("addr");
    // Providers call back on the address the server really listens on.
    let defaults = format!(
        "{}admin_token = {ADMIN:?}\nwebhooks_allow_private = true\nlog = \"warn\"\npublic_url = \"http://{addr}\"\n",
        storage.config()
    );
    // Keys given in `overrides` replace the test defaults.
    let overridden = |line: &str| {
        let key = line.split('=').next().unwrap_or_default().trim();
        overrides
            .lines()
            .any(|o| o.split('=').next().unwrap_or_default().trim() == key)
    };
    let base: String = defaults
        .lines()
        .filter(|l| !overridden(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let config = Config::from_toml(&format!("{base}{overrides}")).expect("test config");
    let app = App::build(config, clock.clone()).await.expect("app builds");
    let worker = app.worker.clone();
    let services = app.services().clone();
    let stop = CancellationToken::new();
    tokio::spawn(app.serve(listener, stop.clone(), false));
    TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        clock,
        worker,
        services,
        stop,
        storage: Some(storage),
        overrides: overrides.to_string(),
    }
}

impl TestApp {
    /// Stops this server and starts a new process-equivalent on the same database and clock.
    pub async fn restart(mut self) -> TestApp {
        self.stop.cancel();
        let storage = self
            .storage
            .take()
            .expect("a running app owns its database");
        let addr: std::net::SocketAddr = self
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("base address");
        let listener = rebind(addr).await;
        start(
            storage,
            &self.overrides.clone(),
            self.clock.clone(),
            listener,
        )
        .await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        answer(req).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    /// An admin call that must succeed; returns its body.
    pub async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let reply = self.request(method, path, Some(ADMIN), Some(body)).await;
        assert!(
            reply.status.is_success(),
            "admin {path}: {} {}",
            reply.status,
            reply.body
        );
        reply.body
    }

    /// A tenant with a sender, a two-variable template and `balance` units.
    pub async fn tenant_with_balance(&self, balance: f64) -> Tenant {
        let user = self
            .admin(
                Method::POST,
                "/api/admin/users",
                json!({"name": "Acme", "email": "ops@acme.test"}),
            )
            .await;
        let user_id = user["id"].as_i64().unwrap();
        let key = self
            .admin(
                Method::POST,
                &format!("/api/admin/users/{user_id}/api-keys"),
                json!({"name": "k"}),
            )
            .await;
        let sender = self
            .admin(
                Method::POST,
                &format!("/api/admin/users/{user_id}/senders"),
                json!({"phone_number": "+14155550100", "display_name": "Acme"}),
            )
            .await;
        let sender_id = sender["id"].as_i64().unwrap();
        let template = self
            .admin(
                Method::POST,
                &format!("/api/admin/senders/{sender_id}/templates"),
                json!({"name": "code", "language": "en", "category": "utility",
                       "body_text": "Hello {{1}}, your code is {{2}}.", "variables": ["name", "code"]}),
            )
            .await;
        if balance > 0.0 {
            self.admin(
                Method::POST,
                &format!("/api/admin/users/{user_id}/credits"),
                json!({"amount": balance, "reference": format!("seed-{user_id}")}),
            )
            .await;
        }
        Tenant {
            user_id,
            key: key["key"].as_str().unwrap().to_string(),
            sender_id,
            template_id: template["id"].as_i64().unwrap(),
        }
    }

    pub async fn tenant(&self) -> Tenant {
        self.tenant_with_balance(10.0).await
    }

    /// Runs due jobs until none is due now.
    pub async fn run_jobs(&self) {
        for _ in 0..100 {
            let read = self
                .services
                .sync_due_catalog()
                .await
                .expect("catalog syncs");
            if read + self.worker.run_due().await.expect("jobs run") == 0 {
                return;
            }
        }
        panic!("jobs keep coming");
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// A template send from `t` to `to` with valid variables.
    pub async fn send_template(&self, t: &Tenant, to: &str) -> Reply {
        self.post(
            "/api/user/whatsapp/send",
            &t.key,
            json!({"sender_id": t.sender_id, "template_id": t.template_id, "recipient_phone": to,
                   "variables": {"1": "Ada", "2": "1234"}}),
        )
        .await
    }

    /// A valid template send from `t` to `to` at 0.02, for calling the store directly.
    pub fn new_send(
        &self,
        t: &Tenant,
        to: &str,
        dispatch: waygate::store::Dispatch,
    ) -> waygate::store::NewSend {
        waygate::store::NewSend {
            user_id: t.user_id,
            sender_id: t.sender_id,
            recipient: to.into(),
            recipient_name: None,
            template: Some(waygate::store::TemplateSend {
                template_id: t.template_id,
                variables: vec!["Ada".into(), "1".into()],
                messaging_limit: None,
            }),
            body: "Hello Ada, your code is 1.".into(),
            price: waygate::store::SendPrice::flat(waygate_core::money::Money::from_micros(20_000)),
            idempotency: None,
            now: self.clock.now_ms(),
            dispatch,
            template_opens: true,
        }
    }

    /// The Message `id` as its tenant reads it.
    pub async fn message(&self, t: &Tenant, id: &Value) -> Value {
        self.get(&format!("/api/user/whatsapp/messages/{id}"), &t.key)
            .await
            .body
    }

    pub async fn balance(&self, t: &Tenant) -> f64 {
        self.get("/api/user/me", &t.key).await.body["total_balance"]
            .as_f64()
            .unwrap()
    }
}
