//! Messages and conversations, read back.

use axum::extract::{RawQuery, State};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use waygate_core::phone::E164;
use waygate_core::validation::FieldErrors;

use crate::http::auth::Tenant;
use crate::http::error::ApiError;
use crate::http::path::PathId;
use crate::http::query::{restore_plus, Query};
use crate::http::schemas::*;
use crate::http::AppState;
use crate::service::ServiceError;
use crate::store::ConversationQuery;
use crate::views::{ConversationView, MessageView};

const DEFAULT_PER_PAGE: i64 = 15;
const MAX_PER_PAGE: i64 = 100;

fn per_page(query: &Query, errors: &mut FieldErrors) -> i64 {
    match query.get("per_page") {
        None | Some("") => DEFAULT_PER_PAGE,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => n,
            _ => {
                errors.add(
                    "per_page",
                    "The per_page field must be an integer between 1 and 100.",
                );
                DEFAULT_PER_PAGE
            }
        },
    }
}

/// Cursors are opaque to clients: base64 of the numbers that position the next page.
fn encode_cursor(parts: &[i64]) -> String {
    let text: Vec<String> = parts.iter().map(i64::to_string).collect();
    URL_SAFE_NO_PAD.encode(text.join(":"))
}

fn decode_cursor(query: &Query, len: usize, errors: &mut FieldErrors) -> Option<Vec<i64>> {
    let raw = query.get("cursor").filter(|c| !c.is_empty())?;
    let parts: Option<Vec<i64>> = URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.split(':').map(|p| p.parse().ok()).collect());
    match parts {
        Some(p) if p.len() == len => Some(p),
        _ => {
            errors.add("cursor", "The cursor is not valid.");
            None
        }
    }
}

#[utoipa::path(get, path = "/api/user/whatsapp/messages/{whatsapp_message_id}", tag = "history",
    params(("whatsapp_message_id" = i64, Path)),
    responses((status = 200, body = MessageView), (status = 404, body = ErrorBody)))]
pub async fn message(
    State(app): State<AppState>,
    tenant: Tenant,
    id: PathId,
) -> Result<Json<MessageView>, ApiError> {
    let id = id.known()?;
    let message = app
        .services
        .store
        .get_message(id)
        .await?
        .filter(|m| m.user_id == tenant.user_id)
        .ok_or(ServiceError::NotFound)?;
    Ok(Json(MessageView::from(&message)))
}

#[utoipa::path(get, path = "/api/user/whatsapp/conversations", tag = "history",
    params(("sender_id" = Option<i64>, Query), ("recipient_phone" = Option<String>, Query),
           ("per_page" = Option<i64>, Query, description = "1–100, default 15"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ConversationPage), (status = 422, body = ErrorBody)))]
pub async fn conversations(
    State(app): State<AppState>,
    tenant: Tenant,
    RawQuery(q): RawQuery,
) -> Result<Json<ConversationPage>, ApiError> {
    let query = Query::parse(q.as_deref());
    let mut errors = FieldErrors::new();
    let limit = per_page(&query, &mut errors);
    let after = decode_cursor(&query, 2, &mut errors).map(|p| (p[0], p[1]));
    let sender_id = query
        .get("sender_id")
        .filter(|s| !s.is_empty())
        .and_then(|s| {
            let id = s.parse::<i64>().ok();
            if id.is_none() {
                errors.add("sender_id", "The sender_id field must be an integer.");
            }
            id
        });
    let recipient = query
        .get("recipient_phone")
        .filter(|s| !s.trim().is_empty())
        .and_then(|raw| {
            let parsed = E164::parse(&restore_plus(raw)).ok();
            if parsed.is_none() {
                errors.add(
                    "recipient_phone",
                    "The recipient_phone field must be an E.164 number.",
                );
            }
            parsed.map(|p| p.as_str().to_string())
        });
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let rows = app
        .services
        .store
        .list_conversations(ConversationQuery {
            user_id: tenant.user_id,
            sender_id,
            recipient,
            after,
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() as i64 > limit;
    let page: Vec<_> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more
        .then(|| {
            page.last()
                .map(|c| encode_cursor(&[c.last_message_at, c.id]))
        })
        .flatten();
    let now = app.services.clock.now_ms();
    let opens = app.services.config.window_template_opens;
    Ok(Json(ConversationPage {
        data: page
            .iter()
            .map(|c| ConversationView::new(c, opens, now))
            .collect(),
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/user/whatsapp/conversations/{conversation_id}/messages", tag = "history",
    params(("conversation_id" = i64, Path), ("per_page" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = MessagePage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn conversation_messages(
    State(app): State<AppState>,
    tenant: Tenant,
    id: PathId,
    RawQuery(q): RawQuery,
) -> Result<Json<MessagePage>, ApiError> {
    let id = id.known()?;
    let conversation = app
        .services
        .store
        .get_conversation(id)
        .await?
        .filter(|c| c.user_id == tenant.user_id)
        .ok_or(ServiceError::NotFound)?;
    let query = Query::parse(q.as_deref());
    let mut errors = FieldErrors::new();
    let limit = per_page(&query, &mut errors);
    let after = decode_cursor(&query, 1, &mut errors).map(|p| p[0]);
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let rows = app
        .services
        .store
        .list_messages(conversation.id, after, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    let page: Vec<_> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more
        .then(|| page.last().map(|m| encode_cursor(&[m.id])))
        .flatten();
    Ok(Json(MessagePage {
        data: page.iter().map(MessageView::from).collect(),
        next_cursor,
    }))
}
