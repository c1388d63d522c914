//! Persistence behind one interface: SQLite (embedded, the default) in `sqlite`, PostgreSQL
//! (several nodes on one database) in `postgres`.
//!
//! Every operation that changes money, a message or a job is one method here, so that an
//! implementation can commit it in one transaction.

pub mod catalog;
pub mod columns;
pub mod ledger;
pub mod outbox;
pub mod postgres;
pub mod rules;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use waygate_core::money::Money;
use waygate_core::status::MessageStatus;

use crate::model::*;

/// The store's one error type, the same for every backend: a backend's own error is kept as
/// the source of `Database`, so nothing above the store depends on which one it is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(Arc<dyn std::error::Error + Send + Sync>),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("{0}")]
    Conflict(&'static str),
    /// A credit that would take the balance past the largest amount it holds.
    #[error("the balance would overflow")]
    BalanceOverflow,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A send that passed every check the caller can make without the store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewSend {
    pub user_id: i64,
    pub sender_id: i64,
    pub recipient: String,
    pub recipient_name: Option<String>,
    /// `None` for a freeform message.
    pub template: Option<TemplateSend>,
    pub body: String,
    pub price: SendPrice,
    pub idempotency: Option<IdempotencyKey>,
    pub now: i64,
    pub dispatch: Dispatch,
    pub template_opens: bool,
}

/// What a send costs by the customer-service window (24 h from the customer's last message)
/// when it is recorded: WhatsApp does not charge a utility template inside an open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendPrice {
    #[serde(with = "exact_micros")]
    pub window_closed: Money,
    #[serde(with = "exact_micros")]
    pub window_open: Money,
}

impl SendPrice {
    /// The same price either way.
    pub fn flat(price: Money) -> SendPrice {
        SendPrice {
            window_closed: price,
            window_open: price,
        }
    }
}

/// Money in journal records as exact micro-units (its public form is a decimal number).
mod exact_micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use waygate_core::money::Money;

    pub fn serialize<S: Serializer>(money: &Money, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(money.micros())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        i64::deserialize(d).map(Money::from_micros)
    }
}

/// How a recorded send reaches its provider.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Dispatch {
    /// Through a dispatch job, claimed for `lease_ms` by the request that records it.
    Queue { lease_ms: i64 },
    /// Already accepted by an in-process provider (the simulator), which has no outside
    /// effect to make durable: the message is recorded as accepted, with no job.
    Accepted {
        sid: String,
        status: MessageStatus,
        followups: Vec<ScheduledStatus>,
    },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TemplateSend {
    pub template_id: i64,
    pub variables: Vec<String>,
    pub messaging_limit: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct SendRecorded {
    pub conversation: Conversation,
    pub message_id: i64,
    /// The dispatch job, for `Dispatch::Queue`.
    pub job_id: Option<i64>,
}

/// Why the store refused a send, in the contract's check order.
#[derive(Debug, Clone)]
pub enum SendRefused {
    /// Freeform with no open window; carries the conversation if there is one.
    SessionExpired(Option<Conversation>),
    MessagingLimitReached,
    InsufficientBalance,
    IdempotencyKeyReused,
    Replay(Replay),
    Store(StoreError),
}

impl From<StoreError> for SendRefused {
    fn from(e: StoreError) -> Self {
        SendRefused::Store(e)
    }
}

/// What an earlier request with the same idempotency key produced.
#[derive(Debug, Clone)]
pub enum Replay {
    Response {
        status: u16,
        body: String,
    },
    /// The first request has not finished (or its process died): its message as it stands.
    InFlight(Box<Message>),
}

/// Everything a provider needs to send one message; rebuilt from the store after a restart.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message_id: i64,
    /// Set once a provider accepted the message (or a callback told us its id).
    pub sid: Option<String>,
    /// The start of an attempt whose outcome is unknown, until reconciled.
    pub unknown_since: Option<i64>,
    pub provider: ProviderKind,
    pub from: String,
    pub to: String,
    pub body: String,
    pub template_ref: Option<String>,
    /// The template's name and language, which Meta addresses a template by.
    pub template_locale: Option<TemplateLocale>,
    pub variables: Vec<String>,
    /// The sender's provider id (Meta's phone number id, which sends go through).
    pub sender_ref: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TemplateLocale {
    pub name: String,
    pub language: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum DispatchResult {
    Accepted {
        sid: String,
        status: MessageStatus,
        /// Status reports the provider promised for later (the simulator's schedule).
        followups: Vec<ScheduledStatus>,
        /// When to fetch the status from the provider if its callbacks have not ended it.
        recheck_at: Option<i64>,
    },
    Rejected {
        code: i64,
        message: String,
    },
    Retry {
        at: i64,
        error: String,
    },
    /// The attempt begun at `since` may or may not have reached the provider: reconcile at `at`.
    Unknown {
        since: i64,
        at: i64,
        error: String,
    },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScheduledStatus {
    pub at: i64,
    pub status: String,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

/// The payload of a status job: messages that walk through the same steps together (those
/// accepted in one transaction), and their steps in order (the job's row counts those done).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatusSteps {
    pub message_ids: Vec<i64>,
    pub steps: Vec<ScheduledStatus>,
}

#[derive(Debug, Clone)]
pub enum StatusTarget {
    MessageId(i64),
    /// A provider callback: the provider's id, and ours if the callback URL carried it (so a
    /// message whose send answer was lost learns its provider id).
    Provider {
        sid: String,
        message_id: Option<i64>,
    },
}

#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub target: StatusTarget,
    pub status: MessageStatus,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusApplied {
    Advanced,
    Ignored,
    UnknownMessage,
}

#[derive(Debug, Clone)]
pub struct NewInbound {
    pub sender_id: i64,
    pub from: String,
    pub body: String,
    pub profile_name: Option<String>,
    pub provider_sid: Option<String>,
    pub media: Vec<Media>,
    pub button_payload: Option<String>,
    /// The provider id of the message this one replies to.
    pub reply_to_sid: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct ConversationQuery {
    pub user_id: i64,
    pub sender_id: Option<i64>,
    pub recipient: Option<String>,
    /// Position after which to continue: (last_message_at, id) of the last row seen.
    pub after: Option<(i64, i64)>,
    pub limit: i64,
}

/// A message whose status is due to be fetched from its provider (a callback may be lost).
#[derive(Debug, Clone)]
pub struct StatusCheck {
    pub message_id: i64,
    pub sid: String,
    pub provider: ProviderKind,
    pub created_at: i64,
    /// Checks made before this one.
    pub rechecks: i64,
}

/// What a status check leaves behind, beside the status it applied.
#[derive(Debug, Clone)]
pub struct CheckRecorded {
    /// When to check again; `None` ends the checks.
    pub next_at: Option<i64>,
    /// Why the provider cannot tell this message's fate, and since when (an earlier `since`
    /// is kept); `None` clears it.
    pub unknown: Option<StatusUnknown>,
}

/// Counts for the gauges an operator watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueGauges {
    /// Jobs waiting or running.
    pub live: i64,
    /// Jobs given up on, kept for an operator.
    pub set_aside: i64,
    /// Messages whose fate the provider could not tell.
    pub status_unknown: i64,
}

#[derive(Debug, Clone)]
pub struct CreditOutcome {
    pub balance: Money,
    pub created: bool,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn ping(&self) -> StoreResult<()>;

    /// Makes every answered write visible to other processes reading the database (the
    /// embedded store commits what only its journal holds); for a clean shutdown.
    async fn flush(&self) -> StoreResult<()>;
    async fn has_users(&self) -> StoreResult<bool>;

    async fn create_user(&self, name: String, email: String, now: i64) -> StoreResult<User>;
    async fn get_user(&self, id: i64) -> StoreResult<Option<User>>;
    /// `None` when the user does not exist.
    async fn create_api_key(
        &self,
        user_id: i64,
        name: String,
        prefix: String,
        hash: Vec<u8>,
        now: i64,
    ) -> StoreResult<Option<ApiKeyRecord>>;
    async fn revoke_api_key(&self, id: i64, now: i64) -> StoreResult<bool>;
    async fn user_for_key(&self, hash: Vec<u8>) -> StoreResult<Option<i64>>;
    /// Moves whenever an API key, sender or template changes, whichever process changed it.
    async fn directory_version(&self) -> StoreResult<i64>;

    async fn create_sender(
        &self,
        user_id: i64,
        sender: NewSender,
        now: i64,
    ) -> StoreResult<Option<Sender>>;
    /// A change of status, quality rating or messaging limit queues its `sender.status` event.
    async fn update_sender(
        &self,
        id: i64,
        patch: SenderPatch,
        now: i64,
    ) -> StoreResult<Option<Sender>>;
    async fn get_sender(&self, id: i64) -> StoreResult<Option<Sender>>;
    /// The sender with this number on this provider (where inbound messages arrive).
    async fn sender_by_phone(
        &self,
        phone: String,
        provider: ProviderKind,
    ) -> StoreResult<Option<Sender>>;
    async fn list_senders(
        &self,
        user_id: i64,
        status: Option<SenderStatus>,
    ) -> StoreResult<Vec<Sender>>;

    async fn create_template(
        &self,
        sender_id: i64,
        template: NewTemplate,
        now: i64,
    ) -> StoreResult<Option<Template>>;
    /// A change of status queues its `template.status` event.
    async fn update_template(
        &self,
        id: i64,
        patch: TemplatePatch,
        now: i64,
    ) -> StoreResult<Option<Template>>;
    async fn get_template(&self, id: i64) -> StoreResult<Option<Template>>;
    /// The template a provider knows by its own id (Meta's template id), on that provider's
    /// senders.
    async fn template_by_provider_ref(
        &self,
        provider_ref: String,
        provider: ProviderKind,
    ) -> StoreResult<Option<Template>>;
    async fn list_templates(
        &self,
        sender_id: i64,
        status: Option<TemplateStatus>,
    ) -> StoreResult<Vec<Template>>;

    /// Deletes a template; false when there is none. Its sent messages keep its id.
    async fn delete_template(&self, id: i64) -> StoreResult<bool>;
    /// Claims for `lease_ms` the templates whose status is due to be read from the provider.
    async fn claim_template_syncs(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Template>>;
    /// Applies what review says and schedules the next reading (`None`: no more); the
    /// template when it changed, its `template.status` event queued with the change.
    async fn record_review(
        &self,
        template_id: i64,
        review: Review,
        next_at: Option<i64>,
        now: i64,
    ) -> StoreResult<Option<Template>>;
    /// Claims for `lease_ms` the senders whose status is due to be read from the provider.
    async fn claim_sender_syncs(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Sender>>;
    /// Applies what the provider says of a sender and schedules the next reading; the sender
    /// when it changed, its `sender.status` event queued with the change.
    async fn record_sender_report(
        &self,
        sender_id: i64,
        report: SenderReport,
        next_at: i64,
        now: i64,
    ) -> StoreResult<Option<Sender>>;

    /// Credits once per (user, reference); `None` when the user does not exist.
    async fn credit(
        &self,
        user_id: i64,
        amount: Money,
        reference: String,
        now: i64,
    ) -> StoreResult<Option<CreditOutcome>>;

    /// Window, messaging limit, balance and idempotency checks, then the message, its charge
    /// and its dispatch job, all in one transaction.
    async fn record_send(&self, send: NewSend) -> Result<SendRecorded, SendRefused>;
    /// What the providers need for these messages (unknown ids are left out).
    async fn outgoing(&self, message_ids: Vec<i64>) -> StoreResult<Vec<Outgoing>>;
    /// Which of these provider ids are already attached to a message.
    async fn known_sids(&self, sids: Vec<String>) -> StoreResult<Vec<String>>;
    /// Records a provider's answer to a dispatch job, and settles the job.
    async fn record_dispatch(
        &self,
        job_id: i64,
        message_id: i64,
        result: DispatchResult,
        now: i64,
    ) -> StoreResult<()>;
    async fn apply_status(&self, update: StatusUpdate) -> StoreResult<StatusApplied>;
    /// Applies the next step of due status jobs that providers scheduled, job by job, until
    /// `limit` messages moved, in one write (no lease needed); returns how many messages
    /// moved plus jobs set aside for a bad payload, so 0 means nothing was due.
    async fn apply_due_statuses(&self, now: i64, limit: i64) -> StoreResult<usize>;
    /// `None` when the provider id was seen before (a retried webhook).
    async fn record_inbound(&self, inbound: NewInbound) -> StoreResult<Option<Message>>;
    async fn save_idempotent_response(
        &self,
        user_id: i64,
        key: String,
        status: u16,
        body: String,
    ) -> StoreResult<()>;
    async fn idempotent_replay(
        &self,
        user_id: i64,
        key: String,
        request_hash: Vec<u8>,
        now: i64,
    ) -> Result<Option<Replay>, SendRefused>;

    async fn conversation(
        &self,
        sender_id: i64,
        recipient: String,
    ) -> StoreResult<Option<Conversation>>;
    async fn get_conversation(&self, id: i64) -> StoreResult<Option<Conversation>>;
    async fn list_conversations(&self, query: ConversationQuery) -> StoreResult<Vec<Conversation>>;
    async fn get_message(&self, id: i64) -> StoreResult<Option<Message>>;
    /// Oldest first, after message id `after`.
    async fn list_messages(
        &self,
        conversation_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;

    async fn create_webhook(
        &self,
        user_id: i64,
        url: String,
        events: Vec<String>,
        secret: String,
        now: i64,
    ) -> StoreResult<Webhook>;
    async fn list_webhooks(&self, user_id: i64) -> StoreResult<Vec<Webhook>>;
    async fn get_webhook(&self, id: i64) -> StoreResult<Option<Webhook>>;
    async fn delete_webhook(&self, id: i64, now: i64) -> StoreResult<bool>;
    /// Installs `secret`, keeping the old one valid until `old_valid_until`.
    async fn rotate_webhook_secret(
        &self,
        id: i64,
        secret: String,
        old_valid_until: i64,
    ) -> StoreResult<bool>;

    /// Claims up to `limit` due jobs for `lease_ms` (a crashed claimer's jobs come back after it).
    async fn claim_jobs(&self, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>>;
    async fn complete_job(&self, id: i64) -> StoreResult<()>;
    async fn retry_job(&self, id: i64, run_at: i64, error: String) -> StoreResult<()>;
    /// Gives up on a job; it stays for operators to inspect.
    async fn bury_job(&self, id: i64, error: String) -> StoreResult<()>;
    /// Gives up on a send job whose outcome cannot be settled, and marks its message so.
    async fn set_aside_send(
        &self,
        job_id: i64,
        message_id: i64,
        reason: String,
        now: i64,
    ) -> StoreResult<()>;
    /// Jobs given up on, oldest first, after job id `after`.
    async fn set_aside_jobs(&self, after: i64, limit: i64) -> StoreResult<Vec<SetAsideJob>>;
    /// Puts a job given up on back in the queue; false when there is no such job.
    async fn revive_job(&self, id: i64, now: i64) -> StoreResult<bool>;
    async fn queue_gauges(&self) -> StoreResult<QueueGauges>;

    /// Claims for `lease_ms` up to `limit` messages whose status is due to be fetched from
    /// the provider; ends the checks of those already final without returning them.
    async fn claim_status_checks(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<StatusCheck>>;
    async fn record_status_check(&self, message_id: i64, check: CheckRecorded) -> StoreResult<()>;
}
