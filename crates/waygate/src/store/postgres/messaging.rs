//! Conversations, messages, charges and refunds: the send path and the status path.

use super::PgStore;
use crate::model::*;
use crate::store::*;
use waygate_core::money::Money;

pub async fn record_send(s: &PgStore, send: NewSend) -> Result<SendRecorded, SendRefused> {
    let _ = (s, send);
    todo!("messaging::record_send")
}

pub async fn outgoing(s: &PgStore, message_ids: Vec<i64>) -> StoreResult<Vec<Outgoing>> {
    let _ = (s, message_ids);
    todo!("messaging::outgoing")
}

pub async fn known_sids(s: &PgStore, sids: Vec<String>) -> StoreResult<Vec<String>> {
    let _ = (s, sids);
    todo!("messaging::known_sids")
}

pub async fn record_dispatch(
    s: &PgStore,
    job_id: i64,
    message_id: i64,
    result: DispatchResult,
    now: i64,
) -> StoreResult<()> {
    let _ = (s, job_id, message_id, result, now);
    todo!("messaging::record_dispatch")
}

pub async fn apply_status(s: &PgStore, update: StatusUpdate) -> StoreResult<StatusApplied> {
    let _ = (s, update);
    todo!("messaging::apply_status")
}

pub async fn apply_due_statuses(s: &PgStore, now: i64, limit: i64) -> StoreResult<usize> {
    let _ = (s, now, limit);
    todo!("messaging::apply_due_statuses")
}

pub async fn record_inbound(s: &PgStore, inbound: NewInbound) -> StoreResult<Option<Message>> {
    let _ = (s, inbound);
    todo!("messaging::record_inbound")
}

pub async fn save_idempotent_response(
    s: &PgStore,
    user_id: i64,
    key: String,
    status: u16,
    body: String,
) -> StoreResult<()> {
    let _ = (s, user_id, key, status, body);
    todo!("messaging::save_idempotent_response")
}

pub async fn idempotent_replay(
    s: &PgStore,
    user_id: i64,
    key: String,
    request_hash: Vec<u8>,
    now: i64,
) -> Result<Option<Replay>, SendRefused> {
    let _ = (s, user_id, key, request_hash, now);
    todo!("messaging::idempotent_replay")
}

pub async fn conversation(
    s: &PgStore,
    sender_id: i64,
    recipient: String,
) -> StoreResult<Option<Conversation>> {
    let _ = (s, sender_id, recipient);
    todo!("messaging::conversation")
}

pub async fn get_conversation(s: &PgStore, id: i64) -> StoreResult<Option<Conversation>> {
    let _ = (s, id);
    todo!("messaging::get_conversation")
}

pub async fn list_conversations(
    s: &PgStore,
    query: ConversationQuery,
) -> StoreResult<Vec<Conversation>> {
    let _ = (s, query);
    todo!("messaging::list_conversations")
}

pub async fn get_message(s: &PgStore, id: i64) -> StoreResult<Option<Message>> {
    let _ = (s, id);
    todo!("messaging::get_message")
}

pub async fn list_messages(
    s: &PgStore,
    conversation_id: i64,
    after: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let _ = (s, conversation_id, after, limit);
    todo!("messaging::list_messages")
}
