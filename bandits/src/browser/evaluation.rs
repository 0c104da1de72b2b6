//! The visitor's browser-readable flags, decided by the visit: the request guard the
//! browser's endpoints share, and what they answer.

use std::sync::Arc;

use rocket::http::{CookieJar, Method, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{json, Value};
use serde::Serialize;

use super::{refusal, Refusal};
use crate::engine::check_name;
use crate::engine::decision::Precedence;
use crate::runtime::Shared;
use crate::track::Live;
use crate::visit::Visit;

/// The longest `?page=` taken, in bytes.
pub const MAX_PAGE_LEN: usize = 512;

/// One flag as the browser reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrowserFlag {
    /// The visitor's arm.
    pub variant: String,
    /// Whether the arm is not the control.
    pub active: bool,
    /// The arm's payload, if it has one.
    pub payload: Option<Value>,
}

/// A browser-readable flag as the visit decided it, with what OpenFeature's answer needs.
pub(crate) struct Evaluated {
    pub(crate) name: String,
    pub(crate) flag: BrowserFlag,
    /// The rule that decided.
    pub(crate) by: Precedence,
    /// The flag has a locked winner.
    pub(crate) won: bool,
    /// Some arm of the flag carries a payload.
    pub(crate) has_payloads: bool,
    pub(crate) control: String,
    pub(crate) policy: &'static str,
}

/// The visit of a browser endpoint's request, with the page (`?page=` of a `GET`) it
/// stands for. Never fails: a problem is kept for the handler to answer.
pub(crate) struct BrowserVisit<'r> {
    visit: Option<Arc<Visit>>,
    jar: &'r CookieJar<'r>,
    page: Result<Option<String>, Refusal>,
    another_site: bool,
}

/// `?page=` of `request`, if it has one that a path can be: a leading `/`, at most
/// [`MAX_PAGE_LEN`] bytes, no control characters.
fn page_of(request: &Request<'_>) -> Result<Option<String>, Refusal> {
    if request.method() != Method::Get {
        return Ok(None);
    }
    let Some(page) = request.query_value::<String>("page") else {
        return Ok(None);
    };
    let problem = |message: &str| refusal(Status::UnprocessableEntity, Some("page"), message);
    let page = page.map_err(|_| problem("must be text"))?;
    if !page.starts_with('/') {
        return Err(problem("must be a path starting with /"));
    }
    if page.len() > MAX_PAGE_LEN {
        return Err(problem(&format!("must be at most {MAX_PAGE_LEN} bytes")));
    }
    if page.chars().any(char::is_control) {
        return Err(problem("must not hold control characters"));
    }
    Ok(Some(page))
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BrowserVisit<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let page = page_of(request);
        let visit = request.rocket().state::<Shared>().map(|Shared(runtime)| {
            let counted = page.as_ref().ok().and_then(Option::as_deref);
            Arc::clone(Visit::of_browser(request, runtime, counted))
        });
        Outcome::Success(BrowserVisit {
            visit,
            jar: request.cookies(),
            page,
            another_site: crate::auth::from_another_site(request),
        })
    }
}

impl BrowserVisit<'_> {
    /// Whether the browser says another site's page made the request.
    pub(crate) fn made_by_another_site(&self) -> bool {
        self.another_site
    }

    /// The flags the browser may read, each as the visitor sees it (given an arm if they
    /// have none), after the page of `?page=` counted as visited. The visitor cookie is
    /// written if it changed.
    pub(crate) fn evaluate_all(&self) -> Result<Vec<Evaluated>, Refusal> {
        let page = self.page.clone()?;
        let Some(visit) = &self.visit else {
            return Ok(Vec::new());
        };
        let live = visit.runtime().tracker.live();
        if let Some(page) = page.as_deref().and_then(|page| live.page(page)) {
            visit.on_page(&live, page);
        }
        let flags = client_side(visit, &live);
        visit.persist(self.jar);
        Ok(flags)
    }

    /// Flag `name` as the visitor sees it; `None` when there is no such flag the browser
    /// may read.
    pub(crate) fn evaluate(&self, name: &str) -> Option<Evaluated> {
        let visit = self.visit.as_ref()?;
        let live = visit.runtime().tracker.live();
        let stored = live.flag(name).filter(|stored| stored.flag.client_side())?;
        let evaluated = evaluate(visit, &live, stored);
        visit.persist(self.jar);
        Some(evaluated)
    }

    /// Counts the goal event `event` for the visitor; returns how many flags converted.
    pub(crate) fn convert(&self, event: &str) -> usize {
        let Some(visit) = &self.visit else {
            return 0;
        };
        let converted = visit.convert(&visit.runtime().tracker.live(), event);
        visit.persist(self.jar);
        converted
    }
}

/// The `{"flags": {...}}` of `flags.json` for `visit`, with no page counted: for a page
/// rendered on the server that carries its flags to its script
/// ([`VisitorFlags::browser_flags`](crate::VisitorFlags::browser_flags)).
pub(crate) fn flags_of(visit: &Visit) -> Value {
    flags_object(&client_side(visit, &visit.runtime().tracker.live()))
}

/// Every flag of `live` the browser may read, as `visit` sees it.
fn client_side(visit: &Visit, live: &Arc<Live>) -> Vec<Evaluated> {
    live.snapshot()
        .flags
        .iter()
        .filter(|stored| stored.flag.client_side())
        .map(|stored| evaluate(visit, live, stored))
        .collect()
}

fn evaluate(visit: &Visit, live: &Arc<Live>, stored: &crate::store::StoredFlag) -> Evaluated {
    let flag = &stored.flag;
    // As the `Flags` guard reads: a view counts here only for a flag without a page.
    let expose = flag.source_path().is_none();
    let index = visit.arm(live, stored, expose).index;
    let arm = &flag.arms()[index];
    Evaluated {
        name: flag.name().to_string(),
        flag: BrowserFlag {
            variant: arm.name.clone(),
            active: index != 0,
            payload: arm.payload.clone(),
        },
        by: visit.precedence(stored),
        won: flag.winner().is_some(),
        has_payloads: flag.arms().iter().any(|arm| arm.payload.is_some()),
        control: flag.control().name.clone(),
        policy: flag.policy().label(),
    }
}

/// `{"flags": {"<name>": {"variant", "active", "payload"}}}`.
pub(crate) fn flags_object(flags: &[Evaluated]) -> Value {
    let map: serde_json::Map<String, Value> = flags
        .iter()
        .map(|evaluated| (evaluated.name.clone(), json!(evaluated.flag)))
        .collect();
    json!({ "flags": map })
}

/// The goal event of a `POST /bandits/convert` body: `{"event": "<name>"}`.
pub(crate) fn event_of(body: &[u8]) -> Result<String, Refusal> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        event: String,
    }
    let body: Body = serde_json::from_slice(body).map_err(|error| {
        refusal(
            Status::UnprocessableEntity,
            Some("event"),
            &format!("the body must be {{\"event\": \"<name>\"}}: {error}"),
        )
    })?;
    check_name(&body.event).map_err(|rule| {
        refusal(
            Status::UnprocessableEntity,
            Some("event"),
            &format!("event {rule}"),
        )
    })?;
    Ok(body.event)
}
