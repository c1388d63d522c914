pub mod admin;
pub mod history;
pub mod jobs;
pub mod ops;
pub mod send;
pub mod tenant;
pub mod twilio;
pub mod webhooks;
