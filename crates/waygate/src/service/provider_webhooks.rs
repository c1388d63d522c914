//! What providers tell us: status changes of sent messages and inbound customer messages, and
//! (Meta) template reviews and phone number quality. Signatures are checked by the HTTP layer
//! before anything here runs.

use waygate_core::phone::E164;
use waygate_core::status::MessageStatus;

use super::{ServiceError, Services};
use crate::model::{Message, ProviderKind, Review};
use crate::provider::meta::webhook::Event;
pub use crate::provider::{ProviderInbound, ProviderStatus};
use crate::store::{NewInbound, StatusApplied, StatusTarget, StatusUpdate};

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
            reply_to_sid: i.reply_to_sid,
            at: self.clock.now_ms(),
        };
        Ok(self.store.record_inbound(inbound).await?)
    }

    /// Applies each event of one Meta notification in order; a repeat changes nothing. The
    /// first store failure stops it, so that Meta posts the whole notification again.
    pub async fn meta_events(&self, events: Vec<Event>) -> Result<(), ServiceError> {
        for event in events {
            match event {
                Event::Status(status) => {
                    self.provider_status(status).await?;
                }
                Event::Inbound(inbound) => {
                    self.provider_inbound(ProviderKind::Meta, inbound).await?;
                }
                Event::Template {
                    template_id,
                    review,
                } => self.meta_template_review(template_id, review).await?,
                Event::Quality { phone_number } => self.meta_sender_changed(phone_number).await?,
            }
        }
        Ok(())
    }

    /// Review's decision pushed by Meta, applied at once (the next reading stays scheduled).
    async fn meta_template_review(
        &self,
        template_id: String,
        review: Review,
    ) -> Result<(), ServiceError> {
        let Some(template) = self
            .store
            .template_by_provider_ref(template_id.clone(), ProviderKind::Meta)
            .await?
        else {
            tracing::warn!(%template_id, "Meta template update for a template waygate does not know");
            return Ok(());
        };
        let now = self.clock.now_ms();
        let next_at = self.next_template_sync(review.status, now);
        if let Some(changed) = self
            .store
            .record_review(template.id, review, Some(next_at), now)
            .await?
        {
            tracing::info!(
                template_id = changed.id,
                status = changed.status.as_str(),
                "template status pushed by Meta"
            );
            self.cache.templates.forget(&changed.id);
        }
        Ok(())
    }

    /// Meta announced a quality or limit change of a number: its sender is read from Meta now,
    /// as the push does not carry every field.
    async fn meta_sender_changed(&self, phone_number: String) -> Result<(), ServiceError> {
        let Some(sender) = self
            .store
            .sender_by_phone(phone_number.clone(), ProviderKind::Meta)
            .await?
        else {
            tracing::warn!(%phone_number, "Meta quality update for a number no sender has");
            return Ok(());
        };
        let catalog = self
            .worker
            .providers
            .catalog_for(ProviderKind::Meta)
            .map_err(|e| ServiceError::from_provider(ProviderKind::Meta, e))?;
        let Some(report) = catalog
            .sender(&sender)
            .await
            .map_err(|e| ServiceError::from_provider(ProviderKind::Meta, e))?
        else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let next_at = now.saturating_add(
            i64::try_from(self.config.sender_sync_s.saturating_mul(1000)).unwrap_or(i64::MAX),
        );
        if let Some(changed) = self
            .store
            .record_sender_report(sender.id, report, next_at, now)
            .await?
        {
            tracing::info!(sender_id = changed.id, "sender change pushed by Meta");
            self.cache.senders.forget(&changed.id);
        }
        Ok(())
    }
}
