//! `bench-naive ADDR DB TENANTS`: a reference point for `bench/run`, not a design. The
//! simplest durable send path: axum parses the body into a struct, looks the bearer key up
//! in a map, renders the template by replacing placeholders and hands the send to one
//! SQLite writer thread; the writer runs whatever has queued in one transaction (a
//! conversation looked up, inserted or touched; a message, a ledger row, the balance moved:
//! five indexed rows for a new conversation), commits with `synchronous=FULL` in WAL mode
//! (an fsync a commit), then answers each send. No rate limit, window, idempotency, status
//! steps or journal. It seeds TENANTS users with keys `naive-1`.. on an empty database.

use std::collections::HashMap;
use std::sync::{mpsc, Arc};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use tokio::sync::oneshot;

#[path = "../../send_body.rs"]
mod send_body;
use send_body::SendBody;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
  sender_id INTEGER NOT NULL, recipient TEXT NOT NULL, last_message_at INTEGER NOT NULL,
  UNIQUE (sender_id, recipient));
CREATE INDEX IF NOT EXISTS conversations_activity ON conversations (user_id, last_message_at, id);
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL, recipient TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL,
  price INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages (conversation_id, id);
CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
  amount INTEGER NOT NULL, message_id INTEGER NOT NULL, created_at INTEGER NOT NULL);
";

const PRICE: i64 = 8_000;

struct Send {
    user_id: i64,
    sender_id: i64,
    recipient: String,
    body: String,
    reply: oneshot::Sender<Result<(i64, i64), String>>,
}

#[derive(Clone)]
struct App {
    keys: Arc<HashMap<String, i64>>,
    writer: mpsc::Sender<Send>,
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
    let (reply, answer) = oneshot::channel();
    let queued = app.writer.send(Send {
        user_id,
        sender_id: body.sender_id,
        recipient: body.recipient_phone,
        body: text,
        reply,
    });
    match (queued, answer.await) {
        (Ok(()), Ok(Ok((conversation_id, message_id)))) => (
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
        (_, Ok(Err(e))) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "writer gone"),
    }
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as i64)
}

fn record(c: &Connection, s: &Send) -> rusqlite::Result<(i64, i64)> {
    let now = now_ms();
    let existing: Option<i64> = c
        .prepare_cached("SELECT id FROM conversations WHERE sender_id = ?1 AND recipient = ?2")?
        .query_row(params![s.sender_id, s.recipient], |r| r.get(0))
        .optional()?;
    let conversation_id = match existing {
        Some(id) => {
            c.prepare_cached("UPDATE conversations SET last_message_at = ?2 WHERE id = ?1")?
                .execute(params![id, now])?;
            id
        }
        None => {
            c.prepare_cached(
                "INSERT INTO conversations (user_id, sender_id, recipient, last_message_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![s.user_id, s.sender_id, s.recipient, now])?;
            c.last_insert_rowid()
        }
    };
    c.prepare_cached(
        "INSERT INTO messages (conversation_id, user_id, recipient, body, status, price, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6)",
    )?
    .execute(params![conversation_id, s.user_id, s.recipient, s.body, PRICE, now])?;
    let message_id = c.last_insert_rowid();
    c.prepare_cached(
        "INSERT INTO ledger (user_id, amount, message_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![s.user_id, -PRICE, message_id, now])?;
    let moved = c
        .prepare_cached("UPDATE users SET balance = balance - ?2 WHERE id = ?1 AND balance >= ?2")?
        .execute(params![s.user_id, PRICE])?;
    if moved != 1 {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    Ok((conversation_id, message_id))
}

/// Runs everything queued in one transaction, commits (fsync), then answers. Any failure
/// rolls the whole batch back and answers each send with it.
fn writer(c: Connection, inbox: mpsc::Receiver<Send>) {
    while let Ok(first) = inbox.recv() {
        let mut batch = vec![first];
        batch.extend(inbox.try_iter().take(1023));
        let run = || -> rusqlite::Result<Vec<(i64, i64)>> {
            c.execute_batch("BEGIN IMMEDIATE")?;
            let ids = batch
                .iter()
                .map(|s| record(&c, s))
                .collect::<Result<_, _>>()?;
            c.execute_batch("COMMIT")?;
            Ok(ids)
        };
        match run() {
            Ok(ids) => {
                for (s, ids) in batch.into_iter().zip(ids) {
                    let _ = s.reply.send(Ok(ids));
                }
            }
            Err(e) => {
                let _ = c.execute_batch("ROLLBACK");
                for s in batch {
                    let _ = s.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8091".into());
    let db = args.next().unwrap_or_else(|| "naive.db".into());
    let tenants: i64 = args.next().map_or(Ok(1000), |n| n.parse())?;
    let c = Connection::open(&db)?;
    c.execute_batch(SCHEMA)?;
    c.pragma_update(None, "synchronous", "FULL")?;
    for id in 1..=tenants {
        c.execute(
            "INSERT OR IGNORE INTO users (id, key, balance) VALUES (?1, ?2, ?3)",
            params![id, format!("naive-{id}"), i64::MAX / 2],
        )?;
    }
    let keys: HashMap<String, i64> = c
        .prepare("SELECT key, id FROM users")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let (to_writer, inbox) = mpsc::channel();
    std::thread::Builder::new()
        .name("naive-writer".into())
        .spawn(move || writer(c, inbox))?;
    let app = App {
        keys: Arc::new(keys),
        writer: to_writer,
    };
    let router = Router::new()
        .route("/api/user/whatsapp/send", post(send))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench-naive listening on {addr}");
    axum::serve(listener, router).await?;
    Ok(())
}
