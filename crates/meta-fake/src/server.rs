//! The fake's lifecycle and its public handle: binding, serving, stopping, and the test hooks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, WebhookMode};
use crate::conn::{Conn, Killable};
use crate::faults::{Fault, FaultQueue, ReadEndpoint, ReadFault};
use crate::inbound::{self, Inbound};
use crate::messages::{Message, Store};
use crate::phone::{quality_event, PhoneNumberState, Phones};
use crate::random::Rng;
use crate::rates::FaultRates;
use crate::templates::{Template, TemplateStatus, Templates};
use crate::webhooks::{self, post_signed, WebhookQueue, WebhookStats};

/// How long a webhook POST may take before it counts as failed.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);
/// Separates the fault draws' stream from the ids' one, so a replay with the same seed draws the
/// same faults whatever else consumed randomness.
const FAULT_STREAM: u64 = 0x3E7A_FA17_0000_0001;

/// Everything the handlers and the webhook scheduler share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) messages: Store,
    pub(crate) templates: Templates,
    pub(crate) phones: Phones,
    send_faults: FaultQueue<Fault>,
    template_faults: FaultQueue<ReadFault>,
    phone_faults: FaultQueue<ReadFault>,
    rates: Mutex<FaultRates>,
    pub(crate) send_requests: AtomicUsize,
    pub(crate) webhooks: WebhookQueue,
    pub(crate) rng: Rng,
    /// Draws random faults only.
    pub(crate) fault_rng: Rng,
    seed: u64,
    pub(crate) http: reqwest::Client,
}

impl Shared {
    pub(crate) fn rates(&self) -> FaultRates {
        *self.rates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault for this send: the next scripted one, else a random draw.
    pub(crate) fn send_fault(&self) -> Option<Fault> {
        self.send_faults
            .next()
            .or_else(|| self.rates().send.draw(&self.fault_rng))
    }

    /// The fault for this read: the next scripted one, else a random draw.
    pub(crate) fn read_fault(&self, endpoint: ReadEndpoint) -> Option<ReadFault> {
        let rates = match endpoint {
            ReadEndpoint::Template => self.rates().template,
            ReadEndpoint::PhoneNumber => self.rates().phone_number,
        };
        self.read_faults(endpoint)
            .next()
            .or_else(|| rates.draw(&self.fault_rng))
    }

    fn read_faults(&self, endpoint: ReadEndpoint) -> &FaultQueue<ReadFault> {
        match endpoint {
            ReadEndpoint::Template => &self.template_faults,
            ReadEndpoint::PhoneNumber => &self.phone_faults,
        }
    }

    /// Queues a change for the webhook, when there is one to post it to.
    fn announce(&self, change: serde_json::Value) {
        if self.config.webhook_url.is_some() {
            self.webhooks.push_change(change);
        }
    }

    /// Sets a template's status and announces it with `message_template_status_update`.
    pub(crate) fn change_template(
        &self,
        id: &str,
        status: TemplateStatus,
        reason: Option<String>,
        only_if_pending: bool,
    ) -> Option<Template> {
        let template = self
            .templates
            .set_status(id, status, reason, only_if_pending)?;
        let id_number: u64 = template.id.parse().unwrap_or_default();
        self.announce(json!({
            "field": "message_template_status_update",
            "value": {
                "event": template.status.as_str(),
                "message_template_id": id_number,
                "message_template_name": template.name,
                "message_template_language": template.language,
                "reason": template.rejected_reason.as_deref().unwrap_or("NONE"),
            },
        }));
        Some(template)
    }

    /// Decides a new template after the review delay: approved, or rejected for `reject_` names.
    pub(crate) fn schedule_review(self: &Arc<Self>, template: &Template) {
        let (status, reason) = if template.name.starts_with("reject_") {
            (TemplateStatus::Rejected, Some("INVALID_FORMAT".to_string()))
        } else {
            (TemplateStatus::Approved, None)
        };
        let (shared, id) = (self.clone(), template.id.clone());
        let delay = Duration::from_millis(self.config.template_review_ms);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            shared.change_template(&id, status, reason, true);
        });
    }
}

/// A running fake WhatsApp Business Account on loopback.
pub struct FakeMeta {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Dropping it starts a graceful shutdown of the server.
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    scheduler: Option<JoinHandle<()>>,
}

impl FakeMeta {
    /// Binds 127.0.0.1:0 and serves until dropped (or `stop`).
    pub async fn start(config: Config) -> anyhow::Result<FakeMeta> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Same, on a given address (for the binary).
    pub async fn start_on(config: Config, addr: SocketAddr) -> anyhow::Result<FakeMeta> {
        config.check()?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr()?;
        let seed = match config.seed {
            Some(seed) => seed,
            None => Rng::os_seed()?,
        };
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .context("building the webhook HTTP client")?;
        let shared = Arc::new(Shared {
            messages: Store::default(),
            templates: Templates::default(),
            phones: Phones::new(config.phone_numbers.iter().map(|p| p.id.as_str())),
            send_faults: FaultQueue::default(),
            template_faults: FaultQueue::default(),
            phone_faults: FaultQueue::default(),
            rates: Mutex::new(config.fault_rates),
            send_requests: AtomicUsize::new(0),
            webhooks: WebhookQueue::new(config.webhooks),
            rng: Rng::from_seed(seed),
            fault_rng: Rng::from_seed(seed ^ FAULT_STREAM),
            seed,
            http,
            config,
        });

        let app = crate::api::router(shared.clone()).into_make_service_with_connect_info::<Conn>();
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            // axum's serve only ends on shutdown; accept errors are retried inside the listener.
            let _ = axum::serve(Killable(listener), app)
                .with_graceful_shutdown(async {
                    let _ = shutdown_signal.await;
                })
                .await;
        });
        let scheduler = match shared.config.webhooks {
            WebhookMode::Auto { step_ms } => Some(tokio::spawn(webhooks::run_scheduler(
                shared.clone(),
                step_ms,
            ))),
            WebhookMode::Manual | WebhookMode::Off => None,
        };
        Ok(FakeMeta {
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

    /// `"http://127.0.0.1:PORT"` (what the client's Graph API base is set to; paths add the
    /// version, e.g. `/v23.0/…`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn access_token(&self) -> &str {
        &self.shared.config.access_token
    }

    pub fn app_secret(&self) -> &str {
        &self.shared.config.app_secret
    }

    pub fn waba_id(&self) -> &str {
        &self.shared.config.waba_id
    }

    /// The first configured phone number's id.
    pub fn phone_number_id(&self) -> &str {
        &self.shared.config.phone_numbers[0].id
    }

    /// The seed of every random draw: pass it back in `Config::seed` to replay a run.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Queue faults for the next sends (in order); they come before any random fault.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.send_faults.extend(faults);
    }

    /// Queue faults for the next reads of an endpoint (in order).
    pub fn inject_reads(
        &self,
        endpoint: ReadEndpoint,
        faults: impl IntoIterator<Item = ReadFault>,
    ) {
        self.shared.read_faults(endpoint).extend(faults);
    }

    /// Replaces the random-fault rates from the next request or webhook on; refused (and the old
    /// rates kept) if a rate is not a probability or an exclusive set sums above 1.
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

    /// How many send requests arrived at all (including refused and faulted ones).
    pub fn send_requests(&self) -> usize {
        self.shared.send_requests.load(Ordering::SeqCst)
    }

    /// Every accepted message, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.messages.all()
    }

    /// How many messages were accepted per `biz_opaque_callback_data` — the client's message id —
    /// so a test can tell how many times each of its messages reached Meta. Messages without it
    /// are not counted.
    pub fn messages_per_callback_data(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for message in self.shared.messages.all() {
            if let Some(data) = message.biz_opaque_callback_data {
                *counts.entry(data).or_default() += 1;
            }
        }
        counts
    }

    /// What became of the webhooks so far (also in `GET /_fake/stats`).
    pub fn webhook_stats(&self) -> WebhookStats {
        self.shared.webhooks.stats()
    }

    /// Manual mode: applies every queued status change and posts the queued webhooks now, in
    /// batches of at most `max_items_per_post` (subject to the webhook fault rates); returns the
    /// HTTP status of each POST (0 when unreachable).
    pub async fn deliver_webhooks(&self) -> Vec<u16> {
        webhooks::deliver_manual(&self.shared).await
    }

    /// Posts one signed webhook carrying these inbound messages to the configured webhook URL;
    /// returns the HTTP status.
    pub async fn send_inbound(&self, messages: &[Inbound]) -> anyhow::Result<u16> {
        let url = self
            .shared
            .config
            .webhook_url
            .as_deref()
            .context("no webhook_url configured")?;
        post_signed(&self.shared, url, self.inbound_body(messages))
            .await
            .with_context(|| format!("posting inbound messages to {url}"))
    }

    /// Meta's subscription handshake against the webhook URL (§6.3): `GET
    /// ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`; true when the answer is 200 with
    /// exactly the challenge as its body.
    pub async fn verify_webhook(&self, verify_token: &str) -> anyhow::Result<bool> {
        let url = self
            .shared
            .config
            .webhook_url
            .as_deref()
            .context("no webhook_url configured")?;
        let challenge = self.shared.rng.next_u64().to_string();
        let response = self
            .shared
            .http
            .get(url)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", verify_token),
                ("hub.challenge", &challenge),
            ])
            .send()
            .await
            .with_context(|| format!("verifying {url}"))?;
        let status = response.status();
        let body = response.text().await?;
        Ok(status == reqwest::StatusCode::OK && body == challenge)
    }

    /// The exact body `send_inbound` posts (for re-posting or forging); sign it with
    /// [`crate::signature`].
    pub fn inbound_body(&self, messages: &[Inbound]) -> Vec<u8> {
        inbound::body(&self.shared, messages)
    }

    /// Every template of the account, in creation order.
    pub fn templates(&self) -> Vec<Template> {
        self.shared.templates.all()
    }

    /// Adds an already approved template without review (a template created elsewhere), with one
    /// sample per placeholder of `body_text`.
    pub fn add_approved_template(
        &self,
        name: &str,
        language: &str,
        category: &str,
        body_text: &str,
    ) -> anyhow::Result<Template> {
        let count = crate::templates::placeholders(body_text).unwrap_or_default();
        let request = json!({
            "name": name,
            "language": language,
            "category": category,
            "components": [{
                "type": "BODY",
                "text": body_text,
                "example": {"body_text": [vec!["sample"; count]]},
            }],
        });
        let new = crate::templates::parse_create(request.to_string().as_bytes())
            .map_err(|e| anyhow::anyhow!("template refused: {e:?}"))?;
        self.shared
            .templates
            .create(self.shared.rng.graph_id(), new, TemplateStatus::Approved)
            .map_err(|e| anyhow::anyhow!("template refused: {e:?}"))
    }

    /// Sets a template's status (and reason), as Meta's review or quality checks do, and
    /// announces it with a `message_template_status_update` webhook when a webhook URL is set.
    pub fn set_template_status(
        &self,
        id: &str,
        status: TemplateStatus,
        reason: Option<&str>,
    ) -> anyhow::Result<Template> {
        self.shared
            .change_template(id, status, reason.map(str::to_string), false)
            .with_context(|| format!("no template {id}"))
    }

    pub fn phone_number_state(&self, id: &str) -> Option<PhoneNumberState> {
        self.shared.phones.get(id)
    }

    /// Replaces a phone number's state; a change of tier or of RED quality is announced with a
    /// `phone_number_quality_update` webhook (`UPGRADE`, `DOWNGRADE`, `FLAGGED`, `UNFLAGGED`).
    pub fn set_phone_number_state(&self, id: &str, state: PhoneNumberState) -> anyhow::Result<()> {
        let display = self
            .shared
            .config
            .phone_number(id)
            .map(|p| p.display_phone_number.clone())
            .with_context(|| format!("no phone number {id}"))?;
        let old = self
            .shared
            .phones
            .set(id, state.clone())
            .with_context(|| format!("no phone number {id}"))?;
        if let Some(event) = quality_event(&old, &state) {
            self.shared.announce(json!({
                "field": "phone_number_quality_update",
                "value": {
                    "display_phone_number": display,
                    "event": event,
                    "current_limit": state.messaging_limit_tier,
                },
            }));
        }
        Ok(())
    }
}

impl Drop for FakeMeta {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
    }
}
