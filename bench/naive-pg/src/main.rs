//! `bench-naive-pg ADDR URL TENANTS [POOL]`: a reference point for `bench/run`, not a design.
//! The simplest durable send path on PostgreSQL: axum parses the body into a struct, looks
//! the bearer key up in a map, renders the template by replacing placeholders, takes a
//! connection from a pool of POOL (default 64) and runs one transaction per send (the
//! conversation upserted, a message, a ledger row, the balance moved: the rows `bench-naive`
//! writes on SQLite), one statement after another; it answers after COMMIT (PostgreSQL's
//! defaults: `synchronous_commit = on`, an fsync of the WAL a commit, shared by the commits
//! that wait together). No rate limit, window, idempotency, status steps or journal. It
//! creates its tables in the database (and schema, with `options=-csearch_path=…`) the URL
//! names and seeds TENANTS users with keys `naive-1`.. .

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::{json, Value};

#[path = "../../send_body.rs"]
mod send_body;
use send_body::SendBody;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (id BIGINT PRIMARY KEY, key TEXT NOT NULL UNIQUE, balance BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL,
  sender_id BIGINT NOT NULL, recipient TEXT NOT NULL, last_message_at BIGINT NOT NULL,
  UNIQUE (sender_id, recipient));
CREATE INDEX IF NOT EXISTS conversations_activity ON conversations (user_id, last_message_at, id);
CREATE TABLE IF NOT EXISTS messages (id BIGSERIAL PRIMARY KEY, conversation_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL, recipient TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL,
  price BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages (conversation_id, id);
CREATE TABLE IF NOT EXISTS ledger (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL,
  amount BIGINT NOT NULL, message_id BIGINT NOT NULL, created_at BIGINT NOT NULL);
";

const PRICE: i64 = 8_000;

#[derive(Clone)]
struct App {
    keys: Arc<HashMap<String, i64>>,
    pool: Pool,
}

type Answer = (StatusCode, Json<Value>);

fn error(status: StatusCode, message: &str) -> Answer {
    (
        status,
        Json(json!({ "success": false, "message": message })),
    )
}

async fn send(State(app): State<App>, headers: HeaderMap, Json(body): Json<SendBody>) -> Answer {
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(&user_id) = key.and_then(|k| app.keys.get(k)) else {
        return error(StatusCode::UNAUTHORIZED, "unknown key");
    };
    if body.sender_id != user_id || body.template_id != user_id {
        return error(StatusCode::NOT_FOUND, "unknown sender or template");
    }
    let mut text = String::from("Hello {{1}}, your code is {{2}}.");
    for (name, value) in &body.variables {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    match record(
        &app.pool,
        user_id,
        body.sender_id,
        &body.recipient_phone,
        &text,
    )
    .await
    {
        Ok((conversation_id, message_id)) => (
            StatusCode::OK,
            Json(json!({
                "success": true,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "whatsapp_message_id": message_id,
                "message_sid": null,
                "status": "queued",
            })),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as i64)
}

/// One transaction: the conversation upserted, the message and its ledger row inserted, the
/// balance moved; committed before the answer. A failure rolls it back (the transaction is
/// dropped without commit).
async fn record(
    pool: &Pool,
    user_id: i64,
    sender_id: i64,
    recipient: &str,
    body: &str,
) -> Result<(i64, i64), String> {
    let now = now_ms();
    let mut c = pool.get().await.map_err(|e| e.to_string())?;
    let run = async {
        let tx = c.transaction().await?;
        let upsert = tx
            .prepare_cached(
                "INSERT INTO conversations (user_id, sender_id, recipient, last_message_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (sender_id, recipient) \
                 DO UPDATE SET last_message_at = EXCLUDED.last_message_at RETURNING id",
            )
            .await?;
        let conversation_id: i64 = tx
            .query_one(&upsert, &[&user_id, &sender_id, &recipient, &now])
            .await?
            .get(0);
        let message = tx
            .prepare_cached(
                "INSERT INTO messages (conversation_id, user_id, recipient, body, status, price, created_at) \
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6) RETURNING id",
            )
            .await?;
        let message_id: i64 = tx
            .query_one(
                &message,
                &[&conversation_id, &user_id, &recipient, &body, &PRICE, &now],
            )
            .await?
            .get(0);
        let ledger = tx
            .prepare_cached(
                "INSERT INTO ledger (user_id, amount, message_id, created_at) VALUES ($1, $2, $3, $4)",
            )
            .await?;
        tx.execute(&ledger, &[&user_id, &-PRICE, &message_id, &now])
            .await?;
        let balance = tx
            .prepare_cached(
                "UPDATE users SET balance = balance - $2 WHERE id = $1 AND balance >= $2",
            )
            .await?;
        let moved = tx.execute(&balance, &[&user_id, &PRICE]).await?;
        if moved != 1 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok::<_, tokio_postgres::Error>(Some((conversation_id, message_id)))
    };
    match run.await {
        Ok(Some(ids)) => Ok(ids),
        Ok(None) => Err("insufficient balance".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8092".into());
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let tenants: i64 = args.next().map_or(Ok(1000), |n| n.parse())?;
    let pool_size: usize = args.next().map_or(Ok(64), |n| n.parse())?;
    let config: tokio_postgres::Config = url.parse()?;
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(pool_size).build()?;
    let c = pool.get().await?;
    c.batch_execute(SCHEMA).await?;
    c.execute(
        "INSERT INTO users (id, key, balance) \
         SELECT g, 'naive-' || g, $2 FROM generate_series(1, $1::BIGINT) AS g ON CONFLICT DO NOTHING",
        &[&tenants, &(i64::MAX / 2)],
    )
    .await?;
    let keys: HashMap<String, i64> = c
        .query("SELECT key, id FROM users", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    drop(c);
    let app = App {
        keys: Arc::new(keys),
        pool,
    };
    let router = Router::new()
        .route("/api/user/whatsapp/send", post(send))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench-naive-pg listening on {addr} (pool of {pool_size})");
    axum::serve(listener, router).await?;
    Ok(())
}
