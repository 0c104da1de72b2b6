//! The API's triggers: those the configuration declares, whether each fires, and the
//! admin's switch that turns one off (or on) without a release.
//!
//! `GET /bandits/api/triggers` lists them: `enabled` is whether the trigger fires now,
//! `enabled_in_configuration` what the configuration says, and `admin_switch` the admin's
//! switch (`true`, `false`, or `null` when none is set). A switch, when set, wins over the
//! configuration both ways. `PATCH /bandits/api/triggers/<name>` with `{"enabled": false}`
//! sets it, `{"enabled": null}` clears it; an undeclared trigger is 404.

use rocket::http::Status;
use rocket::serde::json::{Json, Value};
use rocket::{get, patch, routes, Route};
use serde::Serialize;

use crate::api::answer::{failure, invalid, to_json, Failure, JsonBody};
use crate::api::declared::Declared;
use crate::auth::Admin;
use crate::database::BanditsDatabase;
use crate::engine::partners::Trigger;
use crate::input::{parse_trigger_switch, store_status};
use crate::runtime::{reload, Reloader};
use crate::store::TriggerSwitch;

pub(crate) fn routes() -> Vec<Route> {
    routes![list, switch]
}

/// What fires a trigger from requests; code fires any enabled trigger by name.
#[derive(Serialize)]
struct FiredBy<'a> {
    method: Option<&'a str>,
    path: &'a str,
    status: Vec<String>,
}

#[derive(Serialize)]
struct TriggerAnswer<'a> {
    name: &'a str,
    /// Whether it fires now.
    enabled: bool,
    enabled_in_configuration: bool,
    /// `None`: no switch, the configuration decides.
    admin_switch: Option<bool>,
    /// `None`: only code fires it.
    requests: Option<FiredBy<'a>>,
}

impl<'a> TriggerAnswer<'a> {
    fn new(trigger: &'a Trigger, switches: &[TriggerSwitch]) -> Self {
        let switch = switches
            .iter()
            .find(|switch| switch.name == trigger.name())
            .map(|switch| switch.enabled);
        TriggerAnswer {
            name: trigger.name(),
            enabled: trigger.enabled_with(switch),
            enabled_in_configuration: trigger.enabled(),
            admin_switch: switch,
            requests: trigger
                .fired_by_request()
                .map(|(method, path, status)| FiredBy {
                    method,
                    path,
                    status: status.names(),
                }),
        }
    }
}

#[derive(Serialize)]
struct TriggerList<'a> {
    triggers: Vec<TriggerAnswer<'a>>,
}

async fn switches(db: &BanditsDatabase) -> Result<Vec<TriggerSwitch>, Failure> {
    db.store()
        .trigger_switches()
        .await
        .map_err(|error| failure(store_status(&error), error.to_string()))
}

#[get("/triggers")]
async fn list(
    _admin: Admin,
    db: &BanditsDatabase,
    declared: Declared,
) -> Result<Json<Value>, Failure> {
    let switches = switches(db).await?;
    let answer = TriggerList {
        triggers: declared
            .0
            .iter()
            .map(|trigger| TriggerAnswer::new(trigger, &switches))
            .collect(),
    };
    to_json(&answer)
}

/// Sets (`true`, `false`) or clears (`null`) the admin's switch of a declared trigger;
/// answers with the trigger as it now stands.
#[patch("/triggers/<name>", data = "<body>")]
async fn switch(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    declared: Declared,
    name: &str,
    body: JsonBody,
) -> Result<Json<Value>, Failure> {
    let Some(trigger) = declared.0.get(name) else {
        return Err(failure(
            Status::NotFound,
            format!("{name:?} is not a trigger declared in bandits.triggers"),
        ));
    };
    let enabled = parse_trigger_switch(body.0).map_err(invalid)?;
    let store = db.store();
    let changed = match enabled {
        Some(enabled) => store
            .set_trigger_switch(name, enabled, crate::clock::now_ms())
            .await
            .map(|_| ()),
        None => store.clear_trigger_switch(name).await.map(|_| ()),
    };
    changed.map_err(|error| failure(store_status(&error), error.to_string()))?;
    reload(live).await;
    let switches = switches(db).await?;
    to_json(&TriggerAnswer::new(trigger, &switches))
}
