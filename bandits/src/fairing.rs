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
//! loop; at shutdown it waits for requests in flight (up to Rocket's grace period), writes
//! what is left and closes the pool.
//!
//! On every request it looks the path up among the flags' pages, in memory:
//!
//! - on a flag's **source path**, a visitor without an arm gets one from the flag's
//!   policy, remembered in the visitor cookie, and is counted once as a view of it;
//! - on a flag's **target path**, a visitor counted as a view who has not converted yet
//!   is counted as a conversion of their arm;
//! - anything else costs one hash lookup, and the cookie is not even read.
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

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::http::{Cookie, CookieJar, Header, Method, SameSite, Status};
use rocket::{Build, Data, Orbit, Request, Response, Rocket};
use rocket_db_pools::Database;

use crate::api;
use crate::config::Config;
use crate::database::BanditsDatabase;
use crate::database::LAZY_KEY;
use crate::engine::decision::{self, Facts};
use crate::engine::targeting::{preferred_language, User};
use crate::engine::visitor::{OverrideKind, VisitorState};
use crate::engine::{EventKind, Flag};
use crate::store::{StoreError, StoredFlag};
use crate::track::{lock_or_recover, Live, Page, Tracker};

/// Query parameters the plugin reads start with this: `?bandits_<flag>=<arm>`.
pub const QUERY_PREFIX: &str = "bandits_";
/// `?bandits_force=<flag>:<arm>,...` forces arms for a privileged request.
const FORCE_KEY: &str = "force";

/// How long a visitor cookie lasts in the browser.
const COOKIE_DAYS: i64 = 365;
/// Unknown flag names warned about, at most; past it, unknown names are not remembered.
const MAX_WARNED_NAMES: usize = 1_000;

type UserHook = dyn Fn(&Request<'_>) -> Option<User> + Send + Sync;
type PrivilegeHook = dyn Fn(&Request<'_>) -> bool + Send + Sync;

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

/// What requests share once the plugin has ignited.
pub(crate) struct Runtime {
    pub(crate) config: Config,
    pub(crate) tracker: Tracker,
    /// The flags defined in code, created whenever the database is first reached.
    flags: Vec<Flag>,
    user: Option<Arc<UserHook>>,
    privileged: Option<Arc<PrivilegeHook>>,
    secure: bool,
    in_flight: AtomicUsize,
    /// Tells this instance's entries in the per-thread cache of decoded cookies from
    /// those of other instances in the same process (with other secret keys).
    instance: u64,
    /// Set when shutdown begins: requests that start after it count nothing (their
    /// visitors are counted at their next request, on another instance), so nothing can be
    /// counted after the last flush took its batch.
    closing: AtomicBool,
    /// Read on every request for an unknown flag, written once per name: no lock to read.
    warned: arc_swap::ArcSwap<HashSet<String>>,
    outage: Mutex<Option<Outage>>,
}

/// A database outage in progress, for its warnings.
struct Outage {
    since: Instant,
    last_warning: Instant,
}

/// The runtime as Rocket state, for the request guard and the API.
pub(crate) struct Shared(pub(crate) Arc<Runtime>);

impl Runtime {
    /// Logs once per flag name that code asked for a flag that does not exist.
    pub(crate) fn warn_unknown(&self, name: &str) {
        let warned = self.warned.load();
        if warned.contains(name) || warned.len() >= MAX_WARNED_NAMES {
            return;
        }
        let before = self.warned.rcu(|names| {
            let mut names = HashSet::clone(names);
            if names.len() < MAX_WARNED_NAMES {
                names.insert(name.to_string());
            }
            names
        });
        if !before.contains(name) && before.len() < MAX_WARNED_NAMES {
            log::warn!(
                "rocket-bandits: no flag named {name:?}; it reads as inactive (control arm). \
                 Create it in the admin or with the API."
            );
        }
    }

    /// One round of the flush loop. A failure is logged at most once per warning
    /// interval, with what is waiting in memory; the recovery is logged too.
    async fn tick(&self) {
        let result = if self.tracker.is_loaded() {
            self.tracker.tick(now_ms()).await
        } else {
            // Started without the database: once it answers, create the tables and the
            // flags defined in code before the tick reads every flag.
            let store = self.tracker.store();
            match async {
                store.migrate().await?;
                ensure_flags(store, &self.flags).await
            }
            .await
            {
                Ok(()) => self.tracker.tick(now_ms()).await,
                Err(error) => Err(error),
            }
        };
        let mut outage = lock_or_recover(&self.outage);
        match (result, outage.as_mut()) {
            (Ok(_), None) => {}
            (Ok(_), Some(ended)) => {
                log::warn!(
                    "rocket-bandits: the database answers again after {:.1} s; the counts \
                     kept meanwhile are written",
                    ended.since.elapsed().as_secs_f64()
                );
                *outage = None;
            }
            (Err(error), None) => {
                self.warn_outage(&error, None);
                let now = Instant::now();
                *outage = Some(Outage {
                    since: now,
                    last_warning: now,
                });
            }
            (Err(error), Some(ongoing)) => {
                if ongoing.last_warning.elapsed() >= self.config.warning_interval() {
                    self.warn_outage(&error, Some(ongoing.since.elapsed()));
                    ongoing.last_warning = Instant::now();
                }
            }
        }
    }

    fn warn_outage(&self, error: &StoreError, lasting: Option<Duration>) {
        let (counts, events) = self.tracker.pending();
        let dropped = self.tracker.dropped_events();
        let lasting = lasting
            .map(|d| format!(" for {:.0} s", d.as_secs_f64()))
            .unwrap_or_default();
        log::warn!(
            "rocket-bandits: the database is unreachable{lasting} ({error}). The site \
             keeps serving: visitors with an arm keep it, new visitors see the control. \
             Waiting in memory: counts of {counts} arms, {events} activity-log entries \
             ({dropped} dropped past bandits.max_pending_events or \
             bandits.max_pending_event_bytes)."
        );
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where the admin is mounted, from the configuration managed at ignition.
fn config_prefix(rocket: &Rocket<Build>) -> String {
    rocket
        .state::<Config>()
        .map(|config| config.admin_prefix().to_string())
        .unwrap_or_else(|| crate::config::DEFAULT_ADMIN_PREFIX.to_string())
}

/// Creates the flags defined in code that the database does not have.
async fn ensure_flags(store: &crate::store::Store, flags: &[Flag]) -> Result<(), StoreError> {
    for flag in flags {
        match store.create_flag(flag, now_ms()).await {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads the database for the first time: its tables, the flags defined in code, then
/// every flag and its totals.
async fn first_load(store: &crate::store::Store, flags: &[Flag]) -> Result<Tracker, StoreError> {
    store.migrate().await?;
    ensure_flags(store, flags).await?;
    Tracker::start(store.clone()).await
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
            let runtime = Arc::new(Runtime {
                secure: config.secure_cookie(tls),
                config,
                tracker,
                flags,
                user,
                privileged,
                in_flight: AtomicUsize::new(0),
                closing: AtomicBool::new(false),
                instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
                warned: arc_swap::ArcSwap::default(),
                outage: Mutex::new(None),
            });
            // A second ignition of the same fairing value keeps the first runtime.
            let runtime = Arc::clone(slot.get_or_init(|| runtime));
            Ok(rocket.manage(Shared(runtime)))
        });
        let admin_prefix = config_prefix(&rocket);
        Ok(rocket
            .attach(start)
            .manage(crate::admin::SignInLimiter::default())
            .mount(api::BASE, api::routes())
            .register(api::BASE, api::catchers())
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
        let query = request
            .uri()
            .query()
            .filter(|query| query.as_str().contains(QUERY_PREFIX));
        let page = live
            .page(path.as_str())
            .filter(|_| !runtime.config.is_excluded_path(path.as_str()));
        if page.is_none() && query.is_none() {
            return;
        }
        let visit = Visit::of(request, runtime);
        if let Some(query) = query {
            visit.apply_query(&live, query.segments());
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
        let Some(visit) = request.local_cache(VisitSlot::default).0.get() else {
            return;
        };
        let pending = std::mem::take(&mut visit.lock().pending);
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
        for event in pending {
            runtime.tracker.record(
                event.kind,
                &event.flag,
                event.epoch,
                &event.arm,
                &visitor,
                request.uri().path().as_str(),
                at,
            );
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
        runtime.tracker.store().pool().close().await;
    }
}

/// A count settled when the response leaves.
struct PendingEvent {
    kind: EventKind,
    flag: String,
    epoch: i64,
    arm: String,
}

/// The request's visit, created the first time the fairing, the guard or a template
/// needs it.
#[derive(Default)]
pub(crate) struct VisitSlot(OnceLock<Arc<Visit>>);

/// One request's view of its visitor.
pub(crate) struct Visit {
    runtime: Arc<Runtime>,
    /// What the request says about its visitor, fixed for the visit: read without the lock.
    facts: Facts,
    inner: Mutex<VisitInner>,
}

struct VisitInner {
    /// Shared with the worker thread's cache of decoded cookies until a change: a
    /// returning visitor's request copies nothing.
    visitor: Arc<VisitorState>,
    /// The request's time, for rollouts: read the first time a flag with targeting rules
    /// asks.
    now: std::cell::OnceCell<i64>,
    /// The visitor id is new (no valid cookie came): it must be written as soon as a
    /// decision depends on it, or the visitor's percent bucket would change next time.
    fresh: bool,
    /// The visitor changed and the cookie must be written.
    dirty: bool,
    pending: Vec<PendingEvent>,
    /// The arms this request has settled. Cleared whenever the visitor changes.
    settled: SettledArms,
}

/// Arms settled in a request, kept so that a page that reads a flag several times (the
/// fairing on its source page, then the template, often more than once) decides it once.
/// Without an allocation: the flags of one page are few; past [`SETTLED_ARMS`] the oldest
/// are decided again.
#[derive(Default)]
struct SettledArms {
    /// The snapshot the flags are of, kept alive so that an address names one flag.
    live: Option<Arc<Live>>,
    arms: [Option<Settled>; SETTLED_ARMS],
}

/// Arms a request remembers having settled.
const SETTLED_ARMS: usize = 8;

impl SettledArms {
    /// The arm settled in flag `key` of `live`, by a read that counted a view if `expose`.
    fn get(&self, live: &Arc<Live>, key: usize, expose: bool) -> Option<usize> {
        let at = self.live.as_ref()?;
        if !Arc::ptr_eq(at, live) {
            return None;
        }
        self.arms
            .iter()
            .flatten()
            .find(|settled| settled.flag == key && (settled.exposing || !expose))
            .map(|settled| settled.index)
    }

    fn insert(&mut self, live: &Arc<Live>, settled: Settled) {
        if !self.live.as_ref().is_some_and(|at| Arc::ptr_eq(at, live)) {
            *self = SettledArms {
                live: Some(Arc::clone(live)),
                ..SettledArms::default()
            };
        }
        let slot = self
            .arms
            .iter()
            .position(|arm| arm.as_ref().is_none_or(|arm| arm.flag == settled.flag));
        match slot {
            Some(slot) => self.arms[slot] = Some(settled),
            None => {
                // Oldest first: the first slot goes.
                self.arms.rotate_left(1);
                self.arms[SETTLED_ARMS - 1] = Some(settled);
            }
        }
    }

    fn clear(&mut self) {
        if self.live.is_some() {
            *self = SettledArms::default();
        }
    }
}

/// An arm a request has settled.
struct Settled {
    /// The address of the flag's `StoredFlag` in the snapshot.
    flag: usize,
    /// The arm seen.
    index: usize,
    /// Settled by a read that counts a view: a read that counts one needs no other.
    exposing: bool,
}

/// The arm a visitor sees in a flag: its index among the flag's arms (always valid).
pub(crate) struct Seen {
    pub(crate) index: usize,
}

impl Seen {
    fn of(flag: &Flag, index: usize) -> Seen {
        Seen {
            index: index.min(flag.arms().len().saturating_sub(1)),
        }
    }
}

impl Drop for Visit {
    fn drop(&mut self) {
        self.runtime.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether `request` comes from a bot, by its first `User-Agent`, and its preferred
/// language, by its first `Accept-Language`: one pass over its headers.
/// [`HeaderMap::get_one`](rocket::http::HeaderMap::get_one) hashes the name it looks for
/// with SipHash a byte at a time, which, twice on every request that concerns a flag, cost
/// more than comparing the request's few header names.
fn bot_and_language(request: &Request<'_>, config: &Config) -> (bool, Option<String>) {
    let (mut bot, mut language) = (None, None);
    for header in request.headers().iter() {
        if bot.is_none() && header.name == "User-Agent" {
            bot = Some(config.is_excluded_user_agent(Some(header.value())));
        } else if language.is_none() && header.name == "Accept-Language" {
            language = Some(preferred_language(header.value()).map(str::to_string));
        }
    }
    let bot = bot.unwrap_or_else(|| config.is_excluded_user_agent(None));
    (bot, language.flatten())
}

impl Visit {
    /// The request's visit, reading the visitor cookie the first time.
    pub(crate) fn of<'r>(request: &'r Request<'_>, runtime: &Arc<Runtime>) -> &'r Arc<Visit> {
        request
            .local_cache(VisitSlot::default)
            .0
            .get_or_init(|| Arc::new(Visit::new(request, runtime)))
    }

    fn new(request: &Request<'_>, runtime: &Arc<Runtime>) -> Visit {
        // SeqCst with the shutdown's store of `closing` then load of `in_flight`: either the
        // shutdown waits for this request, or this request sees that it must not count.
        runtime.in_flight.fetch_add(1, Ordering::SeqCst);
        let closing = runtime.closing.load(Ordering::SeqCst);
        let config = &runtime.config;
        let known = Decoded::visitor(request, runtime);
        let fresh = known.is_none();
        let visitor = known.unwrap_or_else(|| Arc::new(VisitorState::new(&mut rand::rng())));
        let (bot, language) = bot_and_language(request, config);
        let user = runtime.user.as_ref().and_then(|hook| hook(request));
        let privileged = runtime
            .privileged
            .as_ref()
            .is_some_and(|hook| hook(request));
        let counts_here = !closing
            && !matches!(request.method(), Method::Head | Method::Options)
            && !config.is_excluded_path(request.uri().path().as_str());
        Visit {
            runtime: Arc::clone(runtime),
            facts: Facts {
                bot,
                user,
                privileged,
                language,
                counts_here,
                online: runtime.tracker.is_online(),
            },
            inner: Mutex::new(VisitInner {
                visitor,
                now: std::cell::OnceCell::new(),
                fresh,
                dirty: false,
                pending: Vec::new(),
                settled: SettledArms::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VisitInner> {
        lock_or_recover(&self.inner)
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn visitor_id(&self) -> String {
        self.lock().visitor.id().to_string()
    }

    /// Exposures and conversions of the flags on this request's page.
    fn on_page(&self, live: &Arc<Live>, page: &Page) {
        let mut inner = self.lock();
        for stored in live.shown_on(page) {
            inner.arm(&self.facts, live, stored, true);
        }
        for stored in live.goal_of(page) {
            inner.reach_goal(&self.facts, stored);
        }
    }

    /// Testing overrides (`?bandits_<flag>=<arm>`) and forced arms
    /// (`?bandits_force=<flag>:<arm>,...`) from the query string. Anything not allowed or
    /// not understood is ignored.
    fn apply_query<'a>(&self, live: &Live, segments: impl Iterator<Item = (&'a str, &'a str)>) {
        let mut inner = self.lock();
        for (key, value) in segments {
            let Some(name) = key.strip_prefix(QUERY_PREFIX) else {
                continue;
            };
            let value = value.trim();
            if name == FORCE_KEY {
                if !self.facts.privileged {
                    continue;
                }
                if value.is_empty() {
                    inner.dirty |= inner.visitor_mut().clear_overrides(OverrideKind::Forced);
                    continue;
                }
                for pair in value.split(',') {
                    let Some((flag, arm)) = pair.split_once(':') else {
                        continue;
                    };
                    let (flag, arm) = (flag.trim(), arm.trim());
                    if live
                        .flag(flag)
                        .is_some_and(|stored| stored.flag.arm_index(arm).is_some())
                    {
                        inner.set_override(flag, arm, OverrideKind::Forced);
                    }
                }
            } else if let Some(stored) = live.flag(name) {
                let flag = &stored.flag;
                if !flag.targeting().testing {
                    continue;
                }
                if value.is_empty() {
                    inner.dirty |= inner.visitor_mut().clear_override(name);
                    continue;
                }
                // An arm's name, or waffle's 1 and 0 for the first arm after the control
                // and the control.
                let arm = match (flag.arm_index(value), value) {
                    (Some(index), _) => index,
                    (None, "1") => 1,
                    (None, "0") => 0,
                    (None, _) => continue,
                };
                let arm = flag.arms()[arm.min(flag.arms().len() - 1)].name.clone();
                inner.set_override(name, &arm, OverrideKind::Testing);
            }
        }
    }

    /// The visitor's arm in `stored`, given now if they have none. `expose` counts the
    /// visitor as a view of it (once).
    pub(crate) fn arm(&self, live: &Arc<Live>, stored: &StoredFlag, expose: bool) -> Seen {
        self.lock().arm(&self.facts, live, stored, expose)
    }

    /// Counts a conversion for every flag whose goal event is `event` and which the
    /// visitor was counted in; returns how many.
    pub(crate) fn convert(&self, live: &Live, event: &str) -> usize {
        let mut inner = self.lock();
        live.with_goal_event(event)
            .filter(|stored| inner.reach_goal(&self.facts, stored))
            .count()
    }

    /// The arm the visitor sees in each flag `live` knows that they hold or asked for, as
    /// `flag:arm` joined by commas.
    pub(crate) fn describe(&self, live: &Live) -> String {
        let inner = self.lock();
        let mut seen: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
        for (flag, assigned) in inner.visitor.iter() {
            let current = live.flag(flag).is_some_and(|stored| {
                stored.epoch == assigned.epoch && stored.flag.arm_index(&assigned.arm).is_some()
            });
            if current {
                seen.insert(flag, &assigned.arm);
            }
        }
        for (flag, arm, _) in inner.visitor.overrides() {
            if live
                .flag(flag)
                .is_some_and(|stored| inner.overridden(&self.facts, &stored.flag).is_some())
            {
                seen.insert(flag, arm);
            }
        }
        let mut out = String::new();
        for (flag, arm) in seen {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(flag);
            out.push(':');
            out.push_str(arm);
        }
        out
    }

    /// Writes the visitor cookie if the visitor changed.
    pub(crate) fn persist(&self, jar: &CookieJar<'_>) {
        let mut inner = self.lock();
        if !inner.dirty {
            return;
        }
        inner.dirty = false;
        let cookie = Cookie::build((
            self.runtime.config.cookie_name().to_string(),
            inner.visitor.encode(),
        ))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(self.runtime.secure)
        .max_age(rocket::time::Duration::days(COOKIE_DAYS))
        // Rocket gives private cookies without an expiry date one week; browsers that
        // read Expires rather than Max-Age would forget the visitor after it.
        .expires(
            rocket::time::OffsetDateTime::now_utc() + rocket::time::Duration::days(COOKIE_DAYS),
        );
        jar.add_private(cookie);
    }
}

impl VisitInner {
    /// The visitor, to change: copied first if the cache of decoded cookies shares it.
    /// The arms settled so far are forgotten: the change may concern them.
    fn visitor_mut(&mut self) -> &mut VisitorState {
        self.settled.clear();
        Arc::make_mut(&mut self.visitor)
    }

    /// Remembers an override, unless the cookie is full.
    fn set_override(&mut self, flag: &str, arm: &str, kind: OverrideKind) {
        let before = self
            .visitor
            .override_for(flag)
            .map(|(a, k)| (a.to_string(), k));
        let visitor = self.visitor_mut();
        visitor.set_override(flag, arm, kind);
        if visitor.fits() {
            self.dirty = true;
        } else {
            match before {
                Some((arm, kind)) => visitor.set_override(flag, arm, kind),
                None => {
                    visitor.clear_override(flag);
                }
            }
        }
    }

    /// The arm the visitor asked for in `flag`, where the flag (testing mode) or the
    /// request (privileged) allows it.
    fn overridden(&self, facts: &Facts, flag: &Flag) -> Option<usize> {
        let (arm, kind) = self.visitor.override_for(flag.name())?;
        let allowed = match kind {
            OverrideKind::Testing => flag.targeting().testing,
            OverrideKind::Forced => facts.privileged,
        };
        if allowed {
            flag.arm_index(arm)
        } else {
            None
        }
    }

    /// The request's time for `flag`'s targeting: read once, and only for flags whose
    /// rules may need it.
    fn now_for(&self, flag: &Flag) -> i64 {
        if flag.targeting().has_rules() {
            *self.now.get_or_init(now_ms)
        } else {
            0
        }
    }

    /// The visitor's arm in `stored`, of snapshot `live`: as settled earlier in the
    /// request, or decided now.
    fn arm(&mut self, facts: &Facts, live: &Arc<Live>, stored: &StoredFlag, expose: bool) -> Seen {
        let key = std::ptr::from_ref(stored) as usize;
        if let Some(index) = self.settled.get(live, key, expose) {
            return Seen { index };
        }
        let seen = self.decide(facts, live, stored, expose);
        self.settled.insert(
            live,
            Settled {
                flag: key,
                index: seen.index,
                exposing: expose,
            },
        );
        seen
    }

    /// Asks the visit decision ([`decision::decide`]) and applies its answer: the
    /// visitor's new or changed arm, and the count.
    fn decide(&mut self, facts: &Facts, live: &Live, stored: &StoredFlag, expose: bool) -> Seen {
        let flag = &stored.flag;
        if self.fresh && !facts.bot {
            self.fresh = false;
            self.dirty = true;
        }
        let decided = decision::decide(
            facts,
            &self.visitor,
            flag,
            stored.epoch,
            &stored.totals,
            self.now_for(flag),
            expose,
            &mut rand::rng(),
        );
        let Some(assigned) = decided.remember else {
            return Seen { index: decided.arm };
        };
        let counted = decided.count.map(|kind| (kind, assigned.arm.clone()));
        let visitor = self.visitor_mut();
        match visitor.get_mut(flag.name()) {
            Some(slot) => *slot = assigned,
            None => visitor.insert(flag.name(), assigned),
        }
        if decided.new_arm && !visitor.fits() {
            // Make room by forgetting flags that no longer exist; failing that, this
            // flag shows the control, uncounted.
            visitor.retain(|name, _| live.flag(name).is_some());
            if !visitor.fits() {
                visitor.remove(flag.name());
                return Seen::of(flag, 0);
            }
        }
        self.dirty = true;
        if let Some((kind, arm)) = counted {
            self.pending.push(PendingEvent {
                kind,
                flag: flag.name().to_string(),
                epoch: stored.epoch,
                arm,
            });
        }
        Seen { index: decided.arm }
    }

    /// Counts a conversion of `stored` if the visit decision says it counts
    /// ([`decision::convert`]); returns whether it did.
    fn reach_goal(&mut self, facts: &Facts, stored: &StoredFlag) -> bool {
        let flag = &stored.flag;
        let now = self.now_for(flag);
        let Some(converted) = decision::convert(facts, &self.visitor, flag, stored.epoch, now)
        else {
            return false;
        };
        let arm = converted.arm.clone();
        if let Some(slot) = self.visitor_mut().get_mut(flag.name()) {
            *slot = converted;
        }
        self.dirty = true;
        self.pending.push(PendingEvent {
            kind: EventKind::Conversion,
            flag: flag.name().to_string(),
            epoch: stored.epoch,
            arm,
        });
        true
    }
}

/// Set once the first time a `Flags` guard is used without the fairing attached.
pub(crate) static WARNED_UNATTACHED: AtomicBool = AtomicBool::new(false);

/// The next instance's number (see [`Runtime`]'s `instance`).
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(0);

/// Entries per generation of [`Decoded`]: two generations of about 400 bytes an entry,
/// under 1 MB per worker thread.
const DECODED_PER_GENERATION: usize = 1_024;

/// Characters at the end of a cookie value that [`Decoded`] keys its entries by: at least
/// the 16 bytes of the AES-GCM tag, base64-encoded, whatever the padding.
const TAG_CHARS: usize = 24;

thread_local! {
    static DECODED: std::cell::RefCell<Decoded> = std::cell::RefCell::new(Decoded::default());
}

/// What [`Decoded`] knows a cookie value by: its length and its last [`TAG_CHARS`]
/// characters, which hold the authentication tag of the encrypted value.
///
/// The tag is 128 bits that only the secret key's holder can produce, fresh with every
/// encryption (its nonce is random), and an entry is made only after the value decrypted
/// with the instance's key. A value that matches an entry therefore either is the cookie
/// that entry was made from, or was made by someone who saw that cookie: they get the
/// visitor that cookie would give them anyway, as by sending it again. Keying by the tag
/// rather than the whole value spares every request hashing and comparing the 400 or so
/// bytes of the value against an entry that is no longer in the processor's caches.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct DecodedKey {
    len: usize,
    tail: [u8; TAG_CHARS],
}

impl DecodedKey {
    /// The key of cookie value `value`; `None` for a value too short to hold a tag (it
    /// cannot decrypt).
    fn of(value: &str) -> Option<DecodedKey> {
        let start = value.len().checked_sub(TAG_CHARS)?;
        let tail = value.as_bytes().get(start..)?.try_into().ok()?;
        Some(DecodedKey {
            len: value.len(),
            tail,
        })
    }
}

/// The visitors this worker thread decoded lately, by the cookie value they sent (see
/// [`DecodedKey`]), with the instance that decoded it. A returning visitor sends the same
/// cookie on every request, and decrypting and decoding it is the dearest part of a
/// request that concerns a flag. Only values that decrypted with the instance's key and
/// decoded are kept, so a forged or foreign cookie gains nothing; two generations bound
/// the memory and keep the latest entries. The visitor is shared with the request until
/// the request changes it.
#[derive(Default)]
struct Decoded {
    newer: foldhash::HashMap<DecodedKey, (u64, Arc<VisitorState>)>,
    older: foldhash::HashMap<DecodedKey, (u64, Arc<VisitorState>)>,
}

impl Decoded {
    /// The visitor of `request`'s cookie, if it sent a valid one.
    fn visitor(request: &Request<'_>, runtime: &Runtime) -> Option<Arc<VisitorState>> {
        let name = runtime.config.cookie_name();
        let key = DecodedKey::of(request.cookies().get(name)?.value())?;
        let cached = DECODED.with(|decoded| {
            let decoded = decoded.borrow();
            decoded
                .newer
                .get(&key)
                .or_else(|| decoded.older.get(&key))
                .filter(|(instance, _)| *instance == runtime.instance)
                .map(|(_, visitor)| Arc::clone(visitor))
        });
        if cached.is_some() {
            return cached;
        }
        let visitor = request
            .cookies()
            .get_private(name)
            .and_then(|cookie| VisitorState::decode(cookie.value()))
            .map(Arc::new)?;
        DECODED.with(|decoded| {
            let mut decoded = decoded.borrow_mut();
            if decoded.newer.len() >= DECODED_PER_GENERATION {
                decoded.older = std::mem::take(&mut decoded.newer);
            }
            decoded
                .newer
                .insert(key, (runtime.instance, Arc::clone(&visitor)));
        });
        Some(visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Snapshot;

    fn live() -> Arc<Live> {
        Arc::new(Live::new(Snapshot {
            config_version: 0,
            flags: Vec::new(),
        }))
    }

    fn settled(flag: usize, index: usize, exposing: bool) -> Settled {
        Settled {
            flag,
            index,
            exposing,
        }
    }

    #[test]
    fn a_settled_arm_is_found_again_in_its_snapshot_only() {
        let (live, other) = (live(), live());
        let mut arms = SettledArms::default();
        arms.insert(&live, settled(10, 1, true));
        assert_eq!(arms.get(&live, 10, false), Some(1));
        assert_eq!(arms.get(&live, 10, true), Some(1));
        assert_eq!(arms.get(&live, 11, false), None);
        // After a refresh the flags are other values: decide again.
        assert_eq!(arms.get(&other, 10, false), None);
        arms.insert(&other, settled(20, 0, false));
        assert_eq!(arms.get(&live, 10, false), None);
        assert_eq!(arms.get(&other, 20, false), Some(0));
    }

    #[test]
    fn a_read_that_counts_a_view_is_not_answered_by_one_that_did_not() {
        let live = live();
        let mut arms = SettledArms::default();
        arms.insert(&live, settled(10, 1, false));
        assert_eq!(arms.get(&live, 10, false), Some(1));
        assert_eq!(arms.get(&live, 10, true), None);
        arms.insert(&live, settled(10, 1, true));
        assert_eq!(arms.get(&live, 10, true), Some(1));
        assert_eq!(arms.iter_count(), 1, "the flag is kept once");
    }

    #[test]
    fn past_its_room_the_oldest_arms_are_decided_again_and_a_change_forgets_all() {
        let live = live();
        let mut arms = SettledArms::default();
        for flag in 0..=SETTLED_ARMS {
            arms.insert(&live, settled(flag, flag % 2, true));
        }
        assert_eq!(arms.iter_count(), SETTLED_ARMS);
        assert_eq!(arms.get(&live, SETTLED_ARMS, true), Some(SETTLED_ARMS % 2));
        let forgotten: Vec<usize> = (0..=SETTLED_ARMS)
            .filter(|&flag| arms.get(&live, flag, true).is_none())
            .collect();
        assert_eq!(forgotten, [0], "the first settled goes first");
        arms.clear();
        assert_eq!(arms.iter_count(), 0);
        assert_eq!(arms.get(&live, SETTLED_ARMS, false), None);
    }

    impl SettledArms {
        fn iter_count(&self) -> usize {
            self.arms.iter().flatten().count()
        }
    }
}
