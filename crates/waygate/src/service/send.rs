//! The two send use cases (API.md §3), in the contract's check order: sender → template →
//! window → messaging limit → balance → provider. Auth, rate limit and parsing happen before.

use std::time::Duration;

use serde_json::{Map, Value};
use waygate_core::phone::E164;
use waygate_core::pricing::Category;
use waygate_core::template::{render_with, TemplateBody};
use waygate_core::window::SessionStatus;

use super::{ServiceError, Services};
use crate::jobs::DispatchOutcome;
use crate::model::{Sender, SenderStatus, Template, TemplateStatus};
use crate::store::{IdempotencyKey, NewSend, Outgoing, Replay, SendRefused, TemplateSend};
use crate::views::session_status;

#[derive(Debug, Clone)]
pub struct TemplateSendRequest {
    pub sender_id: i64,
    pub template_id: i64,
    pub recipient: E164,
    pub recipient_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
}

#[derive(Debug, Clone)]
pub struct FreeformSendRequest {
    pub sender_id: i64,
    pub recipient: E164,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct SendSuccess {
    pub conversation_id: i64,
    pub message_id: i64,
    pub message_sid: Option<String>,
    pub status: String,
    /// Freeform only: the window after sending.
    pub session_status: Option<SessionStatus>,
}

#[derive(Debug)]
pub enum SendReply {
    Sent(SendSuccess),
    /// The same idempotency key and body were seen before.
    Replayed(Replay),
}

impl Services {
    async fn owned_sender(
        &self,
        user_id: i64,
        sender_id: i64,
        freeform: bool,
    ) -> Result<Sender, ServiceError> {
        let sender = self
            .store
            .get_sender(sender_id)
            .await?
            .filter(|s| s.user_id == user_id)
            .ok_or(ServiceError::SenderNotFound)?;
        if sender.status != SenderStatus::Online {
            return Err(ServiceError::SenderOffline {
                status: sender.status,
                freeform,
            });
        }
        Ok(sender)
    }

    async fn sendable_template(
        &self,
        sender: &Sender,
        template_id: i64,
    ) -> Result<Template, ServiceError> {
        let template = self
            .store
            .get_template(template_id)
            .await?
            .filter(|t| t.sender_id == sender.id)
            .ok_or(ServiceError::TemplateNotFound)?;
        if template.status != TemplateStatus::Approved {
            return Err(ServiceError::TemplateNotApproved(template.status));
        }
        if sender.provider.needs_template_ref() && template.provider_ref.is_none() {
            return Err(ServiceError::TemplateNotSynced(sender.provider));
        }
        Ok(template)
    }

    async fn replay(
        &self,
        user_id: i64,
        idem: &Option<IdempotencyKey>,
    ) -> Result<Option<Replay>, ServiceError> {
        let Some(idem) = idem else { return Ok(None) };
        self.store
            .idempotent_replay(
                user_id,
                idem.key.clone(),
                idem.request_hash.clone(),
                self.clock.now_ms(),
            )
            .await
            .map_err(|r| self.refused(r))
    }

    pub async fn send_template(
        &self,
        user_id: i64,
        req: TemplateSendRequest,
        idem: Option<IdempotencyKey>,
    ) -> Result<SendReply, ServiceError> {
        if let Some(replay) = self.replay(user_id, &idem).await? {
            return Ok(SendReply::Replayed(replay));
        }
        let sender = self.owned_sender(user_id, req.sender_id, false).await?;
        let template = self.sendable_template(&sender, req.template_id).await?;
        let body = TemplateBody::parse(&template.body_text)
            .map_err(|e| ServiceError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
        let rendered = render_with(&body, &template.variables, req.variables.as_ref())
            .map_err(ServiceError::TemplateMismatch)?;
        let send = NewSend {
            user_id,
            sender_id: sender.id,
            recipient: req.recipient.as_str().to_string(),
            recipient_name: req.recipient_name,
            template: Some(TemplateSend {
                template_id: template.id,
                variables: rendered.values.clone(),
                messaging_limit: sender.messaging_limit,
            }),
            body: rendered.text.clone(),
            price: self
                .rate_card
                .price(template.category, req.recipient.calling_code()),
            idempotency: idem,
            now: self.clock.now_ms(),
            lease_ms: crate::jobs::LEASE_MS,
            template_opens: self.config.window_template_opens,
        };
        let outgoing = Outgoing {
            message_id: 0,
            sid: None,
            unknown_since: None,
            provider: sender.provider,
            from: sender.phone_number.clone(),
            to: req.recipient.as_str().to_string(),
            body: rendered.text,
            template_ref: template.provider_ref.clone(),
            variables: rendered.values,
        };
        self.record_and_dispatch(send, outgoing, &sender, false)
            .await
    }

    pub async fn send_freeform(
        &self,
        user_id: i64,
        req: FreeformSendRequest,
        idem: Option<IdempotencyKey>,
    ) -> Result<SendReply, ServiceError> {
        if let Some(replay) = self.replay(user_id, &idem).await? {
            return Ok(SendReply::Replayed(replay));
        }
        let sender = self.owned_sender(user_id, req.sender_id, true).await?;
        let send = NewSend {
            user_id,
            sender_id: sender.id,
            recipient: req.recipient.as_str().to_string(),
            recipient_name: None,
            template: None,
            body: req.message.clone(),
            price: self
                .rate_card
                .price(Category::Service, req.recipient.calling_code()),
            idempotency: idem,
            now: self.clock.now_ms(),
            lease_ms: crate::jobs::LEASE_MS,
            template_opens: self.config.window_template_opens,
        };
        let outgoing = Outgoing {
            message_id: 0,
            sid: None,
            unknown_since: None,
            provider: sender.provider,
            from: sender.phone_number.clone(),
            to: req.recipient.as_str().to_string(),
            body: req.message,
            template_ref: None,
            variables: Vec::new(),
        };
        self.record_and_dispatch(send, outgoing, &sender, true)
            .await
    }

    async fn record_and_dispatch(
        &self,
        send: NewSend,
        mut outgoing: Outgoing,
        sender: &Sender,
        freeform: bool,
    ) -> Result<SendReply, ServiceError> {
        let recorded = match self.store.record_send(send).await {
            Ok(recorded) => recorded,
            Err(SendRefused::Replay(replay)) => return Ok(SendReply::Replayed(replay)),
            Err(refused) => return Err(self.refused(refused)),
        };
        outgoing.message_id = recorded.message_id;
        let wait = Duration::from_millis(self.config.send_wait_ms);
        let outcome = self
            .worker
            .dispatch_within(recorded.job_id, outgoing, wait)
            .await;
        let session = freeform.then(|| {
            session_status(
                Some(&recorded.conversation),
                self.config.window_template_opens,
                self.clock.now_ms(),
            )
        });
        let (message_sid, status) = match outcome {
            DispatchOutcome::Accepted { sid, status } => (Some(sid), status),
            DispatchOutcome::Pending => (None, "pending".to_string()),
            DispatchOutcome::Rejected { code, message } => {
                return Err(ServiceError::ProviderRejected {
                    provider: sender.provider,
                    code,
                    message,
                })
            }
        };
        Ok(SendReply::Sent(SendSuccess {
            conversation_id: recorded.conversation.id,
            message_id: recorded.message_id,
            message_sid,
            status,
            session_status: session,
        }))
    }

    fn refused(&self, refused: SendRefused) -> ServiceError {
        match refused {
            SendRefused::SessionExpired(conversation) => {
                ServiceError::SessionExpired(Box::new(session_status(
                    conversation.as_ref(),
                    self.config.window_template_opens,
                    self.clock.now_ms(),
                )))
            }
            SendRefused::MessagingLimitReached => ServiceError::MessagingLimitReached,
            SendRefused::InsufficientBalance => ServiceError::InsufficientBalance,
            SendRefused::IdempotencyKeyReused => ServiceError::IdempotencyKeyReused,
            SendRefused::Store(e) => ServiceError::from(e),
            // Only record_send produces replays; its caller handles them first.
            SendRefused::Replay(_) => ServiceError::IdempotencyKeyReused,
        }
    }
}
