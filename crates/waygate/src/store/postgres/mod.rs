//! The PostgreSQL store, for several nodes on one database.
//!
//! Every operation is one transaction on a pooled connection; PostgreSQL's own commit is the
//! durability point. Nothing is held in process: money, idempotency, refunds and job claims
//! rest on constraints, row locks and `FOR UPDATE SKIP LOCKED`, so any number of nodes may
//! write at once. Statements are prepared once per connection (`prepare_cached`).

mod catalog_sync;
mod events;
mod jobs;
mod ledger;
mod messaging;
mod rows;
mod status_checks;
mod subscriptions;
mod tenants;
mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Transaction,
};
use waygate_core::money::Money;

use super::*;

/// Schema versions in order; `schema_migrations` records those applied.
const MIGRATIONS: &[&str] = &[include_str!("migrations/001_initial.sql")];

/// Taken while migrating, so that nodes starting together migrate one after another.
const MIGRATION_LOCK: i64 = 0x0077_6179_6761_7465; // "waygate" in ASCII

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    subscriptions: Arc<subscriptions::Subscriptions>,
}

/// A pooled connection.
pub type Conn = deadpool_postgres::Object;

impl PgStore {
    /// Connects with at most `max_connections` pooled connections and applies any missing
    /// migrations.
    pub async fn connect(url: &str, max_connections: usize) -> StoreResult<PgStore> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Database(Arc::new(e)))?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .build()
            .map_err(|e| StoreError::Database(Arc::new(e)))?;
        let store = PgStore {
            pool,
            subscriptions: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A connection from the pool (waits while all are in use).
    pub async fn conn(&self) -> StoreResult<Conn> {
        Ok(self.pool.get().await?)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
        let applied: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await?
            .get(0);
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "the database is at schema version {applied}, newer than this build knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.batch_execute(sql).await?;
            let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Ends a transaction with the outcome of its work: commits it, or on an error rolls it back
/// at once (a dropped one would only queue its rollback, holding its locks until the
/// connection next runs). A failed rollback changes nothing: the work's error is the answer.
pub(super) async fn finish<T, E: From<StoreError>>(
    tx: Transaction<'_>,
    outcome: Result<T, E>,
) -> Result<T, E> {
    match outcome {
        Ok(value) => {
            tx.commit().await.map_err(StoreError::from)?;
            Ok(value)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        self.conn().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Every answered write is already committed.
    async fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn has_users(&self) -> StoreResult<bool> {
        let c = self.conn().await?;
        let stmt = c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM users)")
            .await?;
        Ok(c.query_one(&stmt, &[]).await?.get(0))
    }

    async fn create_user(&self, name: String, email: String, now: i64) -> StoreResult<User> {
        tenants::create_user(self, name, email, now).await
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        tenants::get_user(self, id).await
    }

    async fn create_api_key(
        &self,
        user_id: i64,
        name: String,
        prefix: String,
        hash: Vec<u8>,
        now: i64,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        tenants::create_api_key(self, user_id, name, prefix, hash, now).await
    }

    async fn revoke_api_key(&self, id: i64, now: i64) -> StoreResult<bool> {
        tenants::revoke_api_key(self, id, now).await
    }

    async fn user_for_key(&self, hash: Vec<u8>) -> StoreResult<Option<i64>> {
        tenants::user_for_key(self, hash).await
    }

    async fn directory_version(&self) -> StoreResult<i64> {
        let c = self.conn().await?;
        let stmt = c
            .prepare_cached("SELECT version FROM directory_version")
            .await?;
        Ok(c.query_one(&stmt, &[]).await?.get(0))
    }

    async fn create_sender(
        &self,
        user_id: i64,
        sender: NewSender,
        now: i64,
    ) -> StoreResult<Option<Sender>> {
        tenants::create_sender(self, user_id, sender, now).await
    }

    async fn update_sender(
        &self,
        id: i64,
        patch: SenderPatch,
        now: i64,
    ) -> StoreResult<Option<Sender>> {
        tenants::update_sender(self, id, patch, now).await
    }

    async fn get_sender(&self, id: i64) -> StoreResult<Option<Sender>> {
        tenants::get_sender(self, id).await
    }

    async fn sender_by_phone(
        &self,
        phone: String,
        provider: ProviderKind,
    ) -> StoreResult<Option<Sender>> {
        tenants::sender_by_phone(self, phone, provider).await
    }

    async fn list_senders(
        &self,
        user_id: i64,
        status: Option<SenderStatus>,
    ) -> StoreResult<Vec<Sender>> {
        tenants::list_senders(self, user_id, status).await
    }

    async fn create_template(
        &self,
        sender_id: i64,
        template: NewTemplate,
        now: i64,
    ) -> StoreResult<Option<Template>> {
        tenants::create_template(self, sender_id, template, now).await
    }

    async fn update_template(
        &self,
        id: i64,
        patch: TemplatePatch,
        now: i64,
    ) -> StoreResult<Option<Template>> {
        tenants::update_template(self, id, patch, now).await
    }

    async fn get_template(&self, id: i64) -> StoreResult<Option<Template>> {
        tenants::get_template(self, id).await
    }

    async fn template_by_provider_ref(
        &self,
        provider_ref: String,
        provider: ProviderKind,
    ) -> StoreResult<Option<Template>> {
        tenants::template_by_provider_ref(self, provider_ref, provider).await
    }

    async fn list_templates(
        &self,
        sender_id: i64,
        status: Option<TemplateStatus>,
    ) -> StoreResult<Vec<Template>> {
        tenants::list_templates(self, sender_id, status).await
    }

    async fn delete_template(&self, id: i64) -> StoreResult<bool> {
        catalog_sync::delete_template(self, id).await
    }

    async fn claim_template_syncs(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Template>> {
        catalog_sync::claim_template_syncs(self, now, lease_ms, limit).await
    }

    async fn record_review(
        &self,
        template_id: i64,
        review: Review,
        next_at: Option<i64>,
        now: i64,
    ) -> StoreResult<Option<Template>> {
        catalog_sync::record_review(self, template_id, review, next_at, now).await
    }

    async fn claim_sender_syncs(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Sender>> {
        catalog_sync::claim_sender_syncs(self, now, lease_ms, limit).await
    }

    async fn record_sender_report(
        &self,
        sender_id: i64,
        report: SenderReport,
        next_at: i64,
        now: i64,
    ) -> StoreResult<Option<Sender>> {
        catalog_sync::record_sender_report(self, sender_id, report, next_at, now).await
    }

    async fn credit(
        &self,
        user_id: i64,
        amount: Money,
        reference: String,
        now: i64,
    ) -> StoreResult<Option<CreditOutcome>> {
        tenants::credit(self, user_id, amount, reference, now).await
    }

    async fn record_send(&self, send: NewSend) -> Result<SendRecorded, SendRefused> {
        messaging::record_send(self, send).await
    }

    async fn outgoing(&self, message_ids: Vec<i64>) -> StoreResult<Vec<Outgoing>> {
        messaging::outgoing(self, message_ids).await
    }

    async fn known_sids(&self, sids: Vec<String>) -> StoreResult<Vec<String>> {
        messaging::known_sids(self, sids).await
    }

    async fn record_dispatch(
        &self,
        job_id: i64,
        message_id: i64,
        result: DispatchResult,
        now: i64,
    ) -> StoreResult<()> {
        messaging::record_dispatch(self, job_id, message_id, result, now).await
    }

    async fn apply_status(&self, update: StatusUpdate) -> StoreResult<StatusApplied> {
        messaging::apply_status(self, update).await
    }

    async fn apply_due_statuses(&self, now: i64, limit: i64) -> StoreResult<usize> {
        messaging::apply_due_statuses(self, now, limit).await
    }

    async fn record_inbound(&self, inbound: NewInbound) -> StoreResult<Option<Message>> {
        messaging::record_inbound(self, inbound).await
    }

    async fn save_idempotent_response(
        &self,
        user_id: i64,
        key: String,
        status: u16,
        body: String,
    ) -> StoreResult<()> {
        messaging::save_idempotent_response(self, user_id, key, status, body).await
    }

    async fn idempotent_replay(
        &self,
        user_id: i64,
        key: String,
        request_hash: Vec<u8>,
        now: i64,
    ) -> Result<Option<Replay>, SendRefused> {
        messaging::idempotent_replay(self, user_id, key, request_hash, now).await
    }

    async fn conversation(
        &self,
        sender_id: i64,
        recipient: String,
    ) -> StoreResult<Option<Conversation>> {
        messaging::conversation(self, sender_id, recipient).await
    }

    async fn get_conversation(&self, id: i64) -> StoreResult<Option<Conversation>> {
        messaging::get_conversation(self, id).await
    }

    async fn list_conversations(&self, query: ConversationQuery) -> StoreResult<Vec<Conversation>> {
        messaging::list_conversations(self, query).await
    }

    async fn get_message(&self, id: i64) -> StoreResult<Option<Message>> {
        messaging::get_message(self, id).await
    }

    async fn list_messages(
        &self,
        conversation_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        messaging::list_messages(self, conversation_id, after, limit).await
    }

    async fn create_webhook(
        &self,
        user_id: i64,
        url: String,
        events: Vec<String>,
        secret: String,
        now: i64,
    ) -> StoreResult<Webhook> {
        webhooks::create_webhook(self, user_id, url, events, secret, now).await
    }

    async fn list_webhooks(&self, user_id: i64) -> StoreResult<Vec<Webhook>> {
        webhooks::list_webhooks(self, user_id).await
    }

    async fn get_webhook(&self, id: i64) -> StoreResult<Option<Webhook>> {
        webhooks::get_webhook(self, id).await
    }

    async fn delete_webhook(&self, id: i64, now: i64) -> StoreResult<bool> {
        webhooks::delete_webhook(self, id, now).await
    }

    async fn rotate_webhook_secret(
        &self,
        id: i64,
        secret: String,
        old_valid_until: i64,
    ) -> StoreResult<bool> {
        webhooks::rotate_webhook_secret(self, id, secret, old_valid_until).await
    }

    async fn claim_jobs(&self, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
        jobs::claim_jobs(self, now, lease_ms, limit).await
    }

    async fn complete_job(&self, id: i64) -> StoreResult<()> {
        jobs::complete_job(self, id).await
    }

    async fn retry_job(&self, id: i64, run_at: i64, error: String) -> StoreResult<()> {
        jobs::retry_job(self, id, run_at, error).await
    }

    async fn bury_job(&self, id: i64, error: String) -> StoreResult<()> {
        jobs::bury_job(self, id, error).await
    }

    async fn set_aside_send(
        &self,
        job_id: i64,
        message_id: i64,
        reason: String,
        now: i64,
    ) -> StoreResult<()> {
        jobs::set_aside_send(self, job_id, message_id, reason, now).await
    }

    async fn set_aside_jobs(&self, after: i64, limit: i64) -> StoreResult<Vec<SetAsideJob>> {
        jobs::set_aside_jobs(self, after, limit).await
    }

    async fn revive_job(&self, id: i64, now: i64) -> StoreResult<bool> {
        jobs::revive_job(self, id, now).await
    }

    async fn queue_gauges(&self) -> StoreResult<QueueGauges> {
        jobs::queue_gauges(self).await
    }

    async fn claim_status_checks(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<StatusCheck>> {
        status_checks::claim_status_checks(self, now, lease_ms, limit).await
    }

    async fn record_status_check(&self, message_id: i64, check: CheckRecorded) -> StoreResult<()> {
        status_checks::record_status_check(self, message_id, check).await
    }
}
