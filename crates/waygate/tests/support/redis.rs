//! The Redis server tests use, and a key prefix of each test's own.

use std::time::Duration;

use redis::AsyncCommands;

/// The Redis the tests use: `WAYGATE_TEST_REDIS_URL`, else the local default. Panics with
/// how to provide one when it does not answer.
pub async fn redis_url() -> String {
    let url = std::env::var("WAYGATE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let ping = async {
        let mut connection = redis::Client::open(url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => url,
        outcome => panic!(
            "these tests need Redis at {url} ({outcome:?}): start one with \
             `redis-server --daemonize yes --port 6379 --save \"\"`, or point \
             WAYGATE_TEST_REDIS_URL at a server"
        ),
    }
}

/// A key prefix of this test's own, whose keys are deleted when it drops.
pub struct Prefix {
    pub url: String,
    pub prefix: String,
}

impl Prefix {
    pub async fn new() -> Prefix {
        Prefix {
            url: redis_url().await,
            prefix: format!("waygate-test:{:016x}:", fastrand::u64(..)),
        }
    }

    /// Deletes the keys under this prefix (and only those).
    pub async fn delete_keys(&self) {
        let mut connection = redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = connection.keys(format!("{}*", self.prefix)).await.unwrap();
        if !keys.is_empty() {
            let _: () = connection.del(keys).await.unwrap();
        }
    }
}
