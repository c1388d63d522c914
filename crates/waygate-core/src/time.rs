//! The API's one time format, and conversion from the stored unix-millisecond form.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 UTC with seconds precision and "+00:00" offset, e.g. "2026-02-25T10:30:00+00:00".
/// Sub-second parts are dropped (not rounded) so a time never appears later than it was.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Unix milliseconds to a `DateTime`. Values outside chrono's range clamp to its ends, so a
/// corrupt stored value can never panic a request.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_with_seconds_and_utc_offset() {
        let at = Utc.with_ymd_and_hms(2026, 2, 25, 10, 30, 0).unwrap();
        assert_eq!(rfc3339(at), "2026-02-25T10:30:00+00:00");
    }

    #[test]
    fn drops_sub_seconds_without_rounding_up() {
        let at = from_millis(1_772_015_400_999); // 2026-02-25T10:30:00.999Z
        assert_eq!(rfc3339(at), "2026-02-25T10:30:00+00:00");
    }

    #[test]
    fn from_millis_converts_epoch_and_negative_values() {
        assert_eq!(rfc3339(from_millis(0)), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(from_millis(-1_000)), "1969-12-31T23:59:59+00:00");
        assert_eq!(from_millis(1_500).timestamp_subsec_millis(), 500);
    }

    #[test]
    fn from_millis_clamps_out_of_range_values() {
        assert_eq!(from_millis(i64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(from_millis(i64::MIN), DateTime::<Utc>::MIN_UTC);
    }
}
