//! The send and status paths' rules that need no database, so that every backend decides
//! alike: the window and what a send costs, how a status history is stored, which status
//! steps a provider's promise becomes, what an earlier request with the same idempotency
//! key answers, and what a send job's claim reads of it.

use waygate_core::money::Money;
use waygate_core::status::MessageStatus;
use waygate_core::time::from_millis;
use waygate_core::window::{expires_at, Session};

use super::{NewSend, Replay, ScheduledStatus, SendRefused, StatusSteps};
use crate::model::{Conversation, Direction, Message, StatusStep};

pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Whether the conversation's 24 h window is open at `now`.
pub fn window_open(conversation: &Conversation, template_opens: bool, now: i64) -> bool {
    let expiry = expires_at(
        conversation.last_customer_message_at.map(from_millis),
        conversation.last_template_at.map(from_millis),
        template_opens,
    );
    Session::of(expiry, from_millis(now)).is_open()
}

/// What the window decides for a send, before the store checks its messaging limit and
/// balance (in the contract's order).
#[derive(Debug, Clone, Copy)]
pub struct SendTerms {
    /// The window is open for this send (a template that opens one counts).
    pub open: bool,
    /// The messaging limit to check: a template that starts a business-initiated
    /// conversation (which then counts towards it).
    pub limit: Option<i64>,
    /// What the send costs: WhatsApp does not charge inside the customer-service window.
    pub price: Money,
}

impl SendTerms {
    /// A freeform send needs an open window; it carries the conversation if there is one.
    pub fn of(existing: Option<&Conversation>, s: &NewSend) -> Result<SendTerms, SendRefused> {
        let open = existing.is_some_and(|conv| window_open(conv, s.template_opens, s.now));
        let limit = match &s.template {
            None if !open => return Err(SendRefused::SessionExpired(existing.cloned())),
            Some(t) if !open => t.messaging_limit,
            _ => None,
        };
        let in_service_window = existing.is_some_and(|conv| window_open(conv, false, s.now));
        let price = match in_service_window {
            true => s.price.window_open,
            false => s.price.window_closed,
        };
        Ok(SendTerms { open, limit, price })
    }

    /// The balance move that pays for the send.
    pub fn charge(&self) -> Result<Money, SendRefused> {
        Money::ZERO
            .checked_sub(self.price)
            .ok_or(SendRefused::InsufficientBalance)
    }
}

/// Whether a sender that began conversations with `initiated` recipients in the last 24 h
/// (`already` among them this one) may begin one more under `limit`.
pub fn within_messaging_limit(initiated: i64, already: bool, limit: i64) -> bool {
    already || initiated < limit
}

/// A send recorded as accepted by an in-process provider, as its `message.status` event
/// shows it (built only for a subscriber, without reading it back).
pub fn accepted_message(
    s: &NewSend,
    message_id: i64,
    conversation_id: i64,
    price: Money,
    sid: Option<String>,
    steps: &[(MessageStatus, i64)],
) -> Message {
    let status = steps
        .last()
        .map_or(MessageStatus::Pending, |&(status, _)| status);
    Message {
        id: message_id,
        conversation_id,
        user_id: s.user_id,
        direction: Direction::Outbound,
        sender_id: s.sender_id,
        recipient_phone: s.recipient.clone(),
        template_id: s.template.as_ref().map(|t| t.template_id),
        body: s.body.clone(),
        status: status.as_str().into(),
        message_sid: sid,
        error_code: None,
        error_message: None,
        price,
        created_at: s.now,
        status_history: steps
            .iter()
            .map(|&(status, at)| StatusStep {
                status: status.as_str().into(),
                at,
            })
            .collect(),
        media: Vec::new(),
        button_payload: None,
        reply_to_sid: None,
        status_unknown: None,
    }
}

pub fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// One step of a status history as stored: a `StatusStep`'s JSON, written directly since
/// status names need no escaping (serde_json's generic path cost the embedded writer ~750
/// instructions a send; a test pins the text to serde_json's).
pub fn step_text(status: MessageStatus, at: i64) -> String {
    format!(r#"{{"status":"{}","at":{at}}}"#, status.as_str())
}

/// A status history as stored: the steps' JSON objects joined by commas, without the array's
/// brackets, so that a step is appended by concatenation (the row mappers add them back).
pub fn history_text(steps: &[(MessageStatus, i64)]) -> String {
    let steps: Vec<String> = steps
        .iter()
        .map(|&(status, at)| step_text(status, at))
        .collect();
    steps.join(",")
}

/// A status a provider reported, with its error when it is a failure.
pub struct Change<'a> {
    pub status: MessageStatus,
    pub error_code: Option<i64>,
    pub error_message: Option<&'a str>,
    pub at: i64,
}

impl Change<'_> {
    pub fn to(status: MessageStatus, at: i64) -> Self {
        Change {
            status,
            error_code: None,
            error_message: None,
            at,
        }
    }

    /// The statuses this one may follow (the forward-only guard of every backend's update).
    pub fn predecessors(&self) -> impl Iterator<Item = &'static str> {
        self.status.predecessors().map(MessageStatus::as_str)
    }
}

/// Status steps a provider promised for one message accepted at `now`.
pub struct Promise {
    pub message_id: i64,
    pub steps: Vec<ScheduledStatus>,
    pub now: i64,
}

/// Messages one status job holds at most. A job's step is applied in one operation whatever
/// the runner's batch, so this bounds how long a step holds the embedded writer (and the
/// sends queued behind it): jobs of all the sends of 100 ms (~600 at 6k/s) took 1.5-3 ms each.
pub const JOB_MESSAGES: usize = 64;

/// A status job to write: its steps, and when it was created.
pub struct StatusJob {
    pub steps: StatusSteps,
    pub created: i64,
}

impl StatusJob {
    /// When its first step falls due.
    pub fn run_at(&self) -> i64 {
        self.steps.steps[0].at
    }
}

/// The jobs that carry `promised` steps: one per sequence of statuses and up to
/// `JOB_MESSAGES` messages, so that each step is applied to all its messages at once (empty
/// promises make none). A job's step falls due once it is due for each of its messages
/// (their times differ by the few milliseconds a transaction spans), so no status is ever
/// applied early.
pub fn status_jobs(promised: Vec<Promise>) -> Vec<StatusJob> {
    let mut jobs: Vec<StatusJob> = Vec::new();
    for p in promised.into_iter().filter(|p| !p.steps.is_empty()) {
        match jobs.iter_mut().find(|job| {
            job.steps.message_ids.len() < JOB_MESSAGES && same_statuses(&job.steps.steps, &p.steps)
        }) {
            Some(job) => {
                job.steps.message_ids.push(p.message_id);
                for (ours, theirs) in job.steps.steps.iter_mut().zip(&p.steps) {
                    ours.at = ours.at.max(theirs.at);
                }
                job.created = job.created.min(p.now);
            }
            None => jobs.push(StatusJob {
                steps: StatusSteps {
                    message_ids: vec![p.message_id],
                    steps: p.steps,
                },
                created: p.now,
            }),
        }
    }
    jobs
}

/// The same statuses and errors in the same order (times aside).
fn same_statuses(a: &[ScheduledStatus], b: &[ScheduledStatus]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.status == y.status
                && x.error_code == y.error_code
                && x.error_message == y.error_message
        })
}

/// What a status job does with its step number `step` (the count of those applied).
pub enum StepPlan<'a> {
    /// No such step: the job is done.
    Done,
    Apply {
        /// `None` for a status this version does not know (skipped, with a warning).
        change: Option<Change<'a>>,
        /// When the step after it is due; `None` when it was the last.
        next_at: Option<i64>,
    },
}

impl StatusSteps {
    pub fn plan(&self, step: usize) -> StepPlan<'_> {
        let Some(next) = self.steps.get(step) else {
            return StepPlan::Done;
        };
        let change = match MessageStatus::parse(&next.status) {
            Some(status) => Some(Change {
                error_code: next.error_code,
                error_message: next.error_message.as_deref(),
                ..Change::to(status, next.at)
            }),
            None => {
                tracing::warn!(status = %next.status, "skipping an unknown scheduled status");
                None
            }
        };
        StepPlan::Apply {
            change,
            next_at: self.steps.get(step + 1).map(|after| after.at),
        }
    }
}

/// What an idempotency key stored within the last 24 h says of a request that repeats it.
pub enum Earlier {
    Answered(Replay),
    /// The first request has not saved its answer: its message, to read as it stands.
    InFlight(i64),
}

/// A different body under the same key is a conflict; a saved answer is replayed.
pub fn earlier_request(
    stored_hash: &[u8],
    request_hash: &[u8],
    message_id: i64,
    status: Option<u16>,
    body: Option<String>,
) -> Result<Earlier, SendRefused> {
    if stored_hash != request_hash {
        return Err(SendRefused::IdempotencyKeyReused);
    }
    Ok(match (status, body) {
        (Some(status), Some(body)) => Earlier::Answered(Replay::Response { status, body }),
        _ => Earlier::InFlight(message_id),
    })
}

/// A claimed job's `last_error` when its earlier attempt never settled.
pub const INTERRUPTED: &str =
    "the earlier attempt was interrupted (process stopped or lease ran out)";

/// The message a job's payload names (a send job's), if it is readable and names one.
pub fn payload_message_id(payload: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|p| p["message_id"].as_i64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_step_reads_as_serde_json_writes_a_status_step() {
        for status in MessageStatus::ALL {
            let at = 1_764_000_000_123;
            let step = StatusStep {
                status: status.as_str().into(),
                at,
            };
            assert_eq!(step_text(status, at), serde_json::to_string(&step).unwrap());
        }
        assert_eq!(
            history_text(&[(MessageStatus::Pending, 1), (MessageStatus::Sent, -2)]),
            r#"{"status":"pending","at":1},{"status":"sent","at":-2}"#
        );
    }

    fn scheduled(at: i64, status: &str, error_code: Option<i64>) -> ScheduledStatus {
        ScheduledStatus {
            at,
            status: status.into(),
            error_code,
            error_message: error_code.map(|_| "Unreachable destination handset".into()),
        }
    }

    fn promise(message_id: i64, steps: Vec<ScheduledStatus>, now: i64) -> Promise {
        Promise {
            message_id,
            steps,
            now,
        }
    }

    #[test]
    fn promises_become_one_job_per_schedule() {
        let ok = |t: i64| {
            vec![
                scheduled(t + 1000, "sent", None),
                scheduled(t + 2000, "delivered", None),
            ]
        };
        let jobs = status_jobs(vec![
            promise(1, ok(100), 100),
            promise(2, vec![scheduled(1103, "undelivered", Some(30003))], 103),
            promise(3, ok(105), 105),
            promise(4, Vec::new(), 106),
        ]);
        assert_eq!(jobs.len(), 2, "one job per sequence of statuses");
        assert_eq!(jobs[0].steps.message_ids, [1, 3]);
        // Each step is due once it is due for every message of the job.
        assert_eq!(jobs[0].run_at(), 1105);
        assert_eq!(jobs[0].created, 100);
        let times: Vec<i64> = jobs[0].steps.steps.iter().map(|s| s.at).collect();
        assert_eq!(times, [1105, 2105]);
        assert_eq!(jobs[1].steps.message_ids, [2]);
        assert_eq!(jobs[1].steps.steps[0].error_code, Some(30003));

        // More messages than a job holds: jobs of at most JOB_MESSAGES, in order.
        let many = JOB_MESSAGES as i64 * 2 + 1;
        let jobs = status_jobs((10..10 + many).map(|id| promise(id, ok(id), id)).collect());
        let sizes: Vec<usize> = jobs.iter().map(|j| j.steps.message_ids.len()).collect();
        assert_eq!(sizes, [JOB_MESSAGES, JOB_MESSAGES, 1]);
        let ids: Vec<i64> = jobs
            .iter()
            .flat_map(|j| j.steps.message_ids.clone())
            .collect();
        assert_eq!(ids, (10..10 + many).collect::<Vec<_>>());
        // Each job is due when its own last message's step is.
        assert_eq!(jobs[0].run_at(), 10 + JOB_MESSAGES as i64 - 1 + 1000);
    }

    #[test]
    fn a_job_plans_its_steps_in_order_and_skips_an_unknown_status() {
        let job = StatusSteps {
            message_ids: vec![1],
            steps: vec![
                scheduled(10, "sent", None),
                scheduled(20, "teleported", None),
                scheduled(30, "undelivered", Some(30003)),
            ],
        };
        match job.plan(0) {
            StepPlan::Apply {
                change: Some(change),
                next_at: Some(20),
            } => assert_eq!(change.status, MessageStatus::Sent),
            _ => panic!("the first step applies sent"),
        }
        assert!(matches!(
            job.plan(1),
            StepPlan::Apply {
                change: None,
                next_at: Some(30)
            }
        ));
        match job.plan(2) {
            StepPlan::Apply {
                change: Some(change),
                next_at: None,
            } => {
                assert_eq!(change.error_code, Some(30003));
                assert!(change.status.is_failure());
            }
            _ => panic!("the last step applies undelivered"),
        }
        assert!(matches!(job.plan(3), StepPlan::Done));
    }

    #[test]
    fn a_repeated_key_replays_its_answer_or_message_and_refuses_another_body() {
        assert!(matches!(
            earlier_request(&[1], &[2], 7, None, None),
            Err(SendRefused::IdempotencyKeyReused)
        ));
        assert!(matches!(
            earlier_request(&[1], &[1], 7, None, None),
            Ok(Earlier::InFlight(7))
        ));
        assert!(matches!(
            earlier_request(&[1], &[1], 7, Some(202), Some("{}".into())),
            Ok(Earlier::Answered(Replay::Response { status: 202, .. }))
        ));
    }

    #[test]
    fn the_messaging_limit_counts_new_recipients_only() {
        assert!(within_messaging_limit(1, false, 2));
        assert!(!within_messaging_limit(2, false, 2));
        assert!(within_messaging_limit(2, true, 2));
    }
}
