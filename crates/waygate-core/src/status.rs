//! Outbound message status as a monotonic state machine: provider callbacks arrive duplicated
//! and out of order, and a stale one must never undo a newer state (API.md §7).

/// Twilio's message statuses, which waygate uses for every provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Pending,
    Accepted,
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
    Undelivered,
    Received,
}

/// Rank of `Delivered`: from here on the customer has the message, so failures no longer apply.
const DELIVERED_RANK: u8 = 4;

impl MessageStatus {
    /// Every status, in the order of the lifecycle.
    pub const ALL: [MessageStatus; 10] = [
        MessageStatus::Pending,
        MessageStatus::Accepted,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Failed,
        MessageStatus::Undelivered,
        MessageStatus::Received,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Accepted => "accepted",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Undelivered => "undelivered",
            MessageStatus::Received => "received",
        }
    }

    /// Accepts the lower-case names (Twilio's spelling).
    pub fn parse(s: &str) -> Option<MessageStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Failures end a message and trigger its refund.
    pub fn is_failure(self) -> bool {
        matches!(self, MessageStatus::Failed | MessageStatus::Undelivered)
    }

    /// No status can follow: the provider has nothing more to report.
    pub fn is_final(self) -> bool {
        Self::ALL.into_iter().all(|next| !self.can_advance_to(next))
    }

    /// Position on the delivery path; None for failures and inbound messages, which are off it.
    fn rank(self) -> Option<u8> {
        match self {
            MessageStatus::Pending => Some(0),
            MessageStatus::Accepted | MessageStatus::Queued => Some(1),
            MessageStatus::Sending => Some(2),
            MessageStatus::Sent => Some(3),
            MessageStatus::Delivered => Some(DELIVERED_RANK),
            MessageStatus::Read => Some(5),
            MessageStatus::Failed | MessageStatus::Undelivered | MessageStatus::Received => None,
        }
    }

    /// Whether moving from `self` to `next` is a real forward step.
    /// Ranks: Pending 0 < Accepted 1 = Queued 1 < Sending 2 < Sent 3 < Delivered 4 < Read 5.
    /// Forward (higher rank) -> true; same or lower rank -> false (repeats and out-of-order
    /// callbacks change nothing). Failed/Undelivered are terminal: nothing moves out of them. A
    /// failure applies from any non-terminal state below Delivered; once Delivered or Read, a
    /// failure is ignored (the customer has the message). Received is inbound-only: no
    /// transitions into or out of it.
    pub fn can_advance_to(self, next: MessageStatus) -> bool {
        match (self.rank(), next.rank()) {
            (Some(from), Some(to)) => to > from,
            (Some(from), None) => next.is_failure() && from < DELIVERED_RANK,
            (None, _) => false,
        }
    }

    /// The statuses a message may move to `self` from, for a store that checks the move
    /// inside its write.
    pub fn predecessors(self) -> impl Iterator<Item = MessageStatus> {
        Self::ALL
            .into_iter()
            .filter(move |from| from.can_advance_to(self))
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::{self, *};

    #[test]
    fn predecessors_are_the_statuses_that_may_advance_to_it() {
        assert_eq!(
            Delivered.predecessors().collect::<Vec<_>>(),
            [Pending, Accepted, Queued, Sending, Sent]
        );
        assert_eq!(
            Undelivered.predecessors().collect::<Vec<_>>(),
            [Pending, Accepted, Queued, Sending, Sent]
        );
        assert_eq!(Pending.predecessors().count(), 0);
        assert_eq!(Received.predecessors().count(), 0);
    }

    #[test]
    fn names_round_trip() {
        for status in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(Undelivered.as_str(), "undelivered");
    }

    #[test]
    fn parse_refuses_other_spellings() {
        for text in ["Sent", "SENT", "sent ", "canceled", "scheduled", ""] {
            assert_eq!(MessageStatus::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn only_failed_and_undelivered_are_failures() {
        let failures: Vec<_> = MessageStatus::ALL
            .into_iter()
            .filter(|s| s.is_failure())
            .collect();
        assert_eq!(failures, vec![Failed, Undelivered]);
    }

    #[test]
    fn moves_forward_along_the_delivery_path() {
        let path = [Pending, Queued, Sending, Sent, Delivered, Read];
        for (i, from) in path.iter().enumerate() {
            for to in &path[i + 1..] {
                assert!(from.can_advance_to(*to), "{from:?} -> {to:?}");
            }
        }
        assert!(Pending.can_advance_to(Accepted));
        assert!(Accepted.can_advance_to(Sent));
        // Steps may be skipped: a provider can report `delivered` straight after `queued`.
        assert!(Queued.can_advance_to(Delivered));
    }

    #[test]
    fn never_moves_backwards() {
        assert!(!Read.can_advance_to(Delivered));
        assert!(!Delivered.can_advance_to(Sent));
        assert!(!Sent.can_advance_to(Queued));
        assert!(!Read.can_advance_to(Pending));
        assert!(!Sending.can_advance_to(Accepted));
    }

    #[test]
    fn repeats_and_equal_ranks_change_nothing() {
        for status in MessageStatus::ALL {
            assert!(!status.can_advance_to(status), "{status:?}");
        }
        assert!(!Accepted.can_advance_to(Queued));
        assert!(!Queued.can_advance_to(Accepted));
    }

    #[test]
    fn failure_applies_before_delivery() {
        for from in [Pending, Accepted, Queued, Sending, Sent] {
            assert!(from.can_advance_to(Failed), "{from:?}");
            assert!(from.can_advance_to(Undelivered), "{from:?}");
        }
    }

    #[test]
    fn failure_after_delivery_is_ignored() {
        for from in [Delivered, Read] {
            assert!(!from.can_advance_to(Failed), "{from:?}");
            assert!(!from.can_advance_to(Undelivered), "{from:?}");
        }
    }

    #[test]
    fn failures_are_terminal() {
        for from in [Failed, Undelivered] {
            for to in MessageStatus::ALL {
                assert!(!from.can_advance_to(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn received_has_no_transitions() {
        for other in MessageStatus::ALL {
            assert!(!Received.can_advance_to(other), "received -> {other:?}");
            assert!(!other.can_advance_to(Received), "{other:?} -> received");
        }
    }

    #[test]
    fn only_read_failures_and_inbound_are_final() {
        let finals: Vec<_> = MessageStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(
            finals,
            vec![
                MessageStatus::Read,
                MessageStatus::Failed,
                MessageStatus::Undelivered,
                MessageStatus::Received
            ]
        );
    }
}
