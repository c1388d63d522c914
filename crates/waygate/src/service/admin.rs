//! Operator use cases (API.md §8), shared by the admin HTTP API and `waygate admin`.

use serde_json::{Map, Value};
use waygate_core::money::Money;
use waygate_core::phone::E164;
use waygate_core::pricing::Category;
use waygate_core::template::{variable_names, TemplateBody};
use waygate_core::validation::FieldErrors;

use super::{ServiceError, Services};
use crate::input::Fields;
use crate::model::*;
use crate::secrets;
use crate::store::{CreditOutcome, NewInbound, StoreError};

/// A created API key with its secret, shown this once.
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub key: String,
}

fn limit_field(f: &mut Fields<'_>) -> Option<Option<i64>> {
    if !f.has("messaging_limit") {
        return None;
    }
    match f.opt_int("messaging_limit") {
        Some(n) if n < 0 => {
            f.error(
                "messaging_limit",
                "The messaging_limit field must be at least 0.",
            );
            None
        }
        other => Some(other),
    }
}

impl Services {
    pub async fn create_user(&self, body: &Map<String, Value>) -> Result<User, ServiceError> {
        let mut f = Fields::new(body);
        let name = f.string("name", 255);
        let email = f.string("email", 255);
        if let Some(email) = &email {
            if !email.contains('@') {
                f.error("email", "The email field must be a valid email address.");
            }
        }
        let (name, email) = f.finish_with((name, email))?;
        Ok(self
            .store
            .create_user(name, email, self.clock.now_ms())
            .await?)
    }

    pub async fn create_api_key(
        &self,
        user_id: i64,
        body: &Map<String, Value>,
    ) -> Result<IssuedKey, ServiceError> {
        let mut f = Fields::new(body);
        let name = f
            .opt_string("name", 255)
            .unwrap_or_else(|| "default".into());
        f.finish()?;
        let key = secrets::new_api_key();
        let record = self
            .store
            .create_api_key(
                user_id,
                name,
                secrets::key_prefix(&key),
                secrets::key_hash(&key),
                self.clock.now_ms(),
            )
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(IssuedKey { record, key })
    }

    pub async fn revoke_api_key(&self, id: i64) -> Result<(), ServiceError> {
        match self.store.revoke_api_key(id, self.clock.now_ms()).await? {
            true => {
                // Which hash belonged to this key is not known here: drop them all.
                self.cache.clear_all();
                Ok(())
            }
            false => Err(ServiceError::NotFound),
        }
    }

    pub async fn create_sender(
        &self,
        user_id: i64,
        body: &Map<String, Value>,
    ) -> Result<Sender, ServiceError> {
        let mut f = Fields::new(body);
        let phone = f.string("phone_number", 64);
        let display_name = f.string("display_name", 255);
        let status = f.opt_choice("status", SenderStatus::parse, &SenderStatus::choices());
        let quality = f.opt_choice(
            "quality_rating",
            QualityRating::parse,
            &QualityRating::choices(),
        );
        let limit = limit_field(&mut f);
        let provider = f.opt_choice("provider", ProviderKind::parse, &ProviderKind::choices());
        let provider_ref = f.opt_string("provider_ref", 255);
        let waba_id = f.opt_string("waba_id", 64);
        let phone = phone.and_then(|p| match E164::parse(&p) {
            Ok(e) => Some(e),
            Err(e) => {
                f.error("phone_number", e.to_string());
                None
            }
        });
        let (phone, display_name) = f.finish_with((phone, display_name))?;
        let sender = NewSender {
            phone_number: phone.as_str().to_string(),
            display_name,
            status: status.unwrap_or(SenderStatus::Online),
            quality_rating: quality.unwrap_or(QualityRating::Green),
            messaging_limit: limit.flatten(),
            provider: provider.unwrap_or(ProviderKind::Simulator),
            provider_ref,
            waba_id,
        };
        self.store
            .create_sender(user_id, sender, self.clock.now_ms())
            .await?
            .ok_or(ServiceError::NotFound)
    }

    pub async fn update_sender(
        &self,
        id: i64,
        body: &Map<String, Value>,
    ) -> Result<Sender, ServiceError> {
        let mut f = Fields::new(body);
        let patch = SenderPatch {
            status: f.opt_choice("status", SenderStatus::parse, &SenderStatus::choices()),
            quality_rating: f.opt_choice(
                "quality_rating",
                QualityRating::parse,
                &QualityRating::choices(),
            ),
            messaging_limit: limit_field(&mut f),
            display_name: f.opt_string("display_name", 255),
        };
        f.finish()?;
        let updated = self
            .store
            .update_sender(id, patch, self.clock.now_ms())
            .await?;
        self.cache.senders.forget(&id);
        updated.ok_or(ServiceError::NotFound)
    }

    pub async fn create_template(
        &self,
        sender_id: i64,
        body: &Map<String, Value>,
    ) -> Result<Template, ServiceError> {
        let mut f = Fields::new(body);
        let name = f.string("name", 512);
        let language = f.string("language", 16);
        let category = f.choice(
            "category",
            Category::parse_template,
            "marketing, utility, authentication",
        );
        let text = f.string("body_text", 1024);
        let given_names = f.opt_string_list("variables");
        let status = f.opt_choice("status", TemplateStatus::parse, &TemplateStatus::choices());
        let provider_ref = f.opt_string("provider_ref", 255);
        let parsed = text.and_then(|t| match TemplateBody::parse(&t) {
            Ok(body) => Some(body),
            Err(e) => {
                f.error("body_text", e.to_string());
                None
            }
        });
        let names = parsed
            .as_ref()
            .and_then(|body| match variable_names(body, given_names) {
                Ok(names) => Some(names),
                Err(e) => {
                    f.error("variables", e.to_string());
                    None
                }
            });
        let (name, language, category, body, names) =
            f.finish_with((name, language, category, parsed, names))?;
        let status = status.unwrap_or(TemplateStatus::Approved);
        let now = self.clock.now_ms();
        let template = NewTemplate {
            name,
            language,
            category,
            status,
            body,
            variables: names,
            provider_ref,
            samples: Vec::new(),
            header_text: None,
            footer_text: None,
            buttons: Vec::new(),
            rejection_reason: None,
            sync_at: Some(self.next_template_sync(status, now)),
        };
        self.store
            .create_template(sender_id, template, now)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    pub async fn update_template(
        &self,
        id: i64,
        body: &Map<String, Value>,
    ) -> Result<Template, ServiceError> {
        let mut f = Fields::new(body);
        let status = f.opt_choice("status", TemplateStatus::parse, &TemplateStatus::choices());
        let provider_ref = f
            .has("provider_ref")
            .then(|| f.opt_string("provider_ref", 255));
        f.finish()?;
        let updated = self
            .store
            .update_template(
                id,
                TemplatePatch {
                    status,
                    provider_ref,
                },
                self.clock.now_ms(),
            )
            .await?;
        self.cache.templates.forget(&id);
        updated.ok_or(ServiceError::NotFound)
    }

    pub async fn credit(
        &self,
        user_id: i64,
        body: &Map<String, Value>,
    ) -> Result<CreditOutcome, ServiceError> {
        let mut f = Fields::new(body);
        let amount = match body.get("amount") {
            Some(Value::Number(n)) => match Money::from_positive_json(n) {
                Ok(m) => Some(m),
                Err(e) => {
                    f.error("amount", format!("The amount field {e}."));
                    None
                }
            },
            None | Some(Value::Null) => {
                f.error("amount", "The amount field is required.");
                None
            }
            Some(_) => {
                f.error("amount", "The amount field must be a number.");
                None
            }
        };
        let reference = f.string("reference", 255);
        let (amount, reference) = f.finish_with((amount, reference))?;
        match self
            .store
            .credit(user_id, amount, reference, self.clock.now_ms())
            .await
        {
            Ok(outcome) => outcome.ok_or(ServiceError::NotFound),
            Err(StoreError::BalanceOverflow) => Err(ServiceError::Validation(FieldErrors::single(
                "amount",
                "The amount field would take the balance past the largest amount it can hold.",
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// An inbound message from a simulator sender's customer, through the provider path.
    pub async fn simulate_inbound(
        &self,
        body: &Map<String, Value>,
    ) -> Result<Message, ServiceError> {
        let mut f = Fields::new(body);
        let sender_id = f.int("sender_id");
        let from = f.string("from", 64);
        let text = f.string("body", 4096);
        let profile_name = f.opt_string("profile_name", 255);
        let from = from.and_then(|p| match E164::parse(&p) {
            Ok(e) => Some(e),
            Err(e) => {
                f.error("from", e.to_string());
                None
            }
        });
        let (sender_id, from, text) = f.finish_with((sender_id, from, text))?;
        let sender = self
            .sender(sender_id)
            .await?
            .ok_or(ServiceError::SenderNotFound)?;
        if sender.provider != ProviderKind::Simulator {
            return Err(ServiceError::Validation(FieldErrors::single(
                "sender_id",
                "Only simulator senders take simulated inbound messages.",
            )));
        }
        let inbound = NewInbound {
            sender_id,
            from: from.as_str().to_string(),
            body: text,
            profile_name,
            provider_sid: Some(secrets::message_sid()),
            media: Vec::new(),
            button_payload: None,
            reply_to_sid: None,
            at: self.clock.now_ms(),
        };
        self.store
            .record_inbound(inbound)
            .await?
            .ok_or(ServiceError::NotFound)
    }
}
