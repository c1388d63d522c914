//! Parsing a phone number runs libphonenumber's regular expressions (about 8 µs, measured),
//! and senders write to the same recipients again and again, so answers are remembered.
//! The numbering metadata is compiled in, so an answer never goes stale.

use std::collections::HashMap;
use std::sync::Mutex;

use waygate_core::phone::{InvalidPhone, E164};

/// Entries kept before the memo starts over.
const CAPACITY: usize = 200_000;

#[derive(Default)]
pub struct PhoneMemo {
    answers: Mutex<HashMap<String, Result<E164, InvalidPhone>>>,
}

impl PhoneMemo {
    pub fn parse(&self, raw: &str) -> Result<E164, InvalidPhone> {
        let lock = || self.answers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(answer) = lock().get(raw) {
            return answer.clone();
        }
        let answer = E164::parse(raw);
        let mut answers = lock();
        if answers.len() >= CAPACITY {
            answers.clear();
        }
        answers.insert(raw.to_string(), answer.clone());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_the_parser() {
        let memo = PhoneMemo::default();
        for raw in ["+1 (415) 555-1234", "+14155551234", "0151 12345678", "nope"] {
            assert_eq!(memo.parse(raw), E164::parse(raw), "{raw}");
            assert_eq!(memo.parse(raw), E164::parse(raw), "{raw}, remembered");
        }
    }
}
