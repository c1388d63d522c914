//! Status callbacks (§2.1): which ones a new message gets, when they are posted (a manual queue,
//! or one timer-driven scheduler task rather than a task per message), what the network does to
//! them on the way (lost, doubled, overtaken), and their parameters.
//!
//! A message's status moves on its own schedule — `sent`, `delivered`, `read` in order — whatever
//! becomes of the callbacks announcing it, so a fetch always tells the current truth. Like Twilio,
//! a callback that is lost or refused (no connection, non-2xx answer) is never posted again.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{AsyncFailure, CallbackMode};
use crate::dates::now_ms;
use crate::server::Shared;
use crate::state::{Record, Transition};
use crate::webhook::post_signed;

/// How often the Auto-mode scheduler looks for due callbacks.
const TICK: Duration = Duration::from_millis(5);
/// Callback posts in flight at once in Auto mode; beyond this the scheduler waits (backpressure).
const MAX_IN_FLIGHT: usize = 128;

/// What became of the status callbacks so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallbackStats {
    /// Posted and answered 2xx (each copy of a duplicate counts).
    pub delivered: usize,
    /// Posted but not connected, timed out, or answered non-2xx: lost, never retried.
    pub failed: usize,
    /// Lost on purpose by the `callbacks.drop` fault rate: never posted.
    pub dropped: usize,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicUsize,
    failed: AtomicUsize,
    dropped: AtomicUsize,
}

/// One status change waiting to be applied, and posted if the message has a `StatusCallback`.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    sid: Arc<str>,
    transition: Transition,
}

/// One callback request, ready to post.
#[derive(Clone, Debug)]
struct Post {
    url: String,
    params: Vec<(String, String)>,
}

/// Auto mode's timeline: status changes fall due on the message's schedule, held-back posts later.
enum Event {
    Apply(Pending),
    Post(Post),
}

/// An event with its due time; ordered so the `BinaryHeap` pops the earliest first.
struct Timed {
    due: Instant,
    seq: u64,
    event: Event,
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

/// Callbacks not yet posted, and the tally of those that were.
pub(crate) struct CallbackQueue {
    mode: CallbackMode,
    manual: Mutex<Vec<Pending>>,
    timed: Mutex<BinaryHeap<Timed>>,
    seq: AtomicU64,
    /// Wakes the idle scheduler when the first callback is queued, so it doesn't tick for nothing.
    wake: Notify,
    counters: Counters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CallbackQueue {
    pub(crate) fn new(mode: CallbackMode) -> Self {
        CallbackQueue {
            mode,
            manual: Mutex::default(),
            timed: Mutex::default(),
            seq: AtomicU64::new(0),
            wake: Notify::new(),
            counters: Counters::default(),
        }
    }

    /// Queues a new message's lifecycle: `sent → delivered → read`, or one failure.
    pub(crate) fn schedule(&self, sid: &str, failure: Option<AsyncFailure>) {
        let transitions = match failure {
            Some(failure) => vec![Transition::Failed(failure)],
            None => vec![Transition::Sent, Transition::Delivered, Transition::Read],
        };
        let sid: Arc<str> = Arc::from(sid);
        let pending = transitions.into_iter().map(|transition| Pending {
            sid: sid.clone(),
            transition,
        });
        match self.mode {
            CallbackMode::Off => {}
            CallbackMode::Manual => lock(&self.manual).extend(pending),
            CallbackMode::Auto { step_ms } => {
                let now = Instant::now();
                for (step, pending) in (1u64..).zip(pending) {
                    let due = now + Duration::from_millis(step.saturating_mul(step_ms));
                    self.push(due, Event::Apply(pending));
                }
            }
        }
    }

    pub(crate) fn stats(&self) -> CallbackStats {
        let c = &self.counters;
        CallbackStats {
            delivered: c.delivered.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            dropped: c.dropped.load(Ordering::SeqCst),
        }
    }

    fn push(&self, due: Instant, event: Event) {
        let mut timed = lock(&self.timed);
        if timed.is_empty() {
            self.wake.notify_one();
        }
        timed.push(Timed {
            due,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            event,
        });
    }

    fn is_idle(&self) -> bool {
        lock(&self.timed).is_empty()
    }

    fn take_due(&self, now: Instant) -> Vec<Event> {
        let mut timed = lock(&self.timed);
        let mut due = Vec::new();
        while timed.peek().is_some_and(|t| t.due <= now) {
            if let Some(t) = timed.pop() {
                due.push(t.event);
            }
        }
        due
    }
}

/// Draws what the network does to one callback: the copies that get posted, each `true` if held
/// back behind later callbacks. None at all when it is lost.
fn copies(shared: &Shared) -> Vec<bool> {
    let rates = shared.rates().callbacks;
    let always = shared.config.reorder_and_duplicate;
    let rng = &shared.fault_rng;
    if rng.chance(rates.drop) {
        shared
            .callbacks
            .counters
            .dropped
            .fetch_add(1, Ordering::SeqCst);
        return Vec::new();
    }
    let count = if always || rng.chance(rates.duplicate) {
        2
    } else {
        1
    };
    (0..count)
        .map(|_| always || rng.chance(rates.reorder))
        .collect()
}

/// Posts one callback once and tallies the outcome; transport failures are reported as 0.
async fn post_counted(shared: &Shared, post: &Post) -> u16 {
    let status = post_signed(shared, &post.url, &post.params)
        .await
        .unwrap_or(0);
    let counters = &shared.callbacks.counters;
    let counter = if (200..300).contains(&status) {
        &counters.delivered
    } else {
        &counters.failed
    };
    counter.fetch_add(1, Ordering::SeqCst);
    status
}

/// Manual mode: applies every queued status change in order, then posts the callbacks one after
/// another, held-back ones last in shuffled order (all of them with `reorder_and_duplicate`).
/// Returns the HTTP status of each post, 0 for a transport failure; lost callbacks have none.
pub(crate) async fn deliver_manual(shared: &Shared) -> Vec<u16> {
    let batch = std::mem::take(&mut *lock(&shared.callbacks.manual));
    let (mut posts, mut held_back) = (Vec::new(), Vec::new());
    for pending in batch {
        let Some(post) = prepare(shared, &pending) else {
            continue;
        };
        for deferred in copies(shared) {
            let to = if deferred { &mut held_back } else { &mut posts };
            to.push(post.clone());
        }
    }
    shared.fault_rng.shuffle(&mut held_back);
    posts.extend(held_back);
    let mut statuses = Vec::with_capacity(posts.len());
    for post in &posts {
        statuses.push(post_counted(shared, post).await);
    }
    statuses
}

/// Auto mode: the single task that applies status changes and posts callbacks as they fall due.
/// A held-back copy is posted one to three steps late, so the next status usually overtakes it.
pub(crate) async fn run_scheduler(shared: Arc<Shared>, step_ms: u64) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        if shared.callbacks.is_idle() {
            // A permit stored by `notify_one` means no wake-up is lost between check and wait.
            shared.callbacks.wake.notified().await;
        }
        tick.tick().await;
        let now = Instant::now();
        for event in shared.callbacks.take_due(now) {
            match event {
                Event::Post(post) => spawn_post(&shared, &permits, post).await,
                Event::Apply(pending) => {
                    let Some(post) = prepare(&shared, &pending) else {
                        continue;
                    };
                    for deferred in copies(&shared) {
                        if deferred {
                            let late = step_ms + shared.fault_rng.up_to(2 * step_ms);
                            let due = now + Duration::from_millis(late);
                            shared.callbacks.push(due, Event::Post(post.clone()));
                        } else {
                            spawn_post(&shared, &permits, post.clone()).await;
                        }
                    }
                }
            }
        }
    }
}

/// Posts in the background once a permit is free. Like Twilio, nobody hears about a failure.
async fn spawn_post(shared: &Arc<Shared>, permits: &Arc<Semaphore>, post: Post) {
    let Ok(permit) = permits.clone().acquire_owned().await else {
        return;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        post_counted(&shared, &post).await;
        drop(permit);
    });
}

/// Applies the status change to the stored message and returns what to post, if anywhere.
fn prepare(shared: &Shared, pending: &Pending) -> Option<Post> {
    shared
        .store
        .apply(&pending.sid, pending.transition, now_ms(), |record| {
            let url = record.message.status_callback.clone()?;
            Some(Post {
                url,
                params: params(shared, record, pending.transition),
            })
        })
        .flatten()
}

/// The §2.1 parameter set, in the order of captured WhatsApp callbacks.
fn params(shared: &Shared, record: &Record, transition: Transition) -> Vec<(String, String)> {
    let m = &record.message;
    let status = transition.status();
    let mut params: Vec<(&str, String)> = Vec::with_capacity(17);
    if let Some(event) = transition.event_type() {
        params.push(("EventType", event.to_string()));
    }
    params.extend([
        ("SmsSid", m.sid.clone()),
        ("SmsStatus", status.to_string()),
        ("MessageStatus", status.to_string()),
        ("ChannelToAddress", masked(&m.to)),
        ("To", m.to.clone()),
        ("ChannelPrefix", "whatsapp".to_string()),
        ("MessageSid", m.sid.clone()),
        ("AccountSid", shared.config.account_sid.clone()),
        ("StructuredMessage", "false".to_string()),
        ("From", m.from.clone()),
        ("ApiVersion", "2010-04-01".to_string()),
        ("ChannelInstallSid", shared.channel_install_sid.clone()),
    ]);
    if let Some(service) = &record.messaging_service_sid {
        params.push(("MessagingServiceSid", service.clone()));
    }
    if let Transition::Failed(failure) = transition {
        params.push(("ErrorCode", failure.code.to_string()));
        params.push(("ErrorMessage", failure.message.to_string()));
    }
    params
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// `ChannelToAddress`: the recipient's `+number` with its last four digits masked, as Twilio does.
fn masked(to: &str) -> String {
    let number = to.strip_prefix("whatsapp:").unwrap_or(to);
    let len = number.chars().count();
    number
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 >= len { 'X' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn masks_last_four_digits() {
        assert_eq!(masked("whatsapp:+918489514086"), "+91848951XXXX");
        assert_eq!(masked("whatsapp:+12"), "XXX");
    }
}
