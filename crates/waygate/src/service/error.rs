//! The service layer's one error type; the HTTP layer maps it to status codes.

use waygate_core::validation::FieldErrors;
use waygate_core::window::SessionStatus;

use crate::model::{ProviderKind, SenderStatus, TemplateStatus};
use crate::provider::ProviderError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("invalid phone number")]
    InvalidPhone,
    #[error("sender not found")]
    SenderNotFound,
    #[error("sender offline")]
    SenderOffline {
        status: SenderStatus,
        freeform: bool,
    },
    #[error("template not found")]
    TemplateNotFound,
    #[error("template not approved")]
    TemplateNotApproved(TemplateStatus),
    #[error("template not synced")]
    TemplateNotSynced(ProviderKind),
    #[error("variables do not fit the template")]
    TemplateMismatch(FieldErrors),
    #[error("session expired")]
    SessionExpired(Box<SessionStatus>),
    #[error("messaging limit reached")]
    MessagingLimitReached,
    #[error("insufficient balance")]
    InsufficientBalance,
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    #[error("provider rejected the message")]
    ProviderRejected {
        provider: ProviderKind,
        code: i64,
        message: String,
    },
    /// The provider could not be asked, or did not answer (a template submission, a
    /// status reading): nothing was kept, the caller may try again.
    #[error("provider unavailable: {reason}")]
    ProviderUnavailable {
        provider: ProviderKind,
        reason: String,
    },
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ServiceError::Conflict(what),
            other => ServiceError::Store(other),
        }
    }
}

impl ServiceError {
    /// A provider's refusal (the caller's request is wrong for it) or its unavailability.
    pub fn from_provider(provider: ProviderKind, e: ProviderError) -> ServiceError {
        match e {
            ProviderError::Rejected { code, message } => ServiceError::ProviderRejected {
                provider,
                code,
                message,
            },
            ProviderError::Retryable { reason, .. } | ProviderError::Unknown { reason } => {
                ServiceError::ProviderUnavailable { provider, reason }
            }
        }
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ServiceError::Validation(_) => "validation_error",
            ServiceError::InvalidPhone => "invalid_phone",
            ServiceError::SenderNotFound => "sender_not_found",
            ServiceError::SenderOffline { .. } => "sender_offline",
            ServiceError::TemplateNotFound => "template_not_found",
            ServiceError::TemplateNotApproved(_) => "template_not_approved",
            ServiceError::TemplateNotSynced(_) => "template_not_synced",
            ServiceError::TemplateMismatch(_) => "template_mismatch",
            ServiceError::SessionExpired(_) => "session_expired",
            ServiceError::MessagingLimitReached => "messaging_limit_reached",
            ServiceError::InsufficientBalance => "insufficient_balance",
            ServiceError::IdempotencyKeyReused => "idempotency_key_reused",
            ServiceError::ProviderRejected { .. } => "provider_rejected",
            ServiceError::ProviderUnavailable { .. } => "provider_unavailable",
            ServiceError::NotFound => "not_found",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::Store(_) => "internal_error",
        }
    }
}
