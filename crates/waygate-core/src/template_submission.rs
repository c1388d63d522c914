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

/// A field's messages when it breaks a rule.
type Checked<T> = Result<T, Vec<String>>;

impl TemplateSubmission {
    /// Applies every rule of API.md §11 to every field, and answers either the submission or
    /// the messages of every bad field, keyed by field (`buttons.0.text`, `samples.1`).
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
    let mut values = Vec::with_capacity(given.len());
    let mut all_valid = true;
    for (index, raw) in given.iter().enumerate() {
        let checked =
            parameter_text(raw).map_err(|broken| broken.into_iter().map(str::to_owned).collect());
        match keep(errors, &format!("samples.{index}"), checked) {
            Some(value) => values.push(value),
            None => all_valid = false,
        }
    }
    let count_fits = match expected {
        Some(count) if count != given.len() => {
            errors.add(
                "samples",
                format!(
                    "must give exactly one example value for each of the body's {count} \
                     placeholders (got {})",
                    given.len()
                ),
            );
            false
        }
        _ => true,
    };
    (all_valid && count_fits).then_some(values)
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
    let mut fits = true;
    if given.len() > MAX_BUTTONS {
        errors.add(
            "buttons",
            format!(
                "must hold at most {MAX_BUTTONS} buttons (got {})",
                given.len()
            ),
        );
        fits = false;
    }
    let mut parsed = Vec::with_capacity(given.len());
    for (index, raw) in given.into_iter().enumerate() {
        match button(errors, index, raw) {
            Some(button) => parsed.push(button),
            None => fits = false,
        }
    }
    fits.then_some(parsed)
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
    let mut clean = true;
    for (stray, name, refusal) in strays {
        if stray {
            errors.add(field(name), refusal);
            clean = false;
        }
    }
    let button = match kind {
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
    };
    button.filter(|_| clean)
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
