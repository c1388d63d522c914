//! A template as a tenant submits it for WhatsApp's approval (API.md §11), parsed once at the
//! edge: every field is checked against WhatsApp's rules and every problem is reported at once,
//! under its field's name, so a tenant fixes a submission in one round trip rather than one
//! rejection per field.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::phone::E164;
use crate::pricing::Category;
use crate::template::{parameter_text, variable_names, TemplateBody};
use crate::validation::FieldErrors;

/// WhatsApp's limit for a template name.
const NAME_MAX_CHARS: usize = 512;
/// WhatsApp's limit for a text header and for a footer.
const HEADER_FOOTER_MAX_CHARS: usize = 60;
/// WhatsApp's limit for the buttons of one template.
const MAX_BUTTONS: usize = 10;
/// WhatsApp's limit for a button's label.
const BUTTON_TEXT_MAX_CHARS: usize = 25;

/// The language codes WhatsApp accepts for a template (Meta's "Supported languages" list),
/// written exactly as WhatsApp spells them: case matters and the separator is `_`.
const LANGUAGES: &[&str] = &[
    "af", "sq", "ar", "ar_EG", "ar_AE", "ar_LB", "ar_MA", "ar_QA", "az", "be_BY", "bn", "bn_IN",
    "bg", "ca", "zh_CN", "zh_HK", "zh_TW", "hr", "cs", "da", "prs_AF", "nl", "nl_BE", "en",
    "en_GB", "en_US", "en_AE", "en_AU", "en_CA", "en_GH", "en_IE", "en_IN", "en_JM", "en_MY",
    "en_NZ", "en_QA", "en_SG", "en_UG", "en_ZA", "et", "fil", "fi", "fr", "fr_BE", "fr_CA",
    "fr_CH", "fr_CI", "fr_MA", "ka", "de", "de_AT", "de_CH", "el", "gu", "ha", "he", "hi", "hu",
    "id", "ga", "it", "ja", "kn", "kk", "rw_RW", "ko", "ky_KG", "lo", "lv", "lt", "mk", "ms", "ml",
    "mr", "nb", "ps_AF", "fa", "pl", "pt_BR", "pt_PT", "pa", "ro", "ru", "sr", "si_LK", "sk", "sl",
    "es", "es_AR", "es_CL", "es_CO", "es_CR", "es_DO", "es_EC", "es_HN", "es_MX", "es_PA", "es_PE",
    "es_ES", "es_UY", "sw", "sv", "ta", "te", "th", "tr", "uk", "ur", "uz", "vi", "zu",
];

/// The submission's fields as the HTTP layer read them from JSON, before any rule is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RawSubmission {
    pub name: Option<String>,
    pub language: Option<String>,
    pub category: Option<String>,
    pub body_text: Option<String>,
    pub variables: Option<Vec<String>>,
    pub samples: Option<Vec<String>>,
    pub header_text: Option<String>,
    pub footer_text: Option<String>,
    pub buttons: Option<Vec<RawButton>>,
}

/// One button as submitted: `{"type", "text", "url"?, "phone_number"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RawButton {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
    pub url: Option<String>,
    pub phone_number: Option<String>,
}

/// A template submission that WhatsApp's rules accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSubmission {
    name: TemplateName,
    language: Language,
    category: Category,
    body: TemplateBody,
    variables: Vec<String>,
    samples: Vec<String>,
    header_text: Option<String>,
    footer_text: Option<String>,
    buttons: Vec<Button>,
}

/// Lower-case letters, digits and `_`, 1–512 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TemplateName(String);

/// One of WhatsApp's template language codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Language(&'static str);

/// A button's label: not blank, at most 25 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ButtonText(String);

/// An absolute `http` or `https` URL, kept exactly as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LinkUrl(String);

/// A button, serialised in the shape it was submitted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Button {
    QuickReply {
        text: ButtonText,
    },
    Url {
        text: ButtonText,
        url: LinkUrl,
    },
    PhoneNumber {
        text: ButtonText,
        phone_number: E164,
    },
}

impl Button {
    /// Buttons read back from where they were stored in their own (submitted) shape, by the
    /// same rules; errors are filed as `buttons.<index>.<field>`.
    pub fn parse_all(given: Vec<RawButton>) -> Result<Vec<Button>, FieldErrors> {
        let mut errors = FieldErrors::new();
        match buttons(&mut errors, given) {
            Some(parsed) if errors.is_empty() => Ok(parsed),
            _ => Err(errors),
        }
    }
}

/// A field's messages when it breaks a rule.
type Checked<T> = Result<T, Vec<String>>;

impl TemplateSubmission {
    /// Applies every rule of API.md §11 to every field, and answers either the submission or
    /// the messages of every bad field, keyed by field (`buttons.0.text`, `samples.1`).
    ///
    /// Each field's check files its messages and yields what it could build; any message filed
    /// refuses the whole submission, including those about how parts fit together (a sample
    /// count, a stray button url) that leave each part buildable on its own.
    pub fn parse(raw: RawSubmission) -> Result<TemplateSubmission, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = keep(
            &mut errors,
            "name",
            required(raw.name).and_then(|name| TemplateName::parse(&name)),
        );
        let language = keep(
            &mut errors,
            "language",
            required(raw.language).and_then(|code| Language::parse(&code)),
        );
        let category = keep(
            &mut errors,
            "category",
            required(raw.category).and_then(|text| {
                Category::parse_template(&text)
                    .ok_or_else(|| message("must be marketing, utility or authentication"))
            }),
        );
        let body = keep(
            &mut errors,
            "body_text",
            required(raw.body_text).and_then(|text| submitted_body(&text)),
        );
        // Names and samples are counted against the body's placeholders, so only a body that
        // parsed can tell whether they fit.
        let variables = body.as_ref().and_then(|body| {
            let names = variable_names(body, raw.variables).map_err(|e| message(&e.to_string()));
            keep(&mut errors, "variables", names)
        });
        let samples = samples(&mut errors, raw.samples, body.as_ref());
        let header_text = optional(&mut errors, "header_text", raw.header_text, short_text);
        let footer_text = optional(&mut errors, "footer_text", raw.footer_text, short_text);
        let buttons = buttons(&mut errors, raw.buttons.unwrap_or_default());

        match (
            name,
            language,
            category,
            body,
            variables,
            samples,
            header_text,
            footer_text,
            buttons,
        ) {
            (
                Some(name),
                Some(language),
                Some(category),
                Some(body),
                Some(variables),
                Some(samples),
                Some(header_text),
                Some(footer_text),
                Some(buttons),
            ) if errors.is_empty() => Ok(TemplateSubmission {
                name,
                language,
                category,
                body,
                variables,
                samples,
                header_text,
                footer_text,
                buttons,
            }),
            _ => Err(errors),
        }
    }

    pub fn name(&self) -> &TemplateName {
        &self.name
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// Marketing, utility or authentication; never service.
    pub fn category(&self) -> Category {
        self.category
    }

    pub fn body(&self) -> &TemplateBody {
        &self.body
    }

    /// One name per placeholder, in order (the positions "1", "2", … when none were given).
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// One trimmed example value per placeholder, in order, for WhatsApp's review.
    pub fn samples(&self) -> &[String] {
        &self.samples
    }

    pub fn header_text(&self) -> Option<&str> {
        self.header_text.as_deref()
    }

    pub fn footer_text(&self) -> Option<&str> {
        self.footer_text.as_deref()
    }

    pub fn buttons(&self) -> &[Button] {
        &self.buttons
    }
}

impl TemplateName {
    fn parse(text: &str) -> Checked<TemplateName> {
        let mut broken = Vec::new();
        if text.is_empty() {
            broken.push("must not be empty".to_owned());
        }
        if text.chars().count() > NAME_MAX_CHARS {
            broken.push(format!("must be at most {NAME_MAX_CHARS} characters"));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        if !text.chars().all(allowed) {
            broken.push("must contain only lower-case letters, digits and underscores".to_owned());
        }
        if broken.is_empty() {
            Ok(TemplateName(text.to_owned()))
        } else {
            Err(broken)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Language {
    fn parse(code: &str) -> Checked<Language> {
        LANGUAGES
            .iter()
            .find(|known| **known == code)
            .map(|known| Language(known))
            .ok_or_else(|| {
                message("must be a WhatsApp template language code, such as en, en_US or pt_BR")
            })
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl ButtonText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl LinkUrl {
    /// Absolute, with an `http` or `https` scheme written out in full and a host; the url
    /// crate alone would also take forms such as `https:example.com` and repair them.
    fn parse(text: &str) -> Checked<LinkUrl> {
        let lower = text.to_ascii_lowercase();
        let written_out = lower.starts_with("https://") || lower.starts_with("http://");
        let parses =
            Url::parse(text).is_ok_and(|url| url.host_str().is_some_and(|h| !h.is_empty()));
        if written_out && parses && !text.contains(char::is_whitespace) {
            Ok(LinkUrl(text.to_owned()))
        } else {
            Err(message("must be an absolute http or https URL"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn message(text: &str) -> Vec<String> {
    vec![text.to_owned()]
}

fn required<T>(value: Option<T>) -> Checked<T> {
    value.ok_or_else(|| message("is required"))
}

/// The value, or None after filing its messages under `field`.
fn keep<T>(errors: &mut FieldErrors, field: &str, checked: Checked<T>) -> Option<T> {
    match checked {
        Ok(value) => Some(value),
        Err(messages) => {
            for text in messages {
                errors.add(field, text);
            }
            None
        }
    }
}

/// An optional field: Some(None) when absent, None when present and broken.
fn optional<T>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Checked<T>,
) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(text) => keep(errors, field, parse(&text)).map(Some),
    }
}

/// The body's own rules (template.rs), then where WhatsApp lets placeholders stand: not first,
/// not last, never two with only whitespace between them.
fn submitted_body(text: &str) -> Checked<TemplateBody> {
    let body = TemplateBody::parse(text).map_err(|e| message(&e.to_string()))?;
    let spans: Vec<Range<usize>> = body.placeholder_spans().collect();
    let text = body.as_str();
    let mut broken = Vec::new();
    if let Some(first) = spans
        .first()
        .filter(|span| text[..span.start].trim().is_empty())
    {
        broken.push(format!(
            "must not start with a placeholder ({})",
            &text[first.clone()]
        ));
    }
    if let Some(last) = spans
        .last()
        .filter(|span| text[span.end..].trim().is_empty())
    {
        broken.push(format!(
            "must not end with a placeholder ({})",
            &text[last.clone()]
        ));
    }
    for pair in spans.windows(2) {
        if text[pair[0].end..pair[1].start].trim().is_empty() {
            broken.push(format!(
                "placeholders {} and {} must not be adjacent: put words between them",
                &text[pair[0].clone()],
                &text[pair[1].clone()]
            ));
        }
    }
    if broken.is_empty() {
        Ok(body)
    } else {
        Err(broken)
    }
}

/// Each sample obeys the parameter rules of a send (`samples.<i>`); together they are one per
/// placeholder (`samples`), which needs a parsed body to count.
fn samples(
    errors: &mut FieldErrors,
    given: Option<Vec<String>>,
    body: Option<&TemplateBody>,
) -> Option<Vec<String>> {
    let expected = body.map(TemplateBody::placeholder_count);
    let Some(given) = given else {
        return match expected {
            Some(0) => Some(Vec::new()),
            Some(count) => keep(
                errors,
                "samples",
                Err(message(&format!(
                    "is required: one example value for each of the body's {count} placeholders"
                ))),
            ),
            None => None,
        };
    };
    if let Some(count) = expected.filter(|count| *count != given.len()) {
        errors.add(
            "samples",
            format!(
                "must give exactly one example value for each of the body's {count} \
                 placeholders (got {})",
                given.len()
            ),
        );
    }
    // Every value is checked, not just up to the first bad one.
    let values: Vec<Option<String>> = given
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let checked = parameter_text(raw)
                .map_err(|broken| broken.into_iter().map(str::to_owned).collect());
            keep(errors, &format!("samples.{index}"), checked)
        })
        .collect();
    values.into_iter().collect()
}

/// A header or footer: not blank, at most 60 characters, no placeholders.
fn short_text(text: &str) -> Checked<String> {
    let mut broken = Vec::new();
    if text.trim().is_empty() {
        broken.push("must not be empty (leave it out for none)".to_owned());
    }
    if text.chars().count() > HEADER_FOOTER_MAX_CHARS {
        broken.push(format!(
            "must be at most {HEADER_FOOTER_MAX_CHARS} characters"
        ));
    }
    if text.contains("{{") {
        broken.push("must not contain placeholders".to_owned());
    }
    if broken.is_empty() {
        Ok(text.to_owned())
    } else {
        Err(broken)
    }
}

fn buttons(errors: &mut FieldErrors, given: Vec<RawButton>) -> Option<Vec<Button>> {
    if given.len() > MAX_BUTTONS {
        errors.add(
            "buttons",
            format!(
                "must hold at most {MAX_BUTTONS} buttons (got {})",
                given.len()
            ),
        );
    }
    // Every button is checked, not just up to the first bad one.
    let parsed: Vec<Option<Button>> = given
        .into_iter()
        .enumerate()
        .map(|(index, raw)| button(errors, index, raw))
        .collect();
    parsed.into_iter().collect()
}

/// One button's fields, filed as `buttons.<index>.<field>`; a url or phone number on a button
/// of another type is refused rather than dropped.
fn button(errors: &mut FieldErrors, index: usize, raw: RawButton) -> Option<Button> {
    let field = |name: &str| format!("buttons.{index}.{name}");
    let kind = keep(
        errors,
        &field("type"),
        required(raw.kind).and_then(|kind| ButtonKind::parse(&kind)),
    );
    let text = keep(
        errors,
        &field("text"),
        required(raw.text).and_then(|text| button_text(&text)),
    );
    let kind = kind?;
    let strays = [
        (
            kind != ButtonKind::Url && raw.url.is_some(),
            "url",
            "is only for url buttons",
        ),
        (
            kind != ButtonKind::PhoneNumber && raw.phone_number.is_some(),
            "phone_number",
            "is only for phone_number buttons",
        ),
    ];
    for (stray, name, refusal) in strays {
        if stray {
            errors.add(field(name), refusal);
        }
    }
    match kind {
        ButtonKind::QuickReply => text.map(|text| Button::QuickReply { text }),
        ButtonKind::Url => {
            let url = keep(
                errors,
                &field("url"),
                required(raw.url).and_then(|url| LinkUrl::parse(&url)),
            );
            text.zip(url).map(|(text, url)| Button::Url { text, url })
        }
        ButtonKind::PhoneNumber => {
            let phone_number = keep(
                errors,
                &field("phone_number"),
                required(raw.phone_number)
                    .and_then(|number| E164::parse(&number).map_err(|e| message(&e.to_string()))),
            );
            text.zip(phone_number)
                .map(|(text, phone_number)| Button::PhoneNumber { text, phone_number })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ButtonKind {
    QuickReply,
    Url,
    PhoneNumber,
}

impl ButtonKind {
    fn parse(text: &str) -> Checked<ButtonKind> {
        match text {
            "quick_reply" => Ok(ButtonKind::QuickReply),
            "url" => Ok(ButtonKind::Url),
            "phone_number" => Ok(ButtonKind::PhoneNumber),
            _ => Err(message("must be quick_reply, url or phone_number")),
        }
    }
}

fn button_text(text: &str) -> Checked<ButtonText> {
    let mut broken = Vec::new();
    if text.trim().is_empty() {
        broken.push("must not be empty".to_owned());
    }
    if text.chars().count() > BUTTON_TEXT_MAX_CHARS {
        broken.push(format!(
            "must be at most {BUTTON_TEXT_MAX_CHARS} characters"
        ));
    }
    if broken.is_empty() {
        Ok(ButtonText(text.to_owned()))
    } else {
        Err(broken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn quick_reply(text: &str) -> RawButton {
        RawButton {
            kind: Some("quick_reply".into()),
            text: Some(text.into()),
            ..RawButton::default()
        }
    }

    fn url_button(text: &str, url: &str) -> RawButton {
        RawButton {
            kind: Some("url".into()),
            text: Some(text.into()),
            url: Some(url.into()),
            ..RawButton::default()
        }
    }

    fn phone_button(text: &str, phone_number: &str) -> RawButton {
        RawButton {
            kind: Some("phone_number".into()),
            text: Some(text.into()),
            phone_number: Some(phone_number.into()),
            ..RawButton::default()
        }
    }

    /// A submission that breaks no rule.
    fn valid() -> RawSubmission {
        RawSubmission {
            name: Some("order_update".into()),
            language: Some("en_US".into()),
            category: Some("utility".into()),
            body_text: Some("Hi {{1}}, your order {{2}} has shipped.".into()),
            variables: None,
            samples: Some(strings(&["Ada", "12345"])),
            header_text: Some("Order update".into()),
            footer_text: Some("Reply STOP to opt out".into()),
            buttons: Some(vec![
                quick_reply("Thanks"),
                url_button("Track", "https://example.com/track?id=1"),
                phone_button("Call us", "+1 415 555 1234"),
            ]),
        }
    }

    /// A valid submission without placeholders, header, footer or buttons.
    fn minimal() -> RawSubmission {
        RawSubmission {
            name: Some("welcome".into()),
            language: Some("en".into()),
            category: Some("marketing".into()),
            body_text: Some("Welcome aboard.".into()),
            ..RawSubmission::default()
        }
    }

    fn errors(raw: RawSubmission) -> Value {
        serde_json::to_value(TemplateSubmission::parse(raw).expect_err("should be refused"))
            .unwrap()
    }

    /// The messages for one field (empty when it has none).
    fn messages(raw: RawSubmission, field: &str) -> Vec<String> {
        match TemplateSubmission::parse(raw) {
            Ok(_) => Vec::new(),
            Err(errors) => {
                serde_json::from_value(serde_json::to_value(errors).unwrap()[field].clone())
                    .unwrap_or_default()
            }
        }
    }

    fn accepted(raw: RawSubmission) -> TemplateSubmission {
        TemplateSubmission::parse(raw).unwrap_or_else(|e| panic!("refused: {e:?}"))
    }

    #[test]
    fn accepts_a_full_submission_and_exposes_its_parts() {
        let submission = accepted(valid());
        assert_eq!(submission.name().as_str(), "order_update");
        assert_eq!(submission.language().as_str(), "en_US");
        assert_eq!(submission.category(), Category::Utility);
        assert_eq!(
            submission.body().as_str(),
            "Hi {{1}}, your order {{2}} has shipped."
        );
        assert_eq!(submission.body().placeholder_count(), 2);
        assert_eq!(submission.variables(), strings(&["1", "2"]));
        assert_eq!(submission.samples(), strings(&["Ada", "12345"]));
        assert_eq!(submission.header_text(), Some("Order update"));
        assert_eq!(submission.footer_text(), Some("Reply STOP to opt out"));
        assert_eq!(
            serde_json::to_value(submission.buttons()).unwrap(),
            json!([
                {"type": "quick_reply", "text": "Thanks"},
                {"type": "url", "text": "Track", "url": "https://example.com/track?id=1"},
                {"type": "phone_number", "text": "Call us", "phone_number": "+14155551234"}
            ])
        );
    }

    #[test]
    fn accepts_a_minimal_submission() {
        let submission = accepted(minimal());
        assert_eq!(submission.samples(), Vec::<String>::new());
        assert_eq!(submission.variables(), Vec::<String>::new());
        assert_eq!(submission.header_text(), None);
        assert_eq!(submission.footer_text(), None);
        assert!(submission.buttons().is_empty());
        let with_empty_lists = RawSubmission {
            samples: Some(vec![]),
            buttons: Some(vec![]),
            ..minimal()
        };
        assert!(TemplateSubmission::parse(with_empty_lists).is_ok());
    }

    #[test]
    fn reads_the_request_json() {
        let raw: RawSubmission = serde_json::from_value(json!({
            "name": "order_update", "language": "en_US", "category": "utility",
            "body_text": "Hi {{1}}, your order {{2}} has shipped.",
            "variables": ["first_name", "order_id"], "samples": ["Ada", "12345"],
            "buttons": [{"type": "url", "text": "Track", "url": "https://example.com/t"}]
        }))
        .unwrap();
        let submission = accepted(raw);
        assert_eq!(submission.variables(), strings(&["first_name", "order_id"]));
        assert_eq!(
            serde_json::to_value(submission.buttons()).unwrap(),
            json!([{"type": "url", "text": "Track", "url": "https://example.com/t"}])
        );
    }

    #[test]
    fn names_every_missing_required_field() {
        assert_eq!(
            errors(RawSubmission::default()),
            json!({
                "body_text": ["is required"],
                "category": ["is required"],
                "language": ["is required"],
                "name": ["is required"]
            })
        );
    }

    // --- name ---

    #[test]
    fn name_length_is_1_to_512_characters() {
        let named = |name: String| RawSubmission {
            name: Some(name),
            ..valid()
        };
        assert_eq!(
            messages(named(String::new()), "name"),
            ["must not be empty"]
        );
        assert!(TemplateSubmission::parse(named("a".into())).is_ok());
        assert!(TemplateSubmission::parse(named("a".repeat(512))).is_ok());
        assert_eq!(
            messages(named("a".repeat(513)), "name"),
            ["must be at most 512 characters"]
        );
    }

    #[test]
    fn name_takes_only_lower_case_letters_digits_and_underscores() {
        let named = |name: &str| RawSubmission {
            name: Some(name.into()),
            ..valid()
        };
        assert!(TemplateSubmission::parse(named("order_update_2")).is_ok());
        assert!(TemplateSubmission::parse(named("_2")).is_ok());
        for bad in [
            "Order_update",
            "order-update",
            "order update",
            " order",
            "ordér",
            "order.update",
        ] {
            assert_eq!(
                messages(named(bad), "name"),
                ["must contain only lower-case letters, digits and underscores"],
                "{bad:?}"
            );
        }
        assert_eq!(
            messages(named(&"A".repeat(513)), "name"),
            [
                "must be at most 512 characters",
                "must contain only lower-case letters, digits and underscores"
            ]
        );
    }

    // --- language and category ---

    #[test]
    fn language_is_one_of_whatsapps_codes() {
        let in_language = |code: &str| RawSubmission {
            language: Some(code.into()),
            ..valid()
        };
        for code in [
            "en", "en_US", "en_GB", "pt_BR", "zh_CN", "fil", "prs_AF", "zu",
        ] {
            assert_eq!(
                accepted(in_language(code)).language().as_str(),
                code,
                "{code}"
            );
        }
        for code in ["en-US", "EN", "en_us", "pt", "xx", "", " en"] {
            assert_eq!(
                messages(in_language(code), "language"),
                ["must be a WhatsApp template language code, such as en, en_US or pt_BR"],
                "{code:?}"
            );
        }
    }

    #[test]
    fn language_list_has_no_duplicates() {
        let mut codes = LANGUAGES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), LANGUAGES.len());
    }

    #[test]
    fn category_is_marketing_utility_or_authentication() {
        let in_category = |category: &str| RawSubmission {
            category: Some(category.into()),
            ..valid()
        };
        for (text, category) in [
            ("marketing", Category::Marketing),
            ("utility", Category::Utility),
            ("authentication", Category::Authentication),
        ] {
            assert_eq!(accepted(in_category(text)).category(), category);
        }
        for bad in ["service", "Marketing", "UTILITY", "", "transactional"] {
            assert_eq!(
                messages(in_category(bad), "category"),
                ["must be marketing, utility or authentication"],
                "{bad:?}"
            );
        }
    }

    // --- body ---

    fn with_body(text: &str, samples: &[&str]) -> RawSubmission {
        RawSubmission {
            body_text: Some(text.into()),
            samples: Some(strings(samples)),
            ..valid()
        }
    }

    #[test]
    fn body_length_is_1_to_1024_characters() {
        assert_eq!(
            messages(with_body("", &[]), "body_text"),
            ["must not be empty"]
        );
        assert_eq!(
            messages(with_body(" \n ", &[]), "body_text"),
            ["must not be empty"]
        );
        assert!(TemplateSubmission::parse(with_body("x", &[])).is_ok());
        assert!(TemplateSubmission::parse(with_body(&"é".repeat(1024), &[])).is_ok());
        assert_eq!(
            messages(with_body(&"é".repeat(1025), &[]), "body_text"),
            ["must be at most 1024 characters"]
        );
    }

    #[test]
    fn body_placeholders_run_from_1_without_gaps() {
        assert_eq!(
            messages(
                with_body("Hi {{1}} and {{3}} too", &["a", "b"]),
                "body_text"
            ),
            ["placeholder {{3}} comes before {{2}}"]
        );
        assert_eq!(
            messages(
                with_body("Hi {{2}} and {{1}} too", &["a", "b"]),
                "body_text"
            ),
            ["placeholder {{2}} comes before {{1}}"]
        );
        assert_eq!(
            messages(with_body("Hi {{name}} there", &["a"]), "body_text"),
            ["invalid placeholder {{name}}: placeholders must be {{1}}, {{2}}, … in order"]
        );
        // A placeholder may be used again.
        assert!(TemplateSubmission::parse(with_body("Hi {{1}}, yes {{1}} again", &["a"])).is_ok());
    }

    #[test]
    fn body_must_not_start_with_a_placeholder() {
        for text in ["{{1}} is ready", " \n{{1}} is ready"] {
            assert_eq!(
                messages(with_body(text, &["a"]), "body_text"),
                ["must not start with a placeholder ({{1}})"],
                "{text:?}"
            );
        }
        assert!(TemplateSubmission::parse(with_body("A {{1}} is ready", &["a"])).is_ok());
    }

    #[test]
    fn body_must_not_end_with_a_placeholder() {
        for text in ["Your code is {{1}}", "Your code is {{1}} \n"] {
            assert_eq!(
                messages(with_body(text, &["a"]), "body_text"),
                ["must not end with a placeholder ({{1}})"],
                "{text:?}"
            );
        }
        assert!(TemplateSubmission::parse(with_body("Your code is {{1}}.", &["a"])).is_ok());
        assert_eq!(
            messages(with_body("{{1}}", &["a"]), "body_text"),
            [
                "must not start with a placeholder ({{1}})",
                "must not end with a placeholder ({{1}})"
            ]
        );
    }

    #[test]
    fn body_must_not_put_two_placeholders_side_by_side() {
        for text in [
            "Hi {{1}}{{2}} there",
            "Hi {{1}} {{2}} there",
            "Hi {{1}}\n\t{{2}} there",
        ] {
            assert_eq!(
                messages(with_body(text, &["a", "b"]), "body_text"),
                ["placeholders {{1}} and {{2}} must not be adjacent: put words between them"],
                "{text:?}"
            );
        }
        assert_eq!(
            messages(
                with_body("Hi {{1}} {{2}} {{1}} there", &["a", "b"]),
                "body_text"
            ),
            [
                "placeholders {{1}} and {{2}} must not be adjacent: put words between them",
                "placeholders {{2}} and {{1}} must not be adjacent: put words between them"
            ]
        );
        // Anything other than whitespace between them is enough.
        assert!(TemplateSubmission::parse(with_body("Hi {{1}}, {{2}} there", &["a", "b"])).is_ok());
    }

    // --- variables and samples ---

    #[test]
    fn variable_names_follow_the_template_rules() {
        let named = |names: &[&str]| RawSubmission {
            variables: Some(strings(names)),
            ..valid()
        };
        assert_eq!(
            accepted(named(&["first_name", "order_id"])).variables(),
            strings(&["first_name", "order_id"])
        );
        assert_eq!(
            messages(named(&["first_name"]), "variables"),
            ["must name each of the template's 2 placeholders exactly once (got 1 names)"]
        );
    }

    #[test]
    fn samples_give_exactly_one_value_per_placeholder() {
        assert_eq!(
            messages(with_body("Hi {{1}}, order {{2}}.", &["Ada"]), "samples"),
            ["must give exactly one example value for each of the body's 2 placeholders (got 1)"]
        );
        assert_eq!(
            messages(
                with_body("Hi {{1}}, order {{2}}.", &["a", "b", "c"]),
                "samples"
            ),
            ["must give exactly one example value for each of the body's 2 placeholders (got 3)"]
        );
        assert_eq!(
            messages(with_body("Welcome aboard.", &["a"]), "samples"),
            ["must give exactly one example value for each of the body's 0 placeholders (got 1)"]
        );
        let absent = RawSubmission {
            samples: None,
            ..valid()
        };
        assert_eq!(
            messages(absent, "samples"),
            ["is required: one example value for each of the body's 2 placeholders"]
        );
        // A repeated placeholder needs one sample.
        assert!(TemplateSubmission::parse(with_body("Hi {{1}}, yes {{1}}.", &["a"])).is_ok());
    }

    #[test]
    fn samples_obey_the_parameter_rules_of_a_send() {
        let body = "Hi {{1}}, order {{2}}.";
        assert_eq!(
            accepted(with_body(body, &["  Ada ", "A    B"])).samples(),
            strings(&["Ada", "A    B"])
        );
        assert_eq!(
            errors(with_body(body, &["", "a\nb"])),
            json!({
                "samples.0": ["must not be empty"],
                "samples.1": ["must not contain newlines or tabs"]
            })
        );
        assert_eq!(
            errors(with_body(body, &["   ", "A     B"])),
            json!({
                "samples.0": ["must not be empty"],
                "samples.1": ["must not contain more than 4 consecutive spaces"]
            })
        );
        let long = "x".repeat(1025);
        assert_eq!(
            errors(with_body(body, &["a", &long])),
            json!({"samples.1": ["must be at most 1024 characters"]})
        );
        assert!(TemplateSubmission::parse(with_body(body, &["a", &"x".repeat(1024)])).is_ok());
    }

    #[test]
    fn bad_samples_and_a_wrong_count_are_reported_together() {
        assert_eq!(
            errors(with_body("Hi {{1}}, order {{2}}.", &["\t"])),
            json!({
                "samples": ["must give exactly one example value for each of the body's 2 placeholders (got 1)"],
                "samples.0": ["must not be empty"]
            })
        );
    }

    // --- header and footer ---

    #[test]
    fn header_and_footer_are_at_most_60_characters() {
        let with = |header: String, footer: String| RawSubmission {
            header_text: Some(header),
            footer_text: Some(footer),
            ..valid()
        };
        let submission = accepted(with("h".to_owned(), "é".repeat(60)));
        assert_eq!(submission.header_text(), Some("h"));
        assert!(TemplateSubmission::parse(with("h".repeat(60), "f".into())).is_ok());
        let message = json!(["must be at most 60 characters"]);
        assert_eq!(
            errors(with("h".repeat(61), "é".repeat(61))),
            json!({"footer_text": message, "header_text": message})
        );
        let message = json!(["must not be empty (leave it out for none)"]);
        assert_eq!(
            errors(with(String::new(), " ".into())),
            json!({"footer_text": message, "header_text": message})
        );
    }

    #[test]
    fn header_and_footer_take_no_placeholders() {
        let with = |header: &str, footer: &str| RawSubmission {
            header_text: Some(header.into()),
            footer_text: Some(footer.into()),
            ..valid()
        };
        let message = json!(["must not contain placeholders"]);
        assert_eq!(
            errors(with("Hello {{1}}", "Bye {{name}}")),
            json!({"footer_text": message, "header_text": message})
        );
        assert!(TemplateSubmission::parse(with("Use {braces}", "Ends }}")).is_ok());
    }

    // --- buttons ---

    fn with_buttons(buttons: Vec<RawButton>) -> RawSubmission {
        RawSubmission {
            buttons: Some(buttons),
            ..valid()
        }
    }

    #[test]
    fn at_most_10_buttons() {
        let replies = |count: usize| (0..count).map(|i| quick_reply(&format!("Reply {i}")));
        assert_eq!(
            accepted(with_buttons(replies(10).collect()))
                .buttons()
                .len(),
            10
        );
        assert_eq!(
            errors(with_buttons(replies(11).collect())),
            json!({"buttons": ["must hold at most 10 buttons (got 11)"]})
        );
    }

    #[test]
    fn button_text_is_1_to_25_characters() {
        assert!(TemplateSubmission::parse(with_buttons(vec![quick_reply("a")])).is_ok());
        assert!(
            TemplateSubmission::parse(with_buttons(vec![quick_reply(&"é".repeat(25))])).is_ok()
        );
        assert_eq!(
            errors(with_buttons(vec![
                quick_reply(&"x".repeat(26)),
                quick_reply(""),
                quick_reply("  "),
                RawButton {
                    text: None,
                    ..quick_reply("")
                },
            ])),
            json!({
                "buttons.0.text": ["must be at most 25 characters"],
                "buttons.1.text": ["must not be empty"],
                "buttons.2.text": ["must not be empty"],
                "buttons.3.text": ["is required"]
            })
        );
    }

    #[test]
    fn button_type_is_quick_reply_url_or_phone_number() {
        let typed = |kind: Option<&str>| RawButton {
            kind: kind.map(str::to_owned),
            ..quick_reply("Yes")
        };
        assert_eq!(
            errors(with_buttons(vec![
                typed(None),
                typed(Some("QUICK_REPLY")),
                typed(Some("copy_code"))
            ])),
            json!({
                "buttons.0.type": ["is required"],
                "buttons.1.type": ["must be quick_reply, url or phone_number"],
                "buttons.2.type": ["must be quick_reply, url or phone_number"]
            })
        );
    }

    #[test]
    fn url_button_needs_an_absolute_http_or_https_url() {
        for url in [
            "https://example.com",
            "http://example.com/a?b=c#d",
            "HTTPS://example.com/path",
            "https://127.0.0.1:8443/x",
        ] {
            let button = with_buttons(vec![url_button("Open", url)]);
            assert!(TemplateSubmission::parse(button).is_ok(), "{url:?}");
        }
        for url in [
            "",
            "/track",
            "example.com",
            "ftp://example.com",
            "mailto:a@example.com",
            "https:example.com",
            "https:/example.com",
            "https://",
            "https://exa mple.com",
            " https://example.com",
        ] {
            assert_eq!(
                messages(with_buttons(vec![url_button("Open", url)]), "buttons.0.url"),
                ["must be an absolute http or https URL"],
                "{url:?}"
            );
        }
        let missing = RawButton {
            url: None,
            ..url_button("Open", "")
        };
        assert_eq!(
            messages(with_buttons(vec![missing]), "buttons.0.url"),
            ["is required"]
        );
    }

    #[test]
    fn phone_number_button_needs_an_e164_number() {
        let button = with_buttons(vec![phone_button("Call", "+44 20 7946 0958")]);
        assert_eq!(
            serde_json::to_value(accepted(button).buttons()).unwrap(),
            json!([{"type": "phone_number", "text": "Call", "phone_number": "+442079460958"}])
        );
        for number in ["020 7946 0958", "+1 800 FLOWERS", "+1415", ""] {
            assert_eq!(
                messages(
                    with_buttons(vec![phone_button("Call", number)]),
                    "buttons.0.phone_number"
                ),
                ["Invalid phone number format. Use E.164 format (e.g., +14155551234)."],
                "{number:?}"
            );
        }
        let missing = RawButton {
            phone_number: None,
            ..phone_button("Call", "")
        };
        assert_eq!(
            messages(with_buttons(vec![missing]), "buttons.0.phone_number"),
            ["is required"]
        );
    }

    #[test]
    fn a_url_or_number_on_another_type_of_button_is_refused() {
        let reply_with_both = RawButton {
            url: Some("https://example.com".into()),
            phone_number: Some("+14155551234".into()),
            ..quick_reply("Yes")
        };
        let url_with_number = RawButton {
            phone_number: Some("+14155551234".into()),
            ..url_button("Open", "https://example.com")
        };
        let call_with_url = RawButton {
            url: Some("https://example.com".into()),
            ..phone_button("Call", "+14155551234")
        };
        assert_eq!(
            errors(with_buttons(vec![
                reply_with_both,
                url_with_number,
                call_with_url
            ])),
            json!({
                "buttons.0.phone_number": ["is only for phone_number buttons"],
                "buttons.0.url": ["is only for url buttons"],
                "buttons.1.phone_number": ["is only for phone_number buttons"],
                "buttons.2.url": ["is only for url buttons"]
            })
        );
    }

    // --- everything at once ---

    #[test]
    fn reports_every_bad_field_together() {
        let raw = RawSubmission {
            name: Some("Order Update".into()),
            language: Some("en-US".into()),
            category: Some("service".into()),
            body_text: Some("{{1}} ordered {{2}}".into()),
            variables: None,
            samples: Some(strings(&["Ada", ""])),
            header_text: Some("h".repeat(61)),
            footer_text: Some("Bye {{1}}".into()),
            buttons: Some(vec![
                quick_reply("Thanks"),
                url_button(&"t".repeat(26), "track"),
                RawButton::default(),
            ]),
        };
        assert_eq!(
            errors(raw),
            json!({
                "body_text": [
                    "must not start with a placeholder ({{1}})",
                    "must not end with a placeholder ({{2}})"
                ],
                "buttons.1.text": ["must be at most 25 characters"],
                "buttons.1.url": ["must be an absolute http or https URL"],
                "buttons.2.text": ["is required"],
                "buttons.2.type": ["is required"],
                "category": ["must be marketing, utility or authentication"],
                "footer_text": ["must not contain placeholders"],
                "header_text": ["must be at most 60 characters"],
                "language": ["must be a WhatsApp template language code, such as en, en_US or pt_BR"],
                "name": ["must contain only lower-case letters, digits and underscores"],
                "samples.1": ["must not be empty"]
            })
        );
    }

    #[test]
    fn stored_buttons_read_back_as_they_were() {
        let parsed = accepted(valid());
        let stored = serde_json::to_string(parsed.buttons()).unwrap();
        let raw: Vec<RawButton> = serde_json::from_str(&stored).unwrap();
        assert_eq!(Button::parse_all(raw).unwrap(), parsed.buttons());
        let bad = vec![quick_reply("")];
        assert!(Button::parse_all(bad).is_err());
    }
}
