//! Status callbacks (§2.1): which ones a new message gets, when they are posted (a manual queue,
//! or one timer-driven scheduler task rather than a task per message), and their parameters.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{AsyncFailure, CallbackMode};
use crate::dates::now_ms;
use crate::random::Rng;
use crate::server::Shared;
use crate::state::{Record, Transition};
use crate::webhook::post_signed;

/// How often the Auto-mode scheduler looks for due callbacks.
const TICK: Duration = Duration::from_millis(5);
/// Callback posts in flight at once in Auto mode; beyond this the scheduler waits (backpressure).
const MAX_IN_FLIGHT: usize = 128;

/// One status change waiting to be applied, and posted if the message has a `StatusCallback`.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    sid: Arc<str>,
    transition: Transition,
}

/// A pending callback with its due time; ordered so the `BinaryHeap` pops the earliest first.
struct Timed {
    due: Instant,
    seq: u64,
    pending: Pending,
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

/// Callbacks not yet posted.
pub(crate) struct CallbackQueue {
    mode: CallbackMode,
    reorder_and_duplicate: bool,
    manual: Mutex<Vec<Pending>>,
    timed: Mutex<BinaryHeap<Timed>>,
    seq: AtomicU64,
    /// Wakes the idle scheduler when the first callback is queued, so it doesn't tick for nothing.
    wake: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CallbackQueue {
    pub(crate) fn new(mode: CallbackMode, reorder_and_duplicate: bool) -> Self {
        CallbackQueue {
            mode,
            reorder_and_duplicate,
            manual: Mutex::default(),
            timed: Mutex::default(),
            seq: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    /// Queues a new message's lifecycle: `sent → delivered → read`, or one failure.
    pub(crate) fn schedule(&self, rng: &Rng, sid: &str, failure: Option<AsyncFailure>) {
        let transitions = match failure {
            Some(failure) => vec![Transition::Failed(failure)],
            None => vec![Transition::Sent, Transition::Delivered, Transition::Read],
        };
        let sid: Arc<str> = Arc::from(sid);
        match self.mode {
            CallbackMode::Off => {}
            CallbackMode::Manual => {
                lock(&self.manual).extend(transitions.into_iter().map(|transition| Pending {
                    sid: sid.clone(),
                    transition,
                }));
            }
            CallbackMode::Auto { step_ms } => {
                let mut steps: Vec<u64> = (1..=transitions.len() as u64).collect();
                if self.reorder_and_duplicate {
                    rng.shuffle(&mut steps);
                }
                let copies = if self.reorder_and_duplicate { 2 } else { 1 };
                let now = Instant::now();
                let mut timed = lock(&self.timed);
                if timed.is_empty() {
                    self.wake.notify_one();
                }
                for (transition, step) in transitions.into_iter().zip(steps) {
                    for _ in 0..copies {
                        timed.push(Timed {
                            due: now + Duration::from_millis(step.saturating_mul(step_ms)),
                            seq: self.seq.fetch_add(1, Ordering::Relaxed),
                            pending: Pending {
                                sid: sid.clone(),
                                transition,
                            },
                        });
                    }
                }
            }
        }
    }

    fn is_idle(&self) -> bool {
        lock(&self.timed).is_empty()
    }

    fn take_due(&self, now: Instant) -> Vec<Pending> {
        let mut timed = lock(&self.timed);
        let mut due = Vec::new();
        while timed.peek().is_some_and(|t| t.due <= now) {
            if let Some(t) = timed.pop() {
                due.push(t.pending);
            }
        }
        due
    }
}

/// Manual mode: applies and posts everything queued, one post after another so that arrival order
/// is the queue order (shuffled and doubled if configured). Transport failures are reported as 0.
pub(crate) async fn deliver_manual(shared: &Shared) -> Vec<u16> {
    let queue = &shared.callbacks;
    let mut batch = std::mem::take(&mut *lock(&queue.manual));
    if queue.reorder_and_duplicate {
        batch = batch.into_iter().flat_map(|p| [p.clone(), p]).collect();
        shared.rng.shuffle(&mut batch);
    }
    let mut statuses = Vec::new();
    for pending in batch {
        if let Some((url, params)) = prepare(shared, &pending) {
            statuses.push(post_signed(shared, &url, &params).await.unwrap_or(0));
        }
    }
    statuses
}

/// Auto mode: the single task that applies and posts callbacks as they fall due.
pub(crate) async fn run_scheduler(shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        if shared.callbacks.is_idle() {
            // A permit stored by `notify_one` means no wake-up is lost between check and wait.
            shared.callbacks.wake.notified().await;
        }
        tick.tick().await;
        for pending in shared.callbacks.take_due(Instant::now()) {
            let Some((url, params)) = prepare(&shared, &pending) else {
                continue;
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                // Like Twilio, a failed delivery is not the sender's problem: nothing to report.
                let _ = post_signed(&shared, &url, &params).await;
                drop(permit);
            });
        }
    }
}

/// Applies the status change to the stored message and returns what to post, if anywhere.
fn prepare(shared: &Shared, pending: &Pending) -> Option<(String, Vec<(String, String)>)> {
    shared
        .store
        .apply(&pending.sid, pending.transition, now_ms(), |record| {
            let url = record.message.status_callback.clone()?;
            Some((url, params(shared, record, pending.transition)))
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
