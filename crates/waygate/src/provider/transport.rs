//! The providers' HTTP client: hyper's pooled client over rustls, without reqwest's layers. reqwest
//! parses each request's URL twice (its redirect layer, then the response's URL), which was
//! a fifth of the dispatcher's instructions in the drain. Behind an egress proxy (named by
//! HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY) requests go through reqwest, which
//! speaks to proxies, as they always did.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;

/// Providers' answers are a few KiB; anything far larger is not one.
const MAX_ANSWER_BYTES: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Transport {
    route: Route,
    /// For the whole exchange, from connecting to the answer's last byte.
    timeout: Duration,
    /// The provider's name, for messages.
    peer: &'static str,
}

enum Route {
    Direct(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
    Proxied(reqwest::Client),
}

/// The provider's answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why no answer came: `Connect` means the request never left (safe to send again), `Failed`
/// that it may have reached the provider.
#[derive(Debug)]
pub enum TransportError {
    Connect(String),
    Failed(String),
}

impl Transport {
    /// Direct, unless the environment names a proxy for `target`.
    pub fn for_target(target: &Uri, timeout: Duration, peer: &'static str) -> Option<Transport> {
        match Matcher::from_env().intercept(target) {
            None => Some(Transport::direct(timeout, peer)),
            // reqwest reads the same variables and does the rest (CONNECT, credentials).
            Some(_) => Transport::proxied(reqwest::Client::builder(), timeout, peer),
        }
    }

    fn proxied(
        builder: reqwest::ClientBuilder,
        timeout: Duration,
        peer: &'static str,
    ) -> Option<Transport> {
        let client = builder
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| tracing::error!(error = %e, peer, "cannot build the provider's client for the proxy; the provider is off"))
            .ok()?;
        Some(Transport {
            route: Route::Proxied(client),
            timeout,
            peer,
        })
    }

    fn direct(timeout: Duration, peer: &'static str) -> Transport {
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
        Transport {
            route: Route::Direct(client),
            timeout,
            peer,
        }
    }

    pub async fn exchange(&self, request: Request<Bytes>) -> Result<Answer, TransportError> {
        let exchange = async {
            match &self.route {
                Route::Direct(client) => {
                    let response = client
                        .request(request.map(Full::new))
                        .await
                        .map_err(|e| self.failure(e.is_connect(), &e))?;
                    let (parts, body) = response.into_parts();
                    let body = Limited::new(body, MAX_ANSWER_BYTES)
                        .collect()
                        .await
                        .map_err(|e| self.failure(false, &e))?
                        .to_bytes();
                    Ok(Answer {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    })
                }
                Route::Proxied(client) => {
                    let request =
                        reqwest::Request::try_from(request).map_err(|e| self.failure(true, &e))?;
                    let response = client
                        .execute(request)
                        .await
                        .map_err(|e| self.failure(e.is_connect(), &e))?;
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| self.failure(false, &e))?;
                    Ok(Answer {
                        status,
                        headers,
                        body,
                    })
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::Failed(format!(
                    "no answer from {} within {} ms",
                    self.peer,
                    self.timeout.as_millis()
                )))
            })
    }
}

impl Transport {
    /// A request that never left (`unsent`), or one that may have reached the provider.
    fn failure(&self, unsent: bool, e: &dyn std::fmt::Display) -> TransportError {
        let peer = self.peer;
        match unsent {
            true => TransportError::Connect(format!("cannot connect to {peer}: {e}")),
            false => TransportError::Failed(format!("request to {peer} failed: {e}")),
        }
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn get(url: String) -> Request<Bytes> {
        Request::get(url).body(Bytes::new()).unwrap()
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_and_a_silent_peer_a_timeout() {
        // A port that nothing listens on: bound, then closed.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let transport = Transport::direct(Duration::from_millis(300), "Twilio");
        let refused = transport
            .exchange(get(format!("http://{addr}/")))
            .await
            .err()
            .unwrap();
        assert!(matches!(refused, TransportError::Connect(_)), "{refused:?}");

        // A peer that accepts and never answers: the request may have arrived.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let (_socket, _) = silent.accept().await.unwrap();
            std::future::pending::<()>().await
        });
        let timed_out = transport
            .exchange(get(format!("http://{addr}/")))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(timed_out, TransportError::Failed(_)),
            "{timed_out:?}"
        );
    }

    #[tokio::test]
    async fn behind_a_proxy_the_request_goes_to_the_proxy_with_its_whole_url() {
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = proxy.local_addr().unwrap();
        let seen = tokio::spawn(async move {
            let (mut socket, _) = proxy.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed before a whole request");
                head.extend_from_slice(&buf[..n]);
            }
            let body = br#"{"sid":"SM1"}"#;
            let answer = format!(
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.write_all(body).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        let builder = reqwest::Client::builder()
            .proxy(reqwest::Proxy::http(format!("http://{addr}")).unwrap());
        let transport = Transport::proxied(builder, Duration::from_secs(5), "Twilio").unwrap();
        let answer = transport
            .exchange(get(
                "http://twilio.invalid/2010-04-01/Accounts/AC1/Messages.json".into(),
            ))
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::CREATED);
        assert_eq!(&answer.body[..], br#"{"sid":"SM1"}"#);
        let head = seen.await.unwrap();
        assert!(
            head.starts_with(
                "GET http://twilio.invalid/2010-04-01/Accounts/AC1/Messages.json HTTP/1.1"
            ),
            "{head}"
        );
    }
}
