//! Message pricing as WhatsApp charges since 1 July 2025 (PROVIDERS.md §7): per template
//! message, by category and the recipient's country, with utility templates free inside an open
//! customer-service window.

use std::collections::HashMap;

use crate::money::Money;

/// WhatsApp's conversation categories. Templates are one of the first three; freeform replies
/// inside the 24 h window are billed as `Service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Marketing,
    Utility,
    Authentication,
    Service,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Marketing => "marketing",
            Category::Utility => "utility",
            Category::Authentication => "authentication",
            Category::Service => "service",
        }
    }

    /// Exact lower-case names, as they appear in the API and the rate card.
    pub fn parse(s: &str) -> Option<Category> {
        match s {
            "marketing" => Some(Category::Marketing),
            "utility" => Some(Category::Utility),
            "authentication" => Some(Category::Authentication),
            "service" => Some(Category::Service),
            _ => None,
        }
    }

    /// A template's category: `service` is not one, since templates start conversations.
    pub fn parse_template(s: &str) -> Option<Category> {
        Category::parse(s).filter(|c| *c != Category::Service)
    }
}

/// Prices per category, with per-calling-code overrides; missing override -> the category's
/// default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateCard {
    defaults: HashMap<Category, Money>,
    by_calling_code: HashMap<u16, HashMap<Category, Money>>,
}

impl RateCard {
    /// `defaults`: category -> price; `by_calling_code`: calling code (e.g. 44) -> (category ->
    /// price).
    pub fn new(
        defaults: HashMap<Category, Money>,
        by_calling_code: HashMap<u16, HashMap<Category, Money>>,
    ) -> RateCard {
        RateCard {
            defaults,
            by_calling_code,
        }
    }

    /// The card's figure for (category, code): the override if present, else the category
    /// default, else `Money::ZERO` (an unpriced category is free rather than unsendable).
    pub fn list_price(&self, category: Category, calling_code: u16) -> Money {
        self.by_calling_code
            .get(&calling_code)
            .and_then(|prices| prices.get(&category))
            .or_else(|| self.defaults.get(&category))
            .copied()
            .unwrap_or(Money::ZERO)
    }

    /// What one send costs: a utility template sent while the recipient's window is open is
    /// free; every other send costs its list price. Freeform (`Service`) messages cost what the
    /// card says for `service`, which WhatsApp itself never charges, so a card that leaves it
    /// out keeps them free.
    pub fn price(&self, category: Category, calling_code: u16, window: WindowAtSend) -> Money {
        match (category, window) {
            (Category::Utility, WindowAtSend::Open) => Money::ZERO,
            _ => self.list_price(category, calling_code),
        }
    }
}

/// The recipient's customer-service window at the moment of a send; WhatsApp prices utility
/// templates by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowAtSend {
    Open,
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::E164;

    const ALL: [Category; 4] = [
        Category::Marketing,
        Category::Utility,
        Category::Authentication,
        Category::Service,
    ];

    fn card() -> RateCard {
        let defaults = HashMap::from([
            (Category::Marketing, Money::from_micros(25_000)),
            (Category::Utility, Money::from_micros(4_000)),
            (Category::Service, Money::from_micros(1_000)),
        ]);
        let uk = HashMap::from([(Category::Marketing, Money::from_micros(52_900))]);
        let de = HashMap::from([
            (Category::Marketing, Money::from_micros(131_000)),
            (Category::Authentication, Money::from_micros(76_800)),
        ]);
        RateCard::new(defaults, HashMap::from([(44, uk), (49, de)]))
    }

    #[test]
    fn names_round_trip() {
        for category in ALL {
            assert_eq!(Category::parse(category.as_str()), Some(category));
        }
        assert_eq!(Category::Authentication.as_str(), "authentication");
    }

    #[test]
    fn parse_is_exact_and_lower_case() {
        for text in ["Marketing", "MARKETING", " marketing", "market", ""] {
            assert_eq!(Category::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn template_categories_exclude_service() {
        assert_eq!(
            Category::parse_template("marketing"),
            Some(Category::Marketing)
        );
        assert_eq!(Category::parse_template("utility"), Some(Category::Utility));
        assert_eq!(
            Category::parse_template("authentication"),
            Some(Category::Authentication)
        );
        assert_eq!(Category::parse_template("service"), None);
        assert_eq!(Category::parse_template("Utility"), None);
    }

    #[test]
    fn country_override_wins_over_default() {
        let card = card();
        assert_eq!(
            card.list_price(Category::Marketing, 44),
            Money::from_micros(52_900)
        );
        assert_eq!(
            card.list_price(Category::Marketing, 49),
            Money::from_micros(131_000)
        );
    }

    #[test]
    fn missing_override_falls_back_to_category_default() {
        let card = card();
        assert_eq!(
            card.list_price(Category::Utility, 44),
            Money::from_micros(4_000)
        );
        assert_eq!(
            card.list_price(Category::Marketing, 1),
            Money::from_micros(25_000)
        );
        assert_eq!(
            card.list_price(Category::Service, 49),
            Money::from_micros(1_000)
        );
    }

    #[test]
    fn override_without_default_applies_only_to_its_country() {
        let card = card();
        assert_eq!(
            card.list_price(Category::Authentication, 49),
            Money::from_micros(76_800)
        );
        assert_eq!(card.list_price(Category::Authentication, 44), Money::ZERO);
    }

    #[test]
    fn empty_card_prices_everything_at_zero() {
        let card = RateCard::default();
        for category in ALL {
            assert_eq!(card.list_price(category, 1), Money::ZERO);
        }
    }

    #[test]
    fn prices_by_the_recipients_calling_code() {
        let card = card();
        let uk = E164::parse("+44 7911 123456").unwrap();
        let us = E164::parse("+1 415 555 1234").unwrap();
        assert_eq!(
            card.list_price(Category::Marketing, uk.calling_code()),
            Money::from_micros(52_900)
        );
        assert_eq!(
            card.list_price(Category::Marketing, us.calling_code()),
            Money::from_micros(25_000)
        );
    }

    // --- what a send costs (WhatsApp since 1 July 2025) ---

    use WindowAtSend::{Closed, Open};

    #[test]
    fn utility_template_inside_an_open_window_is_free() {
        let card = card();
        assert_eq!(card.price(Category::Utility, 1, Open), Money::ZERO);
        let uk = HashMap::from([(Category::Utility, Money::from_micros(22_000))]);
        let card = RateCard::new(HashMap::new(), HashMap::from([(44, uk)]));
        assert_eq!(card.price(Category::Utility, 44, Open), Money::ZERO);
    }

    #[test]
    fn utility_template_outside_the_window_pays_its_list_price() {
        let card = card();
        assert_eq!(
            card.price(Category::Utility, 44, Closed),
            Money::from_micros(4_000)
        );
    }

    #[test]
    fn marketing_and_authentication_templates_pay_whatever_the_window() {
        let card = card();
        for window in [Open, Closed] {
            assert_eq!(
                card.price(Category::Marketing, 44, window),
                Money::from_micros(52_900),
                "{window:?}"
            );
            assert_eq!(
                card.price(Category::Authentication, 49, window),
                Money::from_micros(76_800),
                "{window:?}"
            );
        }
    }

    #[test]
    fn freeform_is_free_unless_the_card_prices_service() {
        let defaults = HashMap::from([
            (Category::Marketing, Money::from_micros(25_000)),
            (Category::Utility, Money::from_micros(4_000)),
        ]);
        let whatsapp = RateCard::new(defaults, HashMap::new());
        assert_eq!(whatsapp.price(Category::Service, 44, Open), Money::ZERO);
        // An operator's own fee on freeform messages is charged as configured.
        assert_eq!(
            card().price(Category::Service, 49, Open),
            Money::from_micros(1_000)
        );
    }
}
