//! Validating `X-Twilio-Signature` exactly as Twilio's helper libraries do (PROVIDERS.md §3):
//! base64(HMAC-SHA1(auth token, URL + sorted name+value pairs)), compared in constant time,
//! tried with the URL's port as given, removed, and as the scheme's default.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

/// The signature Twilio would send for a form POST to `url` with `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name first, then by value for repeated names (the Python and Node validators).
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1)));
    sorted.dedup();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL spellings Twilio may have signed: as given, without the port, with the default port.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_string()];
    if let Ok(parsed) = Url::parse(url) {
        let mut without = parsed.clone();
        let _ = without.set_port(None);
        variants.push(without.to_string());
        if let Some(default) = match parsed.scheme() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        } {
            // `Url` drops default ports when formatting, so insert it by hand.
            let host = parsed.host_str().unwrap_or_default();
            let rest = &parsed[url::Position::BeforePath..];
            variants.push(format!("{}://{host}:{default}{rest}", parsed.scheme()));
        }
    }
    variants.dedup();
    variants
}

fn matches(expected: &str, given: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// A form-encoded webhook: true when `signature` matches any URL spelling.
pub fn valid_form(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    !auth_token.is_empty()
        && url_variants(url)
            .iter()
            .any(|u| matches(&compute(auth_token, u, params), signature))
}

/// A JSON webhook: the signature covers only the URL, whose `bodySHA256` query value must be
/// the hex SHA-256 of the raw body.
pub fn valid_json(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Ok(parsed) = Url::parse(url) else {
        return false;
    };
    let Some((_, claimed)) = parsed.query_pairs().find(|(k, _)| k == "bodySHA256") else {
        return false;
    };
    matches(&hex::encode(Sha256::digest(body)), &claimed)
        && valid_form(auth_token, url, &[], signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// Twilio's published vectors (auth token 12345).
    #[test]
    fn published_vectors() {
        assert_eq!(
            compute("12345", URL, &params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            compute(
                "12345",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &params()
            ),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        assert_eq!(
            compute(
                "12345",
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                &params()
            ),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        );
        assert_eq!(
            compute(
                "12345",
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                &params()
            ),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        );
    }

    #[test]
    fn port_variants_validate_both_ways() {
        // Signed without the port, received with it, and the other way round.
        assert!(valid_form(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(valid_form(
            "12345",
            URL,
            &params(),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        assert!(valid_form(
            "12345",
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
        assert!(!valid_form(
            "12345",
            URL,
            &params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B9="
        ));
        assert!(!valid_form(
            "54321",
            URL,
            &params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let mut tampered = params();
        tampered[2].1 = "4321".into();
        assert!(!valid_form(
            "12345",
            URL,
            &tampered,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn a_missing_token_validates_nothing() {
        assert!(!valid_form(
            "",
            URL,
            &params(),
            &compute("", URL, &params())
        ));
    }

    #[test]
    fn sorts_by_name_not_by_concatenation() {
        let p: Vec<(String, String)> = vec![
            ("ToCountry".into(), "US".into()),
            ("To".into(), "whatsapp:+1".into()),
        ];
        let mut mac = Hmac::<Sha1>::new_from_slice(b"t").unwrap();
        mac.update(b"https://x.test/hookTowhatsapp:+1ToCountryUS");
        assert_eq!(
            compute("t", "https://x.test/hook", &p),
            STANDARD.encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn json_body_vectors() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let with_query = format!("{URL}&bodySHA256={hash}");
        assert!(valid_json(
            "12345",
            &with_query,
            body,
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        let only = format!("https://mycompany.com/myapp.php?bodySHA256={hash}");
        assert!(valid_json(
            "12345",
            &only,
            body,
            "y77kIzt2vzLz71DgmJGsen2scGs="
        ));
        assert!(!valid_json(
            "12345",
            &only,
            b"{}",
            "y77kIzt2vzLz71DgmJGsen2scGs="
        ));
    }
}
