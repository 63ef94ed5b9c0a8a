//! `/docs`: the OpenAPI document as one HTML page, rendered here once at start: no scripts,
//! nothing fetched from another site (a local service's page must work offline).

use serde_json::Value;

pub fn page(doc: &utoipa::openapi::OpenApi) -> String {
    let doc: Value = serde_json::to_value(doc).unwrap_or_default();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>gati backend API</title>\
         <style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         h2{margin-top:2rem;border-bottom:1px solid #ddd}code{background:#f4f4f4;padding:0 .2rem}\
         .m{display:inline-block;min-width:4.5rem;font-weight:bold}ul{margin:.2rem 0 1rem}</style></head><body>",
    );
    html += &format!(
        "<h1>{} {}</h1><p>{}</p><p>The machine-readable form: <a href=\"/openapi.json\">/openapi.json</a> \
         (OpenAPI {}).</p>",
        text(&doc["info"]["title"]),
        text(&doc["info"]["version"]),
        text(&doc["info"]["description"]),
        text(&doc["openapi"])
    );
    let Some(paths) = doc["paths"].as_object() else { return html };
    for (path, item) in paths {
        let Some(operations) = item.as_object() else { continue };
        for (method, op) in operations {
            html += &format!(
                "<h2><span class=\"m\">{}</span> <code>{}</code></h2><p>{}</p>",
                escape(&method.to_uppercase()),
                escape(path),
                text(&op["summary"])
            );
            if !op["description"].is_null() {
                html += &format!("<p>{}</p>", text(&op["description"]));
            }
            if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                html += "<ul>";
                for p in params {
                    html += &format!(
                        "<li><code>{}</code> ({}) {}</li>",
                        text(&p["name"]),
                        text(&p["in"]),
                        text(&p["description"])
                    );
                }
                html += "</ul>";
            }
            if let Some(responses) = op["responses"].as_object() {
                let codes: Vec<String> = responses
                    .iter()
                    .map(|(code, r)| format!("<code>{}</code> {}", escape(code), text(&r["description"])))
                    .collect();
                html += &format!("<p>Answers: {}</p>", codes.join("; "));
            }
        }
    }
    html + "</body></html>"
}

fn text(value: &Value) -> String {
    escape(value.as_str().unwrap_or_default())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
