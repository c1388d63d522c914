//! What every backend stores and announces the same way for senders, templates and webhook
//! subscriptions, whatever its SQL.

use crate::model::{NewTemplate, Sender};

/// A list kept as one JSON text column. Lists of strings and buttons always encode; the
/// empty list stands in should one ever not, so that the row still reads back.
pub fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// A new template's list columns as stored: variables, samples and buttons.
pub struct TemplateLists {
    pub variables: String,
    pub samples: String,
    pub buttons: String,
}

impl From<&NewTemplate> for TemplateLists {
    fn from(t: &NewTemplate) -> Self {
        TemplateLists {
            variables: json_list(&t.variables),
            samples: json_list(&t.samples),
            buttons: json_list(&t.buttons),
        }
    }
}

/// Whether a sender's change is one its `sender.status` event announces: its status,
/// quality rating or messaging limit (a new display name is not).
pub fn sender_change_announced(before: &Sender, after: &Sender) -> bool {
    (after.status, after.quality_rating, after.messaging_limit)
        != (before.status, before.quality_rating, before.messaging_limit)
}
