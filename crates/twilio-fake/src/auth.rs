//! HTTP Basic auth as Twilio checks it (§1.1): account SID + auth token, or API key + secret; the
//! 2010 API also carries the account SID in its paths, the Content and Senders APIs do not.

use axum::http::{header, HeaderMap};
use base64::Engine as _;

use crate::config::Config;
use crate::errors::ApiError;

/// 401/20003 unless the credentials are valid, then 404/20404 unless `path_account` is ours.
pub(crate) fn authorize(
    headers: &HeaderMap,
    config: &Config,
    path_account: &str,
    path: &str,
) -> Result<(), ApiError> {
    authenticate(headers, config)?;
    if path_account != config.account_sid {
        return Err(ApiError::not_found(path));
    }
    Ok(())
}

/// 401/20003 unless the credentials are the account's or its API key's.
pub(crate) fn authenticate(headers: &HeaderMap, config: &Config) -> Result<(), ApiError> {
    let (user, password) = basic_credentials(headers).ok_or_else(ApiError::unauthenticated)?;
    let account = user == config.account_sid && password == config.auth_token;
    let api_key = config
        .api_key
        .as_ref()
        .is_some_and(|(sid, secret)| user == *sid && password == *secret);
    if !account && !api_key {
        return Err(ApiError::unauthenticated());
    }
    Ok(())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}
