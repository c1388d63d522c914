//! Shared helpers: a Graph client for the fake and a loopback webhook receiver that checks
//! signatures with its own HMAC computation.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use hmac::{Hmac, Mac};
use meta_fake::{Config, FakeMeta};
use serde_json::{json, Value};
use sha2::Sha256;

pub const VERSION: &str = "v23.0";
pub const TO: &str = "15552229999";

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(Value::Null);
    Answer { status, json }
}

/// A Graph request with the fake's token; `path` starts after the version.
pub async fn graph(
    fake: &FakeMeta,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/{VERSION}/{path}", fake.base_url()))
        .bearer_auth(fake.access_token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.expect("graph request")).await
}

pub async fn post_message(fake: &FakeMeta, body: Value) -> Answer {
    let path = format!("{}/messages", fake.phone_number_id());
    graph(fake, reqwest::Method::POST, &path, Some(body)).await
}

pub fn text_body(to: &str, text: &str, data: Option<&str>) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": false, "body": text},
    });
    if let Some(data) = data {
        body["biz_opaque_callback_data"] = data.into();
    }
    body
}

pub fn template_body(name: &str, language: &str, params: &[&str], data: Option<&str>) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| json!({"type": "text", "text": p}))
        .collect();
    let mut body = json!({
        "messaging_product": "whatsapp",
        "to": format!("+{TO}"),
        "type": "template",
        "template": {
            "name": name,
            "language": {"policy": "deterministic", "code": language},
            "components": [{"type": "body", "parameters": parameters}],
        },
    });
    if let Some(data) = data {
        body["biz_opaque_callback_data"] = data.into();
    }
    body
}

/// Sends a text message and returns its wamid.
pub async fn send_text(fake: &FakeMeta, to: &str, data: Option<&str>) -> String {
    let answer = post_message(fake, text_body(to, "hi", data)).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Asserts Meta's error envelope.
pub fn assert_graph_error(answer: &Answer, status: u16, code: i64) {
    assert_eq!(answer.status, status, "{}", answer.json);
    let error = &answer.json["error"];
    assert_eq!(error["code"], code, "{}", answer.json);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["type"]
        .as_str()
        .is_some_and(|t| t.ends_with("Exception")));
    assert!(error["fbtrace_id"].as_str().is_some_and(|t| !t.is_empty()));
}

/// A body template creation accepts: BODY with two placeholders and their samples.
pub fn new_template(name: &str, language: &str) -> Value {
    json!({
        "name": name,
        "language": language,
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Your order"},
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships today",
             "example": {"body_text": [["Ada", "12345"]]}},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://example.com/track"},
                {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550001111"}]},
        ],
    })
}

/// Waits until the template's status read over HTTP is `status` (panics after 5 s).
pub async fn wait_template_status(fake: &FakeMeta, id: &str, status: &str) -> Value {
    for _ in 0..500 {
        let answer = graph(fake, reqwest::Method::GET, id, None).await;
        if answer.json["status"] == status {
            return answer.json;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("template {id} never became {status}");
}

/// HMAC-SHA256 computed here, independently of the fake's own signer.
pub fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// One webhook POST as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn signed_with(&self, secret: &str) -> bool {
        self.header("x-hub-signature-256") == expected_signature(secret, &self.body)
    }

    /// Every change of every entry.
    pub fn changes(&self) -> Vec<Value> {
        assert_eq!(self.json["object"], "whatsapp_business_account");
        self.json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["changes"].as_array().unwrap().clone())
            .collect()
    }

    /// Every `statuses[]` element, in order.
    pub fn statuses(&self) -> Vec<Value> {
        self.changes()
            .iter()
            .filter(|c| c["field"] == "messages")
            .flat_map(|c| {
                c["value"]["statuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// A loopback webhook receiver that records every request and answers 200 (or a chosen status).
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::answering(StatusCode::OK).await
    }

    /// A receiver whose every answer has this status (e.g. a client that is failing).
    pub async fn answering(status: StatusCode) -> Receiver {
        Self::refusing_first(usize::MAX, status).await
    }

    /// A receiver that answers its first `failures` requests with `status`, then 200.
    pub async fn refusing_first(failures: usize, status: StatusCode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/meta", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let record = got.clone();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let got = record.clone();
            async move {
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut got = got.lock().unwrap();
                let seen = got.len();
                got.push(Received {
                    headers,
                    body: body.to_vec(),
                    json,
                });
                if seen < failures {
                    status
                } else {
                    StatusCode::OK
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, got }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Every status received so far, across POSTs, in arrival order.
    pub fn statuses(&self) -> Vec<Value> {
        self.received()
            .iter()
            .flat_map(Received::statuses)
            .collect()
    }

    /// Waits until at least `n` statuses arrived (panics after 10 s).
    pub async fn wait_statuses(&self, n: usize) -> Vec<Value> {
        for _ in 0..1000 {
            let got = self.statuses();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("only {} of {n} statuses arrived", self.statuses().len());
    }

    /// A config posting to this receiver, in Manual mode.
    pub fn config(&self) -> Config {
        Config {
            webhook_url: Some(self.url.clone()),
            ..Config::default()
        }
    }
}

/// `(wamid, status)` of each status.
pub fn id_status(statuses: &[Value]) -> Vec<(String, String)> {
    statuses
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
