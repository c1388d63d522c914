//! Amounts of the account currency as integer micro-units, so balances and prices add up exactly.

use crate::decimal::Decimal;

/// Micro-units per currency unit.
const MICROS_PER_UNIT: i64 = 1_000_000;
/// Decimal places of one micro-unit.
const SCALE: i64 = 6;

/// Integer micro-units (1 unit = 1_000_000 micros) of the account currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a number with at most 6 decimals")]
    Format,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("is too large")]
    Overflow,
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_micros(micros: i64) -> Money {
        Money(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Parses decimal text such as "12.5", "0.000001", "3" (also exponent forms like "1e-6" that
    /// serde_json prints for small floats). A value finer than one micro-unit -> `Format`;
    /// trailing zeros do not count ("1.50000000" is 1.5). Negative amounts are allowed here.
    pub fn parse_decimal(text: &str) -> Result<Money, MoneyError> {
        let decimal = Decimal::parse(text).ok_or(MoneyError::Format)?;
        if decimal.digits.is_empty() {
            return Ok(Money::ZERO);
        }
        let scale = decimal.exponent.saturating_add(SCALE);
        if scale < 0 {
            return Err(MoneyError::Format);
        }
        // i64 holds at most 19 digits; anything longer cannot fit once scaled.
        let width = i64::try_from(decimal.digits.len()).unwrap_or(i64::MAX);
        if width.saturating_add(scale) > 19 {
            return Err(MoneyError::Overflow);
        }
        let magnitude = decimal
            .digits
            .parse::<i128>()
            .map_err(|_| MoneyError::Overflow)?
            .checked_mul(10_i128.pow(u32::try_from(scale).map_err(|_| MoneyError::Overflow)?))
            .ok_or(MoneyError::Overflow)?;
        let signed = if decimal.negative {
            -magnitude
        } else {
            magnitude
        };
        i64::try_from(signed)
            .map(Money)
            .map_err(|_| MoneyError::Overflow)
    }

    /// A positive JSON number from a request (admin credit): uses the number's decimal text, so
    /// 0.1 is exact.
    pub fn from_positive_json(n: &serde_json::Number) -> Result<Money, MoneyError> {
        let money = Money::parse_decimal(&n.to_string())?;
        if money.0 <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(money)
    }

    /// The amount in currency units as a JSON number for responses (e.g. 100.67447).
    pub fn to_json(self) -> serde_json::Value {
        serde_json::Value::from(self.as_units())
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// Exact micros divided once give the nearest double to the decimal amount, which serialisers
    /// print as its shortest decimal text (100674470 micros -> 100.67447). This holds below
    /// 2^53 micros (about 9 billion units).
    fn as_units(self) -> f64 {
        self.0 as f64 / MICROS_PER_UNIT as f64
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_units())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn parses_decimal_text_exactly() {
        assert_eq!(
            Money::parse_decimal("12.5"),
            Ok(Money::from_micros(12_500_000))
        );
        assert_eq!(Money::parse_decimal("0.000001"), Ok(Money::from_micros(1)));
        assert_eq!(Money::parse_decimal("3"), Ok(Money::from_micros(3_000_000)));
        assert_eq!(Money::parse_decimal("0.1"), Ok(Money::from_micros(100_000)));
        assert_eq!(
            Money::parse_decimal("100.67447"),
            Ok(Money::from_micros(100_674_470))
        );
    }

    #[test]
    fn parses_exponent_forms() {
        assert_eq!(Money::parse_decimal("1e-6"), Ok(Money::from_micros(1)));
        assert_eq!(
            Money::parse_decimal("2.5E3"),
            Ok(Money::from_micros(2_500_000_000))
        );
        assert_eq!(Money::parse_decimal("1e-7"), Err(MoneyError::Format));
    }

    #[test]
    fn allows_negative_and_zero() {
        assert_eq!(
            Money::parse_decimal("-0.25"),
            Ok(Money::from_micros(-250_000))
        );
        assert_eq!(Money::parse_decimal("0"), Ok(Money::ZERO));
        assert_eq!(Money::parse_decimal("-0.0000000"), Ok(Money::ZERO));
    }

    #[test]
    fn refuses_more_than_six_significant_decimals() {
        assert_eq!(Money::parse_decimal("0.0000001"), Err(MoneyError::Format));
        assert_eq!(Money::parse_decimal("12.3456789"), Err(MoneyError::Format));
        // Trailing zeros do not make an amount finer than a micro-unit.
        assert_eq!(
            Money::parse_decimal("1.50000000"),
            Ok(Money::from_micros(1_500_000))
        );
    }

    #[test]
    fn refuses_malformed_text() {
        for text in ["", "abc", "1,5", " 1", "1.", ".5", "+1", "1e"] {
            assert_eq!(
                Money::parse_decimal(text),
                Err(MoneyError::Format),
                "{text:?}"
            );
        }
    }

    #[test]
    fn detects_overflow_at_the_i64_boundary() {
        assert_eq!(
            Money::parse_decimal("9223372036854.775807"),
            Ok(Money::from_micros(i64::MAX))
        );
        assert_eq!(
            Money::parse_decimal("-9223372036854.775808"),
            Ok(Money::from_micros(i64::MIN))
        );
        assert_eq!(
            Money::parse_decimal("9223372036854.775808"),
            Err(MoneyError::Overflow)
        );
        assert_eq!(Money::parse_decimal("1e20"), Err(MoneyError::Overflow));
        assert_eq!(
            Money::parse_decimal("1e999999999999"),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::parse_decimal("123456789012345678901234567890"),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn from_positive_json_accepts_positive_amounts_exactly() {
        assert_eq!(
            Money::from_positive_json(&number("12.5")),
            Ok(Money::from_micros(12_500_000))
        );
        assert_eq!(
            Money::from_positive_json(&number("0.1")),
            Ok(Money::from_micros(100_000))
        );
        assert_eq!(
            Money::from_positive_json(&number("0.000001")),
            Ok(Money::from_micros(1))
        );
        assert_eq!(
            Money::from_positive_json(&number("100")),
            Ok(Money::from_micros(100_000_000))
        );
        assert_eq!(
            Money::from_positive_json(&number("1e2")),
            Ok(Money::from_micros(100_000_000))
        );
    }

    #[test]
    fn from_positive_json_refuses_zero_negative_and_too_precise() {
        assert_eq!(
            Money::from_positive_json(&number("0")),
            Err(MoneyError::NotPositive)
        );
        assert_eq!(
            Money::from_positive_json(&number("0.0")),
            Err(MoneyError::NotPositive)
        );
        assert_eq!(
            Money::from_positive_json(&number("-5")),
            Err(MoneyError::NotPositive)
        );
        assert_eq!(
            Money::from_positive_json(&number("-0.5")),
            Err(MoneyError::NotPositive)
        );
        assert_eq!(
            Money::from_positive_json(&number("0.0000001")),
            Err(MoneyError::Format)
        );
        assert_eq!(
            Money::from_positive_json(&number("18446744073709551615")),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn to_json_gives_units_as_a_number() {
        assert_eq!(Money::from_micros(100_674_470).to_json(), json!(100.67447));
        assert_eq!(Money::from_micros(1).to_json(), json!(0.000001));
        assert_eq!(Money::from_micros(-2_500_000).to_json(), json!(-2.5));
        assert_eq!(Money::ZERO.to_json().to_string(), "0.0");
        assert_eq!(
            Money::from_micros(100_674_470).to_json().to_string(),
            "100.67447"
        );
    }

    #[test]
    fn serialises_like_to_json() {
        for micros in [0, 1, 100_000, 12_500_000, 100_674_470, -7] {
            let money = Money::from_micros(micros);
            assert_eq!(serde_json::to_value(money).unwrap(), money.to_json());
        }
    }

    #[test]
    fn formatted_amount_parses_back_to_the_same_micros() {
        for micros in [1, 10, 999_999, 100_674_470, 123_456_789_012] {
            let money = Money::from_micros(micros);
            let text = serde_json::to_string(&money).unwrap();
            assert_eq!(Money::parse_decimal(&text), Ok(money), "{text}");
        }
    }

    #[test]
    fn checked_arithmetic() {
        let a = Money::from_micros(1_500_000);
        let b = Money::from_micros(500_000);
        assert_eq!(a.checked_add(b), Some(Money::from_micros(2_000_000)));
        assert_eq!(b.checked_sub(a), Some(Money::from_micros(-1_000_000)));
        assert_eq!(
            Money::from_micros(i64::MAX).checked_add(Money::from_micros(1)),
            None
        );
        assert_eq!(
            Money::from_micros(i64::MIN).checked_sub(Money::from_micros(1)),
            None
        );
        assert_eq!(a.micros(), 1_500_000);
        assert!(b < a);
    }

    #[test]
    fn errors_read_as_field_messages() {
        assert_eq!(
            MoneyError::Format.to_string(),
            "must be a number with at most 6 decimals"
        );
        assert_eq!(
            MoneyError::NotPositive.to_string(),
            "must be greater than zero"
        );
        assert_eq!(MoneyError::Overflow.to_string(), "is too large");
    }
}
