//! One request's visit: the facts of the request (bot, user, privilege, language, whether
//! it may count), the visitor's cookie, the arms settled so far and the counts to record
//! when the response leaves. Every way of reading a flag (the fairing, the `Flags` guard,
//! the Tera functions) goes through it, and it asks the engine's pure visit decision
//! ([`decision`]) for every answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rocket::http::{Cookie, CookieJar, Method, SameSite};
use rocket::Request;

use crate::clock::now_ms;
use crate::config::Config;
use crate::engine::decision::{self, Facts, Precedence};
use crate::engine::targeting::preferred_language;
use crate::engine::visitor::{OverrideKind, VisitorState};
use crate::engine::{EventKind, Flag};
use crate::runtime::Runtime;
use crate::store::StoredFlag;
use crate::track::{lock_or_recover, Live, Page};

mod cache;
mod partners;
mod pinned;
mod settled;

pub(crate) use pinned::RequestPins;

use cache::Decoded;
pub(crate) use partners::fire_by_request;
use settled::{Settled, SettledArms};

pub use crate::config::QUERY_PREFIX;
/// `?bandits_force=<flag>:<arm>,...` forces arms for a privileged request.
const FORCE_KEY: &str = "force";

/// A count settled when the response leaves.
pub(crate) struct PendingEvent {
    pub(crate) kind: EventKind,
    pub(crate) flag: String,
    pub(crate) epoch: i64,
    pub(crate) arm: String,
    /// The partner the visitor counts for in the flag ([`Assigned::partner`]).
    pub(crate) partner: Option<String>,
    /// For a view, the odds its arm was chosen with ([`decision::Decision::propensity`]).
    pub(crate) propensity: Option<f64>,
}

/// The request's visit, created the first time the fairing, the guard or a template
/// needs it.
#[derive(Default)]
pub(crate) struct VisitSlot(OnceLock<Arc<Visit>>);

impl VisitSlot {
    /// The visit of `request`, if anything created it.
    pub(crate) fn of<'r>(request: &'r Request<'_>) -> Option<&'r Arc<Visit>> {
        request.local_cache(VisitSlot::default).0.get()
    }
}

/// One request's view of its visitor.
pub(crate) struct Visit {
    runtime: Arc<Runtime>,
    /// What the request says about its visitor, fixed for the visit: read without the lock.
    facts: Facts,
    inner: Mutex<VisitInner>,
    /// A referral or a trigger waits in `inner` for the response: read without the lock.
    partner_rows: AtomicBool,
    /// The page a browser endpoint's request stands for ([`Visit::of_browser`]).
    page: Option<String>,
    /// The request came with a valid visitor cookie.
    known: bool,
}

/// Which path decides whether a visit counts.
#[derive(Clone, Copy)]
enum Counted<'a> {
    /// The request's own.
    RequestPath,
    /// A browser endpoint's: the page given, or any counted page.
    Browser(Option<&'a str>),
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
    /// Boxed: most visits have none, and the visit stays as small as before partners.
    partner_rows: Option<Box<partners::PartnerRows>>,
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
            .get_or_init(|| Arc::new(Visit::new(request, runtime, Counted::RequestPath)))
    }

    /// The visit of a browser endpoint's request (`/bandits/flags.json`, `flags.js`,
    /// `convert`, OpenFeature's evaluations), which the plugin's own path would keep from
    /// counting: it counts as a request of `page`, the page the browser shows, when one is
    /// given and counts; without one, as a request of a counted page. The activity log
    /// records `page` as the path. A visit the fairing made already for the request keeps
    /// its own.
    pub(crate) fn of_browser<'r>(
        request: &'r Request<'_>,
        runtime: &Arc<Runtime>,
        page: Option<&str>,
    ) -> &'r Arc<Visit> {
        request
            .local_cache(VisitSlot::default)
            .0
            .get_or_init(|| Arc::new(Visit::new(request, runtime, Counted::Browser(page))))
    }

    /// The path the activity log records for this visit's counts: the page a browser
    /// endpoint stood for, if any.
    pub(crate) fn logged_page(&self) -> Option<&str> {
        self.page.as_deref()
    }

    fn new(request: &Request<'_>, runtime: &Arc<Runtime>, counted: Counted<'_>) -> Visit {
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
        let counted_path = match counted {
            Counted::RequestPath => Some(request.uri().path().as_str()),
            Counted::Browser(page) => page,
        };
        let counts_here = !closing
            && !matches!(request.method(), Method::Head | Method::Options)
            && !counted_path.is_some_and(|path| config.is_excluded_path(path));
        let page = match counted {
            Counted::Browser(Some(page)) => Some(page.to_string()),
            _ => None,
        };
        Visit {
            runtime: Arc::clone(runtime),
            facts: Facts {
                bot,
                user,
                privileged,
                language,
                counts_here,
                online: runtime.tracker.is_online(),
                pinned: pinned::pinned_for(request, runtime),
                referrals: config.partners().rules(),
            },
            inner: Mutex::new(VisitInner {
                visitor,
                now: std::cell::OnceCell::new(),
                fresh,
                dirty: false,
                pending: Vec::new(),
                settled: SettledArms::default(),
                partner_rows: None,
            }),
            partner_rows: AtomicBool::new(false),
            page,
            known: !fresh,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VisitInner> {
        lock_or_recover(&self.inner)
    }

    /// The counts this request settled, to record when its response leaves.
    pub(crate) fn take_pending(&self) -> Vec<PendingEvent> {
        std::mem::take(&mut self.lock().pending)
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Whether the request came with a valid visitor cookie.
    pub(crate) fn is_known(&self) -> bool {
        self.known
    }

    pub(crate) fn visitor_id(&self) -> String {
        self.lock().visitor.id().to_string()
    }

    /// Exposures and conversions of the flags on this request's page.
    pub(crate) fn on_page(&self, live: &Arc<Live>, page: &Page) {
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
    pub(crate) fn apply_query<'a>(
        &self,
        live: &Live,
        segments: impl Iterator<Item = (&'a str, &'a str)>,
    ) {
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

    /// The row of the visit decision's precedence table that decides what the visitor
    /// sees of `stored` now: a rule that keeps them out, or
    /// [`Entered`](Precedence::Entered) when they hold an arm of its experiment (after
    /// [`arm`](Self::arm) gave them one), else [`Offline`](Precedence::Offline): the
    /// control, given because no arm could be (the database away, or no room in the
    /// cookie).
    pub(crate) fn precedence(&self, stored: &StoredFlag) -> Precedence {
        let inner = self.lock();
        let flag = &stored.flag;
        let now = inner.now_for(flag);
        if let Some((by, _)) = decision::kept_out(&self.facts, &inner.visitor, flag, now) {
            return by;
        }
        let holds = inner.visitor.get(flag.name()).is_some_and(|assigned| {
            assigned.epoch == stored.epoch && flag.arm_index(&assigned.arm).is_some()
        });
        if holds {
            Precedence::Entered
        } else {
            Precedence::Offline
        }
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
            if live.flag(flag).is_some_and(|stored| {
                decision::override_of(&self.facts, &inner.visitor, &stored.flag).is_some()
            }) {
                seen.insert(flag, arm);
            }
        }
        for (flag, arm) in self.facts.pinned.iter().flat_map(|pinned| pinned.arms()) {
            if let Some(stored) = live.flag(flag) {
                let index = stored.flag.arm_index(arm).unwrap_or(0);
                seen.insert(flag, &stored.flag.arms()[index].name);
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
        let max_age = self.runtime.config.cookie_max_age();
        let cookie = Cookie::build((
            self.runtime.config.cookie_name().to_string(),
            inner.visitor.encode(),
        ))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(self.runtime.secure)
        .max_age(max_age)
        // Rocket gives private cookies without an expiry date one week; browsers that
        // read Expires rather than Max-Age would forget the visitor after it.
        .expires(rocket::time::OffsetDateTime::now_utc() + max_age);
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

    /// The request's time for `flag`'s decision: read once, and only when the flag's
    /// targeting rules or the visitor's referral (whose window decides a view's partner)
    /// may need it.
    fn now_for(&self, flag: &Flag) -> i64 {
        if flag.targeting().has_rules() || self.visitor.referral().is_some() {
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
        let decided = decision::decide(
            facts,
            &self.visitor,
            flag,
            stored.epoch,
            &stored.totals,
            || live.chances(flag.name()),
            self.now_for(flag),
            expose,
            &mut rand::rng(),
        );
        if decided.by == Precedence::Pinned {
            // A test pinned the arm: nothing of the visitor's was read, so a new visitor
            // is given no cookie for it.
            return Seen { index: decided.arm };
        }
        if self.fresh && !facts.bot {
            self.fresh = false;
            self.dirty = true;
        }
        let Some(assigned) = decided.remember else {
            return Seen { index: decided.arm };
        };
        let counted = decided.count.map(|kind| (kind, assigned.arm.clone()));
        let mut partner = assigned.partner.clone().filter(|_| counted.is_some());
        let visitor = self.visitor_mut();
        match visitor.get_mut(flag.name()) {
            Some(slot) => *slot = assigned,
            None => visitor.insert(flag.name(), assigned),
        }
        if partner.is_some() && !visitor.fits() {
            // The partner's uid takes room in the cookie; without it the view counts for
            // no partner, which is better than not counting it.
            if let Some(slot) = visitor.get_mut(flag.name()) {
                slot.partner = None;
            }
            partner = None;
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
                partner,
                propensity: decided.propensity,
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
        let partner = converted.partner.clone();
        if let Some(slot) = self.visitor_mut().get_mut(flag.name()) {
            *slot = converted;
        }
        self.dirty = true;
        self.pending.push(PendingEvent {
            kind: EventKind::Conversion,
            flag: flag.name().to_string(),
            epoch: stored.epoch,
            arm,
            partner,
            propensity: None,
        });
        true
    }
}

/// Set once the first time a `Flags` guard is used without the fairing attached.
pub(crate) static WARNED_UNATTACHED: AtomicBool = AtomicBool::new(false);
