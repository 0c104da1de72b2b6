//! The admin pages under `/bandits/admin` (`bandits.admin_prefix`): sign-in and the flags
//! list. They read and change the data through the same store as the JSON API.
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
//! POST whose token is missing or wrong is refused with 403.

mod charts;
mod dates;
mod form;
mod pages;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Redirect;
use rocket::{catch, catchers, get, post, routes, Catcher, Route, State};
use rocket_db_pools::Database;

use crate::auth::AdminCheck;
use crate::clock::now_ms;
use crate::config::Config;
use crate::database::BanditsDatabase;
use crate::secret;
use crate::store::ADMIN_SESSION_MS;
use form::FlagForm;
use pages::Page;

/// The admin session cookie.
pub const SESSION_COOKIE: &str = "bandits_admin";
/// Failed sign-ins allowed per client address and window.
pub const MAX_FAILED_SIGN_INS: u32 = 5;
/// The window failed sign-ins are counted over, in milliseconds (15 minutes).
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Client addresses remembered at most; the oldest windows go first past it.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The admin's routes, to mount at the admin prefix.
pub fn routes() -> Vec<Route> {
    routes![
        sign_in_form,
        sign_in,
        sign_out,
        flags,
        flag_page,
        confirm_reset,
        reset,
        confirm_delete,
        delete,
        activity,
        new_form,
        create,
        edit_form,
        update
    ]
}

/// The admin's catchers, to register at the admin prefix: no access sends to the sign-in
/// page; other errors get a page of the admin's look.
pub fn catchers() -> Vec<Catcher> {
    catchers![to_sign_in, error_page]
}

/// Failed sign-ins per client, bounded: past [`MAX_TRACKED_CLIENTS`] clients, those the
/// table cannot hold share one count, so a full table limits them together rather than
/// letting them through.
pub struct SignInLimiter {
    table: Mutex<HashMap<Client, Failures>>,
    capacity: usize,
}

impl Default for SignInLimiter {
    fn default() -> Self {
        SignInLimiter::with_capacity(MAX_TRACKED_CLIENTS)
    }
}

/// Failed sign-ins of one client since the start of its window.
#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    /// When the window began, in milliseconds since the Unix epoch.
    since: i64,
}

impl Failures {
    /// Whether the window that began at `since` is still open at `now`.
    fn open_at(&self, now: i64) -> bool {
        now.saturating_sub(self.since) < FAILURE_WINDOW_MS
    }
}

/// Whom the sign-in limit counts a request against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    /// An address: IPv4 whole, IPv6 by its /64 network (one host commonly holds all of
    /// it).
    Address(IpAddr),
    /// No address known, or no room left for the client's own count.
    Unknown,
}

impl Client {
    /// The client of `request`: the address the configured proxy header names (its last
    /// address), else the connection's peer. Never Rocket's `client_ip()`, which trusts
    /// `X-Real-IP` from anyone by default.
    fn of(request: &Request<'_>, config: &Config) -> Client {
        let from_proxy = config.admin_client_ip_header().and_then(|name| {
            let value = request.headers().get(name).last()?;
            let last = value.rsplit(',').next()?.trim();
            last.parse::<IpAddr>()
                .ok()
                .or_else(|| last.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        });
        match from_proxy.or_else(|| request.remote().map(|peer| peer.ip())) {
            Some(ip) => Client::Address(grouped(ip)),
            None => Client::Unknown,
        }
    }
}

/// `ip` as the limit counts it: IPv4 (also mapped into IPv6) whole, IPv6 by its /64.
fn grouped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

impl SignInLimiter {
    /// A limiter that keeps the counts of `capacity` clients apart.
    fn with_capacity(capacity: usize) -> Self {
        SignInLimiter {
            table: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Client, Failures>> {
        crate::track::lock_or_recover(&self.table)
    }

    /// Whose count `client`'s attempt goes to: its own when the table has it or room for
    /// it (after forgetting ended windows), else the shared count of the unknown.
    fn slot(&self, table: &mut HashMap<Client, Failures>, client: Client, now: i64) -> Client {
        if table.contains_key(&client) {
            return client;
        }
        if table.len() >= self.capacity {
            table.retain(|_, failures| failures.open_at(now));
        }
        if table.len() < self.capacity {
            client
        } else {
            Client::Unknown
        }
    }

    /// Whether `client` has used up its attempts at `now` (milliseconds since the epoch).
    fn blocked(&self, client: Client, now: i64) -> bool {
        let mut table = self.lock();
        let slot = self.slot(&mut table, client, now);
        table
            .get(&slot)
            .is_some_and(|failures| failures.count >= MAX_FAILED_SIGN_INS && failures.open_at(now))
    }

    /// Counts a failed attempt of `client` at `now`; the first one after a window ended
    /// begins a new window.
    fn failed(&self, client: Client, now: i64) {
        let mut table = self.lock();
        let slot = self.slot(&mut table, client, now);
        let entry = table.entry(slot).or_insert(Failures {
            count: 0,
            since: now,
        });
        if !entry.open_at(now) {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    fn succeeded(&self, client: Client) {
        if client != Client::Unknown {
            self.lock().remove(&client);
        }
    }
}

/// What the session cookie holds.
struct Session {
    expires: i64,
    csrf: String,
    /// Signed in: the session's id and its digest under the secret that opened it
    /// ([`secret::session_digest`]). `None` for the session a form gets before sign-in
    /// (it only carries the CSRF token).
    signed_in: Option<SignedIn>,
}

struct SignedIn {
    id: String,
    digest: String,
}

impl Session {
    fn fresh(signed_in: Option<SignedIn>) -> Session {
        Session {
            expires: now_ms().saturating_add(ADMIN_SESSION_MS),
            csrf: secret::random_id(),
            signed_in,
        }
    }

    fn read(jar: &CookieJar<'_>) -> Option<Session> {
        let cookie = jar.get_private(SESSION_COOKIE)?;
        let mut parts = cookie.value().splitn(5, ':');
        let signed_in = parts.next()? == "1";
        let expires: i64 = parts.next()?.parse().ok()?;
        let csrf = parts.next()?.to_string();
        let id = parts.next().unwrap_or_default();
        let digest = parts.next().unwrap_or_default();
        let signed_in = match signed_in {
            false => None,
            true if id.len() == 32 && digest.len() == 64 => Some(SignedIn {
                id: id.to_string(),
                digest: digest.to_string(),
            }),
            // Signed in without a session id: a cookie of an older build, or forged.
            true => return None,
        };
        (expires > now_ms() && csrf.len() == 32).then_some(Session {
            expires,
            csrf,
            signed_in,
        })
    }

    fn write(&self, jar: &CookieJar<'_>, config: &Config, secure: bool) {
        let (flag, id, digest) = match &self.signed_in {
            Some(signed_in) => ("1", signed_in.id.as_str(), signed_in.digest.as_str()),
            None => ("0", "", ""),
        };
        let value = format!("{flag}:{}:{}:{id}:{digest}", self.expires, self.csrf);
        jar.add_private(
            Cookie::build((SESSION_COOKIE, value))
                .path(config.admin_prefix().to_string())
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(secure),
        );
    }
}

impl SignedIn {
    /// Whether a secret configured now opened this session. Both digests are computed
    /// and compared, so the time taken does not tell which secret is set; with none
    /// configured no session is valid.
    fn bound_to_current_secret(&self, config: &Config) -> bool {
        let matches = |secret: Option<&crate::config::AdminToken>| {
            secret.is_some_and(|secret| {
                secret::same_secret(
                    &self.digest,
                    &secret::session_digest(secret.expose(), &self.id),
                )
            })
        };
        matches(config.admin_token()) | matches(config.admin_password())
    }

    /// Whether the database still holds this session open (not signed out, not expired).
    async fn open(&self, request: &Request<'_>) -> bool {
        let Some(db) = BanditsDatabase::fetch(request.rocket()) else {
            return false;
        };
        match db
            .store()
            .admin_session_open(&secret::digest_hex(&self.id), now_ms())
            .await
        {
            Ok(open) => open,
            Err(error) => {
                log::warn!("rocket-bandits: cannot check an admin session: {error}");
                false
            }
        }
    }
}

fn config(request: &Request<'_>) -> Config {
    request
        .rocket()
        .state::<Config>()
        .cloned()
        .unwrap_or_default()
}

fn secure(request: &Request<'_>) -> bool {
    let tls = request.rocket().config().tls_enabled();
    config(request).secure_cookie(tls)
}

/// The session of this request, created (not signed in) when it has none, so every form
/// can carry a CSRF token.
fn session(request: &Request<'_>) -> Session {
    Session::read(request.cookies()).unwrap_or_else(|| {
        let session = Session::fresh(None);
        session.write(request.cookies(), &config(request), secure(request));
        session
    })
}

/// A request with access to the admin. Without access the request fails with 401, which
/// the admin's catcher turns into a redirect to the sign-in page.
pub struct AdminAccess {
    csrf: String,
    /// The signed-in session's id, to end at sign-out.
    session_id: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminAccess {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let by_site = request
            .rocket()
            .state::<AdminCheck>()
            .is_some_and(|check| check.allows(request));
        let session = Session::read(request.cookies());
        let config = config(request);
        let signed_in = match session.as_ref().and_then(|s| s.signed_in.as_ref()) {
            Some(signed_in) => {
                signed_in.bound_to_current_secret(&config) && signed_in.open(request).await
            }
            None => false,
        };
        match session {
            Some(session) if signed_in || by_site => Outcome::Success(AdminAccess {
                csrf: session.csrf,
                session_id: session
                    .signed_in
                    .filter(|_| signed_in)
                    .map(|signed_in| signed_in.id),
            }),
            None if by_site => Outcome::Success(AdminAccess {
                csrf: self::session(request).csrf,
                session_id: None,
            }),
            _ => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

impl AdminAccess {
    /// Whether `presented` is this session's CSRF token.
    fn csrf_ok(&self, presented: &str) -> bool {
        secret::same_secret(presented, &self.csrf)
    }
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

/// Fields are optional so that a missing one is refused by the handler (403 for the CSRF
/// token), not by form parsing.
#[derive(FromForm)]
struct SignIn<'r> {
    secret: Option<&'r str>,
    csrf: Option<&'r str>,
}

#[derive(FromForm)]
struct CsrfOnly<'r> {
    csrf: Option<&'r str>,
}

#[get("/login")]
fn sign_in_form(request: SessionRequest<'_>) -> maud::Markup {
    let config = config(request.0);
    let session = session(request.0);
    Page::new(&config, "Sign in").sign_in(&session.csrf, None)
}

#[post("/login", data = "<form>")]
async fn sign_in(
    request: SessionRequest<'_>,
    limiter: &State<SignInLimiter>,
    db: &BanditsDatabase,
    form: Form<SignIn<'_>>,
) -> Result<Redirect, (Status, maud::Markup)> {
    let config = config(request.0);
    let client = Client::of(request.0, &config);
    let page = Page::new(&config, "Sign in");
    let session = session(request.0);
    let csrf = form.csrf.unwrap_or_default();
    if !secret::same_secret(csrf, &session.csrf) {
        return Err((
            Status::Forbidden,
            page.message("This form has expired: reload the sign-in page and try again."),
        ));
    }
    let now = now_ms();
    if limiter.blocked(client, now) {
        return Err((
            Status::TooManyRequests,
            page.sign_in(
                &session.csrf,
                Some("Too many failed sign-ins from this address; try again in 15 minutes."),
            ),
        ));
    }
    let presented = form.secret.unwrap_or_default();
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
            page.sign_in(&session.csrf, Some("Wrong token or password.")),
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
    Session::fresh(Some(SignedIn { id, digest })).write(
        request.0.cookies(),
        &config,
        secure(request.0),
    );
    Ok(Redirect::to(format!("{}/", config.admin_prefix())))
}

#[post("/logout", data = "<form>")]
async fn sign_out(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    form: Form<CsrfOnly<'_>>,
) -> Result<Redirect, Status> {
    if !access.csrf_ok(form.csrf.unwrap_or_default()) {
        return Err(Status::Forbidden);
    }
    if let Some(id) = &access.session_id {
        // Ended in the database, so a copy of the cookie opens nothing on any instance.
        db.store()
            .end_admin_session(&secret::digest_hex(id))
            .await
            .map_err(|_| Status::ServiceUnavailable)?;
    }
    let config = config(request.0);
    request
        .0
        .cookies()
        .remove_private(Cookie::build(SESSION_COOKIE).path(config.admin_prefix().to_string()));
    Ok(Redirect::to(format!("{}/login", config.admin_prefix())))
}

#[get("/?<q>")]
async fn flags(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    q: Option<&str>,
) -> Result<maud::Markup, Status> {
    let snapshot = db
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
    let config = config(request.0);
    Ok(Page::new(&config, "Flags").flags(&access.csrf, &query, &shown, snapshot.flags.len()))
}

/// The page status for a store failure: the API's mapping.
fn status_of(error: crate::store::StoreError) -> Status {
    crate::api::store_status(&error)
}

async fn stored(db: &BanditsDatabase, name: &str) -> Result<crate::store::StoredFlag, Status> {
    db.store().flag(name).await.map_err(status_of)
}

#[get("/flags/<name>")]
async fn flag_page(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    name: &str,
) -> Result<maud::Markup, Status> {
    let stored = stored(db, name).await?;
    let statistics = crate::api::statistics(&stored);
    let history = db
        .store()
        .history(name, stored.epoch, CHART_BUCKETS)
        .await
        .map_err(|_| Status::ServiceUnavailable)?;
    let config = config(request.0);
    Ok(Page::new(&config, name).flag(&access.csrf, &stored, &statistics, &history))
}

#[get("/flags/<name>/reset")]
async fn confirm_reset(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    name: &str,
) -> Result<maud::Markup, Status> {
    let stored = stored(db, name).await?;
    let config = config(request.0);
    let visitors: u64 = stored.totals.iter().map(|t| t.views).sum();
    let text = format!(
        "Reset the statistics of {name}? Its {visitors} visitors and their conversions are \
         set aside, the winner (if any) is unlocked, and every visitor gets a fresh arm."
    );
    Ok(Page::new(&config, "Reset statistics").confirm(
        &access.csrf,
        &text,
        &format!("/flags/{name}/reset"),
        "Reset statistics",
        &format!("/flags/{name}"),
    ))
}

#[post("/flags/<name>/reset", data = "<form>")]
async fn reset(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    live: crate::api::Reloader,
    name: &str,
    form: Form<CsrfOnly<'_>>,
) -> Result<Redirect, Status> {
    if !access.csrf_ok(form.csrf.unwrap_or_default()) {
        return Err(Status::Forbidden);
    }
    db.store()
        .reset_flag(name, now_ms())
        .await
        .map_err(status_of)?;
    crate::api::reload(live).await;
    let config = config(request.0);
    Ok(Redirect::to(format!(
        "{}/flags/{name}",
        config.admin_prefix()
    )))
}

#[get("/flags/<name>/delete")]
async fn confirm_delete(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    name: &str,
) -> Result<maud::Markup, Status> {
    stored(db, name).await?;
    let config = config(request.0);
    let text = format!(
        "Delete {name} with its counters and activity log? This cannot be undone; code that \
         reads the flag will see it as inactive."
    );
    Ok(Page::new(&config, "Delete flag").confirm(
        &access.csrf,
        &text,
        &format!("/flags/{name}/delete"),
        "Delete flag",
        &format!("/flags/{name}"),
    ))
}

#[post("/flags/<name>/delete", data = "<form>")]
async fn delete(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    live: crate::api::Reloader,
    name: &str,
    form: Form<CsrfOnly<'_>>,
) -> Result<Redirect, Status> {
    if !access.csrf_ok(form.csrf.unwrap_or_default()) {
        return Err(Status::Forbidden);
    }
    db.store().delete_flag(name).await.map_err(status_of)?;
    crate::api::reload(live).await;
    let config = config(request.0);
    Ok(Redirect::to(format!("{}/", config.admin_prefix())))
}

#[get("/new")]
fn new_form(access: AdminAccess, request: SessionRequest<'_>) -> maud::Markup {
    let config = config(request.0);
    let form = FlagForm::from_definition(&crate::engine::FlagDefinition::default());
    Page::new(&config, "New flag").flag_form(&access.csrf, &form, &[], false)
}

/// Saves `form` (new, or replacing `editing`), or shows it again with its problems.
async fn save(
    access: &AdminAccess,
    request: &SessionRequest<'_>,
    db: &BanditsDatabase,
    live: crate::api::Reloader,
    mut form: FlagForm,
    editing: Option<&str>,
) -> Result<Redirect, (Status, maud::Markup)> {
    let config = config(request.0);
    let title = if editing.is_some() {
        "Edit flag"
    } else {
        "New flag"
    };
    let page = Page::new(&config, title);
    if !access.csrf_ok(form.csrf.as_deref().unwrap_or_default()) {
        return Err((
            Status::Forbidden,
            page.message("This form has expired: reload the page and try again."),
        ));
    }
    let base = match editing {
        Some(name) => {
            let stored = stored(db, name)
                .await
                .map_err(|status| (status, page.message("No such flag.")))?;
            form.name = name.to_string();
            serde_json::to_value(stored.flag.definition()).ok()
        }
        None => None,
    };
    let parsed = form
        .to_json(base)
        .and_then(|body| crate::api::parse_flag(body, editing));
    let mut again = |errors: crate::api::FieldErrors| {
        form.pad_arms();
        (
            Status::UnprocessableEntity,
            page.flag_form(&access.csrf, &form, &errors, editing.is_some()),
        )
    };
    let flag = parsed.map_err(&mut again)?;
    let store = db.store();
    let saved = match editing {
        Some(_) => store.update_flag(&flag, now_ms()).await,
        None => store.create_flag(&flag, now_ms()).await,
    };
    match saved {
        Ok(_) => {}
        Err(crate::store::StoreError::AlreadyExists(name)) => {
            return Err(again(vec![(
                "name".into(),
                format!("a flag named {name:?} already exists"),
            )]))
        }
        Err(error) => return Err(again(vec![("body".into(), format!("not saved: {error}"))])),
    }
    crate::api::reload(live).await;
    Ok(Redirect::to(format!(
        "{}/flags/{}",
        config.admin_prefix(),
        flag.name()
    )))
}

#[post("/new", data = "<form>")]
async fn create(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    live: crate::api::Reloader,
    form: Form<FlagForm>,
) -> Result<Redirect, (Status, maud::Markup)> {
    save(&access, &request, db, live, form.into_inner(), None).await
}

#[get("/flags/<name>/edit")]
async fn edit_form(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    name: &str,
) -> Result<maud::Markup, Status> {
    let stored = stored(db, name).await?;
    let config = config(request.0);
    let form = FlagForm::from_definition(stored.flag.definition());
    Ok(Page::new(&config, "Edit flag").flag_form(&access.csrf, &form, &[], true))
}

#[post("/flags/<name>/edit", data = "<form>")]
async fn update(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
    live: crate::api::Reloader,
    name: &str,
    form: Form<FlagForm>,
) -> Result<Redirect, (Status, maud::Markup)> {
    save(&access, &request, db, live, form.into_inner(), Some(name)).await
}

/// About how many points the charts have.
const CHART_BUCKETS: i64 = 48;

/// Activity-log entries per page.
const LOG_PAGE: u32 = 50;

#[get("/activity?<visitor>&<flag>&<path>&<before>")]
async fn activity(
    access: AdminAccess,
    request: SessionRequest<'_>,
    db: &BanditsDatabase,
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
    let events = db
        .store()
        .events(&query)
        .await
        .map_err(|_| Status::ServiceUnavailable)?;
    let config = config(request.0);
    Ok(Page::new(&config, "Activity").activity(&access.csrf, &query, &events, LOG_PAGE))
}

/// The request itself, for handlers that read its cookies and configuration.
struct SessionRequest<'r>(&'r Request<'r>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionRequest<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(SessionRequest(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(i: u32) -> Client {
        Client::Address(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
    }

    #[test]
    fn a_full_table_limits_the_clients_it_cannot_hold_together() {
        let limiter = SignInLimiter::with_capacity(100);
        for i in 0..100 {
            limiter.failed(address(i), NOON);
        }
        // Newcomers share one count: five failures between them, then none may try.
        for i in 100..100 + MAX_FAILED_SIGN_INS {
            assert!(!limiter.blocked(address(i), NOON), "newcomer {i}");
            limiter.failed(address(i), NOON);
        }
        for i in 200..300 {
            assert!(limiter.blocked(address(i), NOON), "newcomer {i}");
        }
        // Those the table holds keep their own counts.
        assert!(!limiter.blocked(address(0), NOON));
        assert!(limiter.lock().len() <= 101);
        // Once their windows ended, the table has room again.
        let later = NOON + 15 * MINUTE;
        assert!(!limiter.blocked(address(400), later));
    }

    /// A moment to start from, in milliseconds since the epoch.
    const NOON: i64 = 1_764_590_400_000;
    const MINUTE: i64 = 60_000;

    #[test]
    fn five_failures_block_an_address_for_fifteen_minutes_and_no_other() {
        // The documented limit: 5 failed attempts per address per 15 minutes.
        let limiter = SignInLimiter::default();
        let (one, other) = (address(1), address(2));
        for attempt in 0..4 {
            limiter.failed(one, NOON + attempt * MINUTE);
        }
        assert!(!limiter.blocked(one, NOON + 4 * MINUTE), "four failures");
        limiter.failed(one, NOON + 4 * MINUTE);
        assert!(limiter.blocked(one, NOON + 4 * MINUTE), "the fifth blocks");
        assert!(
            !limiter.blocked(other, NOON + 4 * MINUTE),
            "another address"
        );
        // The window counts from the first failure.
        assert!(limiter.blocked(one, NOON + 15 * MINUTE - 1));
        assert!(!limiter.blocked(one, NOON + 15 * MINUTE), "lifted");
        // A failure after the window starts a new count: four more do not block.
        for attempt in 0..4 {
            limiter.failed(one, NOON + (15 + attempt) * MINUTE);
        }
        assert!(!limiter.blocked(one, NOON + 19 * MINUTE));
        // A success forgets the count.
        limiter.failed(one, NOON + 19 * MINUTE);
        assert!(limiter.blocked(one, NOON + 19 * MINUTE));
        limiter.succeeded(one);
        assert!(!limiter.blocked(one, NOON + 19 * MINUTE));
    }

    #[test]
    fn an_ipv6_network_is_one_client() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("an address");
        let same: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("an address");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        assert_eq!(grouped(one), grouped(same));
        assert_ne!(grouped(one), grouped(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("an address");
        assert_eq!(grouped(mapped), "192.0.2.1".parse::<IpAddr>().expect("v4"));
    }
}
