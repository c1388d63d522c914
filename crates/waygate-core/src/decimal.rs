//! Exact reading of JSON-style decimal text (with optional exponent), shared by money amounts and
//! numeric template values so neither ever goes through a lossy float.

/// A decimal number as `digits × 10^exponent`, without leading or trailing zeros in `digits`
/// (empty digits mean zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    pub(crate) negative: bool,
    pub(crate) digits: String,
    pub(crate) exponent: i64,
}

/// Exponents beyond this are far outside any amount or text we could produce; clamping keeps the
/// arithmetic below free of overflow while preserving the sign.
const EXPONENT_LIMIT: i64 = 1 << 40;

impl Decimal {
    /// Parses `-?digits(.digits)?([eE][+-]?digits)?`; None for anything else.
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], parse_exponent(&text[at + 1..])?),
            None => (text, 0),
        };
        let (whole, fraction) = match mantissa.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (mantissa, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || (mantissa.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let joined = format!("{whole}{fraction}");
        let significant = joined.trim_start_matches('0');
        let digits = significant.trim_end_matches('0');
        let trailing_zeros = significant.len() - digits.len();
        let exponent = exponent
            .saturating_sub(to_i64(fraction.len()))
            .saturating_add(to_i64(trailing_zeros));
        Some(Decimal {
            negative: negative && !digits.is_empty(),
            digits: digits.to_owned(),
            exponent: if digits.is_empty() { 0 } else { exponent },
        })
    }

    /// Plain positional text without exponent, e.g. `1e-6` -> "0.000001", `1.5e2` -> "150".
    pub(crate) fn to_plain(&self) -> String {
        if self.digits.is_empty() {
            return "0".to_owned();
        }
        let sign = if self.negative { "-" } else { "" };
        let digits = &self.digits;
        if self.exponent >= 0 {
            let zeros = "0".repeat(usize::try_from(self.exponent).unwrap_or(0));
            return format!("{sign}{digits}{zeros}");
        }
        let point = to_i64(digits.len()).saturating_add(self.exponent);
        match usize::try_from(point) {
            Ok(point) if point > 0 => {
                format!("{sign}{}.{}", &digits[..point], &digits[point..])
            }
            _ => {
                let zeros = "0".repeat(usize::try_from(point.unsigned_abs()).unwrap_or(0));
                format!("{sign}0.{zeros}{digits}")
            }
        }
    }
}

fn parse_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0_i64, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(i64::from(b - b'0'))
            .min(EXPONENT_LIMIT)
    });
    Some(if negative { -magnitude } else { magnitude })
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(negative: bool, digits: &str, exponent: i64) -> Decimal {
        Decimal {
            negative,
            digits: digits.to_owned(),
            exponent,
        }
    }

    #[test]
    fn parses_integers_fractions_and_exponents() {
        assert_eq!(Decimal::parse("3"), Some(dec(false, "3", 0)));
        assert_eq!(Decimal::parse("12.5"), Some(dec(false, "125", -1)));
        assert_eq!(Decimal::parse("0.000001"), Some(dec(false, "1", -6)));
        assert_eq!(Decimal::parse("1e-6"), Some(dec(false, "1", -6)));
        assert_eq!(Decimal::parse("1.5E+2"), Some(dec(false, "15", 1)));
        assert_eq!(Decimal::parse("-2.50"), Some(dec(true, "25", -1)));
        assert_eq!(Decimal::parse("1200"), Some(dec(false, "12", 2)));
    }

    #[test]
    fn zero_in_any_spelling_is_unsigned_zero() {
        for text in ["0", "-0", "0.000", "-0.0e5", "000"] {
            assert_eq!(Decimal::parse(text), Some(dec(false, "", 0)), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "", "-", ".5", "5.", "1..2", "1e", "1e+", "e5", "+1", " 1", "1 ", "1,5", "0x10", "NaN",
            "inf", "1e5.0", "--1",
        ] {
            assert_eq!(Decimal::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn huge_exponents_clamp_without_overflow() {
        let big = Decimal::parse("1e99999999999999999999").unwrap();
        assert_eq!(big.exponent, EXPONENT_LIMIT);
        let tiny = Decimal::parse("1e-99999999999999999999").unwrap();
        assert_eq!(tiny.exponent, -EXPONENT_LIMIT);
    }

    #[test]
    fn writes_plain_positional_text() {
        let plain = |text: &str| Decimal::parse(text).unwrap().to_plain();
        assert_eq!(plain("5"), "5");
        assert_eq!(plain("2.5"), "2.5");
        assert_eq!(plain("100.0"), "100");
        assert_eq!(plain("1e-6"), "0.000001");
        assert_eq!(plain("1.5e2"), "150");
        assert_eq!(plain("1e21"), "1000000000000000000000");
        assert_eq!(plain("-0.25"), "-0.25");
        assert_eq!(plain("-0.0"), "0");
        assert_eq!(plain("123.456e1"), "1234.56");
    }
}
