//! Twilio's HTTP client: hyper's pooled client over rustls, without reqwest's layers. reqwest
//! parses each request's URL twice (its redirect layer, then the response's URL), which was
//! a fifth of the dispatcher's instructions in the drain.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Twilio's answers are a few KiB; anything far larger is not one.
const MAX_ANSWER_BYTES: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// For the whole exchange, from connecting to the answer's last byte.
    timeout: Duration,
}

/// Twilio's answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why no answer came: `Connect` means the request never left (safe to send again), `Failed`
/// that it may have reached Twilio.
#[derive(Debug)]
pub enum TransportError {
    Connect(String),
    Failed(String),
}

impl Transport {
    pub fn new(timeout: Duration) -> Transport {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector);
        Transport { client, timeout }
    }

    pub async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Answer, TransportError> {
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| match e.is_connect() {
                        true => TransportError::Connect(format!("cannot connect to Twilio: {e}")),
                        false => TransportError::Failed(format!("request to Twilio failed: {e}")),
                    })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    TransportError::Failed(format!("reading Twilio's answer failed: {e}"))
                })?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::Failed(format!(
                    "no answer from Twilio within {} ms",
                    self.timeout.as_millis()
                )))
            })
    }
}

impl Answer {
    /// Retry-After in seconds, as Twilio sends it with a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_and_a_silent_peer_a_timeout() {
        // A port that nothing listens on: bound, then closed.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let transport = Transport::new(Duration::from_millis(300));
        let get = |addr: std::net::SocketAddr| {
            Request::get(format!("http://{addr}/"))
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        let refused = transport.exchange(get(addr)).await.err().unwrap();
        assert!(matches!(refused, TransportError::Connect(_)), "{refused:?}");

        // A peer that accepts and never answers: the request may have arrived.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let (_socket, _) = silent.accept().await.unwrap();
            std::future::pending::<()>().await
        });
        let timed_out = transport.exchange(get(addr)).await.err().unwrap();
        assert!(
            matches!(timed_out, TransportError::Failed(_)),
            "{timed_out:?}"
        );
    }
}
