//! Users, API keys, senders, templates and credits.

use super::PgStore;
use crate::model::*;
use crate::store::*;
use waygate_core::money::Money;

pub async fn create_user(s: &PgStore, name: String, email: String, now: i64) -> StoreResult<User> {
    let _ = (s, name, email, now);
    todo!("tenants::create_user")
}

pub async fn get_user(s: &PgStore, id: i64) -> StoreResult<Option<User>> {
    let _ = (s, id);
    todo!("tenants::get_user")
}

pub async fn create_api_key(
    s: &PgStore,
    user_id: i64,
    name: String,
    prefix: String,
    hash: Vec<u8>,
    now: i64,
) -> StoreResult<Option<ApiKeyRecord>> {
    let _ = (s, user_id, name, prefix, hash, now);
    todo!("tenants::create_api_key")
}

pub async fn revoke_api_key(s: &PgStore, id: i64, now: i64) -> StoreResult<bool> {
    let _ = (s, id, now);
    todo!("tenants::revoke_api_key")
}

pub async fn user_for_key(s: &PgStore, hash: Vec<u8>) -> StoreResult<Option<i64>> {
    let _ = (s, hash);
    todo!("tenants::user_for_key")
}

pub async fn create_sender(
    s: &PgStore,
    user_id: i64,
    sender: NewSender,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let _ = (s, user_id, sender, now);
    todo!("tenants::create_sender")
}

pub async fn update_sender(
    s: &PgStore,
    id: i64,
    patch: SenderPatch,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let _ = (s, id, patch, now);
    todo!("tenants::update_sender")
}

pub async fn get_sender(s: &PgStore, id: i64) -> StoreResult<Option<Sender>> {
    let _ = (s, id);
    todo!("tenants::get_sender")
}

pub async fn sender_by_phone(
    s: &PgStore,
    phone: String,
    provider: ProviderKind,
) -> StoreResult<Option<Sender>> {
    let _ = (s, phone, provider);
    todo!("tenants::sender_by_phone")
}

pub async fn list_senders(
    s: &PgStore,
    user_id: i64,
    status: Option<SenderStatus>,
) -> StoreResult<Vec<Sender>> {
    let _ = (s, user_id, status);
    todo!("tenants::list_senders")
}

pub async fn create_template(
    s: &PgStore,
    sender_id: i64,
    template: NewTemplate,
    now: i64,
) -> StoreResult<Option<Template>> {
    let _ = (s, sender_id, template, now);
    todo!("tenants::create_template")
}

pub async fn update_template(
    s: &PgStore,
    id: i64,
    patch: TemplatePatch,
    now: i64,
) -> StoreResult<Option<Template>> {
    let _ = (s, id, patch, now);
    todo!("tenants::update_template")
}

pub async fn get_template(s: &PgStore, id: i64) -> StoreResult<Option<Template>> {
    let _ = (s, id);
    todo!("tenants::get_template")
}

pub async fn template_by_provider_ref(
    s: &PgStore,
    provider_ref: String,
    provider: ProviderKind,
) -> StoreResult<Option<Template>> {
    let _ = (s, provider_ref, provider);
    todo!("tenants::template_by_provider_ref")
}

pub async fn list_templates(
    s: &PgStore,
    sender_id: i64,
    status: Option<TemplateStatus>,
) -> StoreResult<Vec<Template>> {
    let _ = (s, sender_id, status);
    todo!("tenants::list_templates")
}

pub async fn credit(
    s: &PgStore,
    user_id: i64,
    amount: Money,
    reference: String,
    now: i64,
) -> StoreResult<Option<CreditOutcome>> {
    let _ = (s, user_id, amount, reference, now);
    todo!("tenants::credit")
}
