//! The admin's triggers: those the configuration declares, what fires each, and the
//! switch that turns one off (or on) without a release. A switch, when set, wins over the
//! configuration both ways; "use configuration" clears it.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::{json, Value};
use rocket::{get, post, routes, Route};

use super::session::{Checked, WithCsrf};
use super::AdminPage;
use crate::clock::now_ms;
use crate::input::{parse_trigger_switch, store_status};
use crate::runtime::Reloader;

pub(super) fn routes() -> Vec<Route> {
    routes![list, switch]
}

/// One of the triggers page's buttons: switch trigger `name` on (`enabled=true`), off
/// (`false`), or back to the configuration (empty).
#[derive(Debug, Clone, Default, FromForm)]
struct SwitchForm {
    csrf: Option<String>,
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    enabled: String,
}

impl SwitchForm {
    /// The body the API would take: `true` and `false` as booleans, empty as `null`,
    /// anything else as the text sent (which the API's reader refuses, naming the field).
    fn to_json(&self) -> Value {
        let enabled = match self.enabled.as_str() {
            "true" => json!(true),
            "false" => json!(false),
            "" => Value::Null,
            other => json!(other),
        };
        json!({ "enabled": enabled })
    }
}

impl WithCsrf for SwitchForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[get("/triggers")]
async fn list(admin: AdminPage<'_>) -> Result<maud::Markup, Status> {
    let switches = admin
        .store()
        .trigger_switches()
        .await
        .map_err(|error| store_status(&error))?;
    Ok(admin
        .page("Triggers")
        .triggers(admin.csrf(), admin.config.triggers(), &switches))
}

/// Sets or clears the switch of the trigger the form names; 404 for one the
/// configuration does not declare, 422 for a value other than on, off or cleared.
#[post("/triggers", data = "<form>")]
async fn switch(
    admin: AdminPage<'_>,
    live: Reloader,
    form: Checked<SwitchForm>,
) -> Result<Redirect, (Status, maud::Markup)> {
    let form = form.0;
    if admin.config.triggers().get(&form.name).is_none() {
        return Err((
            Status::NotFound,
            admin
                .page("Not Found")
                .message("The configuration declares no such trigger."),
        ));
    }
    let enabled = parse_trigger_switch(form.to_json()).map_err(|errors| {
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        (
            Status::UnprocessableEntity,
            admin
                .page("Not switched")
                .message(&format!("Nothing was changed: {}", problems.join("; "))),
        )
    })?;
    let store = admin.store();
    let changed = match enabled {
        Some(enabled) => store
            .set_trigger_switch(&form.name, enabled, now_ms())
            .await
            .map(|_| ()),
        None => store.clear_trigger_switch(&form.name).await.map(|_| ()),
    };
    admin
        .changed(changed, live, "/triggers")
        .await
        .map_err(|status| {
            (
                status,
                admin
                    .page("Not switched")
                    .message("The database is unreachable. Try again later."),
            )
        })
}
