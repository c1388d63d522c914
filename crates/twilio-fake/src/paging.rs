//! Paging of the Content and Senders lists (§4, §5): `PageSize` (1..=1000, default 50) and `Page`
//! pick a slice, and `meta` holds the absolute links a client follows to the next one.

use serde_json::{json, Value};

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// One page request, with the other query parameters (e.g. `Channel`) kept for the links.
pub(crate) struct Paging {
    page: usize,
    page_size: usize,
    others: Vec<(String, String)>,
}

impl Paging {
    /// Out-of-range or unreadable values fall back rather than fail, as for the Messages list;
    /// `PageToken` is not needed since `Page` alone locates a page here.
    pub(crate) fn from_query(query: Option<&str>) -> Paging {
        let mut paging = Paging {
            page: 0,
            page_size: DEFAULT_PAGE_SIZE,
            others: Vec::new(),
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "PageSize" => {
                    paging.page_size = value
                        .parse::<usize>()
                        .map_or(DEFAULT_PAGE_SIZE, |n| n.clamp(1, MAX_PAGE_SIZE))
                }
                "Page" => paging.page = value.parse().unwrap_or(0),
                "PageToken" => {}
                _ => paging.others.push((name.into_owned(), value.into_owned())),
            }
        }
        paging
    }

    /// This page's items of `all`, and the `meta` object naming the list's `key`.
    pub(crate) fn page<T>(&self, all: Vec<T>, url: &str, key: &str) -> (Vec<T>, Value) {
        let total = all.len();
        let start = self.page.saturating_mul(self.page_size).min(total);
        let end = start.saturating_add(self.page_size).min(total);
        let items: Vec<T> = all.into_iter().skip(start).take(end - start).collect();
        let link = |page: usize| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.extend_pairs(&self.others);
            query.append_pair("PageSize", &self.page_size.to_string());
            query.append_pair("Page", &page.to_string());
            format!("{url}?{}", query.finish())
        };
        let meta = json!({
            "page": self.page,
            "page_size": self.page_size,
            "first_page_url": link(0),
            "previous_page_url": (self.page > 0).then(|| link(self.page - 1)),
            "next_page_url": (end < total).then(|| link(self.page + 1)),
            "url": link(self.page),
            "key": key,
        });
        (items, meta)
    }
}
