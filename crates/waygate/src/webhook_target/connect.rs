//! How deliveries connect: host names are resolved by a resolver that answers only public
//! addresses, so the address connected to is the address judged and a DNS answer that
//! changes between the check and the connection (rebinding) cannot reach a private host.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{is_public, TargetError};

/// Resolves a host name to its addresses. Injectable, so that tests can answer as a
/// rebinding DNS server would.
type Lookup = Arc<dyn Fn(&str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync>;

/// The operating system's resolver.
pub(super) async fn system_lookup(host: String) -> io::Result<Vec<IpAddr>> {
    Ok(tokio::net::lookup_host((host.as_str(), 0))
        .await?
        .map(|a| a.ip())
        .collect())
}

/// The HTTP client for webhook deliveries. It follows no redirect and uses no proxy, since
/// either would connect to an address nobody judged.
pub fn delivery_client(allow_private: bool) -> reqwest::Client {
    delivery_client_with(
        Arc::new(|host: &str| Box::pin(system_lookup(host.to_owned()))),
        allow_private,
    )
}

/// `delivery_client`, resolving names with `lookup`.
fn delivery_client_with(lookup: Lookup, allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(PublicOnly {
            lookup,
            allow_private,
        }))
        .build()
        // Fails only when no TLS backend initialises, where `Client::new` panics as well; a
        // fallback client would lose the resolver.
        .expect("the HTTP client for webhook deliveries builds")
}

/// Answers only the public addresses of a name, unless private ones are allowed.
struct PublicOnly {
    lookup: Lookup,
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = (self.lookup)(name.as_str());
        let allow_private = self.allow_private;
        Box::pin(async move {
            let kept = keep(lookup.await?, allow_private)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The addresses to connect to; port 0 lets the client put the URL's port in.
fn keep(addrs: Vec<IpAddr>, allow_private: bool) -> Result<Vec<SocketAddr>, TargetError> {
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable);
    }
    let kept: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|ip| allow_private || is_public(*ip))
        .map(|ip| SocketAddr::new(ip, 0))
        .collect();
    match kept.is_empty() {
        true => Err(TargetError::NotPublic),
        false => Ok(kept),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A name that now answers loopback, whatever it answered when it was checked.
    fn rebound() -> Lookup {
        Arc::new(|_: &str| Box::pin(async { Ok(vec![LOOPBACK]) }))
    }

    fn caused_by_not_public(error: &reqwest::Error) -> bool {
        let mut source = error.source();
        while let Some(cause) = source {
            if cause.downcast_ref::<TargetError>() == Some(&TargetError::NotPublic) {
                return true;
            }
            source = cause.source();
        }
        false
    }

    #[tokio::test]
    async fn a_name_answering_a_private_address_is_never_connected_to() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let url = format!(
            "http://hook.example:{}/x",
            listener.local_addr().unwrap().port()
        );

        let refused = delivery_client_with(rebound(), false)
            .post(&url)
            .send()
            .await
            .unwrap_err();
        assert!(refused.is_connect(), "{refused:?}");
        assert!(caused_by_not_public(&refused), "{refused:?}");
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a connection reached the listener");

        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0; 4096];
            let _ = stream.read(&mut request).await.unwrap();
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
        });
        let allowed = delivery_client_with(rebound(), true)
            .post(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), reqwest::StatusCode::NO_CONTENT);
        server.await.unwrap();
    }

    #[test]
    fn keeps_only_public_addresses() {
        let public: IpAddr = "8.8.8.8".parse().unwrap();
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            keep(vec![private, public, LOOPBACK], false),
            Ok(vec![SocketAddr::new(public, 0)])
        );
        assert_eq!(
            keep(vec![private, LOOPBACK], false),
            Err(TargetError::NotPublic)
        );
        assert_eq!(keep(vec![private], true).map(|a| a.len()), Ok(1));
        assert_eq!(keep(vec![], true), Err(TargetError::Unresolvable));
    }
}
