//! The fake's lifecycle and its public handle: binding, serving, stopping, and the test hooks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::callbacks::{self, CallbackQueue};
use crate::config::{CallbackMode, Config};
use crate::conn::{ConnHandle, KillableListener};
use crate::faults::{Fault, FaultQueue};
use crate::inbound::{self, Inbound};
use crate::random::Rng;
use crate::state::{Message, Store};
use crate::webhook::post_signed;

/// Twilio's default webhook timeout (§2).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything the handlers and the callback scheduler share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) faults: FaultQueue,
    pub(crate) create_requests: AtomicUsize,
    pub(crate) callbacks: CallbackQueue,
    pub(crate) rng: Rng,
    pub(crate) http: reqwest::Client,
    /// The `XE…` sender install named in every status callback.
    pub(crate) channel_install_sid: String,
}

/// A running fake Twilio account on loopback.
pub struct FakeTwilio {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Dropping it starts a graceful shutdown of the server.
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    scheduler: Option<JoinHandle<()>>,
}

impl FakeTwilio {
    /// Binds 127.0.0.1:0 and serves until dropped (or `stop`).
    pub async fn start(config: Config) -> anyhow::Result<FakeTwilio> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Same, on a given address (for the binary).
    pub async fn start_on(config: Config, addr: SocketAddr) -> anyhow::Result<FakeTwilio> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr()?;
        let rng = Rng::from_os()?;
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .context("building the webhook HTTP client")?;
        let shared = Arc::new(Shared {
            store: Store::default(),
            faults: FaultQueue::default(),
            create_requests: AtomicUsize::new(0),
            callbacks: CallbackQueue::new(config.callbacks, config.reorder_and_duplicate),
            channel_install_sid: rng.sid("XE"),
            rng,
            http,
            config,
        });

        let app =
            crate::api::router(shared.clone()).into_make_service_with_connect_info::<ConnHandle>();
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            // axum's serve only ends on shutdown; accept errors are retried inside the listener.
            let _ = axum::serve(KillableListener(listener), app)
                .with_graceful_shutdown(async {
                    let _ = shutdown_signal.await;
                })
                .await;
        });
        let scheduler = matches!(shared.config.callbacks, CallbackMode::Auto { .. })
            .then(|| tokio::spawn(callbacks::run_scheduler(shared.clone())));

        Ok(FakeTwilio {
            shared,
            addr,
            shutdown: Some(shutdown),
            server: Some(server),
            scheduler,
        })
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn stop(mut self) {
        drop(self.shutdown.take());
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// `"http://127.0.0.1:PORT"` (what waygate's twilio_api_base is set to).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn account_sid(&self) -> &str {
        &self.shared.config.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.shared.config.auth_token
    }

    /// Queue faults for the next create requests (in order).
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.faults.extend(faults);
    }

    /// Every message created (accepted with 201 or CreatedThenServerError/Slow), in creation order.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.store.messages()
    }

    /// How many create requests arrived at all (including refused/faulted ones).
    pub fn create_requests(&self) -> usize {
        self.shared.create_requests.load(Ordering::SeqCst)
    }

    /// Manual mode: post every queued status callback now (respecting reorder_and_duplicate);
    /// returns the HTTP status each post got (0 when the callback URL could not be reached), one
    /// per post. Queued status changes of messages without a StatusCallback are applied silently.
    pub async fn deliver_callbacks(&self) -> Vec<u16> {
        callbacks::deliver_manual(&self.shared).await
    }

    /// Posts a signed inbound WhatsApp message (§2.2) to `url`; returns the HTTP status.
    pub async fn send_inbound(&self, url: &str, inbound: &Inbound) -> anyhow::Result<u16> {
        let params = self.inbound_params(inbound);
        post_signed(&self.shared, url, &params)
            .await
            .with_context(|| format!("posting inbound message to {url}"))
    }

    /// Same request as send_inbound but returns the exact form params (for re-posting or forging).
    pub fn inbound_params(&self, inbound: &Inbound) -> Vec<(String, String)> {
        inbound::params(&self.shared.config.account_sid, &self.shared.rng, inbound)
    }
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
    }
}
