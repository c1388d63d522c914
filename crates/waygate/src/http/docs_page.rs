//! The API reference page at /docs, rendered on the server from the OpenAPI document so
//! that it needs no script or CDN.

use serde_json::Value;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference
            .rsplit('/')
            .next()
            .unwrap_or(reference)
            .to_string();
    }
    schema
        .get("type")
        .map(|t| t.to_string().replace('"', ""))
        .unwrap_or_default()
}

pub fn render(openapi_json: &str) -> String {
    let doc: Value = serde_json::from_str(openapi_json).unwrap_or(Value::Null);
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>waygate API</title><style>\
         body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
         h2{margin-top:2rem;border-bottom:1px solid #ddd}code{background:#f4f4f4;padding:0 .2rem}\
         .op{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #2a7}.m{font-weight:bold;text-transform:uppercase}\
         td{padding:.1rem .6rem;vertical-align:top}pre{background:#f4f4f4;padding:.5rem;overflow:auto}\
         </style></head><body><h1>waygate API</h1>",
    );
    if let Some(text) = doc.pointer("/info/description").and_then(Value::as_str) {
        out.push_str(&format!("<p>{}</p>", escape(text)));
    }
    out.push_str("<p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a></p>");
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return out + "</body></html>";
    };
    for (path, ops) in paths {
        for (method, op) in ops.as_object().into_iter().flatten() {
            out.push_str(&format!(
                "<div class=\"op\"><p><span class=\"m\">{}</span> <code>{}</code></p>",
                escape(method),
                escape(path)
            ));
            if let Some(text) = op
                .get("description")
                .or(op.get("summary"))
                .and_then(Value::as_str)
            {
                out.push_str(&format!("<p>{}</p>", escape(text)));
            }
            if let Some(params) = op.get("parameters").and_then(Value::as_array) {
                out.push_str("<table>");
                for p in params {
                    let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
                    out.push_str(&format!(
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        escape(field("name")),
                        escape(field("in")),
                        escape(field("description"))
                    ));
                }
                out.push_str("</table>");
            }
            if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
                out.push_str(&format!(
                    "<p>Body: <code>{}</code></p>",
                    escape(&schema_name(body))
                ));
            }
            if let Some(responses) = op.get("responses").and_then(Value::as_object) {
                out.push_str("<table>");
                for (code, r) in responses {
                    let schema = r
                        .pointer("/content/application~1json/schema")
                        .map(schema_name)
                        .unwrap_or_default();
                    let text = r.get("description").and_then(Value::as_str).unwrap_or("");
                    out.push_str(&format!(
                        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                        escape(code),
                        escape(&schema),
                        escape(text)
                    ));
                }
                out.push_str("</table>");
            }
            out.push_str("</div>");
        }
    }
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        out.push_str("<h2>Schemas</h2>");
        for (name, schema) in schemas {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            out.push_str(&format!(
                "<h3 id=\"{0}\">{0}</h3><pre>{1}</pre>",
                escape(name),
                escape(&pretty)
            ));
        }
    }
    out + "</body></html>"
}
