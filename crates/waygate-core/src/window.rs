//! The 24 h customer-service window (API.md §5) and how its state is shown to API clients
//! (session-status shapes in §3).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::time::rfc3339;

pub const WINDOW_HOURS: i64 = 24;

/// 24 h after the later of the last inbound customer message and (when `template_opens`) the
/// last accepted template send. None when nothing has opened a window yet.
pub fn expires_at(
    last_inbound: Option<DateTime<Utc>>,
    last_template: Option<DateTime<Utc>>,
    template_opens: bool,
) -> Option<DateTime<Utc>> {
    let last_template = last_template.filter(|_| template_opens);
    let opened = last_inbound.into_iter().chain(last_template).max()?;
    Some(
        opened
            .checked_add_signed(TimeDelta::hours(WINDOW_HOURS))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

/// Window state of one (sender, recipient) pair at a given moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    NoConversation,
    Open {
        expires_at: DateTime<Utc>,
        minutes_remaining: i64,
    },
    /// `expired_at` is None for a conversation whose window never opened.
    Expired {
        expired_at: Option<DateTime<Utc>>,
    },
}

impl Session {
    /// For an existing conversation: open while now < expires_at; minutes_remaining whole
    /// minutes rounded down.
    pub fn of(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Session {
        match expires_at {
            Some(expires_at) if now < expires_at => Session::Open {
                expires_at,
                minutes_remaining: (expires_at - now).num_minutes(),
            },
            expired_at => Session::Expired { expired_at },
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Session::Open { .. })
    }
}

/// The `session_status` JSON object exactly as API.md §3 session-status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionStatus {
    pub is_open: bool,
    pub can_send_freeform: bool,
    pub requires_template: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes_remaining: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
}

impl SessionStatus {
    /// The closed shapes differ only in their message and `expired_at`.
    fn closed(message: &str, expired_at: Option<String>) -> SessionStatus {
        SessionStatus {
            is_open: false,
            can_send_freeform: false,
            requires_template: true,
            message: message.to_owned(),
            minutes_remaining: None,
            expires_at: None,
            expired_at,
        }
    }
}

impl From<&Session> for SessionStatus {
    fn from(session: &Session) -> SessionStatus {
        match session {
            Session::Open {
                expires_at,
                minutes_remaining,
            } => SessionStatus {
                is_open: true,
                can_send_freeform: true,
                requires_template: false,
                message: format!(
                    "Session open ({} hr {} min remaining). Unlimited free-form messages allowed.",
                    minutes_remaining / 60,
                    minutes_remaining % 60
                ),
                minutes_remaining: Some(*minutes_remaining),
                expires_at: Some(rfc3339(*expires_at)),
                expired_at: None,
            },
            Session::Expired { expired_at } => SessionStatus::closed(
                "Session expired. Send a template or wait for customer to reply.",
                expired_at.map(rfc3339),
            ),
            Session::NoConversation => SessionStatus::closed(
                "No conversation exists with this recipient. Send a template message first.",
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 25, h, m, s).unwrap()
    }

    fn next_day(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 26, h, m, s).unwrap()
    }

    #[test]
    fn window_runs_24_hours_from_last_inbound() {
        assert_eq!(
            expires_at(Some(at(10, 0, 0)), None, true),
            Some(next_day(10, 0, 0))
        );
    }

    #[test]
    fn later_of_inbound_and_template_send_wins() {
        assert_eq!(
            expires_at(Some(at(10, 0, 0)), Some(at(12, 0, 0)), true),
            Some(next_day(12, 0, 0))
        );
        assert_eq!(
            expires_at(Some(at(12, 0, 0)), Some(at(10, 0, 0)), true),
            Some(next_day(12, 0, 0))
        );
        assert_eq!(
            expires_at(None, Some(at(9, 0, 0)), true),
            Some(next_day(9, 0, 0))
        );
    }

    #[test]
    fn template_sends_ignored_when_they_do_not_open_windows() {
        assert_eq!(
            expires_at(Some(at(10, 0, 0)), Some(at(12, 0, 0)), false),
            Some(next_day(10, 0, 0))
        );
        assert_eq!(expires_at(None, Some(at(12, 0, 0)), false), None);
    }

    #[test]
    fn no_activity_means_no_window() {
        assert_eq!(expires_at(None, None, true), None);
    }

    #[test]
    fn expiry_saturates_at_the_end_of_time() {
        let end = DateTime::<Utc>::MAX_UTC;
        assert_eq!(expires_at(Some(end), None, true), Some(end));
    }

    #[test]
    fn open_until_the_expiry_instant() {
        let expiry = next_day(10, 0, 0);
        assert!(Session::of(Some(expiry), expiry - TimeDelta::milliseconds(1)).is_open());
        assert_eq!(
            Session::of(Some(expiry), expiry),
            Session::Expired {
                expired_at: Some(expiry)
            }
        );
        assert!(!Session::of(Some(expiry), expiry + TimeDelta::hours(3)).is_open());
    }

    #[test]
    fn conversation_without_window_is_expired_without_time() {
        assert_eq!(
            Session::of(None, at(10, 0, 0)),
            Session::Expired { expired_at: None }
        );
        assert!(!Session::NoConversation.is_open());
    }

    #[test]
    fn minutes_remaining_round_down() {
        let expiry = next_day(10, 0, 0);
        let minutes = |now| match Session::of(Some(expiry), now) {
            Session::Open {
                minutes_remaining, ..
            } => minutes_remaining,
            other => panic!("not open: {other:?}"),
        };
        assert_eq!(minutes(at(10, 15, 0)), 1425);
        assert_eq!(minutes(at(10, 15, 1)), 1424);
        assert_eq!(minutes(expiry - TimeDelta::milliseconds(59_900)), 0);
        assert_eq!(minutes(expiry - TimeDelta::seconds(60)), 1);
        assert_eq!(minutes(expiry - TimeDelta::milliseconds(119_999)), 1);
    }

    #[test]
    fn open_status_matches_the_contract() {
        let session = Session::of(Some(next_day(10, 0, 0)), at(10, 15, 0));
        assert_eq!(
            serde_json::to_value(SessionStatus::from(&session)).unwrap(),
            json!({
                "is_open": true,
                "can_send_freeform": true,
                "requires_template": false,
                "message": "Session open (23 hr 45 min remaining). Unlimited free-form messages allowed.",
                "minutes_remaining": 1425,
                "expires_at": "2026-02-26T10:00:00+00:00"
            })
        );
    }

    #[test]
    fn open_message_hours_and_minutes_come_from_minutes_remaining() {
        let message = |minutes_remaining| {
            SessionStatus::from(&Session::Open {
                expires_at: at(12, 0, 0),
                minutes_remaining,
            })
            .message
        };
        assert_eq!(
            message(45),
            "Session open (0 hr 45 min remaining). Unlimited free-form messages allowed."
        );
        assert_eq!(
            message(0),
            "Session open (0 hr 0 min remaining). Unlimited free-form messages allowed."
        );
        assert_eq!(
            message(60),
            "Session open (1 hr 0 min remaining). Unlimited free-form messages allowed."
        );
        let last_second = Session::of(
            Some(next_day(10, 0, 0)),
            next_day(9, 59, 0) + TimeDelta::milliseconds(100),
        );
        assert_eq!(
            SessionStatus::from(&last_second).message,
            "Session open (0 hr 0 min remaining). Unlimited free-form messages allowed."
        );
    }

    #[test]
    fn expired_status_matches_the_contract() {
        let session = Session::of(Some(at(10, 0, 0)), at(11, 0, 0));
        assert_eq!(
            serde_json::to_value(SessionStatus::from(&session)).unwrap(),
            json!({
                "is_open": false,
                "can_send_freeform": false,
                "requires_template": true,
                "message": "Session expired. Send a template or wait for customer to reply.",
                "expired_at": "2026-02-25T10:00:00+00:00"
            })
        );
    }

    #[test]
    fn expired_status_omits_unknown_expiry() {
        let status = SessionStatus::from(&Session::Expired { expired_at: None });
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!({
                "is_open": false,
                "can_send_freeform": false,
                "requires_template": true,
                "message": "Session expired. Send a template or wait for customer to reply."
            })
        );
    }

    #[test]
    fn no_conversation_status_matches_the_contract() {
        assert_eq!(
            serde_json::to_value(SessionStatus::from(&Session::NoConversation)).unwrap(),
            json!({
                "is_open": false,
                "can_send_freeform": false,
                "requires_template": true,
                "message": "No conversation exists with this recipient. Send a template message first."
            })
        );
    }
}
