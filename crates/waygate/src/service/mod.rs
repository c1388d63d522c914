//! Use cases: each runs the contract's checks in order, calling the domain rules, the store
//! and the providers. No HTTP here.

pub mod admin;
pub mod error;
pub mod provider_webhooks;
pub mod send;

use std::sync::Arc;

use waygate_core::pricing::RateCard;

pub use error::ServiceError;

use crate::clock::Clock;
use crate::config::Config;
use crate::jobs::Worker;
use crate::store::Store;

/// Everything a request needs, built once at start.
pub struct Services {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub worker: Arc<Worker>,
    pub rate_card: RateCard,
}
