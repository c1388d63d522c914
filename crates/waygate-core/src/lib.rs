//! Domain rules of waygate, kept free of I/O so they can be tested exhaustively and reused by
//! every adapter: callers pass in the current time and any stored state.

mod decimal;
pub mod gcra;
pub mod money;
pub mod phone;
pub mod pricing;
pub mod status;
pub mod template;
pub mod template_submission;
pub mod time;
pub mod validation;
pub mod window;
