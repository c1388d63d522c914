//! Webhook signatures: Twilio's `X-Twilio-Signature` validation (form and JSON webhooks) and the
//! Standard Webhooks signature of outbound webhooks. Any input: no panic. Cheap invariants: a
//! signature computed for a URL validates, whatever the order of the parameters and whether the
//! port is spelled; an empty auth token never validates; a JSON webhook only validates when its
//! form check over the bare URL does; a well-formed `whsec_` secret always signs.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use waygate::provider::twilio::signature::{compute, valid_form, valid_json};
use waygate::signature::standard_webhook;

#[derive(Arbitrary, Debug)]
struct Input {
    auth_token: String,
    url: String,
    params: Vec<(String, String)>,
    signature: String,
    body: Vec<u8>,
    key: Vec<u8>,
    id: String,
    timestamp: i64,
}

fuzz_target!(|input: Input| {
    let Input {
        auth_token,
        url,
        mut params,
        signature,
        body,
        key,
        id,
        timestamp,
    } = input;

    // Arbitrary signatures: only a panic would be a finding.
    let _ = valid_form(&auth_token, &url, &params, &signature);
    let _ = valid_json(&auth_token, &url, &body, &signature);

    let computed = compute(&auth_token, &url, &params);
    assert_eq!(
        valid_form(&auth_token, &url, &params, &computed),
        !auth_token.is_empty()
    );
    params.reverse();
    assert_eq!(
        compute(&auth_token, &url, &params),
        computed,
        "order matters"
    );

    if let Ok(mut parsed) = url::Url::parse(&url) {
        if parsed.port().is_some() && parsed.set_port(None).is_ok() {
            // Twilio may sign the URL without the port the request came in on.
            let without_port = compute(&auth_token, parsed.as_str(), &params);
            assert_eq!(
                valid_form(&auth_token, &url, &params, &without_port),
                !auth_token.is_empty(),
                "{url:?} signed as {parsed}"
            );
        }
        // A JSON webhook whose URL carries the body's hash, signed over that URL.
        parsed
            .query_pairs_mut()
            .append_pair("bodySHA256", &hex::encode(Sha256::digest(&body)));
        let json_url = parsed.to_string();
        let signed = compute(&auth_token, &json_url, &[]);
        assert_eq!(
            valid_json(&auth_token, &json_url, &body, &signed),
            !auth_token.is_empty(),
            "{json_url:?}"
        );
    }
    if valid_json(&auth_token, &url, &body, &signature) {
        assert!(valid_form(&auth_token, &url, &[], &signature));
    }

    let _ = standard_webhook(&auth_token, &id, timestamp, &url);
    let secret = format!("whsec_{}", STANDARD.encode(&key));
    let signed =
        standard_webhook(&secret, &id, timestamp, &url).expect("a well-formed secret signs");
    assert!(signed.starts_with("v1,"));
    assert_eq!(
        Some(signed),
        standard_webhook(&secret, &id, timestamp, &url)
    );
});
