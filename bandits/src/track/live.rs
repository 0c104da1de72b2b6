//! The flags and totals decisions read: a snapshot indexed by flag name, by page and by
//! goal event, swapped whole after each refresh.

use std::sync::Arc;

use crate::engine::partners::Trigger;
use crate::engine::stats::Chances;
use crate::store::{Snapshot, StoredFlag};

/// The flags and totals decisions read, indexed by name, by page and by goal event.
///
/// One is current at a time ([`Tracker::live`]); a refresh replaces it whole, so a request
/// holding one sees a consistent set of flags.
///
/// The indexes hash with foldhash: they are read on every request, and their keys come from
/// the flags, never from visitors.
pub struct Live {
    snapshot: Arc<Snapshot>,
    by_name: foldhash::HashMap<String, usize>,
    by_path: foldhash::HashMap<String, Page>,
    by_event: foldhash::HashMap<String, Vec<usize>>,
    /// The active partners, by uid: an inactive partner's link registers no one and its
    /// subscriptions complete nothing, so it is left out.
    partners: foldhash::HashMap<String, LivePartner>,
    /// Admins' switches of triggers, by name: a switch set wins over the configuration.
    trigger_switches: foldhash::HashMap<String, bool>,
    /// Each flag's [`Chances`] on its totals, by index, for the flags that read them
    /// ([`Flag::reads_chances`](crate::engine::Flag::reads_chances)): computed once here,
    /// per refresh, never per request.
    chances: Vec<Option<Arc<Chances>>>,
}

/// An active partner as the request path knows it: the triggers it is subscribed to.
#[derive(Debug, Default)]
pub struct LivePartner {
    triggers: Vec<String>,
}

impl LivePartner {
    /// Whether the partner subscribes to trigger `trigger`.
    pub fn subscribes_to(&self, trigger: &str) -> bool {
        self.triggers.iter().any(|name| name == trigger)
    }
}

/// The flags that concern one page (by [`path_key`]): one lookup per request finds both
/// kinds.
#[derive(Default)]
pub struct Page {
    /// Flags shown on the page (their source path), by index in the snapshot.
    source: Vec<usize>,
    /// Flags whose goal page it is.
    target: Vec<usize>,
}

/// The key a path is matched by: without one trailing slash (`/contact/` and `/contact`
/// are one page).
///
/// Only one: `/contact//` and `/////` are no flag's page (Rocket may still serve them, as
/// `/contact` and `/`, but they count for no flag), so a request cannot make a path that
/// counts for a page by piling up slashes, and matching costs the same whatever it sends.
/// The root is `/` alone.
pub fn path_key(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() && !rest.ends_with('/') => rest,
        _ => path,
    }
}

impl Live {
    /// The view of `snapshot`, computing the [`Chances`] of every flag that reads them.
    pub(crate) fn new(snapshot: Snapshot) -> Self {
        Live::following(snapshot, None)
    }

    /// The view of `snapshot` that replaces `previous`: a flag whose arms and totals did
    /// not change keeps the [`Chances`] computed for it then (integrating them costs about
    /// a millisecond a flag).
    pub(crate) fn following(snapshot: Snapshot, previous: Option<&Live>) -> Self {
        let chances = snapshot
            .flags
            .iter()
            .map(|stored| {
                if !stored.flag.reads_chances() {
                    return None;
                }
                let kept = previous.and_then(|previous| {
                    let i = *previous.by_name.get(stored.flag.name())?;
                    let before = &previous.snapshot.flags[i];
                    let same = before.totals == stored.totals
                        && before.flag.arms() == stored.flag.arms()
                        && before.flag.policy().prior() == stored.flag.policy().prior();
                    same.then(|| previous.chances.get(i).cloned().flatten())
                        .flatten()
                });
                kept.or_else(|| stored.flag.chances(&stored.totals).map(Arc::new))
            })
            .collect();
        let mut by_name = foldhash::HashMap::default();
        let mut by_path: foldhash::HashMap<String, Page> = foldhash::HashMap::default();
        let mut by_event: foldhash::HashMap<String, Vec<usize>> = foldhash::HashMap::default();
        for (i, stored) in snapshot.flags.iter().enumerate() {
            let flag = &stored.flag;
            by_name.insert(flag.name().to_string(), i);
            if let Some(path) = flag.source_path() {
                by_path
                    .entry(path_key(path).to_string())
                    .or_default()
                    .source
                    .push(i);
            }
            if let Some(path) = flag.target_path() {
                by_path
                    .entry(path_key(path).to_string())
                    .or_default()
                    .target
                    .push(i);
            }
            if let Some(event) = flag.goal_event() {
                by_event.entry(event.to_string()).or_default().push(i);
            }
        }
        let mut partners: foldhash::HashMap<String, LivePartner> = snapshot
            .partners
            .iter()
            .filter(|stored| stored.partner.active())
            .map(|stored| (stored.uid.clone(), LivePartner::default()))
            .collect();
        for stored in &snapshot.subscriptions {
            let subscription = &stored.subscription;
            if let Some(partner) = partners.get_mut(subscription.partner()) {
                if !partner.subscribes_to(subscription.trigger()) {
                    partner.triggers.push(subscription.trigger().to_string());
                }
            }
        }
        let trigger_switches = snapshot
            .trigger_switches
            .iter()
            .map(|switch| (switch.name.clone(), switch.enabled))
            .collect();
        Live {
            snapshot: Arc::new(snapshot),
            by_name,
            by_path,
            by_event,
            partners,
            trigger_switches,
            chances,
        }
    }

    /// The [`Chances`] of flag `name` on its totals, if it reads them.
    pub fn chances(&self, name: &str) -> Option<&Chances> {
        let i = *self.by_name.get(name)?;
        self.chances.get(i)?.as_deref()
    }

    /// The snapshot behind this view.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The flag called `name`.
    pub fn flag(&self, name: &str) -> Option<&StoredFlag> {
        self.by_name.get(name).map(|&i| &self.snapshot.flags[i])
    }

    /// The flags that concern `path`, if any does: those shown there and those whose goal
    /// it is ([`shown_on`](Self::shown_on), [`goal_of`](Self::goal_of)).
    pub fn page(&self, path: &str) -> Option<&Page> {
        self.by_path.get(path_key(path))
    }

    /// The flags shown on `page`.
    pub fn shown_on<'a>(&'a self, page: &'a Page) -> impl Iterator<Item = &'a StoredFlag> {
        page.source.iter().map(|&i| &self.snapshot.flags[i])
    }

    /// The flags whose goal page is `page`.
    pub fn goal_of<'a>(&'a self, page: &'a Page) -> impl Iterator<Item = &'a StoredFlag> {
        page.target.iter().map(|&i| &self.snapshot.flags[i])
    }

    /// The active partner whose uid is `uid`.
    pub fn partner(&self, uid: &str) -> Option<&LivePartner> {
        self.partners.get(uid)
    }

    /// Whether any partner is active: when none is, no request's query is read for a
    /// partner's uid.
    pub fn has_partners(&self) -> bool {
        !self.partners.is_empty()
    }

    /// Whether `trigger` fires now: the admin's switch of it when one is set, the
    /// configuration's `enabled` otherwise ([`Trigger::enabled_with`]).
    pub fn trigger_enabled(&self, trigger: &Trigger) -> bool {
        trigger.enabled_with(self.trigger_switches.get(trigger.name()).copied())
    }

    /// The flags whose goal is the event `event`.
    pub fn with_goal_event(&self, event: &str) -> impl Iterator<Item = &StoredFlag> {
        self.by_event
            .get(event)
            .into_iter()
            .flatten()
            .map(|&i| &self.snapshot.flags[i])
    }
}
