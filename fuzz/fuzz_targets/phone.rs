//! `E164::parse` on any text: never panics, and what it accepts is canonical — a '+' and at most
//! 15 digits that parse back to the same number, whose calling code leads the digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waygate_core::phone::E164;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(phone) = E164::parse(text) else {
        return;
    };
    let e164 = phone.as_str();
    let digits = e164.strip_prefix('+').expect("E.164 starts with '+'");
    assert!(
        (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
        "{text:?} parsed to {e164:?}"
    );
    assert!(digits.starts_with(&phone.calling_code().to_string()));
    assert_eq!(
        E164::parse(e164).as_ref(),
        Ok(&phone),
        "{text:?} does not re-parse"
    );
    assert_eq!(phone.to_string(), e164);
});
