//! What requests share once the plugin has ignited: the configuration, the tracker, the
//! site's hooks; the flush loop's rounds, with their outage warnings; the first read of the
//! database.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocket::Request;

use crate::clock::now_ms;
use crate::config::Config;
use crate::engine::pinned::Pinned;
use crate::engine::targeting::User;
use crate::engine::Flag;
use crate::store::{Store, StoreError};
use crate::track::{lock_or_recover, Tracker};

/// Unknown flag names warned about, at most; past it, unknown names are not remembered.
const MAX_WARNED_NAMES: usize = 1_000;

pub(crate) type UserHook = dyn Fn(&Request<'_>) -> Option<User> + Send + Sync;
pub(crate) type PrivilegeHook = dyn Fn(&Request<'_>) -> bool + Send + Sync;

/// The next instance's number (see [`Runtime`]'s `instance`).
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(0);

/// A number no other runtime of this process has.
fn next_instance() -> u64 {
    NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed)
}

/// What requests share once the plugin has ignited.
pub(crate) struct Runtime {
    pub(crate) config: Config,
    pub(crate) tracker: Tracker,
    /// The flags defined in code, created whenever the database is first reached.
    flags: Vec<Flag>,
    pub(crate) user: Option<Arc<UserHook>>,
    pub(crate) privileged: Option<Arc<PrivilegeHook>>,
    pub(crate) secure: bool,
    pub(crate) in_flight: AtomicUsize,
    /// Tells this instance's entries in the per-thread cache of decoded cookies from
    /// those of other instances in the same process (with other secret keys).
    pub(crate) instance: u64,
    /// Set when shutdown begins: requests that start after it count nothing (their
    /// visitors are counted at their next request, on another instance), so nothing can be
    /// counted after the last flush took its batch.
    pub(crate) closing: AtomicBool,
    /// Set for good once the site's own tests pinned an arm or a sample here
    /// (`bandits::testing`), for the client or for one request: until then, which is
    /// always outside tests, a visit reads neither, for the price of this one load.
    pub(crate) pinning: AtomicBool,
    /// The arms and samples the tests pinned for every request of this instance.
    pub(crate) pinned: arc_swap::ArcSwapOption<Pinned>,
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
    /// The runtime of a plugin that has read its configuration and its flags.
    pub(crate) fn new(
        config: Config,
        tracker: Tracker,
        flags: Vec<Flag>,
        user: Option<Arc<UserHook>>,
        privileged: Option<Arc<PrivilegeHook>>,
        secure: bool,
    ) -> Runtime {
        Runtime {
            config,
            tracker,
            flags,
            user,
            privileged,
            secure,
            in_flight: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            pinning: AtomicBool::new(false),
            pinned: arc_swap::ArcSwapOption::empty(),
            instance: next_instance(),
            warned: arc_swap::ArcSwap::default(),
            outage: Mutex::new(None),
        }
    }

    /// The arms and samples the site's tests pinned for every request, if any.
    pub(crate) fn pinned(&self) -> Option<Arc<Pinned>> {
        if !self.pinning.load(Ordering::Acquire) {
            return None;
        }
        self.pinned.load_full()
    }

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
    pub(crate) async fn tick(&self) {
        let result = if self.tracker.is_loaded() {
            self.tracker.tick(now_ms()).await
        } else {
            // Started without the database: once it answers, create the tables and the
            // flags defined in code before the tick reads every flag.
            match self.tracker.store().prepare(&self.flags, now_ms()).await {
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

/// Reads the database for the first time: its tables, the flags defined in code, then
/// every flag and its totals.
pub(crate) async fn first_load(store: &Store, flags: &[Flag]) -> Result<Tracker, StoreError> {
    store.prepare(flags, now_ms()).await?;
    Tracker::start(store.clone()).await
}

/// This instance's runtime, when the fairing is attached: a request guard for the API and
/// the admin, which make their changes seen at once. (Not `&State`: the API also works
/// mounted without the fairing, and `&State` would refuse to ignite then.)
pub(crate) struct Reloader(pub(crate) Option<Arc<Runtime>>);

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for Reloader {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        let runtime = request
            .rocket()
            .state::<Shared>()
            .map(|Shared(runtime)| Arc::clone(runtime));
        rocket::request::Outcome::Success(Reloader(runtime))
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
