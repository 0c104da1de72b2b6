//! Flags in the browser: a second adapter of the visit decision, so that an arm read by a
//! page's script is the arm the server, the templates and the counters see.
//!
//! Only flags whose definition says `client_side: true` are listed; the others do not
//! exist for the browser (OpenFeature answers `FLAG_NOT_FOUND`), so internal experiments
//! and their payloads stay on the server. The visitor is the visitor cookie, as on every
//! page: a request without it is a new visitor, given arms (and the cookie) the way a read
//! in code gives them.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /bandits/flags.json` | the visitor's browser-readable flags: `{"flags": {"<name>": {"variant", "active", "payload"}}}` |
//! | `GET /bandits/flags.js` | the same as a script defining `window.bandits` |
//! | `POST /bandits/convert` | `{"event": "buy"}`: the goal event, as `flags.convert("buy")` counts it |
//! | `POST /ofrep/v1/evaluate/flags` | OpenFeature's bulk evaluation (`ETag`, `If-None-Match`: 304) |
//! | `POST /ofrep/v1/evaluate/flags/<key>` | OpenFeature's evaluation of one flag |
//!
//! `?page=/pricing` on `flags.json` or `flags.js` makes the call count as a visit of
//! `/pricing` (views of the flags shown there, conversions of those whose goal page it
//! is), for pages rendered in the browser. Without it, a read counts a view only of flags
//! without a source path, as a read in code does. The answers carry `Cache-Control:
//! private, no-store` and `Vary: Cookie`: they are one visitor's.
//!
//! Requests that change something (`convert`, and OpenFeature's evaluations, which give
//! arms and count views) are refused with 403 when the browser says another site's page
//! made them (`Sec-Fetch-Site`, or `Origin` against `Host`).

mod evaluation;
mod ofrep;
mod script;

use rocket::http::{ContentType, Header, Status};
use rocket::serde::json::{json, Json, Value};
use rocket::{get, post, routes, Responder, Route};

pub(crate) use evaluation::{flags_of, BrowserVisit};
pub use evaluation::{BrowserFlag, MAX_PAGE_LEN};
pub use script::{inline_script, script};

/// Where `flags.json`, `flags.js` and `convert` are mounted.
pub const BASE: &str = "/bandits";
/// Where OpenFeature's remote evaluation protocol is mounted.
pub const OFREP_BASE: &str = "/ofrep/v1";
/// The largest body `POST /bandits/convert` reads.
pub const MAX_CONVERT_BODY: usize = 1024;

/// The routes of `flags.json`, `flags.js` and `convert`, to mount at [`BASE`].
pub fn routes() -> Vec<Route> {
    routes![flags_json, flags_js, convert]
}

/// OpenFeature's evaluation routes, to mount at [`OFREP_BASE`].
pub fn ofrep_routes() -> Vec<Route> {
    ofrep::routes()
}

/// One visitor's answer: never kept by a shared cache, nor by the browser's.
#[derive(Responder)]
pub(crate) struct Private<T> {
    inner: T,
    cache: Header<'static>,
    vary: Header<'static>,
}

impl<T> Private<T> {
    pub(crate) fn new(inner: T) -> Self {
        Private {
            inner,
            cache: Header::new("Cache-Control", "private, no-store"),
            vary: Header::new("Vary", "Cookie"),
        }
    }
}

/// A refusal: its status and `{"error": "..."}`, with the field named when there is one.
pub(crate) type Refusal = (Status, Json<Value>);

pub(crate) fn refusal(status: Status, field: Option<&str>, message: &str) -> Refusal {
    let errors = match field {
        Some(field) => json!([{ "field": field, "message": message }]),
        None => json!([]),
    };
    (status, Json(json!({ "error": message, "errors": errors })))
}

/// The visitor's browser-readable flags as JSON.
#[get("/flags.json")]
fn flags_json(browser: BrowserVisit<'_>) -> Result<Private<Json<Value>>, Refusal> {
    let flags = browser.evaluate_all()?;
    Ok(Private::new(Json(evaluation::flags_object(&flags))))
}

/// The same as a script defining `window.bandits`.
#[get("/flags.js")]
fn flags_js(browser: BrowserVisit<'_>) -> Result<Private<(ContentType, String)>, Refusal> {
    let flags = browser.evaluate_all()?;
    Ok(Private::new((
        ContentType::JavaScript,
        script(&evaluation::flags_object(&flags)),
    )))
}

/// The goal event `event` from the browser: a conversion of every flag whose goal event it
/// is and that the visitor was counted in, once per visitor and flag.
#[post("/convert", data = "<body>")]
async fn convert(
    browser: BrowserVisit<'_>,
    content_type: Option<&ContentType>,
    body: rocket::Data<'_>,
) -> Result<Private<Json<Value>>, Refusal> {
    if browser.made_by_another_site() {
        return Err(refusal(
            Status::Forbidden,
            None,
            "conversions are counted from this site's own pages only",
        ));
    }
    if !content_type.is_some_and(|kind| kind.is_json()) {
        return Err(refusal(
            Status::UnsupportedMediaType,
            None,
            "the body must be JSON (Content-Type: application/json): {\"event\": \"...\"}",
        ));
    }
    let read = body
        .open(rocket::data::ByteUnit::from(MAX_CONVERT_BODY))
        .into_bytes()
        .await
        .map_err(|_| refusal(Status::BadRequest, None, "the body could not be read"))?;
    if !read.is_complete() {
        return Err(refusal(
            Status::PayloadTooLarge,
            None,
            &format!("the body is over {MAX_CONVERT_BODY} bytes"),
        ));
    }
    let event = evaluation::event_of(&read.into_inner())?;
    let converted = browser.convert(&event);
    Ok(Private::new(Json(json!({ "converted": converted }))))
}
