//! What a call goes through before it acts: the endpoint's next scripted fault, else a random one
//! (Messages reads only), after Basic auth for the Content and Senders APIs whose paths carry no
//! account.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::authenticate;
use crate::conn::ConnHandle;
use crate::errors::ApiError;
use crate::faults::{ReadEndpoint, ReadFault};
use crate::server::Shared;

/// Applies the endpoint's next fault, if any: an answer that replaces the real one, or a delay
/// before the real one.
pub(crate) async fn read_fault(
    shared: &Shared,
    endpoint: ReadEndpoint,
    conn: &ConnHandle,
) -> Option<Response> {
    match shared.read_fault(endpoint)? {
        ReadFault::ServerError => Some(ApiError::internal().into_response()),
        ReadFault::TooManyRequests { retry_after_secs } => {
            Some(ApiError::too_many_requests(retry_after_secs).into_response())
        }
        ReadFault::DropConnection => {
            conn.kill();
            // Never written: the killed connection fails hyper's write and is closed.
            Some(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        ReadFault::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            None
        }
    }
}

/// Basic auth, then the endpoint's fault: Err is the answer to give instead of acting.
pub(crate) async fn admit(
    shared: &Shared,
    conn: &ConnHandle,
    headers: &HeaderMap,
    endpoint: ReadEndpoint,
) -> Result<(), Response> {
    authenticate(headers, &shared.config).map_err(IntoResponse::into_response)?;
    match read_fault(shared, endpoint, conn).await {
        Some(answer) => Err(answer),
        None => Ok(()),
    }
}
