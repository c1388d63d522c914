//! Query strings, decoded the way form clients encode them (`+` is a space).

pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A phone number from a query string: an unencoded leading `+` arrives as a space.
pub fn restore_plus(raw: &str) -> String {
    match raw.strip_prefix(' ') {
        Some(rest) if !rest.starts_with('+') => format!("+{}", rest.trim_start()),
        _ => raw.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_survives_form_decoding() {
        let q = Query::parse(Some("recipient_phone=+14155551234&a=%2B1"));
        assert_eq!(q.get("recipient_phone"), Some(" 14155551234"));
        assert_eq!(
            restore_plus(q.get("recipient_phone").unwrap()),
            "+14155551234"
        );
        assert_eq!(restore_plus(q.get("a").unwrap()), "+1");
        assert_eq!(q.get("missing"), None);
    }
}
