//! Where outbound webhooks may point: http(s) URLs whose host is a public address, unless the
//! operator allows private targets. Judged at subscription, and again at each delivery by
//! the delivery client's resolver on the very addresses it connects to, because DNS answers
//! change.

mod connect;
mod public;

use url::{Host, Url};

pub use connect::delivery_client;
use connect::system_lookup;
pub use public::is_public;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("must be an absolute http or https URL")]
    NotHttp,
    #[error("host cannot be resolved")]
    Unresolvable,
    #[error("host is not a public address (loopback, private, link-local, reserved or multicast)")]
    NotPublic,
}

/// Parses `url` and, unless `allow_private`, refuses an IP-literal host that is not public.
/// Literals never reach a resolver, so this is their only check; host names are judged where
/// they are resolved.
pub fn parse(url: &str, allow_private: bool) -> Result<Url, TargetError> {
    let parsed = Url::parse(url).map_err(|_| TargetError::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetError::NotHttp);
    }
    let literal = match parsed.host() {
        None => return Err(TargetError::NotHttp),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(ip)) => Some(ip.into()),
        Some(Host::Ipv6(ip)) => Some(ip.into()),
    };
    match literal {
        Some(ip) if !allow_private && !is_public(ip) => Err(TargetError::NotPublic),
        _ => Ok(parsed),
    }
}

/// Parses `url` and, unless `allow_private`, refuses a host with any address that is not
/// public: a subscription is told at once rather than failing at every delivery.
pub async fn check(url: &str, allow_private: bool) -> Result<Url, TargetError> {
    let parsed = parse(url, allow_private)?;
    if let (false, Some(Host::Domain(name))) = (allow_private, parsed.host()) {
        let addrs = system_lookup(name.to_owned())
            .await
            .map_err(|_| TargetError::Unresolvable)?;
        if addrs.is_empty() {
            return Err(TargetError::Unresolvable);
        }
        if !addrs.into_iter().all(is_public) {
            return Err(TargetError::NotPublic);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_non_public_hosts_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://localhost:9/x",
            "http://[::127.0.0.1]/x",
            "http://[64:ff9b::a00:1]/x",
            "http://2130706433/x",
            "https://[ff02::1]/",
        ] {
            assert_eq!(
                check(url, false).await,
                Err(TargetError::NotPublic),
                "{url}"
            );
            assert!(check(url, true).await.is_ok(), "{url}");
        }
        assert!(check("http://8.8.8.8/x", false).await.is_ok());
        assert!(check("https://[2606:4700::1111]/x", false).await.is_ok());
        assert_eq!(
            check("ftp://example.com/", true).await,
            Err(TargetError::NotHttp)
        );
        assert_eq!(check("not a url", true).await, Err(TargetError::NotHttp));
    }

    #[test]
    fn parse_judges_literals_only() {
        assert_eq!(
            parse("http://198.18.0.1/x", false),
            Err(TargetError::NotPublic)
        );
        assert!(parse("http://198.18.0.1/x", true).is_ok());
        // A name is left to the resolver, which sees what it answers at connection time.
        assert!(parse("http://localhost/x", false).is_ok());
    }
}
