//! The operators' view of jobs given up on (sends whose outcome could not be settled with the
//! provider, webhook deliveries out of attempts), and the way to put one back.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::http::path::PathId;
use crate::http::query::Query;
use crate::http::schemas::ErrorBody;
use crate::http::AppState;
use crate::service::ServiceError;
use crate::views::SetAsideJobView;

const PAGE: i64 = 100;

#[derive(Serialize, ToSchema)]
pub struct SetAsideJobPage {
    pub data: Vec<SetAsideJobView>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<i64>,
}

#[utoipa::path(get, path = "/api/admin/jobs/set-aside", tag = "admin",
    params(("after" = Option<i64>, Query, description = "job id after which to continue")),
    responses((status = 200, body = SetAsideJobPage), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_aside(
    State(app): State<AppState>,
    _: Admin,
    RawQuery(raw): RawQuery,
) -> Result<Json<SetAsideJobPage>, ApiError> {
    let query = Query::parse(raw.as_deref());
    let after = match query.get("after").filter(|a| !a.is_empty()) {
        None => 0,
        Some(raw) => raw.parse::<i64>().map_err(|_| {
            let mut errors = waygate_core::validation::FieldErrors::new();
            errors.add("after", "The after field must be a job id.");
            ApiError::from(errors)
        })?,
    };
    let jobs = app.services.store.set_aside_jobs(after, PAGE).await?;
    let next_after = (jobs.len() as i64 == PAGE)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    Ok(Json(SetAsideJobPage {
        data: jobs.iter().map(SetAsideJobView::from).collect(),
        next_after,
    }))
}

#[utoipa::path(post, path = "/api/admin/jobs/{id}/retry", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204, description = "queued again, due at once"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retry(
    State(app): State<AppState>,
    _: Admin,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    let id = id.known()?;
    let now = app.services.clock.now_ms();
    match app.services.store.revive_job(id, now).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ServiceError::NotFound.into()),
    }
}
