//! A fresh PostgreSQL schema per test, dropped when the test is done; nothing else in the
//! database is touched. The server is `WAYGATE_TEST_POSTGRES_URL` (default: the local one);
//! when it cannot be reached the test fails and says how to point it at one.

use std::sync::atomic::{AtomicU64, Ordering};

/// The server and database tests create their schemas in.
pub fn server_url() -> String {
    std::env::var("WAYGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of this test's own; its `url` selects it as the search path.
pub struct PgSchema {
    pub url: String,
    name: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "wg_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let client = connect(&server_url()).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create a test schema");
        let base = server_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        PgSchema {
            url: format!("{base}{separator}options=-csearch_path%3D{name}&application_name={name}"),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside a test's runtime, which cannot be blocked on: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let client = connect(&server_url()).await;
                // The test's own connections may hold locks in a transaction that its runtime,
                // blocked on this drop, will never end: close them first.
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await?;
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

/// A plain connection to `url`; fails the test, saying how to fix it, when none can be made.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(pair) => pair,
        Err(e) => panic!(
            "cannot reach PostgreSQL at {url}: {e}\n\
             Start it (Debian: pg_ctlcluster --skip-systemctl-redirect 15 main start), or point \
             WAYGATE_TEST_POSTGRES_URL at a server where this user may create schemas, \
             e.g. postgres://postgres@127.0.0.1:5432/test"
        ),
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
