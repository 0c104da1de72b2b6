//! The JSON API under `/bandits/api`: flags, their statistics, resets.
//!
//! The [`Bandits`](crate::Bandits) fairing mounts it. Every route needs
//! `Authorization: Bearer <admin token>` (the `bandits.admin_token`
//! configuration key) or the site's [`AdminCheck`]; without either, or with no token
//! configured, the answer is 401. A request that changes something, let in by the site's
//! check alone, from another site's page, is refused with 403 ([`Admin`]); a body must be
//! `Content-Type: application/json` (415). Answers carry `Cache-Control: no-store`.
//! Errors are JSON: `{"error": "...", "errors": [{"field": "policy.epsilon", "message":
//! "must be in [0, 1], got 3"}]}`, with 422 for invalid input (nothing is changed), 404
//! for an unknown flag, 409 for a name already taken, 503 when the database is away.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /bandits/api/flags` | every flag with its counters |
//! | `POST /bandits/api/flags` | creates a flag from its JSON definition (201) |
//! | `GET /bandits/api/flags/<name>` | one flag |
//! | `PUT /bandits/api/flags/<name>` | replaces its definition |
//! | `DELETE /bandits/api/flags/<name>` | deletes it with its counters and log (204) |
//! | `POST /bandits/api/flags/<name>/reset` | starts its experiment afresh |
//! | `GET /bandits/api/flags/<name>/stats` | rates, intervals, p-values, probability best, winner |
//! | `GET /bandits/api/status` | this instance: database reachable, counts waiting, writes so far |

use rocket::data::{self, Data, FromData};
use rocket::http::{Method, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{json, Json, Value};
use rocket::{catch, catchers, delete, get, post, put, routes, Catcher, Route};
use serde::Serialize;

use crate::config::Config;
use crate::database::BanditsDatabase;
use crate::engine::stats::{
    msprt_p_value, probability_best, student_t_test, wilson_interval, BetaPrior, Interval,
};
use crate::engine::{FlagDefinition, Policy, WinnerRule};
use crate::runtime::Shared;
use crate::store::{StoreError, StoredFlag};

/// Where the API is mounted.
pub const BASE: &str = crate::config::API_BASE;

/// The API's routes, to mount at [`BASE`].
pub fn routes() -> Vec<Route> {
    routes![list, create, read, update, remove, reset, stats, status]
}

/// JSON error bodies for everything under [`BASE`], to register there.
pub fn catchers() -> Vec<Catcher> {
    catchers![json_error]
}

/// The site's own answer to "is this request an admin's?", for sites that would rather
/// reuse their users than hand out the admin token. Managed as Rocket state; the token
/// still works beside it.
///
/// ```
/// use bandits::api::AdminCheck;
///
/// /// The site's own session check.
/// fn is_staff(request: &rocket::Request<'_>) -> bool {
///     # let _ = request;
///     // look up the signed-in user of this request
///     false
/// }
///
/// let rocket = rocket::build().manage(AdminCheck::new(is_staff));
/// ```
pub struct AdminCheck(Box<dyn Fn(&Request<'_>) -> bool + Send + Sync>);

impl AdminCheck {
    /// A check that opens the admin to requests for which `check` returns true.
    pub fn new(check: impl Fn(&Request<'_>) -> bool + Send + Sync + 'static) -> Self {
        AdminCheck(Box::new(check))
    }

    /// Whether `request` is an admin's.
    pub fn allows(&self, request: &Request<'_>) -> bool {
        (self.0)(request)
    }
}

/// A request from an admin: carrying the admin token, or passing the site's
/// [`AdminCheck`].
///
/// A site's check usually reads a cookie, which a browser also sends with requests another
/// site makes it send. So a request let in by the check alone may not change anything when
/// its `Sec-Fetch-Site` (or, without it, its `Origin`) says it comes from another site:
/// 403. The bearer token is never sent by a browser on its own, so it is let in from
/// anywhere. A request that changes something and says its body is not JSON is refused
/// with 415 whichever way it is let in.
pub struct Admin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let changes = !matches!(
            request.method(),
            Method::Get | Method::Head | Method::Options
        );
        let expected = request
            .rocket()
            .state::<Config>()
            .and_then(Config::admin_token);
        let presented = request
            .headers()
            .get_one("Authorization")
            .and_then(|header| header.strip_prefix("Bearer "))
            .map(str::trim);
        let by_token = match (expected, presented) {
            (Some(expected), Some(presented)) => {
                crate::secret::same_secret(presented, expected.expose())
            }
            _ => false,
        };
        let by_site = !by_token
            && request
                .rocket()
                .state::<AdminCheck>()
                .is_some_and(|check| check.allows(request));
        if !(by_token || by_site) {
            return Outcome::Error((Status::Unauthorized, ()));
        }
        if changes && by_site && from_another_site(request) {
            return Outcome::Error((Status::Forbidden, ()));
        }
        if changes && request.content_type().is_some_and(|kind| !kind.is_json()) {
            return Outcome::Error((Status::UnsupportedMediaType, ()));
        }
        Outcome::Success(Admin)
    }
}

/// Whether a browser says `request` was made by a page of another site: by
/// `Sec-Fetch-Site` (anything but `same-origin`, or `none` for one the user typed), or,
/// from browsers without it, by an `Origin` other than the request's own host. A request
/// with neither header is not a browser's cross-site request.
fn from_another_site(request: &Request<'_>) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get_one("Sec-Fetch-Site") {
        return !matches!(site.trim(), "same-origin" | "none");
    }
    let Some(origin) = headers.get_one("Origin") else {
        return false;
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    let host = headers.get_one("Host");
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host.trim()),
        // `Origin: null` (a sandboxed page, a redirect across sites), or no Host to compare.
        _ => true,
    }
}

/// A JSON request body: refused with 415 unless the request says `Content-Type:
/// application/json`, so that no HTML form of another site can send one.
pub(crate) struct JsonBody(Value);

#[rocket::async_trait]
impl<'r> FromData<'r> for JsonBody {
    type Error = String;

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        if !request.content_type().is_some_and(|kind| kind.is_json()) {
            return data::Outcome::Error((
                Status::UnsupportedMediaType,
                "send Content-Type: application/json".to_string(),
            ));
        }
        match Json::<Value>::from_data(request, data).await {
            data::Outcome::Success(Json(value)) => data::Outcome::Success(JsonBody(value)),
            data::Outcome::Error((status, error)) => {
                data::Outcome::Error((status, error.to_string()))
            }
            data::Outcome::Forward(forward) => data::Outcome::Forward(forward),
        }
    }
}

/// An error answer: a status and a JSON body.
type Failure = (Status, Json<Value>);

fn failure(status: Status, message: impl Into<String>) -> Failure {
    (
        status,
        Json(json!({ "error": message.into(), "errors": [] })),
    )
}

fn invalid(errors: Vec<(String, String)>) -> Failure {
    let fields: Vec<Value> = errors
        .iter()
        .map(|(field, message)| json!({ "field": field, "message": message }))
        .collect();
    let summary = errors
        .iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect::<Vec<_>>()
        .join("; ");
    (
        Status::UnprocessableEntity,
        Json(json!({ "error": summary, "errors": fields })),
    )
}

fn store_failure(error: StoreError) -> Failure {
    match error {
        StoreError::NotFound(name) => failure(Status::NotFound, format!("no flag named {name:?}")),
        StoreError::AlreadyExists(name) => failure(
            Status::Conflict,
            format!("a flag named {name:?} already exists"),
        ),
        StoreError::UnknownArm { arm, .. } => invalid(vec![(
            "arm".to_string(),
            format!("{arm:?} is not one of the flag's arms"),
        )]),
        other => failure(Status::ServiceUnavailable, other.to_string()),
    }
}

#[catch(default)]
fn json_error(status: Status, _request: &Request<'_>) -> Failure {
    let message = match status.code {
        401 => "send Authorization: Bearer <admin token>",
        403 => {
            "refused: a request from another site's page cannot change anything without \
             Authorization: Bearer <admin token>"
        }
        415 => "send Content-Type: application/json",
        _ => status.reason().unwrap_or("error"),
    };
    failure(status, message)
}

fn now() -> i64 {
    crate::clock::now_ms()
}

/// Problems with a flag's input: `(field, message)` pairs, fields named as in the JSON
/// (`policy.epsilon`, `arms[1].name`).
pub(crate) type FieldErrors = Vec<(String, String)>;

/// Reads and validates a flag from its JSON definition, naming the field of every
/// problem. `name_from_path` is the flag being replaced, if any (flags cannot be renamed).
/// The API and the admin's forms both go through here.
pub(crate) fn parse_flag(
    body: Value,
    name_from_path: Option<&str>,
) -> Result<crate::engine::Flag, FieldErrors> {
    let mut definition: FlagDefinition =
        serde_path_to_error::deserialize(body).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            vec![(field, error.inner().to_string())]
        })?;
    if let Some(name) = name_from_path {
        if definition.name.is_empty() {
            definition.name = name.to_string();
        } else if definition.name != name {
            return Err(vec![(
                "name".to_string(),
                format!("must be {name:?}, the flag in the path (flags cannot be renamed)"),
            )]);
        }
    }
    definition.validate().map_err(|invalid_flag| {
        invalid_flag
            .errors()
            .iter()
            .map(|e| (e.field.clone(), e.rule.to_string()))
            .collect()
    })
}

/// A stored flag as the API shows it: its definition, then its bookkeeping and counters.
fn flag_json(stored: &StoredFlag) -> Value {
    let totals: Vec<Value> = stored
        .flag
        .arms()
        .iter()
        .zip(&stored.totals)
        .map(|(arm, totals)| {
            json!({ "arm": arm.name, "views": totals.views, "conversions": totals.conversions })
        })
        .collect();
    json!({
        "flag": stored.flag.definition(),
        "epoch": stored.epoch,
        "winner_locked_at": stored.winner_locked_at,
        "created_at": stored.created_at,
        "updated_at": stored.updated_at,
        "totals": totals,
    })
}

/// This instance's flags in memory, when the fairing is attached. (Not `&State`: the API
/// also works mounted without the fairing, and `&State` would refuse to ignite then.)
pub(crate) struct Reloader(Option<std::sync::Arc<crate::runtime::Runtime>>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Reloader {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let runtime = request
            .rocket()
            .state::<Shared>()
            .map(|Shared(runtime)| runtime.clone());
        Outcome::Success(Reloader(runtime))
    }
}

/// Makes this instance's requests see a change at once (other instances see it after
/// their next flush). The change is saved either way; a failed reload is retried by the
/// flush loop.
pub(crate) async fn reload(live: Reloader) {
    if let Some(runtime) = live.0 {
        if let Err(error) = runtime.tracker.reload().await {
            log::warn!("rocket-bandits: saved, but could not reload the flags: {error}");
        }
    }
}

/// This instance's side of the plugin, for monitoring: whether its last round with the
/// database succeeded, what waits in memory for the next flush, and how many write
/// transactions it has committed (one per flush, however many requests it counted).
#[get("/status")]
fn status(_admin: Admin, live: Reloader) -> Json<Value> {
    let Some(runtime) = live.0 else {
        return Json(json!({ "attached": false }));
    };
    let tracker = &runtime.tracker;
    let (counters, events) = tracker.pending();
    Json(json!({
        "attached": true,
        "online": tracker.is_online(),
        "loaded": tracker.is_loaded(),
        "flags": tracker.snapshot().flags.len(),
        "flush_interval_ms": runtime.config.flush_interval().as_millis() as u64,
        "pending": {
            "counters": counters,
            "events": events,
            "event_bytes": tracker.pending_event_bytes(),
        },
        "dropped_events": tracker.dropped_events(),
        "write_transactions": tracker.write_transactions(),
        "failed_rounds": tracker.failed_rounds(),
    }))
}

#[get("/flags")]
async fn list(_admin: Admin, db: &BanditsDatabase) -> Result<Json<Value>, Failure> {
    let snapshot = db.store().snapshot().await.map_err(store_failure)?;
    let flags: Vec<Value> = snapshot.flags.iter().map(flag_json).collect();
    Ok(Json(json!({ "flags": flags })))
}

#[post("/flags", data = "<body>")]
async fn create(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    body: JsonBody,
) -> Result<(Status, Json<Value>), Failure> {
    let flag = parse_flag(body.0, None).map_err(invalid)?;
    let stored = db
        .store()
        .create_flag(&flag, now())
        .await
        .map_err(store_failure)?;
    reload(live).await;
    Ok((Status::Created, Json(flag_json(&stored))))
}

#[get("/flags/<name>")]
async fn read(_admin: Admin, db: &BanditsDatabase, name: &str) -> Result<Json<Value>, Failure> {
    let stored = db.store().flag(name).await.map_err(store_failure)?;
    Ok(Json(flag_json(&stored)))
}

#[put("/flags/<name>", data = "<body>")]
async fn update(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    name: &str,
    body: JsonBody,
) -> Result<Json<Value>, Failure> {
    let flag = parse_flag(body.0, Some(name)).map_err(invalid)?;
    let stored = db
        .store()
        .update_flag(&flag, now())
        .await
        .map_err(store_failure)?;
    reload(live).await;
    Ok(Json(flag_json(&stored)))
}

#[delete("/flags/<name>")]
async fn remove(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    name: &str,
) -> Result<Status, Failure> {
    db.store().delete_flag(name).await.map_err(store_failure)?;
    reload(live).await;
    Ok(Status::NoContent)
}

#[post("/flags/<name>/reset")]
async fn reset(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    name: &str,
) -> Result<Json<Value>, Failure> {
    let stored = db
        .store()
        .reset_flag(name, now())
        .await
        .map_err(store_failure)?;
    reload(live).await;
    Ok(Json(flag_json(&stored)))
}

#[get("/flags/<name>/stats")]
async fn stats(_admin: Admin, db: &BanditsDatabase, name: &str) -> Result<Json<Value>, Failure> {
    let stored = db.store().flag(name).await.map_err(store_failure)?;
    Ok(Json(json!(statistics(&stored))))
}

/// One arm's numbers on the statistics page and in the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmStatistics {
    /// The arm's name.
    pub arm: String,
    /// Visitors counted on it.
    pub views: u64,
    /// Of them, those who converted.
    pub conversions: u64,
    /// `conversions / views` (0 without views).
    pub rate: f64,
    /// The Wilson interval at the flag's confidence; none without views.
    pub interval: Option<Interval>,
    /// Two-sided p-value against the control, by the flag's winner rule (t-test, or the
    /// always-valid p-value of the sequential rule); none for the control.
    pub p_value_against_control: Option<f64>,
    /// The posterior probability that this arm is the best.
    pub probability_best: Option<f64>,
}

/// The locked winner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Winner {
    /// The arm's name.
    pub arm: Option<String>,
    /// When it was locked (milliseconds since the Unix epoch), if the rule locked it.
    pub locked_at: Option<i64>,
}

/// Everything the statistics page shows about a flag: the API's
/// `GET /bandits/api/flags/<name>/stats`, and the admin's flag page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statistics {
    /// The flag's name.
    pub flag: String,
    /// The flag's epoch (raised by every reset).
    pub epoch: i64,
    /// The policy, in words.
    pub policy: &'static str,
    /// The winner rule's name.
    pub winner_rule: &'static str,
    /// The winner rule in one sentence.
    pub rule: String,
    /// The intervals' confidence: `1 - significance_level`.
    pub confidence: f64,
    /// Per arm, in the flag's order (the control first).
    pub arms: Vec<ArmStatistics>,
    /// The locked winner, if any.
    pub winner: Option<Winner>,
}

/// Computes a flag's [`Statistics`].
pub fn statistics(stored: &StoredFlag) -> Statistics {
    let flag = &stored.flag;
    let totals = &stored.totals;
    let confidence = flag.confidence();
    let prior = match flag.policy() {
        Policy::Thompson { alpha, beta } => BetaPrior {
            alpha: *alpha,
            beta: *beta,
        },
        _ => BetaPrior::UNIFORM,
    };
    let best = probability_best(totals, prior).unwrap_or_default();
    let control = totals.first().copied().unwrap_or_default();
    let arms = flag
        .arms()
        .iter()
        .zip(totals)
        .enumerate()
        .map(|(i, (arm, &arm_totals))| {
            let p_value = if i == 0 {
                None
            } else {
                match flag.winner_rule() {
                    WinnerRule::Sequential { mixture_sd } => {
                        msprt_p_value(control, arm_totals, *mixture_sd)
                    }
                    _ => student_t_test(control, arm_totals).map(|t| t.p_value),
                }
            };
            ArmStatistics {
                arm: arm.name.clone(),
                views: arm_totals.views,
                conversions: arm_totals.conversions,
                rate: arm_totals.rate(),
                interval: wilson_interval(arm_totals, confidence),
                p_value_against_control: p_value,
                probability_best: best.get(i).copied(),
            }
        })
        .collect();
    let winner = flag.winner().map(|i| Winner {
        arm: flag.arms().get(i).map(|arm| arm.name.clone()),
        locked_at: stored.winner_locked_at,
    });
    Statistics {
        flag: flag.name().to_string(),
        epoch: stored.epoch,
        policy: flag.policy().label(),
        winner_rule: flag.winner_rule().label(),
        rule: flag.winner_rule().describe(
            flag.significance_level(),
            flag.min_views(),
            flag.arms().len(),
        ),
        confidence,
        arms,
        winner,
    }
}
