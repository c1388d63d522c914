//! End-to-end tests: the real server on loopback, driven over HTTP.

mod helpers;
#[path = "../support/postgres.rs"]
mod postgres;
#[path = "../support/redis.rs"]
mod redis_server;

mod admin;
mod bad_input;
mod errors;
mod faults;
mod isolation;
mod ledger;
mod logs;
mod meta;
mod ops;
mod pricing;
mod reconcile;
mod redis_limit;
mod send;
mod templates;
mod twilio;
mod twilio_catalog;
mod webhooks;
mod window;
