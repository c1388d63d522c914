//! The HTTP layer: routing, middleware, and the OpenAPI document generated from the handlers.

pub mod auth;
pub mod body;
mod docs_page;
pub mod error;
mod error_answers;
mod path;
mod query;
pub mod ratelimit;
mod request_metrics;
mod routes;
mod schemas;
pub mod server;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::auth::Tenant;
use self::error::ApiError;
use self::ratelimit::RateLimiter;
use crate::model::Sender;
use crate::service::{ServiceError, Services};

/// What every handler gets. One reference count per clone (axum clones the state for each
/// extractor of each request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub services: Arc<Services>,
    pub limiter: Arc<RateLimiter>,
    pub prometheus: PrometheusHandle,
    pub openapi: Arc<str>,
    pub docs_page: Arc<str>,
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The tenant's sender, or SENDER_NOT_FOUND (also for another tenant's sender).
    pub async fn owned_sender(
        &self,
        tenant: Tenant,
        id: Option<i64>,
    ) -> Result<Arc<Sender>, ApiError> {
        let Some(id) = id else {
            return Err(ServiceError::SenderNotFound.into());
        };
        Ok(self
            .services
            .sender(id)
            .await?
            .filter(|s| s.user_id == tenant.user_id)
            .ok_or(ServiceError::SenderNotFound)?)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "waygate",
        description = "Self-hostable WhatsApp Business messaging gateway. Tenant endpoints take `Authorization: Bearer <api key>`; admin endpoints take the admin token.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "whatsapp", description = "The portal-compatible WhatsApp endpoints"),
        (name = "history", description = "Messages and conversations"),
        (name = "account"), (name = "webhooks"), (name = "admin"), (name = "operations"),
        (name = "provider webhooks", description = "Called by providers, verified by their signatures"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::tenant::me))
        .routes(routes!(routes::tenant::senders))
        .routes(routes!(
            routes::tenant::templates,
            routes::templates::create
        ))
        .routes(routes!(routes::templates::get, routes::templates::delete))
        .routes(routes!(routes::templates::sync))
        .routes(routes!(routes::tenant::session_status))
        .routes(routes!(routes::send::send_template))
        .routes(routes!(routes::send::send_freeform))
        .routes(routes!(routes::history::message))
        .routes(routes!(routes::history::conversations))
        .routes(routes!(routes::history::conversation_messages))
        .routes(routes!(routes::webhooks::create, routes::webhooks::list))
        .routes(routes!(routes::webhooks::delete))
        .routes(routes!(routes::webhooks::rotate_secret))
        .routes(routes!(routes::admin::create_user))
        .routes(routes!(routes::admin::create_api_key))
        .routes(routes!(routes::admin::revoke_api_key))
        .routes(routes!(routes::admin::create_sender))
        .routes(routes!(routes::admin::update_sender))
        .routes(routes!(routes::admin::create_template))
        .routes(routes!(routes::admin::update_template))
        .routes(routes!(routes::admin::credit))
        .routes(routes!(routes::admin::simulator_inbound))
        .routes(routes!(routes::jobs::set_aside))
        .routes(routes!(routes::jobs::retry))
        .routes(routes!(routes::twilio::status))
        .routes(routes!(routes::twilio::inbound))
        .routes(routes!(routes::meta::verify, routes::meta::notify))
        .routes(routes!(routes::ops::healthz))
        .routes(routes!(routes::ops::readyz))
        .routes(routes!(routes::ops::metrics))
        .routes(routes!(routes::ops::openapi))
        .routes(routes!(routes::ops::docs))
}

/// The OpenAPI document, as served at /openapi.json and committed as openapi.json.
pub fn openapi_json() -> String {
    let (_, mut doc) = api_router().split_for_parts();
    error_answers::add(&mut doc);
    doc.to_pretty_json().unwrap_or_else(|_| "{}".into())
}

async fn not_found() -> Response {
    ApiError::Service(ServiceError::NotFound).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// Counts requests by route and status, and times them.
async fn record_metrics(State(_): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    request_metrics::record(
        route.as_ref().map_or("unmatched", |p| p.as_str()),
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Answers 408 to a request not done within `request_timeout_ms`: a client trickling its
/// body would otherwise hold its connection (and a drain) for as long as it likes. A send's
/// recording and dispatch run in a task of their own, so nothing recorded is dropped with it.
async fn bound_request(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let bound = std::time::Duration::from_millis(app.services.config.request_timeout_ms);
    match tokio::time::timeout(bound, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// Request ids from `secrets::request_id` (a UUID costs a system call for its randomness).
#[derive(Clone, Copy)]
struct NextRequestId;

impl MakeRequestId for NextRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        axum::http::HeaderValue::try_from(crate::secrets::request_id())
            .ok()
            .map(RequestId::new)
    }
}

pub fn router(state: AppState) -> Router {
    let (router, _) = api_router().split_for_parts();
    let span = |request: &Request| {
        let id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", request_id = %id, method = %request.method(), uri = %request.uri(), user_id = tracing::field::Empty)
    };
    // Only the metrics need the matched route, so only they wrap each route; the other
    // layers wrap the router once (`Router::layer` boxes and clones every layer per request).
    let routes = router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .with_state(state.clone());
    let stack = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(NextRequestId))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                // A 5xx is not a failure in itself (503 SENDER_OFFLINE is a business answer):
                // real faults are logged at ERROR where they are known (`error.rs`, below).
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn_with_state(state, bound_request))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Service(ServiceError::Store(crate::store::StoreError::Corrupt(
                "handler panicked".into(),
            )))
            .into_response()
        }))
        .service(routes);
    Router::new().fallback_service(stack)
}

/// Builds the state's precomputed documents.
pub fn documents() -> (Arc<str>, Arc<str>) {
    let json = openapi_json();
    let page = docs_page::render(&json);
    (Arc::from(json), Arc::from(page))
}
