//! Providers hand messages to WhatsApp. Each one answers a send with the provider's message
//! id and initial status, a permanent rejection, a failure that is safe to retry, or a
//! failure whose outcome is unknown (the request may have reached the provider).

pub mod catalog;
pub mod meta;
mod simulator;
mod transport;
pub mod twilio;

use std::time::Duration;

use async_trait::async_trait;
use waygate_core::status::MessageStatus;

pub use catalog::Catalog;
pub use meta::Meta;
pub use simulator::Simulator;
pub use twilio::Twilio;

use crate::model::{Media, ProviderKind};
use crate::store::{Outgoing, ScheduledStatus};

#[derive(Debug, Clone)]
pub struct Accepted {
    pub sid: String,
    pub status: MessageStatus,
    /// Status reports the provider schedules itself (only the simulator does).
    pub followups: Vec<ScheduledStatus>,
}

/// A message the provider holds, found when reconciling an attempt with an unknown outcome.
#[derive(Debug, Clone)]
pub struct Found {
    pub sid: String,
    pub status: MessageStatus,
}

/// What a provider says of a message it holds, when asked.
#[derive(Debug, Clone)]
pub struct Reported {
    pub status: MessageStatus,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

/// A status a provider reported for a message it holds (a callback or a webhook).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderStatus {
    pub sid: String,
    /// The provider's status name, e.g. "delivered".
    pub status: String,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    /// Our id, when the callback URL carried it.
    pub message_id: Option<i64>,
}

/// A customer's message as a provider delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderInbound {
    pub sid: String,
    /// Our sender's number (the message's `To`), E.164 with `+`.
    pub to: String,
    /// The customer: E.164, or the provider's user id when it has no number.
    pub from: String,
    pub body: String,
    pub profile_name: Option<String>,
    pub media: Vec<Media>,
    pub button_payload: Option<String>,
    /// The provider id of the message this one replies to.
    pub reply_to_sid: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the message for good (Twilio 4xx with an error code).
    #[error("rejected with code {code}: {message}")]
    Rejected { code: i64, message: String },
    /// The provider did not take the message (429, connection refused, not configured):
    /// safe to send again.
    #[error("temporarily failed: {reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The request may have created the message (timeout, 5xx, connection lost after
    /// sending): look before sending again.
    #[error("outcome unknown: {reason}")]
    Unknown { reason: String },
}

#[async_trait]
pub trait Provider: Send + Sync {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, ProviderError>;

    /// Providers with no outside effect (the simulator) accept in the transaction that
    /// records the message: nothing happens outside it that would need an outbox.
    fn accept_inline(&self, _message: &Outgoing) -> Option<Accepted> {
        None
    }

    /// How long after an attempt of unknown outcome to look for what it created (a status
    /// report carrying our id settles it meanwhile), in milliseconds.
    fn reconcile_after_ms(&self) -> i64;

    /// Messages the provider holds from this message's sender to its recipient, created at
    /// or after `since_ms`: the candidates an unknown attempt may have created.
    async fn created_since(
        &self,
        message: &Outgoing,
        since_ms: i64,
    ) -> Result<Vec<Found>, ProviderError>;

    /// Whether this provider's status reports travel over a network that can lose them, so
    /// that a message it accepted must be looked up if its reports stop.
    fn reports_can_be_lost(&self) -> bool {
        false
    }

    /// The provider's current status of a message it accepted; `None` when it does not know
    /// `sid`. Asked only of providers whose reports can be lost.
    async fn fetch_status(&self, _sid: &str) -> Result<Option<Reported>, ProviderError> {
        Err(ProviderError::Retryable {
            reason: "this provider reports every status itself".into(),
            retry_after: None,
        })
    }
}

/// The provider for each sender kind.
pub struct Providers {
    pub simulator: Simulator,
    /// `None` until Twilio credentials are configured.
    pub twilio: Option<Twilio>,
    /// `None` until a Meta access token is configured.
    pub meta: Option<Meta>,
}

impl Providers {
    /// Where a sender of this kind's templates are reviewed and its status is read.
    pub fn catalog_for(&self, kind: ProviderKind) -> Result<&dyn Catalog, ProviderError> {
        match kind {
            ProviderKind::Simulator => Ok(&self.simulator),
            ProviderKind::Twilio => Ok(self.twilio()?),
            ProviderKind::Meta => Ok(self.meta()?),
        }
    }

    pub fn for_kind(&self, kind: ProviderKind) -> Result<&dyn Provider, ProviderError> {
        match kind {
            ProviderKind::Simulator => Ok(&self.simulator),
            ProviderKind::Twilio => Ok(self.twilio()?),
            ProviderKind::Meta => Ok(self.meta()?),
        }
    }

    fn meta(&self) -> Result<&Meta, ProviderError> {
        self.meta
            .as_ref()
            .ok_or_else(|| not_available("Meta is not configured (meta_access_token)"))
    }

    fn twilio(&self) -> Result<&Twilio, ProviderError> {
        self.twilio
            .as_ref()
            .ok_or_else(|| not_available("Twilio is not configured (twilio_account_sid)"))
    }
}

/// A provider that cannot be asked now: what waits for it is kept and tried again.
fn not_available(what: &str) -> ProviderError {
    ProviderError::Retryable {
        reason: what.to_string(),
        retry_after: None,
    }
}
