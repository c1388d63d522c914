//! Templates that tenants create (API.md §11): checked by WhatsApp's rules, created and
//! submitted for review at the sender's provider in the same request, read, synced now, and
//! deleted at the provider too. Only `approved` templates send (`service/send.rs`).

use std::sync::Arc;

use serde_json::{Map, Value};
use waygate_core::template_submission::{RawButton, RawSubmission, TemplateSubmission};
use waygate_core::validation::FieldErrors;

use super::{ServiceError, Services};
use crate::input::Fields;
use crate::model::{NewTemplate, Sender, Template, TemplateStatus};
use crate::store::StoreError;

impl Services {
    /// Creates `body`'s template for `sender` and submits it for review; a provider's refusal
    /// keeps nothing.
    pub async fn submit_template(
        &self,
        sender: &Sender,
        body: &Map<String, Value>,
    ) -> Result<Template, ServiceError> {
        let submission =
            TemplateSubmission::parse(raw_submission(body)?).map_err(ServiceError::Validation)?;
        let taken = self
            .store
            .list_templates(sender.id, None)
            .await?
            .iter()
            .any(|t| {
                t.name == submission.name().as_str() && t.language == submission.language().as_str()
            });
        if taken {
            return Err(name_taken());
        }
        let now = self.clock.now_ms();
        let mut draft = Template {
            id: 0,
            sender_id: sender.id,
            name: submission.name().as_str().to_string(),
            language: submission.language().as_str().to_string(),
            category: submission.category(),
            status: TemplateStatus::Pending,
            body: submission.body().clone(),
            variables: submission.variables().to_vec(),
            provider_ref: None,
            samples: submission.samples().to_vec(),
            header_text: submission.header_text().map(str::to_string),
            footer_text: submission.footer_text().map(str::to_string),
            buttons: submission.buttons().to_vec(),
            rejection_reason: None,
            created_at: now,
            updated_at: now,
        };
        let provider = sender.provider;
        let catalog = self
            .worker
            .providers
            .catalog_for(provider)
            .map_err(|e| ServiceError::from_provider(provider, e))?;
        let submitted = catalog
            .submit(sender, &draft)
            .await
            .map_err(|e| ServiceError::from_provider(provider, e))?;
        draft.provider_ref = submitted.provider_ref;
        let template = NewTemplate {
            name: draft.name.clone(),
            language: draft.language.clone(),
            category: draft.category,
            status: submitted.review.status,
            body: draft.body.clone(),
            variables: draft.variables.clone(),
            provider_ref: draft.provider_ref.clone(),
            samples: draft.samples.clone(),
            header_text: draft.header_text.clone(),
            footer_text: draft.footer_text.clone(),
            buttons: draft.buttons.clone(),
            rejection_reason: submitted.review.rejection_reason,
            sync_at: Some(self.next_template_sync(submitted.review.status, now)),
        };
        match self.store.create_template(sender.id, template, now).await {
            Ok(Some(created)) => Ok(created),
            Ok(None) => Err(ServiceError::SenderNotFound),
            Err(e) => {
                // Created at the provider but not kept here: take it back there too.
                if let Err(undo) = catalog.delete(sender, &draft).await {
                    tracing::error!(error = %undo, name = %draft.name, "a template created at the provider could not be deleted there again");
                }
                Err(match e {
                    StoreError::Conflict(_) => name_taken(),
                    other => other.into(),
                })
            }
        }
    }

    /// The tenant's template (another tenant's is not found).
    pub async fn tenant_template(
        &self,
        user_id: i64,
        id: i64,
    ) -> Result<(Arc<Sender>, Template), ServiceError> {
        let template = self
            .store
            .get_template(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let sender = self
            .sender(template.sender_id)
            .await?
            .filter(|s| s.user_id == user_id)
            .ok_or(ServiceError::NotFound)?;
        Ok((sender, template))
    }

    /// Deletes the tenant's template at its provider, then here; its sent messages keep
    /// their `template_id`.
    pub async fn delete_template(&self, user_id: i64, id: i64) -> Result<(), ServiceError> {
        let (sender, template) = self.tenant_template(user_id, id).await?;
        let provider = sender.provider;
        self.worker
            .providers
            .catalog_for(provider)
            .map_err(|e| ServiceError::from_provider(provider, e))?
            .delete(&sender, &template)
            .await
            .map_err(|e| ServiceError::from_provider(provider, e))?;
        self.store.delete_template(id).await?;
        self.cache.templates.forget(&id);
        Ok(())
    }
}

fn name_taken() -> ServiceError {
    ServiceError::Validation(FieldErrors::single(
        "name",
        "A template with this name and language already exists for this sender.",
    ))
}

/// The submission's fields with their JSON types checked; WhatsApp's rules come after (a
/// blank text counts as absent).
fn raw_submission(body: &Map<String, Value>) -> Result<RawSubmission, ServiceError> {
    let mut f = Fields::new(body);
    let text = |f: &mut Fields<'_>, name: &str| f.opt_string(name, usize::MAX);
    let raw = RawSubmission {
        name: text(&mut f, "name"),
        language: text(&mut f, "language"),
        category: text(&mut f, "category"),
        body_text: text(&mut f, "body_text"),
        variables: f.opt_string_list("variables"),
        samples: f.opt_string_list("samples"),
        header_text: text(&mut f, "header_text"),
        footer_text: text(&mut f, "footer_text"),
        buttons: buttons(body, &mut f),
    };
    f.finish()?;
    Ok(raw)
}

fn buttons(body: &Map<String, Value>, f: &mut Fields<'_>) -> Option<Vec<RawButton>> {
    let items = match body.get("buttons") {
        None | Some(Value::Null) => return None,
        Some(Value::Array(items)) => items,
        Some(_) => {
            f.error("buttons", "The buttons field must be an array of objects.");
            return None;
        }
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match serde_json::from_value::<RawButton>(item.clone()) {
            Ok(button) => parsed.push(button),
            Err(_) => f.error(
                &format!("buttons.{index}"),
                "A button must be an object with string fields type, text, url and phone_number.",
            ),
        }
    }
    Some(parsed)
}
