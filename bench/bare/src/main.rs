//! `bench-bare ADDR`: the bare-handler ceiling for `bench/run`. `POST /api/user/whatsapp/send`
//! parses the JSON send body into a struct and answers a fixed 200 shaped like waygate's; no
//! auth, no storage, no provider. Everything else is 404.

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

#[path = "../../send_body.rs"]
mod send_body;
use send_body::SendBody;

async fn send(Json(_body): Json<SendBody>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::OK,
        Json(json!({
            "success": true,
            "conversation_id": 1,
            "message_id": 1,
            "whatsapp_message_id": 1,
            "message_sid": "SM00000000000000000000000000000000",
            "status": "queued",
        })),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_string());
    let app = Router::new().route("/api/user/whatsapp/send", post(send));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench-bare listening on {addr}");
    axum::serve(listener, app).await
}
