//! The fake's lifecycle and its public handle: binding, serving, stopping, and the test hooks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::callbacks::{self, CallbackQueue, CallbackStats};
use crate::config::{CallbackMode, Config};
use crate::conn::{ConnHandle, KillableListener};
use crate::content::{Content, ContentStore, Decision};
use crate::faults::{EndpointFaults, Fault, FaultQueue, ReadEndpoint, ReadFault};
use crate::inbound::{self, Inbound};
use crate::random::Rng;
use crate::rates::FaultRates;
use crate::senders::{SenderState, SenderStore};
use crate::state::{Message, Store};
use crate::webhook::post_signed;

/// Twilio's default webhook timeout (§2).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);
/// Separates the fault draws' stream from the SIDs' one, so a replay with the same seed draws the
/// same faults whatever else consumed randomness.
const FAULT_STREAM: u64 = 0xFA17_5EED_0000_0001;

/// Everything the handlers and the callback scheduler share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) faults: FaultQueue<Fault>,
    read_faults: EndpointFaults,
    rates: Mutex<FaultRates>,
    pub(crate) create_requests: AtomicUsize,
    pub(crate) callbacks: CallbackQueue,
    pub(crate) rng: Rng,
    /// Draws random faults only.
    pub(crate) fault_rng: Rng,
    seed: u64,
    pub(crate) http: reqwest::Client,
    /// The `XE…` sender install named in every status callback.
    pub(crate) channel_install_sid: String,
    pub(crate) contents: ContentStore,
    pub(crate) senders: SenderStore,
    /// `http://127.0.0.1:PORT`: the Content and Senders APIs answer with absolute URLs.
    pub(crate) base_url: String,
}

impl Shared {
    pub(crate) fn rates(&self) -> FaultRates {
        *self.rates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault for this create request: the next scripted one, else a random draw.
    pub(crate) fn create_fault(&self) -> Option<Fault> {
        self.faults
            .next()
            .or_else(|| self.rates().create.draw(&self.fault_rng))
    }

    /// The fault for this request of a read, Content or Senders endpoint: the next scripted one,
    /// else a random draw (Messages reads only).
    pub(crate) fn read_fault(&self, endpoint: ReadEndpoint) -> Option<ReadFault> {
        self.read_faults.next(endpoint).or_else(|| {
            let rates = match endpoint {
                ReadEndpoint::List => self.rates().list,
                ReadEndpoint::Fetch => self.rates().fetch,
                _ => return None,
            };
            rates.draw(&self.fault_rng)
        })
    }

    /// Whether a `ContentSid` names a template: one the API created (and did not delete), or one
    /// listed in the configuration, or any well-formed SID when the configuration lists none.
    pub(crate) fn knows_content(&self, sid: &str) -> bool {
        self.contents.contains(sid)
            || self
                .config
                .content_sids
                .as_ref()
                .is_none_or(|sids| sids.iter().any(|s| s == sid))
    }
}

/// A running fake Twilio account on loopback.
pub struct FakeTwilio {
    shared: Arc<Shared>,
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
        config.fault_rates.check()?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr()?;
        let seed = match config.seed {
            Some(seed) => seed,
            None => Rng::os_seed()?,
        };
        let rng = Rng::from_seed(seed);
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .context("building the webhook HTTP client")?;
        let shared = Arc::new(Shared {
            store: Store::default(),
            faults: FaultQueue::default(),
            read_faults: EndpointFaults::default(),
            rates: Mutex::new(config.fault_rates),
            create_requests: AtomicUsize::new(0),
            callbacks: CallbackQueue::new(config.callbacks),
            channel_install_sid: rng.sid("XE"),
            rng,
            fault_rng: Rng::from_seed(seed ^ FAULT_STREAM),
            seed,
            http,
            contents: ContentStore::new(Duration::from_millis(config.approval_delay_ms)),
            senders: SenderStore::default(),
            base_url: format!("http://{addr}"),
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
        let scheduler = match shared.config.callbacks {
            CallbackMode::Auto { step_ms } => Some(tokio::spawn(callbacks::run_scheduler(
                shared.clone(),
                step_ms,
            ))),
            CallbackMode::Manual | CallbackMode::Off => None,
        };

        Ok(FakeTwilio {
            shared,
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
        self.shared.base_url.clone()
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

    /// The seed of every random draw (given in `Config::seed`, or drawn at start): pass it back
    /// in `Config::seed` to replay a run.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Replaces the random-fault rates from the next request or callback on; refused (and the
    /// old rates kept) if a rate is not a probability or an exclusive set sums above 1.
    pub fn set_fault_rates(&self, rates: FaultRates) -> anyhow::Result<()> {
        rates.check()?;
        *self
            .shared
            .rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = rates;
        Ok(())
    }

    pub fn fault_rates(&self) -> FaultRates {
        self.shared.rates()
    }

    /// Queue faults for the next requests of a read, Content or Senders endpoint (in order);
    /// they come before any random fault.
    pub fn inject_reads(
        &self,
        endpoint: ReadEndpoint,
        faults: impl IntoIterator<Item = ReadFault>,
    ) {
        self.shared.read_faults.extend(endpoint, faults);
    }

    /// Every content template not deleted, oldest first, with its approval as it stands now.
    pub fn contents(&self) -> Vec<Content> {
        self.shared.contents.all()
    }

    /// Sets what WhatsApp decides for a template (shown once its approval delay is over, at once
    /// if it is already over: e.g. `Paused` after `Approved`); false if there is no such template.
    pub fn set_template_decision(&self, sid: &str, decision: Decision) -> bool {
        self.shared.contents.decide(sid, decision)
    }

    /// Sets the state of the sender `sid` (`"XE"` + 32 hex), adding it if new.
    pub fn set_sender(&self, sid: &str, state: SenderState) {
        self.shared.senders.set(sid, state);
    }

    /// Every sender not deleted, oldest first, with its SID.
    pub fn senders(&self) -> Vec<(String, SenderState)> {
        self.shared.senders.states()
    }

    /// What became of the status callbacks so far (also in `GET /_fake/stats`).
    pub fn callback_stats(&self) -> CallbackStats {
        self.shared.callbacks.stats()
    }

    /// How many messages were created per value of a `StatusCallback` query parameter — with
    /// `"message_id"`, how many times each of the client's messages reached the provider.
    /// Messages without that parameter are not counted.
    pub fn messages_per_callback_param(&self, name: &str) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for message in self.shared.store.messages() {
            if let Some(value) = message.status_callback_param(name) {
                *counts.entry(value).or_default() += 1;
            }
        }
        counts
    }

    /// Every message created (accepted with 201 or CreatedThenServerError/Slow), in creation order.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.store.messages()
    }

    /// How many create requests arrived at all (including refused/faulted ones).
    pub fn create_requests(&self) -> usize {
        self.shared.create_requests.load(Ordering::SeqCst)
    }

    /// Manual mode: apply every queued status change now and post its callback (subject to
    /// reorder_and_duplicate and the callback fault rates); returns the HTTP status each post got
    /// (0 when the callback URL could not be reached), one per post. Status changes of messages
    /// without a StatusCallback, or whose callback is dropped, are applied silently.
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
