//! The send limit kept in Redis (API.md §4, §13): it decides as the in-process limit does,
//! holds across nodes, and fails open or closed as configured when Redis is unreachable.
//! These tests need a Redis server; they fail (never skip) without one.

use std::time::Duration;

use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::Value;
use waygate::http::ratelimit::redis::RedisGcra;
use waygate_core::gcra::{Decision, Gcra};

use crate::helpers::*;
use crate::redis_server::Prefix;

impl Prefix {
    fn limiter(&self, per_second: u32) -> RedisGcra {
        RedisGcra::new(
            &self.url,
            self.prefix.clone(),
            Duration::from_secs(2),
            Gcra::new(per_second, per_second),
        )
        .expect("limiter")
    }

    /// Config lines for an app on this Redis and prefix.
    fn config(&self, per_second: u32) -> String {
        format!(
            "redis_url = {:?}\nredis_key_prefix = {:?}\nrate_limit_per_second = {per_second}\n",
            self.url, self.prefix
        )
    }
}

#[tokio::test]
async fn redis_and_in_process_limits_decide_alike_through_burst_refill_and_retry_after() {
    let prefix = Prefix::new().await;
    let redis = prefix.limiter(5);
    let gcra = Gcra::new(5, 5);
    let mut tat = None;
    // Bursts, denials, a partial refill and a full one: (pause before, requests).
    let script = [(0, 7), (250, 3), (90, 2), (1_100, 7)];
    let mut decisions = Vec::new();
    for (pause_ms, requests) in script {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        for _ in 0..requests {
            let checked = redis.check("42").await.expect("redis answers");
            // The in-process rule, at the instant Redis decided.
            let local = gcra.check(&mut tat, checked.now_micros);
            assert_eq!(checked.decision, local, "after {decisions:?}");
            decisions.push(checked.decision);
        }
    }
    let allowed = |d: &Decision| matches!(d, Decision::Allow { .. });
    assert!(decisions[..5].iter().all(allowed), "{decisions:?}");
    assert_eq!(decisions[4], Decision::Allow { remaining: 0 });
    assert!(
        matches!(decisions[5], Decision::Deny { retry_after_micros } if retry_after_micros <= 200_000),
        "{decisions:?}"
    );
    assert!(
        decisions[7..10].iter().any(allowed),
        "refilled: {decisions:?}"
    );
    assert_eq!(decisions[12], Decision::Allow { remaining: 4 });
    prefix.delete_keys().await;
}

#[tokio::test]
async fn two_nodes_on_one_redis_share_one_limit_and_keys_expire() {
    let prefix = Prefix::new().await;
    let (node_a, node_b) = (prefix.limiter(1), prefix.limiter(1));
    let first = node_a.check("7").await.unwrap().decision;
    assert_eq!(first, Decision::Allow { remaining: 0 });
    let second = node_b.check("7").await.unwrap().decision;
    assert!(
        matches!(second, Decision::Deny { retry_after_micros } if retry_after_micros > 0),
        "node b sees node a's send: {second:?}"
    );
    assert_eq!(
        node_b.check("8").await.unwrap().decision,
        Decision::Allow { remaining: 0 },
        "another user has a limit of its own"
    );
    let mut connection = redis::Client::open(prefix.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = connection.pttl(node_a.key("7")).await.unwrap();
    assert!(
        (1..=1_000).contains(&ttl),
        "an idle user's key expires: {ttl}"
    );
    prefix.delete_keys().await;
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

async fn errors_counted(app: &TestApp) -> f64 {
    let page = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix("waygate_rate_limit_errors_total "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn app_on_unreachable_redis(fail_open: bool) -> TestApp {
    spawn_with(&format!(
        "redis_url = \"redis://127.0.0.1:{}\"\nredis_fail_open = {fail_open}\nredis_timeout_ms = 200\n",
        closed_port().await
    ))
    .await
}

#[tokio::test]
async fn unreachable_redis_fails_open_by_default_and_counts_the_error() {
    let app = app_on_unreachable_redis(true).await;
    let t = app.tenant().await;
    let before = errors_counted(&app).await;
    let reply = app.send_template(&t, "+14155551234").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.headers.get("x-ratelimit-remaining").is_none());
    assert!(errors_counted(&app).await > before);
}

#[tokio::test]
async fn unreachable_redis_fails_closed_with_503_when_configured() {
    let app = app_on_unreachable_redis(false).await;
    let t = app.tenant().await;
    let before = errors_counted(&app).await;
    let started = std::time::Instant::now();
    let reply = app.send_template(&t, "+14155551234").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error_code"], "RATE_LIMIT_UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout"
    );
    assert!(errors_counted(&app).await > before);
}

#[tokio::test]
async fn api_limit_in_redis_holds_across_two_apps() {
    let prefix = Prefix::new().await;
    let node_a = spawn_with(&prefix.config(2)).await;
    let node_b = spawn_with(&prefix.config(2)).await;
    let (ta, tb) = (node_a.tenant().await, node_b.tenant().await);
    assert_eq!(ta.user_id, tb.user_id, "one user seen by both nodes");
    let remaining = |reply: &Reply| -> Value {
        reply.headers["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .into()
    };
    let first = node_a.send_template(&ta, "+14155551234").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(remaining(&first), "1");
    let second = node_b.send_template(&tb, "+14155551234").await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(remaining(&second), "0", "node b counts node a's send");
    for (node, t) in [(&node_a, &ta), (&node_b, &tb)] {
        let denied = node.send_template(t, "+14155551234").await;
        assert_eq!(
            denied.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            denied.body
        );
        assert_eq!(denied.body["error_code"], "RATE_LIMITED");
        assert_eq!(denied.headers["retry-after"], "1");
        assert_eq!(denied.headers["x-ratelimit-limit"], "2");
    }
    prefix.delete_keys().await;
}
