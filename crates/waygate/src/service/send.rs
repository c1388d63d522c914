//! The two send use cases (API.md §3), in the contract's check order: sender → template →
//! window → messaging limit → balance → provider. Auth, rate limit and parsing happen before.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::oneshot;
use waygate_core::phone::E164;
use waygate_core::pricing::{Category, WindowAtSend};
use waygate_core::template::render_with;
use waygate_core::window::SessionStatus;

use super::{ServiceError, Services};
use std::sync::Arc;

use crate::jobs::DispatchOutcome;
use crate::model::{Sender, SenderStatus, Template, TemplateStatus};
use crate::store::{
    Dispatch, IdempotencyKey, NewSend, Outgoing, Replay, SendPrice, SendRefused, StoreError,
    TemplateLocale, TemplateSend,
};
use crate::views::session_status;

/// A send that passed every check made before the store.
struct Prepared {
    user_id: i64,
    sender: Arc<Sender>,
    recipient: E164,
    recipient_name: Option<String>,
    /// `None` for a freeform message.
    template: Option<TemplateSend>,
    template_ref: Option<String>,
    template_locale: Option<TemplateLocale>,
    body: String,
    price: SendPrice,
    idem: Option<IdempotencyKey>,
}

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
    ) -> Result<Arc<Sender>, ServiceError> {
        let sender = self
            .sender(sender_id)
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
    ) -> Result<Arc<Template>, ServiceError> {
        let template = self
            .template(template_id)
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
        let rendered = render_with(&template.body, &template.variables, req.variables.as_ref())
            .map_err(ServiceError::TemplateMismatch)?;
        let calling_code = req.recipient.calling_code();
        let price = SendPrice {
            window_closed: self.rate_card.price(
                template.category,
                calling_code,
                WindowAtSend::Closed,
            ),
            window_open: self
                .rate_card
                .price(template.category, calling_code, WindowAtSend::Open),
        };
        let prepared = Prepared {
            user_id,
            recipient: req.recipient,
            recipient_name: req.recipient_name,
            template: Some(TemplateSend {
                template_id: template.id,
                variables: rendered.values.clone(),
                messaging_limit: sender.messaging_limit,
            }),
            template_ref: template.provider_ref.clone(),
            template_locale: Some(TemplateLocale {
                name: template.name.clone(),
                language: template.language.clone(),
            }),
            body: rendered.text,
            price,
            idem,
            sender,
        };
        self.record_and_dispatch(prepared).await
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
        // Freeform needs an open window, so its price is the open window's.
        let price = SendPrice::flat(self.rate_card.price(
            Category::Service,
            req.recipient.calling_code(),
            WindowAtSend::Open,
        ));
        let prepared = Prepared {
            user_id,
            recipient: req.recipient,
            recipient_name: None,
            template: None,
            template_ref: None,
            template_locale: None,
            body: req.message,
            price,
            idem,
            sender,
        };
        self.record_and_dispatch(prepared).await
    }

    /// Records the send and hands it to its provider. Both run in a task of their own, so a
    /// client that disconnects cannot leave a recorded message undispatched until its lease
    /// ends; the caller waits for the provider at most `send_wait_ms`.
    async fn record_and_dispatch(&self, p: Prepared) -> Result<SendReply, ServiceError> {
        let freeform = p.template.is_none();
        let provider_kind = p.sender.provider;
        let mut outgoing = Outgoing {
            message_id: 0,
            sid: None,
            unknown_since: None,
            provider: provider_kind,
            from: p.sender.phone_number.clone(),
            to: p.recipient.as_str().to_string(),
            body: p.body.clone(),
            template_ref: p.template_ref,
            template_locale: p.template_locale,
            sender_ref: p.sender.provider_ref.clone(),
            variables: p
                .template
                .as_ref()
                .map(|t| t.variables.clone())
                .unwrap_or_default(),
        };
        let inline = self
            .worker
            .providers
            .for_kind(provider_kind)
            .ok()
            .and_then(|provider| provider.accept_inline(&outgoing));
        let inline_answer = inline
            .as_ref()
            .map(|a| (a.sid.clone(), a.status.as_str().to_string()));
        let dispatch = match inline {
            Some(accepted) => Dispatch::Accepted {
                sid: accepted.sid,
                status: accepted.status,
                followups: accepted.followups,
            },
            None => Dispatch::Queue {
                lease_ms: self.worker.lease_ms,
            },
        };
        let send = NewSend {
            user_id: p.user_id,
            sender_id: p.sender.id,
            recipient: p.recipient.as_str().to_string(),
            recipient_name: p.recipient_name,
            template: p.template,
            body: p.body,
            price: p.price,
            idempotency: p.idem,
            now: self.clock.now_ms(),
            dispatch,
            template_opens: self.config.window_template_opens,
        };

        let (recorded, message_sid, status) = match inline_answer {
            // Nothing left to dispatch: once the writer has the operation it commits it,
            // whether or not this request is still waiting.
            Some((sid, status)) => (self.store.record_send(send).await, Some(sid), status),
            None => {
                let (recorded_tx, recorded_rx) = oneshot::channel();
                let (outcome_tx, outcome_rx) = oneshot::channel();
                let store = self.store.clone();
                let worker = self.worker.clone();
                tokio::spawn(async move {
                    let result = store.record_send(send).await;
                    let job = result
                        .as_ref()
                        .ok()
                        .and_then(|r| r.job_id.map(|job| (job, r.message_id)));
                    let _ = recorded_tx.send(result);
                    if let Some((job_id, message_id)) = job {
                        outgoing.message_id = message_id;
                        let _ = outcome_tx.send(worker.dispatch(job_id, &outgoing, 0, None).await);
                    }
                });
                let recorded = recorded_rx.await.map_err(|_| StoreError::Closed)?;
                if recorded.is_err() {
                    (recorded, None, String::new())
                } else {
                    let wait = Duration::from_millis(self.config.send_wait_ms);
                    let (sid, status) = match tokio::time::timeout(wait, outcome_rx).await {
                        Ok(Ok(Ok(DispatchOutcome::Accepted { sid, status }))) => {
                            (Some(sid), status)
                        }
                        Ok(Ok(Ok(DispatchOutcome::Rejected { code, message }))) => {
                            return Err(ServiceError::ProviderRejected {
                                provider: provider_kind,
                                code,
                                message,
                            })
                        }
                        Ok(Ok(Err(e))) => {
                            tracing::error!(error = %e, "cannot record a dispatch; the job will run again");
                            (None, "pending".to_string())
                        }
                        // Still with the provider, or waiting in the outbox.
                        Ok(Ok(Ok(DispatchOutcome::Pending))) | Ok(Err(_)) | Err(_) => {
                            (None, "pending".to_string())
                        }
                    };
                    (recorded, sid, status)
                }
            }
        };
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(SendRefused::Replay(replay)) => return Ok(SendReply::Replayed(replay)),
            Err(refused) => return Err(self.refused(refused)),
        };
        let session_status = freeform.then(|| {
            session_status(
                Some(&recorded.conversation),
                self.config.window_template_opens,
                self.clock.now_ms(),
            )
        });
        Ok(SendReply::Sent(SendSuccess {
            conversation_id: recorded.conversation.id,
            message_id: recorded.message_id,
            message_sid,
            status,
            session_status,
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
