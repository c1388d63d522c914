//! Template bodies and their rendering: parsing any text never panics; a parsed body rendered
//! with brace-free values has every placeholder replaced, exactly as a naive replacement would;
//! and the request path (`variable_names` + `render_with`) only ever returns a rendering that is
//! the body filled with the values it reports, each one clean, within WhatsApp's 1,024 characters.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use waygate_core::template::{render_with, variable_names, TemplateBody};

#[derive(Arbitrary, Debug)]
struct Input {
    body: String,
    values: Vec<String>,
    names: Option<Vec<String>>,
    /// The request's `variables`, as JSON text (most of it is not an object, which is fine).
    variables: String,
}

fuzz_target!(|input: Input| {
    let Ok(body) = TemplateBody::parse(&input.body) else {
        return;
    };
    let count = body.placeholder_count();

    let mut values: Vec<String> = input
        .values
        .iter()
        .map(|v| v.replace(['{', '}'], ""))
        .collect();
    values.resize(count, String::new());
    let rendered = body.render(&values);
    let mut naive = input.body.clone();
    for (index, value) in values.iter().enumerate() {
        naive = naive.replace(&format!("{{{{{}}}}}", index + 1), value);
    }
    assert_eq!(rendered, naive, "body {:?}", input.body);
    assert!(
        !rendered.contains("{{"),
        "unreplaced placeholder in {rendered:?} from {:?}",
        input.body
    );

    let Ok(names) = variable_names(&body, input.names) else {
        return;
    };
    assert_eq!(names.len(), count);
    let variables = match serde_json::from_str::<serde_json::Value>(&input.variables) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    };
    if let Ok(filled) = render_with(&body, &names, variables.as_ref()) {
        assert_eq!(filled.values.len(), count);
        assert_eq!(filled.text, body.render(&filled.values));
        assert!(filled.text.chars().count() <= 1024);
        for value in &filled.values {
            let clean = !value.is_empty()
                && value.trim() == value
                && !value.contains(['\n', '\t'])
                && !value.contains("     ");
            assert!(clean, "value {value:?} breaks the parameter rules");
        }
    }
});
