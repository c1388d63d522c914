//! A provider that needs no account: it answers like Twilio and then reports `sent`,
//! `delivered` and `read`, one step every `simulator_step_ms`, through the same status path
//! a provider callback takes. Recipients ending in `0000` are unreachable: they go
//! `queued` → `undelivered` with Twilio's error 30003.

use async_trait::async_trait;
use waygate_core::status::MessageStatus;

use super::catalog::{Catalog, Submitted};
use super::{Accepted, Found, Provider, ProviderError};
use crate::clock::Clock;
use crate::model::{Review, Sender, SenderReport, Template, TemplateStatus};
use crate::store::{Outgoing, ScheduledStatus};

/// Templates whose name starts with this are rejected by the simulator's review.
pub const REJECTED_PREFIX: &str = "reject_";
pub const REJECTION_REASON: &str = "INVALID_FORMAT";

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

    /// Simulated sends never end with an unknown outcome: there is nothing to wait for.
    fn reconcile_after_ms(&self) -> i64 {
        0
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

/// The simulator's review: a template is approved `step_ms` after it was created, or rejected
/// with `INVALID_FORMAT` if its name starts with `reject_`, so that the whole lifecycle can be
/// tried without a provider account. Its senders are as the operator set them.
#[async_trait]
impl Catalog for Simulator {
    async fn submit(&self, _: &Sender, _: &Template) -> Result<Submitted, ProviderError> {
        Ok(Submitted {
            provider_ref: None,
            review: Review {
                status: TemplateStatus::Pending,
                rejection_reason: None,
            },
        })
    }

    async fn review(&self, _: &Sender, template: &Template) -> Result<Review, ProviderError> {
        let decided = self.clock.now_ms() - template.created_at >= self.step_ms;
        // Only a pending template is reviewed; what an operator made of one since stands.
        if template.status != TemplateStatus::Pending || !decided {
            return Ok(Review {
                status: template.status,
                rejection_reason: template.rejection_reason.clone(),
            });
        }
        Ok(match template.name.starts_with(REJECTED_PREFIX) {
            true => Review {
                status: TemplateStatus::Rejected,
                rejection_reason: Some(REJECTION_REASON.into()),
            },
            false => Review {
                status: TemplateStatus::Approved,
                rejection_reason: None,
            },
        })
    }

    async fn delete(&self, _: &Sender, _: &Template) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn sender(&self, _: &Sender) -> Result<Option<SenderReport>, ProviderError> {
        Ok(None)
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
