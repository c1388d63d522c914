//! waygate: a self-hostable WhatsApp Business messaging gateway.
//!
//! Layers, outermost first: `http` (axum handlers) → `service` (use cases, calling the pure
//! rules in `waygate-core`) → `store` (SQLite) and `provider`, with `jobs` running the
//! durable outbox.

pub mod clock;
pub mod config;
pub mod demo;
pub mod http;
pub mod input;
pub mod jobs;
pub mod keyed_gcra;
pub mod model;
pub mod provider;
pub mod secrets;
pub mod service;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod views;
pub mod webhook_target;

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, Database};
use crate::http::ratelimit::RateLimiter;
use crate::http::AppState;
use crate::jobs::Worker;
use crate::provider::{Meta, Providers, Simulator, Twilio};
use crate::service::Services;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// The process-wide metrics recorder (installed once, shared by every app in the process).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            // Histograms keep raw samples until upkeep folds them in; without a scrape they
            // would grow with every request.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                });
            handle
        })
        .clone()
}

/// Who opens the store: a server, or a one-shot command beside one.
#[derive(Clone, Copy)]
enum Opener {
    Server,
    Command,
}

/// Opens the configured store, creating or upgrading its schema.
async fn open_store(config: &Config, opener: Opener) -> anyhow::Result<Arc<dyn Store>> {
    let database = config.database()?;
    let opened: Result<Arc<dyn Store>, store::StoreError> = match (&database, opener) {
        (Database::Sqlite(path), Opener::Server) => {
            SqliteStore::open(path).map(|s| Arc::new(s) as Arc<dyn Store>)
        }
        (Database::Sqlite(path), Opener::Command) => {
            SqliteStore::open_for_command(path).map(|s| Arc::new(s) as Arc<dyn Store>)
        }
        (Database::Postgres(url), _) => PgStore::connect(url, config.database_pool_size)
            .await
            .map(|s| Arc::new(s) as Arc<dyn Store>),
    };
    opened.map_err(|e| {
        anyhow::anyhow!(
            "cannot open the database {} (configuration key `database_url`): {e}",
            database.describe()
        )
    })
}

/// A built application: state for the HTTP layer and the job runner.
pub struct App {
    pub state: AppState,
    pub worker: Arc<Worker>,
}

impl App {
    /// Opens (creating and migrating) the store for a server and wires every component.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<App> {
        let store = open_store(&config, Opener::Server).await?;
        App::wire(config, clock, store)
    }

    /// `build` for a one-shot command, which leaves the embedded store's journal to a server
    /// that may start while it runs (`SqliteStore::open_for_command`).
    pub async fn build_for_command(config: Config, clock: Clock) -> anyhow::Result<App> {
        let store = open_store(&config, Opener::Command).await?;
        App::wire(config, clock, store)
    }

    fn wire(config: Config, clock: Clock, store: Arc<dyn Store>) -> anyhow::Result<App> {
        let providers = Arc::new(Providers {
            simulator: Simulator {
                clock: clock.clone(),
                step_ms: i64::try_from(config.simulator_step_ms).unwrap_or(i64::MAX),
            },
            twilio: Twilio::from_config(&config, clock.clone()),
            meta: Meta::from_config(&config),
        });
        let worker = Arc::new(Worker::new(
            store.clone(),
            providers,
            clock.clone(),
            &config,
        ));
        let limiter = Arc::new(RateLimiter::from_config(&config, clock.clone())?);
        let rate_card = config.rate_card()?;
        let services = Arc::new(Services {
            config,
            store,
            clock,
            worker: worker.clone(),
            rate_card,
            cache: Default::default(),
            phones: Default::default(),
        });
        let (openapi, docs_page) = http::documents();
        let state = AppState::new(http::Shared {
            services,
            limiter,
            prometheus: prometheus(),
            openapi,
            docs_page,
        });
        Ok(App { state, worker })
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.state.services
    }

    /// Serves HTTP on `listener` (and runs the job runner if `run_jobs`) until `stop`; then
    /// drains requests and jobs in flight, within the configured bound, and flushes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        stop: CancellationToken,
        run_jobs: bool,
    ) -> anyhow::Result<()> {
        let services = self.state.services.clone();
        let limits = http::server::Limits::from_config(&services.config);
        let runner = run_jobs.then(|| tokio::spawn(self.worker.clone().run(stop.clone())));
        tokio::spawn(services.clone().watch_directory(stop.clone()));
        let catalog =
            run_jobs.then(|| tokio::spawn(services.clone().run_catalog_sync(stop.clone())));
        let router = http::router(self.state);
        let deadline = http::server::serve(listener, router, limits, stop.clone()).await;
        stop.cancel();
        // What they had claimed runs again once its lease ends.
        for (task, what) in [
            (runner, "the job runner"),
            (catalog, "template and sender syncing"),
        ] {
            if let Some(mut task) = task {
                if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                    task.abort();
                    tracing::warn!("drain deadline passed: stopped {what} mid-batch");
                }
            }
        }
        services.store.flush().await?;
        Ok(())
    }
}
