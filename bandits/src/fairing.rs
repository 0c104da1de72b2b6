//! The tracking fairing: one line attaches the whole plugin.
//!
//! ```no_run
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build().attach(bandits::Bandits::fairing())
//! }
//! ```
//!
//! At ignition the fairing reads the `bandits` table of the configuration (a wrong value
//! fails ignition with a message naming the key), opens and migrates the database of
//! `databases.bandits` (an SQLite file by default), creates the flags given with
//! [`Bandits::with_flag`] that do not exist yet, loads every flag and its totals into
//! memory and mounts the JSON API under `/bandits/api`. At liftoff it starts the flush
//! loop and the [sender of callbacks to partners](crate::callbacks); at shutdown it waits
//! for requests and callbacks in flight (up to Rocket's grace period), writes what is left
//! and closes the pool.
//!
//! On every request it looks the path up among the flags' pages, in memory:
//!
//! - on a flag's **source path**, a visitor without an arm gets one from the flag's
//!   policy, remembered in the visitor cookie, and is counted once as a view of it;
//! - on a flag's **target path**, a visitor counted as a view who has not converted yet
//!   is counted as a conversion of their arm;
//! - anything else costs one hash lookup, and the cookie is not even read.
//!
//! With referral partners ([`engine::partners`](crate::engine::partners)), a request whose
//! query holds `bandits.partners.query_key` (`?affiliate_id=<uid>`) of an active partner
//! registers its visitor in the cookie, and a response to a request that a trigger of
//! `bandits.triggers` names (method, path, status class) fires that trigger; both are
//! written at the next flush. Without the key, and without such a trigger, a request
//! costs what it did before.
//!
//! A page is its path with or without one trailing slash (`/contact`, `/contact/`); a path
//! with more (`/contact//`, `/////`) is no flag's page, even where Rocket serves it as one.
//! The activity log keeps at most 512 bytes of a path ([`track::logged_path`](crate::track::logged_path)).
//!
//! Counting is settled when the response leaves: a 404 answer counts nothing and leaves
//! the cookie as it was, and so does an error page (Rocket's catchers drop the request's
//! cookie changes). Excluded paths and `HEAD` requests never count; on them visitors keep
//! their arms.
//!
//! # Who enters an experiment
//!
//! For each flag, the first rule that applies decides, in this order:
//!
//! | # | rule | the visitor sees | counted |
//! |---|---|---|---|
//! | 0 | an override of the site's own tests ([`testing`](crate::testing)) | that arm | no |
//! | 1 | a forced arm (`?bandits_force=flag:arm`, privileged requests only) | that arm | no |
//! | 2 | a testing override (`?bandits_flag=arm`, flags with `testing` only) | that arm | no |
//! | 3 | `everyone = true` / `false` | the first arm after the control / the control | no |
//! | 4 | a bot, or signed in on a flag with `exclude_signed_in` | the control | no |
//! | 5 | targeting rules set and none lets the visitor in | the control | no |
//! | 6 | otherwise: the visitor enters | their arm from the bandit (or the locked winner) | yes |
//!
//! # When the database is away
//!
//! Requests never wait for the database. While flushes fail, visitors who hold an arm keep
//! it and are counted in memory (per-arm counts take constant memory; activity-log entries
//! are kept up to `bandits.max_pending_events` and `bandits.max_pending_event_bytes`, then
//! dropped and reported), new visitors
//! see the control and are given nothing to remember, and one warning per
//! `bandits.warning_interval_ms` goes to the log. With `bandits.require_database = false`
//! the site even starts without it, on the flags defined in code.
//!
//! Counts go to memory first and reach the database at the next flush, added to the
//! stored counters (`views = views + n`), so several instances can share one PostgreSQL
//! database; each re-reads the totals after its flush.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::http::{Header, Status};
use rocket::{Build, Data, Orbit, Request, Response, Rocket};
use rocket_db_pools::Database;

use crate::api;
use crate::clock::now_ms;
use crate::config::Config;
use crate::database::BanditsDatabase;
use crate::database::LAZY_KEY;
use crate::engine::targeting::User;
use crate::engine::Flag;
use crate::runtime::{first_load, PrivilegeHook, Runtime, Shared, UserHook};
use crate::store::{Event, StoreError};
use crate::track::Tracker;
use crate::visit::{Visit, VisitSlot};

pub use crate::visit::QUERY_PREFIX;

/// The plugin's fairing. Attach it once: `rocket::build().attach(Bandits::fairing())`.
///
/// ```
/// use bandits::engine::{FlagDefinition, Policy};
/// use bandits::engine::targeting::User;
/// use bandits::Bandits;
///
/// let headline = FlagDefinition::new("headline-flag")
///     .with_policy(Policy::thompson())
///     .with_paths("/", "/contact/")
///     .validate()
///     .expect("a valid flag");
///
/// let fairing = Bandits::fairing()
///     // created at ignition if the database has no flag of that name; never overwritten
///     .with_flag(headline)
///     // who is signed in, for targeting (staff, users, groups) and `exclude_signed_in`
///     .user(|request| {
///         let session = request.cookies().get_private("session")?;
///         Some(User::new(session.value()).in_groups(["beta"]))
///     })
///     // who may force arms with ?bandits_force=flag:arm (nobody, by default)
///     .privileged(|request| request.headers().get_one("X-QA-Token") == Some("let-me-in"));
/// let rocket = rocket::build().attach(fairing);
/// ```
pub struct Bandits {
    flags: Vec<Flag>,
    user: Option<Arc<UserHook>>,
    privileged: Option<Arc<PrivilegeHook>>,
    runtime: Arc<OnceLock<Arc<Runtime>>>,
    /// The sender of callbacks to partners, from liftoff to shutdown.
    sender: std::sync::Mutex<Option<crate::callbacks::Sender>>,
}

impl Bandits {
    /// The fairing, with no flag created at ignition, no user hook and no privileged
    /// requests.
    pub fn fairing() -> Bandits {
        Bandits {
            flags: Vec::new(),
            user: None,
            privileged: None,
            runtime: Arc::new(OnceLock::new()),
            sender: std::sync::Mutex::new(None),
        }
    }

    /// Creates `flag` at ignition if no flag of its name exists. An existing flag is left
    /// as it is (the admin's edits win), so this is the way to ship a site with its
    /// experiments defined in code.
    pub fn with_flag(mut self, flag: Flag) -> Self {
        self.flags.push(flag);
        self
    }

    /// Tells the plugin who the signed-in user of a request is (`None`: signed out), for
    /// the targeting rules `authenticated`, `staff`, `superusers`, `users` and `groups`, and
    /// for flags that leave signed-in visitors out (`exclude_signed_in`). Without it every
    /// visitor is signed out. Called once per request that concerns a flag.
    pub fn user(
        mut self,
        hook: impl Fn(&Request<'_>) -> Option<User> + Send + Sync + 'static,
    ) -> Self {
        self.user = Some(Arc::new(hook));
        self
    }

    /// Tells the plugin which requests may force arms with
    /// `?bandits_force=<flag>:<arm>,...` (django-proctor's force groups), for QA. Off by
    /// default: without this hook the parameter is ignored. Forced visitors see the arm
    /// they asked for, remembered in their cookie, and are never counted;
    /// `?bandits_force=` (empty) clears it.
    pub fn privileged(
        mut self,
        hook: impl Fn(&Request<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.privileged = Some(Arc::new(hook));
        self
    }
}

/// Where the admin is mounted, from the configuration managed at ignition.
fn config_prefix(rocket: &Rocket<Build>) -> String {
    rocket
        .state::<Config>()
        .map(|config| config.admin_prefix().to_string())
        .unwrap_or_else(|| crate::config::DEFAULT_ADMIN_PREFIX.to_string())
}

/// Fails ignition with `message` as the failing fairing's name, so Rocket's launch error
/// (and `rocket::Error`'s kind, in tests) carries it.
fn fail_ignition(rocket: Rocket<Build>, message: String) -> Rocket<Build> {
    log::error!("rocket-bandits: {message}");
    // Fairing names are `&'static str`; this runs at most once, at a failed ignition.
    let name: &'static str = Box::leak(format!("rocket-bandits: {message}").into_boxed_str());
    rocket.attach(AdHoc::try_on_ignite(name, |rocket| async { Err(rocket) }))
}

#[rocket::async_trait]
impl Fairing for Bandits {
    fn info(&self) -> Info {
        Info {
            name: "rocket-bandits",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Request | Kind::Response | Kind::Shutdown,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> rocket::fairing::Result {
        let config = match Config::from_figment(rocket.figment()) {
            Ok(config) => config,
            Err(error) => return Ok(fail_ignition(rocket, error.to_string())),
        };
        let mut rocket = rocket.manage(config.clone());
        if !config.require_database() {
            // Let the pool open without reaching the database; the tracker below decides.
            let figment = rocket.figment().clone().merge((LAZY_KEY, true));
            rocket = rocket.configure(figment);
        }
        if rocket.state::<BanditsDatabase>().is_none() {
            rocket = rocket.attach(BanditsDatabase::init());
        }
        let flags = self.flags.clone();
        let user = self.user.clone();
        let privileged = self.privileged.clone();
        let slot = Arc::clone(&self.runtime);
        // Runs after the database's own ignition, which the line above queued.
        let start = AdHoc::try_on_ignite("rocket-bandits tracker", move |rocket| async move {
            let Some(database) = BanditsDatabase::fetch(&rocket) else {
                // The database fairing failed and logged why; say what to do about it.
                log::error!(
                    "rocket-bandits: no database, so no launch. Check databases.bandits.url, \
                     or set bandits.require_database = false to serve the site without it \
                     (every visitor sees the control until the database answers)."
                );
                return Err(rocket);
            };
            let store = database.store().clone();
            let tracker = match first_load(&store, &flags).await {
                Ok(tracker) => tracker,
                Err(error) if !config.require_database() => {
                    log::warn!(
                        "rocket-bandits: the database is unreachable ({error}); starting on \
                         the {} flag(s) defined in code, every visitor seeing the control, \
                         until it answers (bandits.require_database = false)",
                        flags.len()
                    );
                    Tracker::offline(store, flags.clone())
                }
                Err(error) => {
                    let message = format!(
                        "could not read the flags: {error} (set bandits.require_database = \
                         false to start without the database)"
                    );
                    return Ok(fail_ignition(rocket, message));
                }
            };
            let tracker = tracker
                .with_max_pending_events(config.max_pending_events())
                .with_max_pending_event_bytes(config.max_pending_event_bytes());
            let tls = rocket
                .figment()
                .extract::<rocket::Config>()
                .is_ok_and(|config| config.tls_enabled());
            let secure = config.secure_cookie(tls);
            let runtime = Arc::new(Runtime::new(
                config, tracker, flags, user, privileged, secure,
            ));
            // A second ignition of the same fairing value keeps the first runtime.
            let runtime = Arc::clone(slot.get_or_init(|| runtime));
            let handle = crate::switches::FlagsHandle::new(Arc::clone(&runtime));
            Ok(rocket.manage(Shared(runtime)).manage(handle))
        });
        let admin_prefix = config_prefix(&rocket);
        Ok(rocket
            .attach(start)
            .manage(crate::admin::SignInLimiter::default())
            .mount(api::BASE, api::routes())
            .register(api::BASE, api::catchers())
            .mount(crate::browser::BASE, crate::browser::routes())
            .mount(crate::browser::OFREP_BASE, crate::browser::ofrep_routes())
            .mount(admin_prefix.as_str(), crate::admin::routes())
            .register(admin_prefix.as_str(), crate::admin::catchers()))
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let Some(runtime) = self.runtime.get().cloned() else {
            return;
        };
        let shutdown = rocket.shutdown();
        let interval = runtime.config.flush_interval();
        let flags = runtime.tracker.snapshot().flags.len();
        log::info!(
            "rocket-bandits: {flags} flag{} loaded, counts written every {} ms, API at {}",
            if flags == 1 { "" } else { "s" },
            interval.as_millis(),
            api::BASE,
        );
        let store = runtime.tracker.store().clone();
        let warnings = runtime.config.warning_interval();
        match crate::callbacks::Sender::start(store, runtime.config.callbacks(), warnings) {
            Ok(sender) => {
                if let Ok(mut slot) = self.sender.lock() {
                    *slot = Some(sender);
                }
            }
            Err(error) => log::error!(
                "rocket-bandits: no HTTP client for callbacks to partners ({error}); they \
                 wait in the outbox"
            ),
        }
        rocket::tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate; the flags were just read
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = ticks.tick() => runtime.tick().await,
                }
            }
        });
    }

    async fn on_request(&self, request: &mut Request<'_>, _data: &mut Data<'_>) {
        let Some(runtime) = self.runtime.get() else {
            return;
        };
        let path = request.uri().path();
        let live = runtime.tracker.live();
        let partner_key = runtime.config.partners().query_key();
        // A partner's uid is looked for only when some partner is active and the query
        // holds the key: a page without a referral costs what it did before partners.
        let (query, referral) = match request.uri().query() {
            None => (None, None),
            Some(query) => {
                let raw = query.as_str();
                let referral = (live.has_partners() && raw.contains(partner_key))
                    .then(|| query.segments().find(|(key, _)| *key == partner_key))
                    .flatten()
                    .map(|(_, uid)| uid);
                (Some(query).filter(|_| raw.contains(QUERY_PREFIX)), referral)
            }
        };
        let page = live
            .page(path.as_str())
            .filter(|_| !runtime.config.is_excluded_path(path.as_str()));
        if page.is_none() && query.is_none() && referral.is_none() {
            return;
        }
        let visit = Visit::of(request, runtime);
        if let Some(query) = query {
            visit.apply_query(&live, query.segments());
        }
        if let Some(uid) = referral {
            visit.refer(&live, uid, &request.uri().to_string());
        }
        if let Some(page) = page {
            visit.on_page(&live, page);
        }
        visit.persist(request.cookies());
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let Some(runtime) = self.runtime.get() else {
            return;
        };
        if runtime.config.is_plugin_path(request.uri().path().as_str()) {
            // Flags, statistics and admin forms (with their CSRF tokens) are for the one
            // who asked, now: no cache, shared or private, keeps them.
            response.set_raw_header("Cache-Control", "no-store");
        }
        // Disabled ones too: an admin's switch may turn one on.
        if runtime.config.triggers().any_described_by_requests() {
            crate::visit::fire_by_request(request, runtime, response.status());
        }
        let Some(visit) = VisitSlot::of(request) else {
            return;
        };
        visit.settle_partners(response);
        let pending = visit.take_pending();
        if pending.is_empty() {
            return;
        }
        let prefix = format!("{}=", runtime.config.cookie_name());
        let sent = response
            .headers()
            .get("Set-Cookie")
            .any(|value| value.starts_with(&prefix));
        if response.status() == Status::NotFound {
            // Not a page of the site: count nothing, and leave the visitor as they were.
            if sent {
                let others: Vec<String> = response
                    .headers()
                    .get("Set-Cookie")
                    .filter(|value| !value.starts_with(&prefix))
                    .map(str::to_string)
                    .collect();
                response.remove_header("Set-Cookie");
                for value in others {
                    response.adjoin_header(Header::new("Set-Cookie", value));
                }
            }
            return;
        }
        if !sent {
            // An error page: Rocket dropped the request's cookie changes, so the visitor
            // does not remember this arm or count either; nothing is counted.
            return;
        }
        let at = now_ms();
        let visitor = visit.visitor_id();
        let path = visit
            .logged_page()
            .unwrap_or_else(|| request.uri().path().as_str());
        for event in pending {
            runtime.tracker.count(Event {
                at,
                kind: event.kind,
                visitor: visitor.clone(),
                flag: event.flag,
                epoch: event.epoch,
                arm: event.arm,
                path: path.to_string(),
                partner: event.partner,
                propensity: event.propensity,
            });
        }
    }

    async fn on_shutdown(&self, rocket: &Rocket<Orbit>) {
        let Some(runtime) = self.runtime.get() else {
            return;
        };
        // From now on requests count nothing: Rocket may still hand a connection's next
        // request to the handlers after this point, and its counts would miss the last
        // flush. Requests that started before may count; Rocket lets them finish within
        // its grace period, and so do we before the last flush.
        runtime.closing.store(true, Ordering::SeqCst);
        let grace = Duration::from_secs(u64::from(rocket.config().shutdown.grace));
        let deadline = Instant::now() + grace;
        let sender = self.sender.lock().ok().and_then(|mut sender| sender.take());
        let sender = sender.map(|sender| tokio::spawn(async move { sender.stop(grace).await }));
        while runtime.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The database may be away: keep trying until the grace period ends. A flush of
        // the flush loop still writing is waited for (flushes take turns).
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = tokio::time::timeout(left.max(Duration::from_millis(100)), async {
                runtime.tracker.flush().await
            })
            .await
            .unwrap_or_else(|_| Err(StoreError::Database(sqlx::Error::PoolTimedOut)));
            match attempt {
                Ok(_) => break,
                Err(error) if Instant::now() >= deadline => {
                    let (counts, events) = runtime.tracker.pending();
                    log::error!(
                        "rocket-bandits: the last flush failed ({error}); lost: counts of \
                         {counts} arms and {events} activity-log entries"
                    );
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        if let Some(stopping) = sender {
            let _ = stopping.await;
        }
        runtime.tracker.store().pool().close().await;
    }
}
