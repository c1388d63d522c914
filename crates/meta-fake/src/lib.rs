//! `meta-fake`: a loopback stand-in for Meta's WhatsApp Cloud API (PROVIDERS.md §6, API.md §11–12)
//! — sends, templates, phone numbers and signed webhooks — used in-process by integration tests
//! and as a standalone binary by benchmarks. It shares no code with waygate so that it can catch
//! waygate's bugs.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use meta_fake::{Config, FakeMeta, Fault};
//!
//! let fake = FakeMeta::start(Config {
//!     webhook_url: Some("http://127.0.0.1:8080/webhooks/meta".to_string()),
//!     ..Config::default()
//! })
//! .await?;
//! // Point the client's Graph API base at `fake.base_url()` with `fake.access_token()`,
//! // `fake.app_secret()` and `fake.phone_number_id()`, then script the next sends:
//! fake.inject([Fault::Error { code: 130429 }, Fault::AcceptedThenServerError]);
//! // ... exercise the client ...
//! let posts = fake.deliver_webhooks().await; // Manual mode: sent, delivered, read, batched
//! assert!(posts.iter().all(|s| *s == 200));
//! # Ok(())
//! # }
//! ```
//!
//! Besides scripted faults, `FaultRates` (in `Config` or via `set_fault_rates`) makes a fraction
//! of sends and reads fail and of webhook items get lost, doubled or overtaken, drawn from a
//! seeded generator (`Config::seed`, `FakeMeta::seed`) for replays; `Config::webhook_retries`
//! posts refused webhooks again, as Meta does.
//!
//! The binary (`meta-fake --listen … --webhook-url … --app-secret … --step-ms …`, `--help` for
//! the fault flags) serves the same API with Auto-mode webhooks and adds `GET /_fake/stats`
//! (`{"send_requests","messages","webhooks_delivered","webhooks_failed","webhooks_dropped",
//! "webhook_items_delivered"}`).

mod api;
mod config;
mod conn;
mod errors;
mod faults;
mod inbound;
mod messages;
mod payload;
mod phone;
mod random;
mod rates;
mod send;
mod server;
mod signature;
mod templates;
mod webhooks;

pub use config::{Config, PhoneNumber, WebhookMode};
pub use faults::{Fault, ReadEndpoint, ReadFault};
pub use inbound::{Inbound, InboundContent, MediaKind};
pub use messages::Message;
pub use phone::PhoneNumberState;
pub use rates::{FaultRates, ReadFaultRates, SendFaultRates, WebhookFaultRates};
pub use send::TemplateSend;
pub use server::FakeMeta;
pub use signature::signature;
pub use templates::{Template, TemplateStatus};
pub use webhooks::WebhookStats;
