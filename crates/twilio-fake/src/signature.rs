//! Twilio's `X-Twilio-Signature` (PROVIDERS.md §3), written independently of waygate so that the
//! fake can catch bugs in waygate's validator instead of sharing them.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Twilio's signature (PROVIDERS.md §3): base64(HMAC-SHA1(token, url + sorted name+value pairs)).
///
/// Pairs are sorted by name, then by value (the Python/Node order, not twilio-go's sort of the
/// concatenated strings); exact duplicate pairs count once, as in the official validators. The URL
/// is used exactly as given: no port is added or removed.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = params.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    pairs.dedup();

    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in pairs {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::signature;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sdk_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn reproduces_sdk_vectors() {
        let cases = [
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ),
            (
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(signature("12345", url, &sdk_params()), expected, "{url}");
        }
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let mut reversed = sdk_params();
        reversed.reverse();
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &reversed
            ),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    /// `To` sorts before `ToCountry` by name, although `Towhatsapp…` sorts after `ToCountryUS` as a
    /// concatenated string (twilio-go's order). Expected values computed with Python's hmac module.
    #[test]
    fn sorts_by_name_not_by_concatenation() {
        let params = pairs(&[
            ("ToCountry", "US"),
            ("To", "whatsapp:+14155238886"),
            ("Body", "hi"),
        ]);
        let sig = signature("12345", "https://example.com/hook", &params);
        assert_eq!(sig, "MyQ3NIDbewQ65wGHQ02PYPuriUw=");
        assert_ne!(sig, "Tjzztv0AkQiG/Ty8/uFpQ70MHcE=", "twilio-go's order");
    }

    #[test]
    fn repeated_names_sort_values_and_drop_exact_duplicates() {
        let params = pairs(&[
            ("MediaUrl", "b"),
            ("MediaUrl", "a"),
            ("MediaUrl", "a"),
            ("Body", "x"),
        ]);
        assert_eq!(
            signature("12345", "https://example.com/hook", &params),
            "ShRkz0ZdeAbeOPicl+PzwDUuZcM="
        );
    }
}
