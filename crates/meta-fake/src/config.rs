//! What a fake instance is told up front: credentials, its business account and phone numbers,
//! where webhooks go and when, and scripted outcomes.

use crate::rates::FaultRates;

/// When webhooks are posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookMode {
    /// Webhooks queue up until the test calls `deliver_webhooks` (deterministic tests).
    Manual,
    /// A background task posts them: a message's statuses one every `step_ms` after the send,
    /// other events as soon as they happen.
    Auto { step_ms: u64 },
    /// Nothing is queued or posted and messages stay as accepted (long benchmarks).
    Off,
}

/// One WhatsApp business phone number of the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber {
    /// The Graph id the client sends from (`/{id}/messages`).
    pub id: String,
    /// Digits, as webhooks' `metadata.display_phone_number` carries them.
    pub display_phone_number: String,
}

/// Configuration of one fake WhatsApp Business Account.
#[derive(Clone, Debug)]
pub struct Config {
    /// The only bearer token accepted; anything else is 401/190.
    pub access_token: String,
    /// Signs every webhook (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// The WhatsApp Business Account id (`/{waba_id}/message_templates`, webhook `entry[].id`).
    pub waba_id: String,
    /// At least one; sends from any other id are refused as unknown objects.
    pub phone_numbers: Vec<PhoneNumber>,
    /// The client's `/webhooks/meta`; None = statuses still move on, nothing is posted.
    pub webhook_url: Option<String>,
    pub webhooks: WebhookMode,
    /// Statuses and other changes carried by one webhook POST at most (≥ 1) when several are
    /// due together.
    pub max_items_per_post: usize,
    /// How many times a refused or unanswered webhook POST is posted again, as Meta retries
    /// failed deliveries; 0 = never (the POST is lost).
    pub webhook_retries: u32,
    /// How long a new template stays `PENDING` before it is approved (or rejected, for names
    /// starting with `reject_`).
    pub template_review_ms: u64,
    /// Template sends must name an approved template of this account (else 132001 and kin);
    /// false accepts any template name, for clients that never create templates here.
    pub known_templates_only: bool,
    /// Recipient suffix -> error code: the send is accepted, then its one status is `failed`
    /// with this code. The first matching suffix wins.
    pub async_failures: Vec<(String, i64)>,
    /// Random faults from the start (see `FakeMeta::set_fault_rates` to change them later).
    pub fault_rates: FaultRates,
    /// Seeds ids and every random draw, so a run can be replayed; None = a fresh seed, readable
    /// afterwards with `FakeMeta::seed`.
    pub seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access_token: "test-access-token".to_string(),
            app_secret: "test-app-secret".to_string(),
            waba_id: "102290129340398".to_string(),
            phone_numbers: vec![PhoneNumber {
                id: "106540352242922".to_string(),
                display_phone_number: "15550783881".to_string(),
            }],
            webhook_url: None,
            webhooks: WebhookMode::Manual,
            max_items_per_post: 10,
            webhook_retries: 0,
            template_review_ms: 100,
            known_templates_only: true,
            async_failures: vec![
                ("1047".to_string(), 131_047),
                ("1026".to_string(), 131_026),
                ("1049".to_string(), 131_049),
            ],
            fault_rates: FaultRates::default(),
            seed: None,
        }
    }
}

impl Config {
    /// Refuses settings the fake cannot honour.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.phone_numbers.is_empty(),
            "at least one phone number is needed"
        );
        anyhow::ensure!(
            self.max_items_per_post >= 1,
            "max_items_per_post must be at least 1"
        );
        self.fault_rates.check()
    }

    /// The scripted failure code for a recipient (digits), if its number has a listed suffix.
    pub(crate) fn async_failure_for(&self, to: &str) -> Option<i64> {
        self.async_failures
            .iter()
            .find(|(suffix, _)| to.ends_with(suffix.as_str()))
            .map(|(_, code)| *code)
    }

    pub(crate) fn phone_number(&self, id: &str) -> Option<&PhoneNumber> {
        self.phone_numbers.iter().find(|p| p.id == id)
    }
}
