//! OpenFeature's remote evaluation protocol (OFREP), so that OpenFeature's own clients
//! (`@openfeature/ofrep-web-provider` in the browser, the OFREP providers of other SDKs)
//! read the browser-readable flags with no code of ours.
//!
//! An evaluation's `value` is whether the flag is active (a boolean), or, for a flag
//! whose arms carry payloads, the visitor's arm's payload (`{}` for an arm without one);
//! `variant` is the arm's name; `reason` is `SPLIT` for the bandit's choice, `STATIC` for
//! a locked winner or `everyone = true`, `DISABLED` for `everyone = false`,
//! `TARGETING_MATCH` for an arm asked for (testing, forced, pinned) and `DEFAULT` for the
//! control of a visitor left out (targeting, bots) or not given an arm. The visitor is
//! the visitor cookie; a `context.targetingKey`, if sent, must be the visitor's id.

use rocket::http::{Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{json, Json, Value};
use rocket::{post, routes, Responder, Route};

use super::evaluation::{BrowserVisit, Evaluated};
use super::Private;
use crate::engine::decision::Precedence;

/// The largest evaluation request body read.
const MAX_BODY: usize = 16 * 1024;

pub(super) fn routes() -> Vec<Route> {
    routes![bulk, single]
}

/// OFREP's `reason` for what decided the visitor's arm.
fn reason(evaluated: &Evaluated) -> &'static str {
    match evaluated.by {
        Precedence::Entered if evaluated.won => "STATIC",
        Precedence::Entered => "SPLIT",
        Precedence::Everyone if evaluated.flag.active => "STATIC",
        Precedence::Everyone => "DISABLED",
        Precedence::Pinned | Precedence::Forced | Precedence::Testing => "TARGETING_MATCH",
        Precedence::Excluded | Precedence::TargetedOut | Precedence::Offline => "DEFAULT",
    }
}

/// An evaluation's answer: OFREP's `evaluationSuccess`.
fn success(evaluated: &Evaluated) -> Value {
    let value = if evaluated.has_payloads {
        evaluated.flag.payload.clone().unwrap_or_else(|| json!({}))
    } else {
        Value::Bool(evaluated.flag.active)
    };
    json!({
        "key": evaluated.name,
        "value": value,
        "variant": evaluated.flag.variant,
        "reason": reason(evaluated),
        "metadata": {
            "control": evaluated.control,
            "policy": evaluated.policy,
        },
    })
}

/// OFREP's failure body.
fn failure(status: Status, key: Option<&str>, code: &str, details: &str) -> OfrepFailure {
    let mut body = json!({ "errorCode": code, "errorDetails": details });
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    (status, Json(body))
}

type OfrepFailure = (Status, Json<Value>);

/// The request body's `context`, read and checked: an object, and its `targetingKey`,
/// if any, the visitor's id. `Err` holds the details of `INVALID_CONTEXT` or
/// `PARSE_ERROR`.
struct Context(Result<(), (&'static str, String)>);

#[rocket::async_trait]
impl<'r> rocket::data::FromData<'r> for Context {
    type Error = std::convert::Infallible;

    async fn from_data(
        request: &'r Request<'_>,
        data: rocket::Data<'r>,
    ) -> rocket::data::Outcome<'r, Self> {
        let read = data
            .open(rocket::data::ByteUnit::from(MAX_BODY))
            .into_bytes()
            .await;
        let outcome = match read {
            Ok(read) if read.is_complete() => check_context(request, &read.into_inner()),
            Ok(_) => Err(("PARSE_ERROR", format!("the body is over {MAX_BODY} bytes"))),
            Err(error) => Err((
                "PARSE_ERROR",
                format!("the body could not be read: {error}"),
            )),
        };
        rocket::data::Outcome::Success(Context(outcome))
    }
}

fn check_context(request: &Request<'_>, body: &[u8]) -> Result<(), (&'static str, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    if !request.content_type().is_some_and(|kind| kind.is_json()) {
        return Err((
            "PARSE_ERROR",
            "the body must be JSON (Content-Type: application/json)".to_string(),
        ));
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|error| ("PARSE_ERROR", format!("the body is not JSON: {error}")))?;
    let context = match body.get("context") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(context)) => context,
        Some(_) => return Err(("INVALID_CONTEXT", "context must be an object".to_string())),
    };
    match context.get("targetingKey") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(key)) => {
            let visitor = crate::visit::VisitSlot::of(request)
                .filter(|visit| visit.is_known())
                .map(|visit| visit.visitor_id());
            if visitor.as_deref() == Some(key.as_str()) {
                Ok(())
            } else {
                Err((
                    "INVALID_CONTEXT",
                    "targetingKey must be the visitor's id: in the browser the visitor is the \
                     visitor cookie; leave targetingKey out"
                        .to_string(),
                ))
            }
        }
        Some(_) => Err((
            "INVALID_CONTEXT",
            "targetingKey must be a string".to_string(),
        )),
    }
}

/// `If-None-Match` of the request: whether it names `etag` (or `*`).
struct IfNoneMatch(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IfNoneMatch {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let value = request
            .headers()
            .get_one("If-None-Match")
            .map(str::to_string);
        Outcome::Success(IfNoneMatch(value))
    }
}

impl IfNoneMatch {
    fn matches(&self, etag: &str) -> bool {
        let Some(value) = &self.0 else {
            return false;
        };
        value.split(',').map(str::trim).any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        })
    }
}

#[derive(Responder)]
enum Bulk {
    Evaluated(Private<Json<Value>>, Header<'static>),
    #[response(status = 304)]
    NotModified((), Header<'static>, Header<'static>),
    Failed(OfrepFailure),
}

/// Every browser-readable flag for the visitor. The `ETag` is a digest of the answer: a
/// client sending it back in `If-None-Match` gets 304 while nothing changed for it.
#[post("/evaluate/flags", data = "<context>")]
fn bulk(browser: BrowserVisit<'_>, if_none_match: IfNoneMatch, context: Context) -> Bulk {
    if browser.made_by_another_site() {
        return Bulk::Failed(failure(
            Status::Forbidden,
            None,
            "GENERAL",
            "flags are evaluated for this site's own pages only",
        ));
    }
    if let Err((code, details)) = context.0 {
        return Bulk::Failed(failure(Status::BadRequest, None, code, &details));
    }
    let flags = match browser.evaluate_all() {
        Ok(flags) => flags,
        Err((status, Json(body))) => {
            let details = body["error"].as_str().unwrap_or("bad request").to_string();
            return Bulk::Failed(failure(status, None, "GENERAL", &details));
        }
    };
    let answer = json!({ "flags": flags.iter().map(success).collect::<Vec<_>>() });
    let etag = format!(
        "\"{}\"",
        &crate::secret::digest_hex(&answer.to_string())[..32]
    );
    if if_none_match.matches(&etag) {
        return Bulk::NotModified(
            (),
            Header::new("ETag", etag),
            Header::new("Cache-Control", "private, no-store"),
        );
    }
    Bulk::Evaluated(Private::new(Json(answer)), Header::new("ETag", etag))
}

/// Flag `key` for the visitor; `FLAG_NOT_FOUND` (404) for a flag that does not exist or
/// that the browser may not read.
#[post("/evaluate/flags/<key>", data = "<context>")]
fn single(
    browser: BrowserVisit<'_>,
    key: &str,
    context: Context,
) -> Result<Private<Json<Value>>, OfrepFailure> {
    if browser.made_by_another_site() {
        return Err(failure(
            Status::Forbidden,
            Some(key),
            "GENERAL",
            "flags are evaluated for this site's own pages only",
        ));
    }
    if let Err((code, details)) = context.0 {
        return Err(failure(Status::BadRequest, Some(key), code, &details));
    }
    let Some(evaluated) = browser.evaluate(key) else {
        return Err(failure(
            Status::NotFound,
            Some(key),
            "FLAG_NOT_FOUND",
            &format!("no flag {key:?} the browser may read"),
        ));
    };
    let mut answer = success(&evaluated);
    answer["cacheable"] = Value::Bool(false);
    Ok(Private::new(Json(answer)))
}

#[cfg(test)]
mod tests {
    use super::IfNoneMatch;

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_any() {
        let etag = "\"abc\"";
        assert!(IfNoneMatch(Some("\"abc\"".into())).matches(etag));
        assert!(IfNoneMatch(Some("\"x\", W/\"abc\"".into())).matches(etag));
        assert!(IfNoneMatch(Some("*".into())).matches(etag));
        assert!(!IfNoneMatch(Some("\"abd\"".into())).matches(etag));
        assert!(!IfNoneMatch(None).matches(etag));
    }
}
