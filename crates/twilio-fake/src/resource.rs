//! The 2010 API's Message resource JSON (§1.3): snake_case, RFC 2822 dates, numeric strings.

use serde::Serialize;

use crate::dates::rfc2822;
use crate::state::Record;

#[derive(Serialize)]
struct SubresourceUris {
    media: String,
}

/// One Message resource, borrowing from the stored record.
#[derive(Serialize)]
pub(crate) struct Resource<'a> {
    sid: &'a str,
    account_sid: &'a str,
    messaging_service_sid: Option<&'a str>,
    from: &'a str,
    to: &'a str,
    body: Option<&'a str>,
    status: &'a str,
    direction: &'static str,
    num_segments: &'static str,
    num_media: String,
    price: Option<&'static str>,
    price_unit: Option<&'static str>,
    error_code: Option<i64>,
    error_message: Option<&'static str>,
    date_created: String,
    date_sent: Option<String>,
    date_updated: String,
    api_version: &'static str,
    uri: String,
    subresource_uris: SubresourceUris,
}

impl<'a> Resource<'a> {
    pub(crate) fn new(record: &'a Record, account_sid: &'a str) -> Self {
        let m = &record.message;
        let base = format!("/2010-04-01/Accounts/{account_sid}/Messages/{}", m.sid);
        Resource {
            sid: &m.sid,
            account_sid,
            messaging_service_sid: record.messaging_service_sid.as_deref(),
            from: &m.from,
            to: &m.to,
            body: m.body.as_deref(),
            status: &m.status,
            direction: "outbound-api",
            num_segments: "1",
            num_media: record.num_media.to_string(),
            price: None,
            price_unit: None,
            error_code: m.error_code,
            error_message: record.error_message,
            date_created: rfc2822(m.date_created_ms),
            date_sent: record.date_sent_ms.map(rfc2822),
            date_updated: rfc2822(record.date_updated_ms),
            api_version: "2010-04-01",
            subresource_uris: SubresourceUris {
                media: format!("{base}/Media.json"),
            },
            uri: format!("{base}.json"),
        }
    }
}
