//! The phone numbers' health as Graph reports it (`status`, `quality_rating`,
//! `messaging_limit_tier`), and the `phone_number_quality_update` event a change announces.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// What `GET /{phone_number_id}` reports. Free-form strings, so a test can also set values the
/// client must cope with (`UNKNOWN`, `FLAGGED`, `TIER_UNLIMITED`, …).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PhoneNumberState {
    /// `CONNECTED`, `DISCONNECTED`, `FLAGGED`, `PENDING`, …
    pub status: String,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    pub quality_rating: String,
    /// `TIER_250`, `TIER_1K`, `TIER_2K`, `TIER_10K`, `TIER_100K` or `TIER_UNLIMITED`.
    pub messaging_limit_tier: String,
}

impl Default for PhoneNumberState {
    fn default() -> Self {
        PhoneNumberState {
            status: "CONNECTED".to_string(),
            quality_rating: "GREEN".to_string(),
            messaging_limit_tier: "TIER_1K".to_string(),
        }
    }
}

fn tier_rank(tier: &str) -> u8 {
    match tier {
        "TIER_250" => 1,
        "TIER_1K" => 2,
        "TIER_2K" => 3,
        "TIER_10K" => 4,
        "TIER_100K" => 5,
        "TIER_UNLIMITED" => 6,
        _ => 0,
    }
}

/// The `event` of the `phone_number_quality_update` a change announces: a tier move is an
/// UPGRADE or DOWNGRADE, else a quality turning RED is FLAGGED and leaving RED is UNFLAGGED.
/// None when neither quality nor tier moved (a status change alone is not a quality event).
pub(crate) fn quality_event(
    old: &PhoneNumberState,
    new: &PhoneNumberState,
) -> Option<&'static str> {
    let (from, to) = (
        tier_rank(&old.messaging_limit_tier),
        tier_rank(&new.messaging_limit_tier),
    );
    if to > from {
        return Some("UPGRADE");
    }
    if to < from {
        return Some("DOWNGRADE");
    }
    let (was_red, is_red) = (old.quality_rating == "RED", new.quality_rating == "RED");
    match (was_red, is_red) {
        (false, true) => Some("FLAGGED"),
        (true, false) => Some("UNFLAGGED"),
        _ => None,
    }
}

/// Every phone number's current state, all starting CONNECTED/GREEN/TIER_1K.
pub(crate) struct Phones(Mutex<HashMap<String, PhoneNumberState>>);

impl Phones {
    pub(crate) fn new<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        Phones(Mutex::new(
            ids.into_iter()
                .map(|id| (id.to_string(), PhoneNumberState::default()))
                .collect(),
        ))
    }

    pub(crate) fn get(&self, id: &str) -> Option<PhoneNumberState> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Replaces a number's state; returns the previous one (None for an unknown id).
    pub(crate) fn set(&self, id: &str, state: PhoneNumberState) -> Option<PhoneNumberState> {
        let mut phones = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = phones.get_mut(id)?;
        Some(std::mem::replace(slot, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(quality: &str, tier: &str) -> PhoneNumberState {
        PhoneNumberState {
            quality_rating: quality.to_string(),
            messaging_limit_tier: tier.to_string(),
            ..PhoneNumberState::default()
        }
    }

    #[test]
    fn events_follow_tier_then_quality() {
        let green = state("GREEN", "TIER_1K");
        assert_eq!(
            quality_event(&green, &state("GREEN", "TIER_10K")),
            Some("UPGRADE")
        );
        assert_eq!(
            quality_event(&green, &state("RED", "TIER_250")),
            Some("DOWNGRADE")
        );
        assert_eq!(
            quality_event(&green, &state("RED", "TIER_1K")),
            Some("FLAGGED")
        );
        assert_eq!(
            quality_event(&state("RED", "TIER_1K"), &state("YELLOW", "TIER_1K")),
            Some("UNFLAGGED")
        );
        assert_eq!(quality_event(&green, &state("YELLOW", "TIER_1K")), None);
        let disconnected = PhoneNumberState {
            status: "DISCONNECTED".to_string(),
            ..green.clone()
        };
        assert_eq!(quality_event(&green, &disconnected), None);
    }
}
