//! Logging: JSON or pretty lines, filtered by `log`; request spans carry the request id.
//! Customers' phone numbers are masked in every line unless debug logging is on for waygate:
//! they reach logs through request URIs, provider payloads and providers' error texts, and
//! one mask where lines are written covers them all.

use std::borrow::Cow;
use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Digits after a `+` from which on a run counts as a phone number.
const MIN_PHONE_DIGITS: usize = 7;
/// Digits a masked number keeps, at its end.
const KEPT_DIGITS: usize = 4;

pub fn init(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log)
        .map_err(|e| anyhow::anyhow!("configuration key `log`: {e}"))?;
    let writer = Stderr {
        mask: !debug_enabled(&config.log),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match config.log_format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// Whether the filter `directives` lets waygate's debug lines through.
fn debug_enabled(directives: &str) -> bool {
    let Ok(filter) = EnvFilter::try_new(directives) else {
        return false;
    };
    let subscriber = tracing_subscriber::registry().with(filter);
    tracing::subscriber::with_default(subscriber, || tracing::enabled!(tracing::Level::DEBUG))
}

/// Standard error, with phone numbers masked when `mask` is set. The formatter hands over
/// each line in one write, so a number is never split between two.
#[derive(Clone, Copy)]
struct Stderr {
    mask: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        *self
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut stderr = std::io::stderr().lock();
        match std::str::from_utf8(buf) {
            Ok(text) if self.mask => stderr.write_all(mask_phones(text).as_bytes())?,
            _ => stderr.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `text` with each phone number (`+`, or `%2B` or `%20` as in a URI, then at least seven
/// digits) masked but for its last four digits: `+*******1234`.
pub fn mask_phones(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut masked: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        let prefix = match &bytes[at..] {
            [b'+', ..] => 1,
            // `%2B` is an encoded `+`; an encoded space (`%20`) stands for it too in a phone
            // number of a query string (API.md, session-status).
            [b'%', b'2', b'b' | b'B' | b'0', ..] => 3,
            _ => {
                at += 1;
                continue;
            }
        };
        let start = at + prefix;
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = start + digits;
        if digits >= MIN_PHONE_DIGITS {
            let out = masked.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..start]);
            out.extend(std::iter::repeat_n('*', digits - KEPT_DIGITS));
            out.push_str(&text[end - KEPT_DIGITS..end]);
            copied = end;
        }
        at = end.max(at + 1);
    }
    match masked {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_digits_of_each_number() {
        assert_eq!(
            mask_phones("to +14155551234 and whatsapp:+442071838750."),
            "to +*******1234 and whatsapp:+********8750."
        );
        assert_eq!(
            mask_phones("/s?recipient_phone=%2B14155551234&x=%2b14155551235"),
            "/s?recipient_phone=%2B*******1234&x=%2b*******1235"
        );
        assert_eq!(mask_phones("?p=%2014155551234"), "?p=%20*******1234");
    }

    #[test]
    fn leaves_other_text_alone() {
        for text in [
            "latency 12 ms",
            "2026-02-25T10:30:00+00:00",
            "+123456 is too short",
            "id 14155551234 without a plus",
            "ends with +",
            "ends with %2",
            "ünïcödé + 1234567",
        ] {
            assert!(matches!(mask_phones(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn debug_for_waygate_reveals_numbers() {
        assert!(!debug_enabled("info"));
        assert!(!debug_enabled("warn,tower_http=debug"));
        assert!(debug_enabled("waygate=debug,info"));
        assert!(debug_enabled("debug"));
        assert!(debug_enabled("trace"));
        assert!(!debug_enabled("info"), "decided afresh for each filter");
    }
}
