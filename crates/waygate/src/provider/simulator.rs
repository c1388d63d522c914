//! A provider that needs no account: it answers like Twilio and then reports `sent`,
//! `delivered` and `read`, one step every `simulator_step_ms`, through the same status path
//! a provider callback takes. Recipients ending in `0000` are unreachable: they go
//! `queued` → `undelivered` with Twilio's error 30003.

use async_trait::async_trait;
use waygate_core::status::MessageStatus;

use super::{Accepted, Found, Provider, ProviderError};
use crate::clock::Clock;
use crate::store::{Outgoing, ScheduledStatus};

/// Twilio's "Unreachable destination handset".
pub const UNREACHABLE_CODE: i64 = 30003;
pub const UNREACHABLE_MESSAGE: &str = "Unreachable destination handset";

pub struct Simulator {
    pub clock: Clock,
    pub step_ms: i64,
}

impl Simulator {
    fn accept(&self, message: &Outgoing) -> Accepted {
        Accepted {
            sid: crate::secrets::message_sid(),
            status: MessageStatus::Queued,
            followups: self.schedule(&message.to),
        }
    }

    fn schedule(&self, to: &str) -> Vec<ScheduledStatus> {
        let now = self.clock.now_ms();
        let step = |n: i64, status: MessageStatus, error: Option<(i64, &str)>| ScheduledStatus {
            at: now + n * self.step_ms,
            status: status.as_str().to_string(),
            error_code: error.map(|e| e.0),
            error_message: error.map(|e| e.1.to_string()),
        };
        if to.ends_with("0000") {
            vec![step(
                1,
                MessageStatus::Undelivered,
                Some((UNREACHABLE_CODE, UNREACHABLE_MESSAGE)),
            )]
        } else {
            vec![
                step(1, MessageStatus::Sent, None),
                step(2, MessageStatus::Delivered, None),
                step(3, MessageStatus::Read, None),
            ]
        }
    }
}

#[async_trait]
impl Provider for Simulator {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, ProviderError> {
        Ok(self.accept(message))
    }

    fn accept_inline(&self, message: &Outgoing) -> Option<Accepted> {
        Some(self.accept(message))
    }

    /// Simulated sends never end with an unknown outcome, so there is nothing to find.
    async fn created_since(
        &self,
        _message: &Outgoing,
        _since_ms: i64,
    ) -> Result<Vec<Found>, ProviderError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_steps_and_failures() {
        let sim = Simulator {
            clock: Clock::default(),
            step_ms: 1000,
        };
        let ok = sim.schedule("+14155551234");
        let names: Vec<_> = ok.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(names, ["sent", "delivered", "read"]);
        assert_eq!(ok[1].at - ok[0].at, 1000);
        let bad = sim.schedule("+14155550000");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].status, "undelivered");
        assert_eq!(bad[0].error_code, Some(30003));
    }
}
