//! The browser pages, embedded in the binary: `GET /` (an index), `/customer`, `/technician`, `/meeting`, and
//! their shared scripts and styles under `/assets/<name>`. Plain HTML and ES modules from `src/web/`, no build
//! step. The pages talk to the relay through WebRTC (`POST /api/v1/rtc`, docs/PROTOCOL.md section 13) and to
//! the ticket API; every answer carries a strict Content-Security-Policy (scripts only from files of this
//! origin, no inline code), `Cache-Control: no-cache` and `X-Content-Type-Options: nosniff`.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{ApiError, ApiState};

/// What a page may load: everything from this origin only; media and images also from `blob:` (local
/// previews) and `data:` (images); no inline scripts or styles, no plugins, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The shared assets: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.css", CSS, include_bytes!("../web/app.css")),
    ("icon.svg", SVG, include_bytes!("../web/icon.svg")),
    ("protocol.js", JS, include_bytes!("../web/protocol.js")),
    ("rtc.js", JS, include_bytes!("../web/rtc.js")),
    ("board.js", JS, include_bytes!("../web/board.js")),
    ("ui.js", JS, include_bytes!("../web/ui.js")),
    ("customer.js", JS, include_bytes!("../web/customer.js")),
    ("technician.js", JS, include_bytes!("../web/technician.js")),
    ("meeting.js", JS, include_bytes!("../web/meeting.js")),
];

fn respond(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Page URLs may carry a code or token (`?code=`, `?token=`): never send them on as a referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

fn page(body: &'static str) -> Response {
    respond(HTML, body.as_bytes())
}

async fn index() -> Response {
    page(include_str!("../web/index.html"))
}

async fn customer() -> Response {
    page(include_str!("../web/customer.html"))
}

async fn technician() -> Response {
    page(include_str!("../web/technician.html"))
}

async fn meeting() -> Response {
    page(include_str!("../web/meeting.html"))
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, ct, body)| respond(ct, body))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset"))
}

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/customer", get(customer))
        .route("/technician", get(technician))
        .route("/meeting", get(meeting))
        .route("/assets/{name}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_loads_only_scripts_and_styles_that_are_served() {
        let pages = [
            include_str!("../web/index.html"),
            include_str!("../web/customer.html"),
            include_str!("../web/technician.html"),
            include_str!("../web/meeting.html"),
        ];
        for p in pages {
            for part in p.split("/assets/").skip(1) {
                let name = part.split('"').next().unwrap();
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == name),
                    "{name} is not served"
                );
            }
            assert!(!p.contains("<script>"), "no inline scripts (CSP)");
            assert!(!p.contains(" style="), "no inline styles (CSP)");
        }
        // Module imports between the scripts name served files too.
        for (name, _, body) in ASSETS.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            let text = std::str::from_utf8(body).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line.rsplit("./").next().unwrap();
                let target = target.trim_end_matches(['\'', '"', ';']);
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == target),
                    "{name} imports {target}, which is not served"
                );
            }
        }
    }
}
