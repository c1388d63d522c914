//! What providers know of templates and senders: a template is submitted to WhatsApp's review
//! through its sender's provider, and its status (and its sender's) is read back from there.
//! Kept apart from `Provider`, which moves messages.

use async_trait::async_trait;

use super::ProviderError;
use crate::model::{Review, Sender, SenderReport, Template};

/// A template the provider took for review.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The provider's id of the template (Twilio's `HX…` Content sid, Meta's template id).
    pub provider_ref: Option<String>,
    pub review: Review,
}

#[async_trait]
pub trait Catalog: Send + Sync {
    /// Creates the template at the provider and submits it for review. `template` is as it
    /// will be stored (its id not yet known).
    async fn submit(
        &self,
        sender: &Sender,
        template: &Template,
    ) -> Result<Submitted, ProviderError>;

    /// What review says of the template now.
    async fn review(&self, sender: &Sender, template: &Template) -> Result<Review, ProviderError>;

    /// Deletes the template at the provider (gone already is fine).
    async fn delete(&self, sender: &Sender, template: &Template) -> Result<(), ProviderError>;

    /// The sender as the provider sees it; `None` when the provider has no such record to read
    /// (the operator's settings stand).
    async fn sender(&self, sender: &Sender) -> Result<Option<SenderReport>, ProviderError>;
}
