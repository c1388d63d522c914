//! Use cases: each runs the contract's checks in order, calling the domain rules, the store
//! and the providers. No HTTP here.

pub mod admin;
pub mod cache;
pub mod catalog;
pub mod error;
pub mod phone_memo;
pub mod provider_webhooks;
pub mod send;
pub mod templates;

use std::sync::Arc;

use waygate_core::pricing::RateCard;

pub use error::ServiceError;

use crate::clock::Clock;
use crate::config::Config;
use crate::jobs::Worker;
use crate::model::{Sender, Template};
use crate::secrets::key_hash;
use crate::store::Store;

/// Everything a request needs, built once at start.
pub struct Services {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub worker: Arc<Worker>,
    pub rate_card: RateCard,
    pub cache: cache::ReadCache,
    pub phones: phone_memo::PhoneMemo,
}

impl Services {
    /// The user an API key belongs to (revoked and unknown keys: none).
    pub async fn user_for_key(&self, key: &str) -> Result<Option<i64>, ServiceError> {
        if let Some(user) = self.cache.keys.get(key) {
            return Ok(Some(user));
        }
        let read_at = self.cache.generation();
        let user = self.store.user_for_key(key_hash(key)).await?;
        if let Some(user) = user {
            self.cache.keys.put(read_at, key.to_string(), user);
        }
        Ok(user)
    }

    pub async fn sender(&self, id: i64) -> Result<Option<Arc<Sender>>, ServiceError> {
        if let Some(sender) = self.cache.senders.get(&id) {
            return Ok(Some(sender));
        }
        let read_at = self.cache.generation();
        let sender = self.store.get_sender(id).await?.map(Arc::new);
        if let Some(sender) = &sender {
            self.cache.senders.put(read_at, id, sender.clone());
        }
        Ok(sender)
    }

    pub async fn template(&self, id: i64) -> Result<Option<Arc<Template>>, ServiceError> {
        if let Some(template) = self.cache.templates.get(&id) {
            return Ok(Some(template));
        }
        let read_at = self.cache.generation();
        let template = self.store.get_template(id).await?.map(Arc::new);
        if let Some(template) = &template {
            self.cache.templates.put(read_at, id, template.clone());
        }
        Ok(template)
    }

    /// Keeps the read cache in step with changes other processes make, until `stop`.
    pub async fn watch_directory(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            match self.store.directory_version().await {
                Ok(version) => self.cache.observe_version(version),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the directory version; clearing the read cache");
                    self.cache.clear_all();
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(cache::POLL_EVERY) => {}
            }
        }
    }
}
