//! Providers hand messages to WhatsApp. Each one answers a send with the provider's message
//! id and initial status, a permanent rejection, or a retryable failure.

mod simulator;

use std::time::Duration;

use async_trait::async_trait;
use waygate_core::status::MessageStatus;

pub use simulator::Simulator;

use crate::model::ProviderKind;
use crate::store::{Outgoing, ScheduledStatus};

#[derive(Debug, Clone)]
pub struct Accepted {
    pub sid: String,
    pub status: MessageStatus,
    /// Status reports the provider schedules itself (only the simulator does).
    pub followups: Vec<ScheduledStatus>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the message for good (Twilio 4xx with an error code).
    #[error("rejected with code {code}: {message}")]
    Rejected { code: i64, message: String },
    /// Worth trying again: 429, 5xx, timeouts, connection errors, or a provider not set up yet.
    #[error("temporarily failed: {reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
}

#[async_trait]
pub trait Provider: Send + Sync {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, ProviderError>;
}

/// The provider for each sender kind.
pub struct Providers {
    pub simulator: Simulator,
}

impl Providers {
    pub fn for_kind(&self, kind: ProviderKind) -> Result<&dyn Provider, ProviderError> {
        match kind {
            ProviderKind::Simulator => Ok(&self.simulator),
            ProviderKind::Twilio | ProviderKind::Meta => Err(ProviderError::Retryable {
                reason: format!(
                    "the {} provider is not available in this build yet",
                    kind.as_str()
                ),
                retry_after: None,
            }),
        }
    }
}
