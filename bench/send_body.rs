//! The send body as `bench/send.lua` writes it, shared by the benchmark's reference servers
//! (`bench-bare` parses it and reads nothing; `bench-naive` uses every field).

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)] // bench-bare only parses it: parsing is the work being measured
pub struct SendBody {
    pub sender_id: i64,
    pub template_id: i64,
    pub recipient_phone: String,
    #[serde(default)]
    pub variables: HashMap<String, String>,
}
