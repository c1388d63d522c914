//! What a fake instance is told up front: credentials, known templates and scripted outcomes.

use crate::rates::FaultRates;

/// Short, so tests that wait for a decision stay quick; Meta's real review takes minutes to a day.
pub const DEFAULT_APPROVAL_DELAY_MS: u64 = 200;

/// A scripted asynchronous failure: the create call succeeds, the message later fails (§1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncFailure {
    pub code: i64,
    /// `"failed"` or `"undelivered"`.
    pub status: &'static str,
    /// Sent as `ErrorMessage` and stored as the resource's `error_message`.
    pub message: &'static str,
}

/// When status callbacks are posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackMode {
    /// Callbacks queue up until the test calls `deliver_callbacks` (deterministic tests).
    Manual,
    /// Callbacks are posted by a background task, one status every `step_ms` after creation.
    Auto { step_ms: u64 },
    /// Nothing is queued or posted and messages stay `queued`: lets a long benchmark run without
    /// the fake accumulating work it will never do.
    Off,
}

/// Configuration of one fake Twilio account.
#[derive(Clone, Debug)]
pub struct Config {
    /// `"AC"` + 32 hex.
    pub account_sid: String,
    /// Signs callbacks; Basic auth password with the account SID.
    pub auth_token: String,
    /// Optional `("SK…", secret)` also accepted as Basic auth.
    pub api_key: Option<(String, String)>,
    /// Content SIDs that exist besides those created through the Content API; None = any `HX` +
    /// 32 hex is accepted.
    pub content_sids: Option<Vec<String>>,
    pub callbacks: CallbackMode,
    /// Recipient-number suffix -> asynchronous failure: the message goes queued -> failed/undelivered
    /// with this code. The first matching suffix wins.
    pub async_failures: Vec<(String, AsyncFailure)>,
    /// Post every status callback twice, each copy held back so they arrive shuffled (Twilio
    /// may do both); statuses still move in order. Same as callback rates duplicate = reorder = 1.
    pub reorder_and_duplicate: bool,
    /// Random faults from the start (see `FakeTwilio::set_fault_rates` to change them later).
    pub fault_rates: FaultRates,
    /// How long WhatsApp takes to decide on a submitted template: `received` for the first half,
    /// `pending` for the second, then the decision.
    pub approval_delay_ms: u64,
    /// Seeds SIDs and every random draw, so a run can be replayed; None = a fresh seed from the
    /// OS, readable afterwards with `FakeTwilio::seed`.
    pub seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_sid: "ACf4cef4cef4cef4cef4cef4cef4cef4ce".to_string(),
            auth_token: "test-auth-token".to_string(),
            api_key: None,
            content_sids: None,
            callbacks: CallbackMode::Manual,
            async_failures: vec![
                (
                    "6316".to_string(),
                    AsyncFailure {
                        code: 63016,
                        status: "failed",
                        message: "Failed to send freeform message because you are outside the \
                                  allowed window. If you are using WhatsApp, please use a Message \
                                  Template.",
                    },
                ),
                (
                    "6318".to_string(),
                    AsyncFailure {
                        code: 63018,
                        status: "failed",
                        message: "Rate limit exceeded for Channel",
                    },
                ),
                (
                    "0000".to_string(),
                    AsyncFailure {
                        code: 30003,
                        status: "undelivered",
                        message: "Unreachable destination handset",
                    },
                ),
            ],
            reorder_and_duplicate: false,
            fault_rates: FaultRates::default(),
            approval_delay_ms: DEFAULT_APPROVAL_DELAY_MS,
            seed: None,
        }
    }
}

impl Config {
    /// The scripted failure for a recipient (`whatsapp:+digits`), if its number has a listed suffix.
    pub(crate) fn async_failure_for(&self, to: &str) -> Option<AsyncFailure> {
        self.async_failures
            .iter()
            .find(|(suffix, _)| to.ends_with(suffix.as_str()))
            .map(|(_, failure)| *failure)
    }
}
