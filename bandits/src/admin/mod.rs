//! The admin pages under `/bandits/admin` (`bandits.admin_prefix`): sign-in, the flags,
//! the activity log, referral partners (`/partners`) and the triggers' switches
//! (`/triggers`). They read and change the data through the same store as the JSON API,
//! and validate input with the same code.
//!
//! **Access.** A request may use the admin when the site's [`AdminCheck`] accepts it, or
//! when it carries a signed-in admin session: the private cookie `bandits_admin`, set by the
//! sign-in form after the admin token or the admin password (`bandits.admin_token`,
//! `bandits.admin_password`) was entered. The cookie holds a random session id and a keyed
//! digest of the secret that opened it; the session is valid while that secret is still
//! configured and the database holds the id (signing out deletes it, for every instance),
//! for 12 hours at most. Secrets are compared as fixed-length digests in constant time. A
//! client (the connection's address, or `bandits.admin_client_ip_header` behind a proxy)
//! gets 5 failed attempts per 15 minutes. Without access, every admin page, GET or POST,
//! redirects to the sign-in page.
//!
//! **CSRF.** The session cookie carries a random token; every form carries it too, and a
//! POST whose token is missing or wrong is refused with 403 before its handler runs (the
//! [`Checked`](session::Checked) data guard).

mod charts;
mod dates;
mod form;
mod limiter;
mod pages;
mod partner_form;
mod partners;
mod session;
mod triggers;

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Redirect;
use rocket::{catch, catchers, get, post, routes, Catcher, Route, State};

use crate::clock::now_ms;
use crate::config::Config;
use crate::database::BanditsDatabase;
use crate::engine::{FieldError, Rule};
use crate::input::store_status;
use crate::runtime::{reload, Reloader};
use crate::secret;
use crate::store::ADMIN_SESSION_MS;
use form::FlagForm;
use limiter::Client;
pub(crate) use limiter::SignInLimiter;
pub use limiter::{FAILURE_WINDOW_MS, MAX_FAILED_SIGN_INS};
use pages::Page;
use session::{config, Checked, Sessions, SignedIn, WithCsrf};
pub use session::{AdminAccess, SESSION_COOKIE};

/// The admin's routes, to mount at the admin prefix.
pub fn routes() -> Vec<Route> {
    let mut routes = routes![
        sign_in_form,
        sign_in,
        sign_out,
        flags,
        flag_page,
        export_log,
        confirm,
        act,
        activity,
        new_form,
        create,
        edit_form,
        update
    ];
    routes.extend(partners::routes());
    routes.extend(triggers::routes());
    routes
}

/// The admin's catchers, to register at the admin prefix: no access sends to the sign-in
/// page; other errors get a page of the admin's look.
pub fn catchers() -> Vec<Catcher> {
    catchers![to_sign_in, error_page]
}

#[catch(401)]
fn to_sign_in(request: &Request<'_>) -> Redirect {
    Redirect::to(format!("{}/login", config(request).admin_prefix()))
}

#[catch(default)]
fn error_page(status: Status, request: &Request<'_>) -> (Status, maud::Markup) {
    let message = match status.code {
        403 => "This form has expired or did not come from the admin. Go back, reload the page and try again.",
        404 => "There is no such admin page.",
        429 => "Too many failed sign-ins from this address; try again in 15 minutes.",
        _ => "Something went wrong.",
    };
    let config = config(request);
    let page = Page::new(&config, status.reason().unwrap_or("Error"));
    (status, page.message(message))
}

/// Fields are optional so that a missing one is refused by [`Checked`] (403 for the CSRF
/// token) or the handler, not by form parsing.
#[derive(FromForm)]
struct SignIn<'r> {
    secret: Option<&'r str>,
    csrf: Option<&'r str>,
}

#[derive(FromForm)]
struct CsrfOnly<'r> {
    csrf: Option<&'r str>,
}

impl WithCsrf for SignIn<'_> {
    fn csrf(&self) -> Option<&str> {
        self.csrf
    }
}

impl WithCsrf for CsrfOnly<'_> {
    fn csrf(&self) -> Option<&str> {
        self.csrf
    }
}

impl WithCsrf for FlagForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[get("/login")]
fn sign_in_form(config: &State<Config>, sessions: Sessions<'_>) -> maud::Markup {
    Page::new(config, "Sign in").sign_in(sessions.csrf(), None)
}

#[post("/login", data = "<form>")]
async fn sign_in(
    config: &State<Config>,
    client: Client,
    sessions: Sessions<'_>,
    limiter: &State<SignInLimiter>,
    db: &BanditsDatabase,
    form: Checked<SignIn<'_>>,
) -> Result<Redirect, (Status, maud::Markup)> {
    let page = Page::new(config, "Sign in");
    let now = now_ms();
    if limiter.blocked(client, now) {
        return Err((
            Status::TooManyRequests,
            page.sign_in(
                sessions.csrf(),
                Some("Too many failed sign-ins from this address; try again in 15 minutes."),
            ),
        ));
    }
    let presented = form.0.secret.unwrap_or_default();
    let matches = |secret: Option<&'_ crate::config::AdminToken>| {
        secret
            .filter(|secret| secret::same_secret(presented, secret.expose()))
            .map(|secret| secret.expose().to_string())
    };
    // Both comparisons run, so the time taken does not tell which secret is set.
    let by_token = matches(config.admin_token());
    let by_password = matches(config.admin_password());
    let Some(opened_with) = by_token.or(by_password) else {
        limiter.failed(client, now);
        return Err((
            Status::Unauthorized,
            page.sign_in(sessions.csrf(), Some("Wrong token or password.")),
        ));
    };
    limiter.succeeded(client);
    let id = secret::random_id();
    let opened = db
        .store()
        .open_admin_session(
            &secret::digest_hex(&id),
            now,
            now.saturating_add(ADMIN_SESSION_MS),
        )
        .await;
    if let Err(error) = opened {
        log::warn!("rocket-bandits: cannot open an admin session: {error}");
        return Err((
            Status::ServiceUnavailable,
            page.message("The database is unreachable, and signing in needs it. Try again later."),
        ));
    }
    let digest = secret::session_digest(&opened_with, &id);
    sessions.sign_in(SignedIn { id, digest });
    Ok(Redirect::to(format!("{}/", config.admin_prefix())))
}

#[post("/logout", data = "<_form>")]
async fn sign_out(
    access: AdminAccess,
    config: &State<Config>,
    sessions: Sessions<'_>,
    db: &BanditsDatabase,
    _form: Checked<CsrfOnly<'_>>,
) -> Result<Redirect, Status> {
    if let Some(id) = &access.session_id {
        // Ended in the database, so a copy of the cookie opens nothing on any instance.
        db.store()
            .end_admin_session(&secret::digest_hex(id))
            .await
            .map_err(|_| Status::ServiceUnavailable)?;
    }
    sessions.sign_out();
    Ok(Redirect::to(format!("{}/login", config.admin_prefix())))
}

/// What every page past sign-in needs: access (without it, 401, which sends to the
/// sign-in page), the configuration and the database.
struct AdminPage<'r> {
    access: AdminAccess,
    config: &'r Config,
    db: &'r BanditsDatabase,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminPage<'r> {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let access = try_outcome!(request.guard::<AdminAccess>().await);
        let config = try_outcome!(request
            .guard::<&State<Config>>()
            .await
            .map_error(|(status, _)| (status, ())));
        let db = try_outcome!(request
            .guard::<&BanditsDatabase>()
            .await
            .map_error(|(status, _)| (status, ())));
        Outcome::Success(AdminPage {
            access,
            config: config.inner(),
            db,
        })
    }
}

impl AdminPage<'_> {
    /// A page of the admin titled `title`.
    fn page<'a>(&'a self, title: &'a str) -> Page<'a> {
        Page::new(self.config, title)
    }

    /// The CSRF token of this admin's forms.
    fn csrf(&self) -> &str {
        &self.access.csrf
    }

    fn store(&self) -> &crate::store::Store {
        self.db.store()
    }

    /// Flag `name` as stored; 404 when there is none.
    async fn stored(&self, name: &str) -> Result<crate::store::StoredFlag, Status> {
        self.store()
            .flag(name)
            .await
            .map_err(|error| store_status(&error))
    }

    /// After a change the store made (or refused): this instance reloads its flags, and
    /// the browser goes to `path` under the admin.
    async fn changed<T>(
        &self,
        result: Result<T, crate::store::StoreError>,
        live: Reloader,
        path: &str,
    ) -> Result<Redirect, Status> {
        result.map_err(|error| store_status(&error))?;
        reload(live).await;
        Ok(Redirect::to(format!(
            "{}{path}",
            self.config.admin_prefix()
        )))
    }
}

#[get("/?<q>")]
async fn flags(admin: AdminPage<'_>, q: Option<&str>) -> Result<maud::Markup, Status> {
    let snapshot = admin
        .store()
        .snapshot()
        .await
        .map_err(|_| Status::ServiceUnavailable)?;
    let query = q.unwrap_or("").trim().to_lowercase();
    let shown: Vec<_> = snapshot
        .flags
        .iter()
        .filter(|stored| {
            query.is_empty()
                || stored.flag.name().contains(&query)
                || stored.flag.note().to_lowercase().contains(&query)
        })
        .collect();
    let total = snapshot.flags.len();
    Ok(admin
        .page("Flags")
        .flags(admin.csrf(), &query, &shown, total))
}

#[get("/flags/<name>")]
async fn flag_page(admin: AdminPage<'_>, name: &str) -> Result<maud::Markup, Status> {
    let stored = admin.stored(name).await?;
    let statistics = stored.statistics();
    let history = admin
        .store()
        .history(name, stored.epoch, CHART_BUCKETS)
        .await
        .map_err(|_| Status::ServiceUnavailable)?;
    let by_partner = admin
        .store()
        .partner_split(&stored)
        .await
        .map_err(|_| Status::ServiceUnavailable)?;
    Ok(admin
        .page(name)
        .flag(admin.csrf(), &stored, &statistics, &history, &by_partner))
}

/// The flag's activity log as a download: the API's export ([`crate::export`]) for an
/// admin signed in here.
#[get("/flags/<name>/events?<format>&<from>&<to>")]
async fn export_log(
    admin: AdminPage<'_>,
    name: &str,
    format: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<
    (
        rocket::http::ContentType,
        rocket::response::stream::TextStream![String],
    ),
    Status,
> {
    let export =
        crate::export::Export::read(format, from, to).map_err(|_| Status::UnprocessableEntity)?;
    admin.stored(name).await?;
    Ok(export.stream(admin.store().clone(), name.to_string()))
}

/// What a flag's page can do after a confirmation: `/flags/<name>/reset` and
/// `/flags/<name>/delete`.
#[derive(Clone, Copy)]
enum Action {
    Reset,
    Delete,
}

impl<'a> rocket::request::FromParam<'a> for Action {
    type Error = &'a str;

    fn from_param(param: &'a str) -> Result<Self, Self::Error> {
        match param {
            "reset" => Ok(Action::Reset),
            "delete" => Ok(Action::Delete),
            other => Err(other),
        }
    }
}

impl Action {
    fn path(self) -> &'static str {
        match self {
            Action::Reset => "reset",
            Action::Delete => "delete",
        }
    }

    fn button(self) -> &'static str {
        match self {
            Action::Reset => "Reset statistics",
            Action::Delete => "Delete flag",
        }
    }

    /// What the confirmation page says the action does to `stored`.
    fn consequences(self, stored: &crate::store::StoredFlag) -> String {
        let name = stored.flag.name();
        match self {
            Action::Reset => {
                let visitors: u64 = stored.totals.iter().map(|t| t.views).sum();
                format!(
                    "Reset the statistics of {name}? Its {visitors} visitors and their \
                     conversions are set aside, the winner (if any) is unlocked, and every \
                     visitor gets a fresh arm."
                )
            }
            Action::Delete => format!(
                "Delete {name} with its counters and activity log? This cannot be undone; \
                 code that reads the flag will see it as inactive."
            ),
        }
    }
}

/// The page asking to confirm `action` on flag `name`.
#[get("/flags/<name>/<action>", rank = 2)]
async fn confirm(admin: AdminPage<'_>, name: &str, action: Action) -> Result<maud::Markup, Status> {
    let stored = admin.stored(name).await?;
    Ok(admin.page(action.button()).confirm(
        admin.csrf(),
        &action.consequences(&stored),
        &format!("/flags/{name}/{}", action.path()),
        action.button(),
        &format!("/flags/{name}"),
    ))
}

/// `action` on flag `name`, confirmed: back to the flag's page after a reset, to the list
/// after a deletion.
#[post("/flags/<name>/<action>", data = "<_form>", rank = 2)]
async fn act(
    admin: AdminPage<'_>,
    live: Reloader,
    name: &str,
    action: Action,
    _form: Checked<CsrfOnly<'_>>,
) -> Result<Redirect, Status> {
    let store = admin.store();
    match action {
        Action::Reset => {
            let result = store.reset_flag(name, now_ms()).await;
            admin.changed(result, live, &format!("/flags/{name}")).await
        }
        Action::Delete => {
            admin
                .changed(store.delete_flag(name).await, live, "/")
                .await
        }
    }
}

#[get("/new")]
fn new_form(admin: AdminPage<'_>) -> maud::Markup {
    let form = FlagForm::from_definition(&crate::engine::FlagDefinition::default());
    admin
        .page("New flag")
        .flag_form(admin.csrf(), &form, &[], false)
}

/// Saves `form` (new, or replacing `editing`), or shows it again with its problems.
async fn save(
    admin: &AdminPage<'_>,
    live: Reloader,
    mut form: FlagForm,
    editing: Option<&str>,
) -> Result<Redirect, (Status, maud::Markup)> {
    let title = if editing.is_some() {
        "Edit flag"
    } else {
        "New flag"
    };
    let page = admin.page(title);
    let base = match editing {
        Some(name) => {
            let stored = admin
                .stored(name)
                .await
                .map_err(|status| (status, page.message("No such flag.")))?;
            form.name = name.to_string();
            serde_json::to_value(stored.flag.definition()).ok()
        }
        None => None,
    };
    let parsed = form
        .to_json(base)
        .and_then(|body| crate::input::parse_flag(body, editing));
    let mut again = |errors: Vec<FieldError>| {
        form.pad_arms();
        (
            Status::UnprocessableEntity,
            page.flag_form(admin.csrf(), &form, &errors, editing.is_some()),
        )
    };
    let flag = parsed.map_err(&mut again)?;
    let saved = match editing {
        Some(_) => admin.store().update_flag(&flag, now_ms()).await,
        None => admin.store().create_flag(&flag, now_ms()).await,
    };
    match saved {
        Ok(_) => {}
        Err(crate::store::StoreError::AlreadyExists(name)) => {
            return Err(again(vec![FieldError::new("name", Rule::Taken { name })]))
        }
        Err(error) => {
            return Err(again(vec![FieldError::new(
                "body",
                Rule::NotSaved {
                    message: error.to_string(),
                },
            )]))
        }
    }
    reload(live).await;
    Ok(Redirect::to(format!(
        "{}/flags/{}",
        admin.config.admin_prefix(),
        flag.name()
    )))
}

#[post("/new", data = "<form>")]
async fn create(
    admin: AdminPage<'_>,
    live: Reloader,
    form: Checked<FlagForm>,
) -> Result<Redirect, (Status, maud::Markup)> {
    save(&admin, live, form.0, None).await
}

#[get("/flags/<name>/edit")]
async fn edit_form(admin: AdminPage<'_>, name: &str) -> Result<maud::Markup, Status> {
    let stored = admin.stored(name).await?;
    let form = FlagForm::from_definition(stored.flag.definition());
    Ok(admin
        .page("Edit flag")
        .flag_form(admin.csrf(), &form, &[], true))
}

#[post("/flags/<name>/edit", data = "<form>")]
async fn update(
    admin: AdminPage<'_>,
    live: Reloader,
    name: &str,
    form: Checked<FlagForm>,
) -> Result<Redirect, (Status, maud::Markup)> {
    save(&admin, live, form.0, Some(name)).await
}

/// About how many points the charts have.
const CHART_BUCKETS: i64 = 48;

/// Activity-log entries per page.
const LOG_PAGE: u32 = 50;

#[get("/activity?<visitor>&<flag>&<path>&<before>")]
async fn activity(
    admin: AdminPage<'_>,
    visitor: Option<&str>,
    flag: Option<&str>,
    path: Option<&str>,
    before: Option<i64>,
) -> Result<maud::Markup, Status> {
    let filter = |value: Option<&str>| {
        value
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    let query = crate::store::EventQuery {
        visitor: filter(visitor),
        flag: filter(flag),
        path: filter(path),
        before,
        limit: LOG_PAGE,
    };
    let events = admin
        .store()
        .events(&query)
        .await
        .map_err(|_| Status::ServiceUnavailable)?;
    Ok(admin
        .page("Activity")
        .activity(admin.csrf(), &query, &events, LOG_PAGE))
}
