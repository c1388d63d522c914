//! Operations endpoints (API.md §9) and the committed OpenAPI document.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = spawn_app().await;
    let health = app
        .request(reqwest::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(health.status, 200);
    assert!(
        health.headers.get("x-request-id").is_some(),
        "every answer carries a request id"
    );
    let ready = app
        .request(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(ready.status, 200);
}

#[tokio::test]
async fn metrics_count_requests_sends_and_queue_depth() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    assert_eq!(app.send_template(&t, "+14155551234").await.status, 200);
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("waygate_http_requests_total{route=\"/api/user/whatsapp/send\",method=\"POST\",status=\"200\"}"), "{text}");
    assert!(
        text.contains("waygate_sends_total{endpoint=\"send\",outcome=\"accepted\"}"),
        "{text}"
    );
    assert!(text.contains("waygate_queue_depth"), "{text}");
}

#[tokio::test]
async fn openapi_is_served_committed_and_documented() {
    let app = spawn_app().await;
    let served = app
        .request(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(served.status, 200);
    assert!(served.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let committed: Value = serde_json::from_str(include_str!("../../../../openapi.json")).unwrap();
    assert!(
        served.body == committed,
        "openapi.json is stale: run `cargo run -p waygate -- openapi > openapi.json`"
    );
    for path in [
        "/api/user/whatsapp/send",
        "/api/user/whatsapp/send-freeform",
        "/api/user/whatsapp/session-status",
        "/api/user/whatsapp/senders",
        "/api/user/whatsapp/senders/{sender_id}/templates",
        "/api/user/me",
        "/api/admin/simulator/inbound",
    ] {
        assert!(
            served.body["paths"].get(path).is_some(),
            "{path} missing from the spec"
        );
    }
    let page = app
        .http
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/user/whatsapp/send-freeform"));
    assert!(
        !html.contains("http://cdn") && !html.contains("https://cdn"),
        "no CDN"
    );
}

/// The operations of the OpenAPI document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut all = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            all.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    all
}

/// Whether `operation` documents `status` with the error envelope.
fn answers_with_envelope(operation: &Value, status: &str) -> bool {
    operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/ErrorBody"
}

#[tokio::test]
async fn openapi_declares_auth_and_the_error_answers_of_every_route() {
    let app = spawn_app().await;
    let doc = app
        .request(reqwest::Method::GET, "/openapi.json", None, None)
        .await
        .body;
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let public = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"];
    let mut checked = 0;
    for (method, path, operation) in operations(&doc) {
        let route = format!("{method} {path}");
        assert!(answers_with_envelope(&operation, "408"), "{route}: 408");
        if public.contains(&path.as_str()) || path.starts_with("/webhooks/") {
            assert_eq!(
                operation["security"],
                serde_json::json!([{}]),
                "{route} needs no key"
            );
            continue;
        }
        assert!(path.starts_with("/api/"), "{route}");
        assert!(
            operation.get("security").is_none(),
            "{route} keeps the bearer requirement"
        );
        assert!(answers_with_envelope(&operation, "401"), "{route}: 401");
        let params = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let reads_json = operation["requestBody"]["content"]
            .get("application/json")
            .is_some();
        let has_query = params.iter().any(|p| p["in"] == "query");
        if reads_json {
            for status in ["400", "413", "422"] {
                assert!(
                    answers_with_envelope(&operation, status),
                    "{route}: {status}"
                );
            }
        }
        if has_query {
            assert!(answers_with_envelope(&operation, "422"), "{route}: 422");
        }
        if params.iter().any(|p| p["in"] == "path") {
            assert!(answers_with_envelope(&operation, "404"), "{route}: 404");
        }
        for (status, _) in operation["responses"].as_object().expect("responses") {
            if status.as_str() >= "400" {
                assert!(
                    answers_with_envelope(&operation, status),
                    "{route}: {status}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} authenticated operations");
}
