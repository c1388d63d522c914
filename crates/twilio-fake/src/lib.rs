//! `twilio-fake`: a loopback stand-in for Twilio's WhatsApp Messages API and its webhooks
//! (PROVIDERS.md §1–§3), its Content API with WhatsApp approval (§4) and its Senders API v2 (§5),
//! all on one listener, used in-process by waygate's integration tests and as a standalone binary
//! by the load benchmark. It shares no code with waygate so that it can catch waygate's bugs.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use twilio_fake::{Config, FakeTwilio, Fault};
//!
//! let fake = FakeTwilio::start(Config::default()).await?;
//! // Point the client's Twilio API base at `fake.base_url()`, with `fake.account_sid()` and
//! // `fake.auth_token()` as credentials, then script the next create calls:
//! fake.inject([Fault::TooManyRequests { retry_after_secs: 1 }, Fault::CreatedThenServerError]);
//! // ... exercise the client ...
//! let statuses = fake.deliver_callbacks().await; // Manual mode: sent, delivered, read per message
//! assert!(statuses.iter().all(|s| *s == 200 || *s == 204));
//! assert_eq!(fake.messages().len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! Templates created with `POST /v1/Content` are valid `ContentSid`s until deleted; a submitted
//! one reads `received`, then `pending`, then after `Config::approval_delay_ms` its decision
//! (`approved`; `rejected` with `INVALID_FORMAT` for names starting `reject_`; or whatever
//! `set_template_decision` says). Senders are registered through the API or `set_sender`.
//!
//! Besides scripted faults, `FaultRates` (in `Config` or via `set_fault_rates`) makes a fraction
//! of create, list and fetch requests fail and of status callbacks get lost, doubled or
//! overtaken, drawn from a seeded generator (`Config::seed`, `FakeTwilio::seed`) for replays.
//!
//! The binary (`twilio-fake --listen … --step-ms … --approval-delay-ms …`, `--help` for the fault
//! flags) serves the same APIs with Auto-mode callbacks and adds `GET /_fake/stats` (`{"create_requests","messages",
//! "callbacks_delivered","callbacks_failed","callbacks_dropped"}`) for out-of-process counting.

mod api;
mod auth;
mod callbacks;
mod config;
mod conn;
mod content;
mod content_api;
mod content_request;
mod dates;
mod errors;
mod faults;
mod gate;
mod inbound;
mod json_body;
mod paging;
mod random;
mod rates;
mod resource;
mod senders;
mod senders_api;
mod server;
mod signature;
mod state;
mod validate;
mod webhook;

pub use callbacks::CallbackStats;
pub use config::{AsyncFailure, CallbackMode, Config, DEFAULT_APPROVAL_DELAY_MS};
pub use content::{Approval, Content, Decision};
pub use faults::{Fault, ReadEndpoint, ReadFault};
pub use inbound::Inbound;
pub use rates::{CallbackFaultRates, CreateFaultRates, FaultRates, ReadFaultRates};
pub use senders::{OfflineReason, SenderState};
pub use server::FakeTwilio;
pub use signature::signature;
pub use state::Message;
