//! What providers tell us: status changes of sent messages and inbound customer messages.
//! Signatures are checked by the HTTP layer before anything here runs.

use waygate_core::phone::E164;
use waygate_core::status::MessageStatus;

use super::{ServiceError, Services};
use crate::model::{Media, Message, ProviderKind};
use crate::store::{NewInbound, StatusApplied, StatusTarget, StatusUpdate};

pub struct ProviderStatus {
    pub sid: String,
    /// The provider's status name, e.g. "delivered".
    pub status: String,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    /// Our id, when the callback URL carried it.
    pub message_id: Option<i64>,
}

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
}

impl Services {
    pub async fn provider_status(&self, s: ProviderStatus) -> Result<StatusApplied, ServiceError> {
        let Some(status) = MessageStatus::parse(&s.status) else {
            tracing::info!(sid = %s.sid, status = %s.status, "status callback with a status waygate does not track");
            return Ok(StatusApplied::Ignored);
        };
        let applied = self
            .store
            .apply_status(StatusUpdate {
                target: StatusTarget::Provider {
                    sid: s.sid.clone(),
                    message_id: s.message_id,
                },
                status,
                error_code: s.error_code,
                error_message: s.error_message,
                at: self.clock.now_ms(),
            })
            .await?;
        if applied == StatusApplied::UnknownMessage {
            tracing::warn!(sid = %s.sid, "status callback for a message waygate does not know");
        }
        Ok(applied)
    }

    /// Stores an inbound message on its sender's conversation; `None` when no sender has
    /// that number (acknowledged and logged) or the message was seen before.
    pub async fn provider_inbound(
        &self,
        provider: ProviderKind,
        i: ProviderInbound,
    ) -> Result<Option<Message>, ServiceError> {
        let to = E164::parse(&i.to)
            .map(|e| e.as_str().to_string())
            .unwrap_or(i.to);
        let Some(sender) = self.store.sender_by_phone(to.clone(), provider).await? else {
            tracing::warn!(to = %to, sid = %i.sid, "inbound message for a number no sender has; acknowledged, not stored");
            return Ok(None);
        };
        let from = E164::parse(&i.from)
            .map(|e| e.as_str().to_string())
            .unwrap_or(i.from);
        let inbound = NewInbound {
            sender_id: sender.id,
            from,
            body: i.body,
            profile_name: i.profile_name,
            provider_sid: Some(i.sid),
            media: i.media,
            button_payload: i.button_payload,
            at: self.clock.now_ms(),
        };
        Ok(self.store.record_inbound(inbound).await?)
    }
}
