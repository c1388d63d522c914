//! Webhooks (§6.3): which ones happen, when they are posted (a manual queue, or one timer-driven
//! scheduler task), what the network does to them (lost, doubled, overtaken), how several due
//! together share one POST, and the signed POST itself.
//!
//! A message's status moves on its own schedule — `sent`, `delivered`, `read` in order, or one
//! `failed` — whatever becomes of the webhooks announcing it. A POST that is refused or not
//! answered is counted as failed and, like Meta does, posted again later with the same items
//! (up to `Config::webhook_retries` times: at the next delivery in Manual mode, after
//! `step_ms × 2^attempt` in Auto mode).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::WebhookMode;
use crate::messages::Transition;
use crate::payload::{body, status_json, Item};
use crate::server::Shared;
use crate::signature::signature;

/// How often the Auto-mode scheduler looks for due webhooks.
const TICK: Duration = Duration::from_millis(5);
/// Posts in flight at once in Auto mode; beyond this the scheduler waits.
const MAX_IN_FLIGHT: usize = 64;

/// What became of the webhooks so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebhookStats {
    /// POSTs answered 2xx.
    pub delivered: usize,
    /// POST attempts not connected, timed out or answered non-2xx.
    pub failed: usize,
    /// Statuses and changes carried by the delivered POSTs (each copy of a duplicate counts).
    pub items_delivered: usize,
    /// Statuses and changes lost on purpose by the `webhooks.drop` rate: never posted.
    pub dropped: usize,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicUsize,
    failed: AtomicUsize,
    items_delivered: AtomicUsize,
    dropped: AtomicUsize,
}

/// Something that happens to the account and is announced by a webhook.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// A message's status moves; applied when due.
    Status {
        message_id: Arc<str>,
        transition: Transition,
    },
    /// A whole `{field, value}` change, e.g. a template status or a quality update.
    Change(Value),
}

enum Due {
    Event(Event),
    /// A held-back copy, posted late.
    Item(Item),
    /// A refused POST, posted again.
    Retry(Retry),
}

/// The items of a refused POST and how many times they were posted.
struct Retry {
    items: Vec<Item>,
    attempts: u32,
}

/// An entry of Auto mode's timeline; ordered so the heap pops the earliest first.
struct Timed {
    due: Instant,
    seq: u64,
    what: Due,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Timed {}

impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timed {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// Webhooks not yet posted, and the tally of those that were.
pub(crate) struct WebhookQueue {
    mode: WebhookMode,
    manual: Mutex<Vec<Event>>,
    /// Manual mode's refused POSTs, posted first at the next delivery.
    manual_retries: Mutex<Vec<Retry>>,
    timed: Mutex<BinaryHeap<Timed>>,
    seq: AtomicU64,
    /// Wakes the idle scheduler when something is queued.
    wake: Notify,
    counters: Counters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WebhookQueue {
    pub(crate) fn new(mode: WebhookMode) -> Self {
        WebhookQueue {
            mode,
            manual: Mutex::default(),
            manual_retries: Mutex::default(),
            timed: Mutex::default(),
            seq: AtomicU64::new(0),
            wake: Notify::new(),
            counters: Counters::default(),
        }
    }

    /// Queues a new message's statuses: `sent → delivered → read`, or one `failed`.
    pub(crate) fn schedule_message(&self, message_id: &str, failure: Option<i64>) {
        let transitions = match failure {
            Some(code) => vec![Transition::Failed { code }],
            None => vec![Transition::Sent, Transition::Delivered, Transition::Read],
        };
        let message_id: Arc<str> = Arc::from(message_id);
        let events = transitions.into_iter().map(|transition| Event::Status {
            message_id: message_id.clone(),
            transition,
        });
        match self.mode {
            WebhookMode::Off => {}
            WebhookMode::Manual => lock(&self.manual).extend(events),
            WebhookMode::Auto { step_ms } => {
                let now = Instant::now();
                for (step, event) in (1u64..).zip(events) {
                    let due = now + Duration::from_millis(step.saturating_mul(step_ms));
                    self.push(due, Due::Event(event));
                }
            }
        }
    }

    /// Queues a change to be posted as soon as possible (Manual: at the next delivery).
    pub(crate) fn push_change(&self, change: Value) {
        match self.mode {
            WebhookMode::Off => {}
            WebhookMode::Manual => lock(&self.manual).push(Event::Change(change)),
            WebhookMode::Auto { .. } => {
                self.push(Instant::now(), Due::Event(Event::Change(change)))
            }
        }
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        let c = &self.counters;
        WebhookStats {
            delivered: c.delivered.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            items_delivered: c.items_delivered.load(Ordering::SeqCst),
            dropped: c.dropped.load(Ordering::SeqCst),
        }
    }

    fn push(&self, due: Instant, what: Due) {
        let mut timed = lock(&self.timed);
        if timed.is_empty() {
            self.wake.notify_one();
        }
        timed.push(Timed {
            due,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            what,
        });
    }

    fn is_idle(&self) -> bool {
        lock(&self.timed).is_empty()
    }

    fn take_due(&self, now: Instant) -> Vec<Due> {
        let mut timed = lock(&self.timed);
        let mut due = Vec::new();
        while timed.peek().is_some_and(|t| t.due <= now) {
            if let Some(t) = timed.pop() {
                due.push(t.what);
            }
        }
        due
    }
}

/// Applies an event and returns what announces it.
fn prepare(shared: &Shared, event: Event) -> Option<Item> {
    match event {
        Event::Change(change) => Some(Item::Change(change)),
        Event::Status {
            message_id,
            transition,
        } => shared
            .messages
            .apply(&message_id, transition, |message| Item::Status {
                phone_number_id: message.phone_number_id.clone(),
                status: status_json(message, transition),
            }),
    }
}

/// Draws what the network does to one item: the copies posted, each `true` if held back.
fn copies(shared: &Shared) -> Vec<bool> {
    let rates = shared.rates().webhooks;
    let rng = &shared.fault_rng;
    if rng.chance(rates.drop) {
        shared
            .webhooks
            .counters
            .dropped
            .fetch_add(1, Ordering::SeqCst);
        return Vec::new();
    }
    let count = if rng.chance(rates.duplicate) { 2 } else { 1 };
    (0..count).map(|_| rng.chance(rates.reorder)).collect()
}

/// Posts a signed JSON body once; returns the answer's HTTP status.
pub(crate) async fn post_signed(shared: &Shared, url: &str, body: Vec<u8>) -> reqwest::Result<u16> {
    let response = shared
        .http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, "facebookexternalua")
        .header(
            "X-Hub-Signature-256",
            signature(&shared.config.app_secret, &body),
        )
        .body(body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// Posts one batch and tallies the outcome; transport failures are reported as 0.
async fn post_counted(shared: &Shared, url: &str, items: &[Item]) -> u16 {
    let status = post_signed(shared, url, body(shared, items))
        .await
        .unwrap_or(0);
    let counters = &shared.webhooks.counters;
    if (200..300).contains(&status) {
        counters.delivered.fetch_add(1, Ordering::SeqCst);
        counters
            .items_delivered
            .fetch_add(items.len(), Ordering::SeqCst);
    } else {
        counters.failed.fetch_add(1, Ordering::SeqCst);
    }
    status
}

/// The retry owed for a POST that got `status` after `attempts` tries, if any is left.
fn retry_after(shared: &Shared, status: u16, items: Vec<Item>, attempts: u32) -> Option<Retry> {
    let refused = !(200..300).contains(&status);
    (refused && attempts <= shared.config.webhook_retries).then_some(Retry { items, attempts })
}

/// Manual mode: posts the refused POSTs owed a retry, then applies every queued event in order
/// and posts the items in batches of at most `max_items_per_post`, held-back ones last in
/// shuffled order. Returns each POST's HTTP status (0 for a transport failure). Without a
/// webhook URL the events are applied silently.
pub(crate) async fn deliver_manual(shared: &Shared) -> Vec<u16> {
    let retries = std::mem::take(&mut *lock(&shared.webhooks.manual_retries));
    let events = std::mem::take(&mut *lock(&shared.webhooks.manual));
    let items: Vec<Item> = events
        .into_iter()
        .filter_map(|event| prepare(shared, event))
        .collect();
    let Some(url) = shared.config.webhook_url.clone() else {
        return Vec::new();
    };
    let (mut now, mut held_back) = (Vec::new(), Vec::new());
    for item in items {
        for deferred in copies(shared) {
            let to = if deferred { &mut held_back } else { &mut now };
            to.push(item.clone());
        }
    }
    shared.fault_rng.shuffle(&mut held_back);
    now.extend(held_back);
    let batches = retries
        .into_iter()
        .chain(
            now.chunks(shared.config.max_items_per_post)
                .map(|batch| Retry {
                    items: batch.to_vec(),
                    attempts: 0,
                }),
        );
    let mut statuses = Vec::new();
    for batch in batches {
        let status = post_counted(shared, &url, &batch.items).await;
        statuses.push(status);
        if let Some(retry) = retry_after(shared, status, batch.items, batch.attempts + 1) {
            lock(&shared.webhooks.manual_retries).push(retry);
        }
    }
    statuses
}

/// Auto mode: the single task that applies events and posts webhooks as they fall due; what falls
/// due in the same tick shares POSTs. A held-back copy is posted one to three steps late.
pub(crate) async fn run_scheduler(shared: Arc<Shared>, step_ms: u64) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        if shared.webhooks.is_idle() {
            // A permit stored by `notify_one` means no wake-up is lost between check and wait.
            shared.webhooks.wake.notified().await;
        }
        tick.tick().await;
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut batches = Vec::new();
        for due in shared.webhooks.take_due(now) {
            let item = match due {
                Due::Item(item) => {
                    ready.push(item);
                    continue;
                }
                Due::Retry(retry) => {
                    batches.push(retry);
                    continue;
                }
                Due::Event(event) => prepare(&shared, event),
            };
            let Some(item) = item else { continue };
            if shared.config.webhook_url.is_none() {
                continue;
            }
            for deferred in copies(&shared) {
                if deferred {
                    let late = step_ms + shared.fault_rng.up_to(2 * step_ms);
                    let due = now + Duration::from_millis(late);
                    shared.webhooks.push(due, Due::Item(item.clone()));
                } else {
                    ready.push(item.clone());
                }
            }
        }
        let Some(url) = shared.config.webhook_url.as_deref() else {
            continue;
        };
        batches.extend(
            ready
                .chunks(shared.config.max_items_per_post)
                .map(|batch| Retry {
                    items: batch.to_vec(),
                    attempts: 0,
                }),
        );
        for batch in batches {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (shared, url) = (shared.clone(), url.to_string());
            tokio::spawn(async move {
                let status = post_counted(&shared, &url, &batch.items).await;
                drop(permit);
                let attempts = batch.attempts + 1;
                if let Some(retry) = retry_after(&shared, status, batch.items, attempts) {
                    let backoff = step_ms.saturating_mul(1 << attempts.min(16));
                    let due = Instant::now() + Duration::from_millis(backoff);
                    shared.webhooks.push(due, Due::Retry(retry));
                }
            });
        }
    }
}
