//! Request counters and timers by route, method and status, and send outcomes by endpoint.
//! Each handle is resolved once: building a labelled key and looking it up in the registry
//! on every request cost about as much as parsing the request.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use axum::http::Method;
use metrics::{Counter, Histogram};

static ROUTES: LazyLock<RwLock<HashMap<String, Route>>> = LazyLock::new(Default::default);

struct Route {
    duration: Histogram,
    requests: HashMap<(Method, u16), Counter>,
}

pub fn record(route: &str, method: &Method, status: u16, seconds: f64) {
    let key = (method.clone(), status);
    {
        let routes = ROUTES.read().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = routes.get(route) {
            if let Some(requests) = found.requests.get(&key) {
                requests.increment(1);
                found.duration.record(seconds);
                return;
            }
        }
    }
    let mut routes = ROUTES.write().unwrap_or_else(|p| p.into_inner());
    let found = routes.entry(route.to_string()).or_insert_with(|| Route {
        duration: metrics::histogram!("waygate_http_request_duration_seconds", "route" => route.to_string()),
        requests: HashMap::new(),
    });
    found
        .requests
        .entry(key)
        .or_insert_with(|| {
            metrics::counter!("waygate_http_requests_total", "route" => route.to_string(),
                "method" => method.to_string(), "status" => status.to_string())
        })
        .increment(1);
    found.duration.record(seconds);
}

static SENDS: LazyLock<RwLock<HashMap<(&'static str, &'static str), Counter>>> =
    LazyLock::new(Default::default);

/// Counts one answer of a send endpoint by its outcome (`waygate_sends_total`).
pub fn count_send(endpoint: &'static str, outcome: &'static str) {
    let key = (endpoint, outcome);
    if let Some(counter) = SENDS.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
        counter.increment(1);
        return;
    }
    SENDS
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert_with(|| {
            metrics::counter!("waygate_sends_total", "endpoint" => endpoint, "outcome" => outcome)
        })
        .increment(1);
}
