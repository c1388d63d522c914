//! Ids in the path. Anything that is not a positive integer, bytes that are not UTF-8
//! included, behaves like an unknown id: the route's JSON 404, never axum's plain-text 400.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::service::ServiceError;

/// The route's one id parameter, if it names a possible id.
pub struct PathId(pub Option<i64>);

impl PathId {
    /// The id, or NOT_FOUND.
    pub fn known(self) -> Result<i64, ServiceError> {
        self.0.ok_or(ServiceError::NotFound)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let raw = Path::<String>::from_request_parts(parts, state).await.ok();
        let id = raw.and_then(|Path(raw)| raw.parse::<i64>().ok().filter(|id| *id > 0));
        Ok(PathId(id))
    }
}
