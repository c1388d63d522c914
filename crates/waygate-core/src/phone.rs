//! Recipient phone numbers: parsed once at the edge into normalised E.164, so the rest of the
//! system can compare, store and price numbers without re-checking them.

use std::fmt;

use phonenumber::Mode;

/// E.164 allows at most 15 digits after the '+'.
const MAX_DIGITS: usize = 15;

/// A valid international number in E.164 form, e.g. "+14155551234".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct E164 {
    e164: String,
    calling_code: u16,
}

/// The one message the API uses for every unusable number (`INVALID_PHONE`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid phone number format. Use E.164 format (e.g., +14155551234).")]
pub struct InvalidPhone;

impl E164 {
    /// Trims; requires a leading '+'; tolerates spaces, dashes, dots and brackets around an
    /// otherwise valid international number (e.g. "+1 (415) 555-1234"); rejects letters,
    /// national formats ("0151 12345678"), and numbers phonenumber does not consider valid for
    /// their country. Returns normalised E.164.
    ///
    /// The digits typed must be exactly the E.164 digits: a trunk prefix ("+44 (0)20 …") or an
    /// international access code ("+0049 …") is refused rather than silently rewritten, so the
    /// number stored is always the number the caller wrote.
    pub fn parse(input: &str) -> Result<E164, InvalidPhone> {
        let digits = international_digits(input.trim()).ok_or(InvalidPhone)?;
        let canonical = format!("+{digits}");
        // Only a '+' and digits reach phonenumber: its lenient parser would otherwise accept
        // vanity letters and other forms the API must refuse.
        let number = phonenumber::parse(None, &canonical).map_err(|_| InvalidPhone)?;
        if !number.is_valid() || number.format().mode(Mode::E164).to_string() != canonical {
            return Err(InvalidPhone);
        }
        Ok(E164 {
            e164: canonical,
            calling_code: number.code().value(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The country calling code (e.g. 1, 44, 49); the rate card is keyed by it.
    pub fn calling_code(&self) -> u16 {
        self.calling_code
    }
}

/// The digits of a "+"-prefixed number with its separators removed, or None when anything other
/// than digits and separators appears or the digit count cannot be E.164.
fn international_digits(text: &str) -> Option<String> {
    let rest = text.strip_prefix('+')?;
    let mut digits = String::with_capacity(MAX_DIGITS);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    let plausible = !digits.starts_with('0') && (1..=MAX_DIGITS).contains(&digits.len());
    plausible.then_some(digits)
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

impl serde::Serialize for E164 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> E164 {
        E164::parse(input).unwrap_or_else(|_| panic!("{input:?} should parse"))
    }

    #[test]
    fn accepts_valid_us_uk_and_german_numbers() {
        let us = ok("+14155551234");
        assert_eq!(us.as_str(), "+14155551234");
        assert_eq!(us.calling_code(), 1);

        let uk = ok("+447911123456");
        assert_eq!(uk.as_str(), "+447911123456");
        assert_eq!(uk.calling_code(), 44);

        let de = ok("+4915112345678");
        assert_eq!(de.as_str(), "+4915112345678");
        assert_eq!(de.calling_code(), 49);
    }

    #[test]
    fn keeps_significant_leading_zero_of_italian_numbers() {
        let it = ok("+39 06 1234 5678");
        assert_eq!(it.as_str(), "+390612345678");
        assert_eq!(it.calling_code(), 39);
    }

    #[test]
    fn tolerates_spaces_dashes_dots_brackets_and_surrounding_whitespace() {
        for input in [
            "+1 (415) 555-1234",
            "+1-415-555-1234",
            "+1.415.555.1234",
            "  +1 415 555 1234\t",
            "+1(415)5551234",
        ] {
            assert_eq!(ok(input).as_str(), "+14155551234", "{input:?}");
        }
        assert_eq!(ok("+44 20 7946 0958").as_str(), "+442079460958");
        assert_eq!(ok("+49 (151) 1234-5678").as_str(), "+4915112345678");
    }

    #[test]
    fn requires_a_leading_plus() {
        assert_eq!(E164::parse("14155551234"), Err(InvalidPhone));
        assert_eq!(E164::parse("0151 12345678"), Err(InvalidPhone));
        assert_eq!(E164::parse("004915112345678"), Err(InvalidPhone));
        assert_eq!(E164::parse("1 +4155551234"), Err(InvalidPhone));
    }

    #[test]
    fn rejects_letters_and_other_characters() {
        for input in [
            "+1 800 FLOWERS",
            "+1415555123a",
            "+1 415 555 1234 ext 5",
            "+1 415 555 1234;ext=5",
            "+1/415/555/1234",
            "++14155551234",
            "+1 415 +555 1234",
            "tel:+14155551234",
        ] {
            assert_eq!(E164::parse(input), Err(InvalidPhone), "{input:?}");
        }
    }

    #[test]
    fn rejects_empty_too_short_and_too_long() {
        for input in [
            "",
            "   ",
            "+",
            "+ ",
            "+1",
            "+1415",
            "+1415555123",
            "+1415555123456789",
        ] {
            assert_eq!(E164::parse(input), Err(InvalidPhone), "{input:?}");
        }
    }

    #[test]
    fn rejects_numbers_invalid_for_their_country() {
        // US area codes never start with 0 or 1; the German number is too short for a mobile.
        for input in ["+10155551234", "+11155551234", "+1234567890", "+491511234"] {
            assert_eq!(E164::parse(input), Err(InvalidPhone), "{input:?}");
        }
    }

    #[test]
    fn rejects_unassigned_calling_codes() {
        assert_eq!(E164::parse("+999123456789"), Err(InvalidPhone));
    }

    #[test]
    fn refuses_trunk_prefixes_and_access_codes_instead_of_rewriting() {
        assert_eq!(E164::parse("+44 (0)20 7946 0958"), Err(InvalidPhone));
        assert_eq!(E164::parse("+0049 151 12345678"), Err(InvalidPhone));
        assert_eq!(E164::parse("+011 44 20 7946 0958"), Err(InvalidPhone));
    }

    #[test]
    fn normalised_form_reparses_to_itself() {
        let first = ok("+1 (415) 555-1234");
        assert_eq!(ok(first.as_str()), first);
    }

    #[test]
    fn displays_and_serialises_as_the_e164_string() {
        let number = ok("+44 20 7946 0958");
        assert_eq!(number.to_string(), "+442079460958");
        assert_eq!(
            serde_json::to_value(&number).unwrap(),
            serde_json::json!("+442079460958")
        );
    }

    #[test]
    fn error_message_matches_the_contract() {
        assert_eq!(
            InvalidPhone.to_string(),
            "Invalid phone number format. Use E.164 format (e.g., +14155551234)."
        );
    }
}
