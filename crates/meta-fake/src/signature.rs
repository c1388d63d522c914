//! Meta's `X-Hub-Signature-256` (PROVIDERS.md §6.3), written independently of waygate so that the
//! fake can catch bugs in waygate's verifier instead of sharing them.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `"sha256=" + lower-case hex HMAC-SHA256(app_secret, body)`, over the raw body bytes.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::signature;

    /// The RFC 4231-style vector every HMAC-SHA256 implementation quotes.
    #[test]
    fn reproduces_the_well_known_vector() {
        assert_eq!(
            signature("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn depends_on_every_byte() {
        assert_ne!(
            signature("key", b"{\"a\":1}"),
            signature("key", b"{\"a\": 1}")
        );
        assert_ne!(signature("key", b"x"), signature("kez", b"x"));
    }
}
