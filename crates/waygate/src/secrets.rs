//! Random identifiers and credentials.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use base64::Engine;
use sha2::{Digest, Sha256};

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing means the machine cannot make secrets at all; nothing sensible goes on.
    getrandom::fill(&mut buf).expect("operating system random number generator unavailable");
    buf
}

/// A tenant API key: 160 random bits behind a recognisable prefix.
pub fn new_api_key() -> String {
    format!("wg_{}", hex::encode(random_bytes::<20>()))
}

/// The non-secret start of a key, shown in listings.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(10).collect()
}

/// Keys are stored only as this hash.
pub fn key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_webhook_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>())
    )
}

/// Webhook event id, stable across retries so receivers can deduplicate.
pub fn event_id() -> String {
    format!("evt_{}", hex::encode(random_bytes::<12>()))
}

/// Identifiers that must be unique but need not be secret: a random per-process prefix and
/// a counter, so that making one costs no system call.
struct Sequence {
    prefix: u64,
    next: AtomicU64,
}

static SEQUENCE: LazyLock<Sequence> = LazyLock::new(|| Sequence {
    prefix: u64::from_le_bytes(random_bytes::<8>()),
    next: AtomicU64::new(0),
});

fn next_in_sequence() -> (u64, u64) {
    (
        SEQUENCE.prefix,
        SEQUENCE.next.fetch_add(1, Ordering::Relaxed),
    )
}

/// A Twilio-shaped message SID: `SM` + 32 hex digits. The first 12 digits are the time in
/// milliseconds, so that new SIDs land at the end of the SID index instead of on a random
/// page of it; the other 20 are the process's random prefix and a counter.
pub fn message_sid() -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let (prefix, n) = next_in_sequence();
    let mut sid = String::with_capacity(34);
    sid.push_str("SM");
    push_hex(&mut sid, millis, 12);
    push_hex(&mut sid, prefix, 8);
    push_hex(&mut sid, n, 12);
    sid
}

/// An `x-request-id` for a request that came without one.
pub fn request_id() -> String {
    let (prefix, n) = next_in_sequence();
    let mut id = String::with_capacity(32);
    push_hex(&mut id, prefix, 16);
    push_hex(&mut id, n, 16);
    id
}

/// Appends the low `digits` hex digits of `value`, lower case and zero-padded: what
/// `{:0Nx}` gives for a value masked to N digits, without the formatting machinery (which
/// was a twentieth of a send's CPU on the tokio threads).
fn push_hex(out: &mut String, value: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(char::from(HEX[((value >> (4 * i)) & 0xf) as usize]));
    }
}

/// Uniform jitter in [0, max_ms).
pub fn jitter_ms(max_ms: u64) -> u64 {
    if max_ms == 0 {
        return 0;
    }
    u64::from_le_bytes(random_bytes::<8>()) % max_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let key = new_api_key();
        assert!(key.starts_with("wg_") && key.len() == 43);
        assert_ne!(key, new_api_key());
        assert_eq!(key_prefix(&key).len(), 10);
        assert_eq!(key_hash(&key).len(), 32);
        let sid = message_sid();
        assert!(sid.starts_with("SM") && sid.len() == 34);
        assert!(sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(sid, message_sid());
        assert_eq!(request_id().len(), 32);
        assert_ne!(request_id(), request_id());
        let secret = new_webhook_secret();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert!(jitter_ms(10) < 10);
    }

    #[test]
    fn hex_digits_match_zero_padded_formatting_of_the_masked_value() {
        for value in [0, 1, 0xabc, 0x0123_4567_89ab_cdef, u64::MAX] {
            let mut out = String::new();
            push_hex(&mut out, value, 12);
            assert_eq!(out, format!("{:012x}", value & 0xffff_ffff_ffff));
            out.clear();
            push_hex(&mut out, value, 16);
            assert_eq!(out, format!("{value:016x}"));
        }
    }
}
