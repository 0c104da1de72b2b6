//! Tracking: what a site keeps in memory between flushes.
//!
//! A [`Tracker`] answers the request path without touching the database:
//!
//! - **decisions** read a snapshot of every flag and its totals, swapped whole (an
//!   [`ArcSwap`]) after each refresh, so choosing an arm takes no lock;
//! - **exposures and conversions** are added to in-memory increments under a short lock;
//! - **[`Tracker::tick`]**, run every flush interval, writes the increments to the store in
//!   one transaction, re-reads the totals (and the flags, when their configuration version
//!   moved: another instance edited one), and locks winners the rules declare.
//!
//! A flush that fails keeps its increments for the next one. Increments are per arm, so
//! they take constant memory however long the database is away; activity-log entries are
//! capped by number ([`DEFAULT_MAX_PENDING_EVENTS`]) and by bytes
//! ([`DEFAULT_MAX_PENDING_EVENT_BYTES`]), and those past either cap are counted, not kept.
//! The path an entry records is cut to [`MAX_LOGGED_PATH`] bytes.
//!
//! ```no_run
//! use bandits::store::{EventKind, Store};
//! use bandits::track::Tracker;
//!
//! # async fn example(store: Store) -> Result<(), bandits::store::StoreError> {
//! let tracker = Tracker::start(store).await?;
//! let live = tracker.live();
//! if let Some(stored) = live.flag("headline-flag") {
//!     let arm = stored.flag.choose_arm(&stored.totals, &mut rand::rng());
//!     let arm = &stored.flag.arms()[arm].name;
//!     tracker.record(EventKind::Exposure, "headline-flag", stored.epoch, arm,
//!                    "visitor-1", "/", 1_763_700_000_000);
//! }
//! tracker.tick(1_763_700_000_500).await?;
//! # Ok(())
//! # }
//! ```

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

mod live;
mod pending;

pub use live::{path_key, Live, LivePartner, Page};
use pending::{arms_counted, distinct_arms, Pending, PutBack};
pub use pending::{
    event_bytes, logged_path, DEFAULT_MAX_PENDING_EVENTS, DEFAULT_MAX_PENDING_EVENT_BYTES,
    MAX_LOGGED_PATH, MAX_PENDING_PARTNER_ROWS, MAX_USER_LEN, RECENT_COUNTS, TRUNCATED_MARK,
};

use crate::engine::ArmTotals;
use crate::store::{
    Batch, ChangeMarks, Event, EventKind, Firing, FlushReport, Increment, NewReferral, Snapshot,
    Store, StoreError, StoredFlag,
};

/// The in-memory side of the plugin: a snapshot for decisions and the increments waiting
/// for the next flush. Shared by every request (`Tracker` is `Send + Sync`).
pub struct Tracker {
    store: Store,
    live: ArcSwap<Live>,
    pending: Mutex<Pending>,
    max_pending_events: usize,
    max_pending_event_bytes: usize,
    /// The last round with the database succeeded.
    online: AtomicBool,
    /// The flags were read from the database at least once.
    loaded: AtomicBool,
    /// Held for a whole flush: a flush that starts while another is writing waits for it,
    /// so the last flush at shutdown cannot finish before an earlier one that may still
    /// fail and put its batch back.
    flushing: tokio::sync::Mutex<()>,
    /// Flushes that committed a write transaction, and rounds that failed.
    writes: AtomicU64,
    failures: AtomicU64,
    /// Increments and log entries of the batch being written, if one is.
    writing: (AtomicUsize, AtomicUsize),
    /// Keys the hashes of recent counts (random per process).
    recent_key: RandomState,
    /// The marks read before the counters the current [`Live`] was refreshed from: while
    /// the database shows the same marks, nothing was counted or changed since.
    refreshed_at: Mutex<Option<ChangeMarks>>,
    /// The [`Live`] whose flags were last checked for a winner, all without one: its
    /// totals cannot declare one at the next check either.
    winners_checked: Mutex<std::sync::Weak<Live>>,
}

impl Tracker {
    /// A tracker over `store`, starting from its current snapshot.
    pub async fn start(store: Store) -> Result<Tracker, StoreError> {
        let snapshot = store.snapshot().await?;
        Ok(Tracker::with_snapshot(store, snapshot, true))
    }

    /// A tracker that could not read the database: it starts from `flags` (those the site
    /// defines in code, at epoch 0 with zero totals) and reads the database at the first
    /// [`tick`](Self::tick) that reaches it. Until then it is offline. The ticks need a
    /// prepared database ([`Store::prepare`]): the plugin's runtime prepares it before each
    /// tick until the first one succeeds.
    pub fn offline(store: Store, flags: Vec<crate::engine::Flag>) -> Tracker {
        let snapshot = Snapshot {
            config_version: i64::MIN,
            flags: flags
                .into_iter()
                .map(|flag| StoredFlag {
                    totals: vec![ArmTotals::default(); flag.arms().len()],
                    flag,
                    epoch: 0,
                    winner_locked_at: None,
                    created_at: 0,
                    updated_at: 0,
                })
                .collect(),
            ..Snapshot::default()
        };
        Tracker::with_snapshot(store, snapshot, false)
    }

    fn with_snapshot(store: Store, snapshot: Snapshot, loaded: bool) -> Tracker {
        Tracker {
            store,
            live: ArcSwap::from_pointee(Live::new(snapshot)),
            pending: Mutex::default(),
            max_pending_events: DEFAULT_MAX_PENDING_EVENTS,
            max_pending_event_bytes: DEFAULT_MAX_PENDING_EVENT_BYTES,
            online: AtomicBool::new(loaded),
            loaded: AtomicBool::new(loaded),
            flushing: tokio::sync::Mutex::new(()),
            writes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            writing: (AtomicUsize::new(0), AtomicUsize::new(0)),
            recent_key: RandomState::new(),
            refreshed_at: Mutex::new(None),
            winners_checked: Mutex::new(std::sync::Weak::new()),
        }
    }

    /// Whether the last round with the database succeeded. While offline, the fairing
    /// gives visitors without an arm the control, and counts only those who have one.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Whether the flags were ever read from the database (false after [`offline`](Self::offline)
    /// until a tick reaches the database).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Arms with counts (flag, epoch and arm triples) and activity-log entries not yet
    /// written: waiting for the next flush, or being written by this one. Reading it costs
    /// time in the entries waiting: it is for monitoring, not for every request.
    pub fn pending(&self) -> (usize, usize) {
        let pending = self.lock_pending();
        let unconfirmed = pending
            .unconfirmed
            .as_ref()
            .map_or(0, |(_, batch)| arms_counted(batch));
        let waiting = distinct_arms(
            pending
                .counts
                .keys()
                .map(|(flag, epoch, arm, _)| (flag.as_str(), *epoch, arm.as_str()))
                .chain(pending.events.iter().map(Event::arm_key)),
        );
        (
            waiting + unconfirmed + self.writing.0.load(Ordering::Acquire),
            pending.events_held() + self.writing.1.load(Ordering::Acquire),
        )
    }

    /// Keeps at most `max` activity-log entries in memory while flushes fail.
    pub fn with_max_pending_events(mut self, max: usize) -> Self {
        self.max_pending_events = max;
        self
    }

    /// Keeps activity-log entries of at most `max` bytes in all ([`event_bytes`]) in
    /// memory while flushes fail.
    pub fn with_max_pending_event_bytes(mut self, max: usize) -> Self {
        self.max_pending_event_bytes = max;
        self
    }

    /// The bytes ([`event_bytes`]) of the activity-log entries waiting for a flush, never
    /// more than the cap ([`with_max_pending_event_bytes`](Self::with_max_pending_event_bytes)).
    /// Entries being written by a flush in progress are not included.
    pub fn pending_event_bytes(&self) -> usize {
        self.lock_pending().event_bytes_held()
    }

    /// The store behind the tracker.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The flags and totals decisions currently read.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(self.live.load().snapshot())
    }

    /// The current flags and totals with their indexes, for one request to read. A guard,
    /// not a counted reference: requests on every core read it without touching a shared
    /// counter. Hold it briefly (for a request), not across awaits that may last.
    pub fn live(&self) -> arc_swap::Guard<Arc<Live>> {
        self.live.load()
    }

    /// Counts an exposure or a conversion of `visitor` on `arm` of flag `flag` (at its
    /// `epoch`), seen on `path` at `at` (milliseconds since the Unix epoch). Written at the
    /// next flush. The log entry keeps the path cut to [`MAX_LOGGED_PATH`] bytes
    /// ([`logged_path`]); past either cap of the pending log it is dropped (and counted),
    /// the count itself never is.
    ///
    /// The visitor cookie says whether a visitor was counted already; a cookie sent again
    /// after the site updated it (two requests racing, a client replaying an old cookie)
    /// would say "not yet" twice. So a count keeps its visitor, and the flush adds it only
    /// if the database has no count of the same kind, visitor, flag and epoch
    /// ([`Batch::counted`]): once per visitor across instances and restarts. The tracker
    /// also remembers its last [`RECENT_COUNTS`] to 2 × that many counts and refuses
    /// repeats of them at once, without waiting for the flush. Returns whether this one
    /// was taken (the flush may still find it a repeat).
    ///
    /// While the pending log is full (the database away for long), counts are kept
    /// without their visitors and added as they are: only the in-memory check applies to
    /// them.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        kind: EventKind,
        flag: &str,
        epoch: i64,
        arm: &str,
        visitor: &str,
        path: &str,
        at: i64,
    ) -> bool {
        self.count(Event {
            at,
            kind,
            visitor: visitor.to_string(),
            flag: flag.to_string(),
            epoch,
            arm: arm.to_string(),
            path: path.to_string(),
            partner: None,
            propensity: None,
        })
    }

    /// As [`record`](Self::record), for a count given whole: with its partner
    /// ([`Event::partner`]), whose counters of the arm it adds to as well.
    pub fn count(&self, mut event: Event) -> bool {
        let key = self.recent_key.hash_one((
            event.kind.as_str(),
            &event.visitor,
            &event.flag,
            event.epoch,
        ));
        let mut pending = self.lock_pending();
        if !pending.recent.insert(key) {
            return false;
        }
        if event.path.len() > MAX_LOGGED_PATH {
            event.path = logged_path(&event.path);
        }
        let bytes = event_bytes(&event);
        let room = pending.events_held() < self.max_pending_events
            && pending.event_bytes_held().saturating_add(bytes) <= self.max_pending_event_bytes;
        if room {
            // Counted with its visitor, so the database counts it once whatever repeats.
            pending.events_bytes += bytes;
            pending.events.push(event);
            return true;
        }
        // No room to keep who it was: the count alone is kept, without its log entry.
        pending.dropped_events += 1;
        let counts = pending
            .counts
            .entry((event.flag, event.epoch, event.arm, event.partner))
            .or_default();
        match event.kind {
            EventKind::Exposure => counts.views += 1,
            EventKind::Conversion => counts.conversions += 1,
        }
        true
    }

    /// Remembers a visitor referred by a partner, written at the next flush (the visitor
    /// cookie carries it meanwhile). False when [`MAX_PENDING_PARTNER_ROWS`] referrals
    /// wait already: it is dropped and counted.
    pub fn refer(&self, referral: NewReferral) -> bool {
        let mut pending = self.lock_pending();
        if pending.referrals.len() >= MAX_PENDING_PARTNER_ROWS {
            pending.dropped_partner_rows += 1;
            return false;
        }
        pending.referrals.push(referral);
        true
    }

    /// Fires a trigger for a visitor, resolved at the next flush: it completes there at
    /// most once per visitor and trigger, on any instance. A repeat of one this tracker
    /// took lately is refused at once, without waiting for the flush; so is one past
    /// [`MAX_PENDING_PARTNER_ROWS`] (dropped and counted). Returns whether it was taken.
    pub fn fire(&self, firing: Firing) -> bool {
        let key = self
            .recent_key
            .hash_one(("trigger", &firing.visitor, &firing.trigger));
        let mut pending = self.lock_pending();
        if pending.firings.len() >= MAX_PENDING_PARTNER_ROWS {
            pending.dropped_partner_rows += 1;
            return false;
        }
        if !pending.recent.insert(key) {
            return false;
        }
        pending.firings.push(firing);
        true
    }

    /// Links signed-in user `user` to the stored referral of `visitor`, at the next flush,
    /// if that referral has no user yet. A link this tracker took lately is refused at
    /// once (a signed-in visitor's every request would ask for it); so is one past
    /// [`MAX_PENDING_PARTNER_ROWS`] (dropped and counted). Returns whether it was taken.
    pub fn link_user(&self, visitor: &str, user: &str) -> bool {
        let key = self.recent_key.hash_one(("link", visitor, user));
        let mut pending = self.lock_pending();
        if pending.links.len() >= MAX_PENDING_PARTNER_ROWS {
            pending.dropped_partner_rows += 1;
            return false;
        }
        if !pending.recent.insert(key) {
            return false;
        }
        pending.links.push(crate::store::UserLink {
            visitor: visitor.to_string(),
            user: user.to_string(),
        });
        true
    }

    /// Referrals, and triggers fired, that wait for a flush (in a batch whose write
    /// failed too).
    pub fn pending_partner_rows(&self) -> (usize, usize) {
        let pending = self.lock_pending();
        let (referrals, firings) = pending.unconfirmed.as_ref().map_or((0, 0), |(_, batch)| {
            (batch.referrals.len(), batch.firings.len())
        });
        (
            pending.referrals.len() + referrals,
            pending.firings.len() + firings,
        )
    }

    /// Referrals and firings dropped so far because too many waited for a flush.
    pub fn dropped_partner_rows(&self) -> u64 {
        self.lock_pending().dropped_partner_rows
    }

    /// Write transactions committed so far: one per flush that had something to write,
    /// however many requests it counts. Reads (the refresh of each round) are not writes.
    pub fn write_transactions(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Rounds of [`tick`](Self::tick) that failed so far (the database was away).
    pub fn failed_rounds(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Activity-log entries dropped so far because the pending log was full.
    pub fn dropped_events(&self) -> u64 {
        self.lock_pending().dropped_events
    }

    /// Writes the pending increments and log entries in one transaction. On failure they
    /// stay pending, as one batch under its flush id, and the next flush retries that batch
    /// first: if the failure was a commit whose reply was lost, the database recognises the
    /// id and nothing is counted twice.
    pub async fn flush(&self) -> Result<FlushReport, StoreError> {
        let _one_at_a_time = self.flushing.lock().await;
        let unconfirmed = {
            let mut pending = self.lock_pending();
            let unconfirmed = pending.unconfirmed.take();
            pending.unconfirmed_bytes = 0;
            if let Some((_, batch)) = &unconfirmed {
                self.mark_writing(batch);
            }
            unconfirmed
        };
        let mut report = FlushReport::default();
        if let Some((id, batch)) = unconfirmed {
            report = self.write(id, batch).await?;
        }
        let batch = {
            let mut pending = self.lock_pending();
            let counts = std::mem::take(&mut pending.counts);
            let batch = Batch {
                increments: counts
                    .into_iter()
                    .map(|((flag, epoch, arm, partner), totals)| Increment {
                        flag,
                        epoch,
                        arm,
                        views: totals.views,
                        conversions: totals.conversions,
                        partner,
                    })
                    .collect(),
                events: Vec::new(),
                counted: std::mem::take(&mut pending.events),
                referrals: std::mem::take(&mut pending.referrals),
                firings: std::mem::take(&mut pending.firings),
                links: std::mem::take(&mut pending.links),
            };
            pending.events_bytes = 0;
            // Still counted as pending (by `pending`) until written or put back.
            self.mark_writing(&batch);
            batch
        };
        if batch.is_empty() {
            return Ok(report);
        }
        let fresh = self.write(crate::store::new_flush_id(), batch).await?;
        Ok(FlushReport {
            applied: report.applied + fresh.applied,
            dropped: report.dropped + fresh.dropped,
            events: report.events + fresh.events,
            repeats: report.repeats + fresh.repeats,
            referrals: report.referrals + fresh.referrals,
            completions: report.completions + fresh.completions,
            already_written: report.already_written,
        })
    }

    /// Counts `batch` as being written (flushes take turns: one batch at most is). Called
    /// under the pending lock, so `pending` never misses it.
    fn mark_writing(&self, batch: &Batch) {
        self.writing.0.store(arms_counted(batch), Ordering::Release);
        self.writing
            .1
            .store(batch.events.len() + batch.counted.len(), Ordering::Release);
    }

    /// Writes one batch under `id`; kept as the unconfirmed batch unless written, even if
    /// this future is dropped half-way (a timeout).
    async fn write(&self, id: String, batch: Batch) -> Result<FlushReport, StoreError> {
        let mut put_back = PutBack {
            tracker: self,
            id,
            batch,
            written: false,
        };
        let result = self
            .store
            .flush_once(&put_back.id, &put_back.batch, crate::clock::now_ms())
            .await;
        put_back.written = result.is_ok();
        if matches!(result, Ok(report) if !report.already_written) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Re-reads the totals, and every flag when another change raised the configuration
    /// version since the last read. When the database shows the same [`ChangeMarks`] as
    /// at the last refresh (no instance counted or changed anything), neither is read and
    /// the flags in memory stay as they are: reading every counter and rebuilding the
    /// flags every flush interval would cost a site with a thousand idle flags CPU for
    /// nothing.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let current = self.live.load_full();
        let marks = self.store.change_marks().await?;
        let version = marks.config_version;
        if version != current.snapshot().config_version {
            return self.reload().await;
        }
        if *lock_or_recover(&self.refreshed_at) == Some(marks) {
            return Ok(());
        }
        // Read after the marks: a flush landing in between is in these counters, and the
        // next refresh reads them again (the marks it sees are newer than those kept).
        let counters = self.store.counters().await?;
        let mut snapshot = Snapshot::clone(current.snapshot());
        snapshot.set_totals(&counters);
        // A reload that landed meanwhile is newer than this: keep it.
        let fresh = Arc::new(Live::following(snapshot, Some(&current)));
        let mut replaced = false;
        self.live.rcu(|live| {
            replaced = Arc::ptr_eq(live, &current);
            if live.snapshot().config_version == version {
                Arc::clone(&fresh)
            } else {
                Arc::clone(live)
            }
        });
        if replaced {
            *lock_or_recover(&self.refreshed_at) = Some(marks);
        }
        Ok(())
    }

    /// Reads every flag and its totals afresh.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let snapshot = self.store.snapshot().await?;
        // The next refresh rebuilds from the counters it reads, whatever they are.
        *lock_or_recover(&self.refreshed_at) = None;
        self.live.store(Arc::new(Live::new(snapshot)));
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Locks the winner of every flag whose rule declares one on the current totals, and
    /// returns the names of the flags locked. `now` is the time of the lock.
    pub async fn lock_winners(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let live = self.live.load_full();
        if std::ptr::eq(
            lock_or_recover(&self.winners_checked).as_ptr(),
            Arc::as_ptr(&live),
        ) {
            // The same flags and totals as at the last check, which found no winner.
            return Ok(Vec::new());
        }
        let mut locked = Vec::new();
        for stored in &live.snapshot().flags {
            if stored.flag.winner().is_some() {
                continue;
            }
            let chances = live.chances(stored.flag.name());
            if let Some(winner) = stored.flag.find_winner_with(&stored.totals, chances) {
                let arm = &stored.flag.arms()[winner].name;
                self.store
                    .lock_winner(stored.flag.name(), stored.epoch, arm, now)
                    .await?;
                locked.push(stored.flag.name().to_string());
            }
        }
        if locked.is_empty() {
            *lock_or_recover(&self.winners_checked) = Arc::downgrade(&live);
        } else {
            self.reload().await?;
        }
        Ok(locked)
    }

    /// One round of the flush loop: flush, refresh, lock winners. Run it every flush
    /// interval and once more at shutdown.
    pub async fn tick(&self, now: i64) -> Result<FlushReport, StoreError> {
        let result = self.round(now).await;
        self.online.store(result.is_ok(), Ordering::Release);
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn round(&self, now: i64) -> Result<FlushReport, StoreError> {
        if !self.is_loaded() {
            // Started offline: read every flag once the database answers (the runtime
            // prepares it first, with Store::prepare).
            self.reload().await?;
        }
        let report = self.flush().await?;
        self.refresh().await?;
        self.lock_winners(now).await?;
        Ok(report)
    }

    fn lock_pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves plain counters behind, still usable.
        lock_or_recover(&self.pending)
    }
}

/// Locks `mutex`; a panic while it was held leaves its value behind, still usable (every
/// value behind the crate's locks stays consistent between statements).
pub(crate) fn lock_or_recover<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FlagDefinition;

    fn stored(name: &str, source: Option<&str>, target: Option<&str>) -> StoredFlag {
        let mut definition = FlagDefinition::new(name);
        definition.source_path = source.map(str::to_string);
        definition.target_path = target.map(str::to_string);
        if target.is_none() {
            definition.goal_event = Some("signup".into());
        }
        StoredFlag {
            flag: definition.validate().expect("a valid flag"),
            epoch: 1,
            totals: vec![ArmTotals::default(); 2],
            winner_locked_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn names<'a>(flags: impl Iterator<Item = &'a StoredFlag>) -> Vec<&'a str> {
        flags.map(|stored| stored.flag.name()).collect()
    }

    #[test]
    fn one_lookup_finds_the_flags_shown_on_a_page_and_those_it_is_the_goal_of() {
        let live = Live::new(Snapshot {
            config_version: 1,
            flags: vec![
                stored("headline", Some("/"), Some("/contact/")),
                stored("cta", Some("/"), None),
                stored("pricing", Some("/pricing"), Some("/")),
                stored("nowhere", None, None),
            ],
            ..Snapshot::default()
        });
        let home = live.page("/").expect("flags concern /");
        assert_eq!(names(live.shown_on(home)), ["headline", "cta"]);
        assert_eq!(names(live.goal_of(home)), ["pricing"]);
        // A trailing slash names the same page.
        let contact = live.page("/contact").expect("the goal of headline");
        assert_eq!(names(live.shown_on(contact)), Vec::<&str>::new());
        assert_eq!(names(live.goal_of(contact)), ["headline"]);
        let contact = live.page("/contact/").expect("the same page");
        assert_eq!(names(live.goal_of(contact)), ["headline"]);
        let pricing = live
            .page("/pricing/")
            .expect("a trailing slash names the page");
        assert_eq!(names(live.shown_on(pricing)), ["pricing"]);
        assert!(live.page("/about").is_none());
        assert_eq!(names(live.with_goal_event("signup")), ["cta", "nowhere"]);
    }

    #[test]
    fn a_page_is_its_path_with_or_without_one_trailing_slash_and_nothing_else() {
        assert_eq!(path_key("/"), "/");
        assert_eq!(path_key("/contact"), "/contact");
        assert_eq!(path_key("/contact/"), "/contact");
        // More slashes are another path, which no flag's page normalises to.
        assert_eq!(path_key("/contact//"), "/contact//");
        assert_eq!(path_key("//"), "//");
        assert_eq!(path_key("/////"), "/////");
        let live = Live::new(Snapshot {
            config_version: 1,
            flags: vec![stored("headline", Some("/"), Some("/contact/"))],
            ..Snapshot::default()
        });
        assert!(live.page("/").is_some());
        assert!(live.page("/contact").is_some());
        for path in [
            "//",
            "/////",
            "/contact//",
            &format!("/{}", "/".repeat(64_000)),
        ] {
            assert!(live.page(path).is_none(), "{:.20}", path);
        }
    }

    #[test]
    fn a_logged_path_is_cut_at_a_character_boundary_with_a_mark() {
        assert_eq!(logged_path("/contact"), "/contact");
        let exact = "a".repeat(MAX_LOGGED_PATH);
        assert_eq!(logged_path(&exact), exact);
        let long = format!("/{}", "/".repeat(64_000));
        let cut = logged_path(&long);
        assert!(cut.len() <= MAX_LOGGED_PATH, "{}", cut.len());
        assert!(cut.ends_with(TRUNCATED_MARK));
        assert!(long.starts_with(cut.trim_end_matches(TRUNCATED_MARK)));
        // Multi-byte characters across the cut are not split.
        let wide = "é".repeat(MAX_LOGGED_PATH);
        let cut = logged_path(&wide);
        assert!(cut.len() <= MAX_LOGGED_PATH);
        assert!(cut
            .trim_end_matches(TRUNCATED_MARK)
            .chars()
            .all(|c| c == 'é'));
    }
}
