//! The JSON API under `/bandits/api`: flags, their statistics, resets; referral partners.
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
//! | `GET /bandits/api/flags/<name>/stats` | rates, intervals, p-values, probability best, winner; with `?by=partner`, also per arm per referral partner (and no partner) |
//! | `GET /bandits/api/flags/<name>/events` | its activity log, oldest first, streamed as CSV (`?format=csv`, the default) or NDJSON (`?format=ndjson`), between `?from=` and `?to=` (milliseconds since the Unix epoch); columns `id, at, visitor, kind, epoch, arm, propensity, path, partner, flag` |
//! | `GET /bandits/api/status` | this instance: database reachable, counts, referrals and firings waiting, writes so far |
//! | `GET`, `POST /bandits/api/partners` | referral partners with their counts; creates one (201) |
//! | `GET`, `PUT`, `PATCH /bandits/api/partners/<uid>` | one partner with its subscriptions, referred visitors and callbacks; edits it (`DELETE` is refused with 405: deactivate instead) |
//! | `POST /bandits/api/partners/<uid>/subscriptions`, `PUT`, `DELETE .../<id>` | its subscriptions |
//! | `POST /bandits/api/partners/<uid>/deliveries/<event_id>/retry` | "retry now" (409 once delivered) |
//! | `GET /bandits/api/triggers` | the configured triggers, what fires them, whether each fires now and the admin's switch |
//! | `PATCH /bandits/api/triggers/<name>` | `{"enabled": false}` switches a trigger off whatever the configuration says, `true` on, `null` hands it back to the configuration |

use rocket::http::Status;
use rocket::request::Request;
use rocket::serde::json::{json, Json, Value};
use rocket::{catch, catchers, delete, get, post, put, routes, Catcher, Route};

use crate::api::answer::{failure, invalid, Failure, JsonBody};
use crate::database::BanditsDatabase;
use crate::engine::{FieldError, Rule};
use crate::input::{parse_flag, store_status};
use crate::runtime::{reload, Reloader};
use crate::store::{StoreError, StoredFlag};

/// Where the API is mounted.
pub const BASE: &str = crate::config::API_BASE;

/// The API's routes, to mount at [`BASE`].
pub fn routes() -> Vec<Route> {
    let mut routes = routes![list, create, read, update, remove, reset, stats, status];
    routes.extend(routes![export::events]);
    routes.extend(crate::api::partners::routes());
    routes.extend(crate::api::triggers::routes());
    routes
}

/// JSON error bodies for everything under [`BASE`], to register there.
pub fn catchers() -> Vec<Catcher> {
    catchers![json_error]
}

pub use crate::auth::{Admin, AdminCheck};

mod answer;
mod declared;
mod export;
mod partners;
mod triggers;

fn store_failure(error: StoreError) -> Failure {
    match &error {
        StoreError::UnknownArm { arm, .. } => invalid(vec![FieldError::new(
            "arm",
            Rule::UnknownArm { name: arm.clone() },
        )]),
        StoreError::NotFound(name) => {
            failure(store_status(&error), format!("no flag named {name:?}"))
        }
        StoreError::AlreadyExists(name) => failure(
            store_status(&error),
            format!("a flag named {name:?} already exists"),
        ),
        other => failure(store_status(other), other.to_string()),
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

/// A stored flag as the API shows it: its definition, then its bookkeeping and counters.
/// The command line's `flags list --json` and `flags show --json` print the same.
pub(crate) fn flag_json(stored: &StoredFlag) -> Value {
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
    let (referrals, firings) = tracker.pending_partner_rows();
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
            "referrals": referrals,
            "firings": firings,
        },
        "dropped_events": tracker.dropped_events(),
        "dropped_partner_rows": tracker.dropped_partner_rows(),
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

/// A flag's statistics; with `?by=partner`, also split by the partner who referred its
/// visitors (`by_partner`: one segment per partner, with its name, then `"partner":
/// null` for visitors of no partner).
#[get("/flags/<name>/stats?<by>")]
async fn stats(
    _admin: Admin,
    db: &BanditsDatabase,
    name: &str,
    by: Option<&str>,
) -> Result<Json<Value>, Failure> {
    let by_partner = match by {
        None => false,
        Some("partner") => true,
        Some(other) => {
            return Err(invalid(vec![FieldError::new(
                "by",
                Rule::Unreadable {
                    message: format!("must be \"partner\", got {other:?}"),
                },
            )]))
        }
    };
    let store = db.store();
    let stored = store.flag(name).await.map_err(store_failure)?;
    let mut answer = json!(stored.statistics());
    if by_partner {
        let segments = store.partner_split(&stored).await.map_err(store_failure)?;
        answer["by_partner"] = json!(segments);
    }
    Ok(Json(answer))
}

pub use crate::engine::report::{ArmStatistics, Statistics, Winner};
