//! Shared helpers: an HTTP client for the fake's API and a tiny webhook receiver.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use serde_json::Value;
use twilio_fake::{signature, FakeTwilio};

pub const FROM: &str = "whatsapp:+14155238886";
pub const TO: &str = "whatsapp:+15552229999";

pub fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
    raw.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn messages_url(fake: &FakeTwilio) -> String {
    format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        fake.base_url(),
        fake.account_sid()
    )
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
}

/// POSTs a create request with the account's credentials.
pub async fn create(fake: &FakeTwilio, form: &[(&str, &str)]) -> Answer {
    create_as(fake, fake.account_sid(), fake.auth_token(), form).await
}

pub async fn create_as(
    fake: &FakeTwilio,
    user: &str,
    password: &str,
    form: &[(&str, &str)],
) -> Answer {
    let response = reqwest::Client::new()
        .post(messages_url(fake))
        .basic_auth(user, Some(password))
        .form(form)
        .send()
        .await
        .expect("create request");
    answer(response).await
}

pub async fn get(fake: &FakeTwilio, path_and_query: &str) -> Answer {
    let response = reqwest::Client::new()
        .get(format!("{}{path_and_query}", fake.base_url()))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .send()
        .await
        .expect("get request");
    answer(response).await
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let json = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
    }
}

/// Asserts Twilio's legacy error envelope.
pub fn assert_error(answer: &Answer, status: u16, code: i64) {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(answer.json["code"], code, "{}", answer.json);
    assert_eq!(answer.json["status"], status);
    assert_eq!(
        answer.json["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(answer.json["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

/// One webhook request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The full URL the fake requested (scheme, host, port, path, query).
    pub url: String,
    pub headers: HeaderMap,
    pub params: Vec<(String, String)>,
}

impl Received {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// True when `X-Twilio-Signature` is what `signature()` gives over the received URL and params.
    pub fn signed_with(&self, auth_token: &str) -> bool {
        self.header("X-Twilio-Signature") == signature(auth_token, &self.url, &self.params)
    }
}

/// A loopback webhook receiver that records every request and answers 204 (or a chosen status).
pub struct Receiver {
    pub base: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::answering(StatusCode::NO_CONTENT).await
    }

    /// A receiver whose every answer has this status (e.g. a client that is failing).
    pub async fn answering(status: StatusCode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (record_base, record) = (base.clone(), got.clone());
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (base, got) = (record_base.clone(), record.clone());
            async move {
                let params = url::form_urlencoded::parse(&body).into_owned().collect();
                let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
                got.lock().unwrap().push(Received {
                    url: format!("{base}{path}"),
                    headers,
                    params,
                });
                status
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, got }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (panics after 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..1000 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("only {} of {n} webhooks arrived", self.received().len());
    }
}

/// Creates a message whose status callback URL points at `callback`; returns its SID.
pub async fn send_to(fake: &FakeTwilio, callback: &str, to: &str) -> String {
    let answer = create(
        fake,
        &[
            ("To", to),
            ("From", FROM),
            ("Body", "hi"),
            ("StatusCallback", callback),
        ],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    answer.json["sid"].as_str().unwrap().to_string()
}

/// The message's current status as `GET …/Messages/{sid}.json` tells it.
pub async fn fetched_status(fake: &FakeTwilio, sid: &str) -> String {
    let path = format!(
        "/2010-04-01/Accounts/{}/Messages/{sid}.json",
        fake.account_sid()
    );
    let answer = get(fake, &path).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["status"].as_str().unwrap().to_string()
}

/// A request to any of the fake's APIs with the account's credentials and, if given, a JSON body
/// (the Content and Senders APIs take JSON). `path_or_url` may be absolute, as paging links are.
pub async fn call(
    fake: &FakeTwilio,
    method: reqwest::Method,
    path_or_url: &str,
    body: Option<Value>,
) -> Answer {
    let url = if path_or_url.starts_with("http") {
        path_or_url.to_string()
    } else {
        format!("{}{path_or_url}", fake.base_url())
    };
    let mut request = reqwest::Client::new()
        .request(method, url)
        .basic_auth(fake.account_sid(), Some(fake.auth_token()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.expect("request")).await
}

/// True for `prefix` + 32 lowercase hex digits.
pub fn is_sid(value: &Value, prefix: &str) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 34
            && s.starts_with(prefix)
            && s[2..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `"2015-07-30T19:00:00Z"`.
pub fn is_iso8601(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        let b = s.as_bytes();
        s.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'Z'
            && s.bytes()
                .enumerate()
                .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit())
    })
}
