//! Who is calling: a tenant by API key, or an operator by the admin token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

/// An authenticated tenant.
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    pub user_id: i64,
}

/// An authenticated operator.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let user_id = state
            .services
            .user_for_key(key)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        tracing::Span::current().record("user_id", user_id);
        Ok(Tenant { user_id })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let expected = state
            .services
            .config
            .admin_token()
            .ok_or(ApiError::AdminDisabled)?;
        let given = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthenticated)
        }
    }
}
