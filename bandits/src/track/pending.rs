//! What waits for the next flush: counts and their log entries, the batch being written,
//! the recent counts that refuse repeats, and the caps that bound them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::Tracker;
use crate::engine::ArmTotals;
use crate::store::{Batch, Event};

/// Activity-log entries kept in memory while the database cannot take them, by default.
/// Counts are never capped (they are a few numbers per arm).
pub const DEFAULT_MAX_PENDING_EVENTS: usize = 100_000;

/// Bytes of activity-log entries kept in memory while the database cannot take them, by
/// default: 16 MiB, whatever the entries hold (see [`event_bytes`]).
pub const DEFAULT_MAX_PENDING_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The longest path an activity-log entry keeps, in bytes; a longer one is cut at a
/// character boundary and ends with [`TRUNCATED_MARK`].
pub const MAX_LOGGED_PATH: usize = 512;

/// What ends a path cut to [`MAX_LOGGED_PATH`].
pub const TRUNCATED_MARK: &str = "…";

/// `path` as the activity log keeps it: whole up to [`MAX_LOGGED_PATH`] bytes, otherwise
/// its first bytes (cut at a character boundary) and [`TRUNCATED_MARK`], at most
/// `MAX_LOGGED_PATH` bytes in all.
pub fn logged_path(path: &str) -> String {
    if path.len() <= MAX_LOGGED_PATH {
        return path.to_string();
    }
    let mut end = MAX_LOGGED_PATH - TRUNCATED_MARK.len();
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED_MARK}", &path[..end])
}

/// The memory an activity-log entry takes, as the pending log counts it: the entry itself
/// and the text it holds.
pub fn event_bytes(event: &Event) -> usize {
    std::mem::size_of::<Event>()
        + event.visitor.len()
        + event.flag.len()
        + event.arm.len()
        + event.path.len()
        + event.partner.as_ref().map_or(0, String::len)
}

/// A batch being written: kept, under its id, for the next flush when dropped unwritten.
pub(super) struct PutBack<'a> {
    pub(super) tracker: &'a Tracker,
    pub(super) id: String,
    pub(super) batch: Batch,
    pub(super) written: bool,
}

impl Drop for PutBack<'_> {
    fn drop(&mut self) {
        // Under the pending lock, so `Tracker::pending` sees the batch in one place or
        // the other, or written.
        let mut pending = self.tracker.lock_pending();
        if !self.written {
            let batch = std::mem::take(&mut self.batch);
            pending.unconfirmed_bytes = batch.counted.iter().map(event_bytes).sum();
            pending.unconfirmed = Some((std::mem::take(&mut self.id), batch));
        }
        self.tracker.writing.0.store(0, Ordering::Release);
        self.tracker.writing.1.store(0, Ordering::Release);
    }
}

/// Increments and log entries not yet written.
#[derive(Default)]
pub(super) struct Pending {
    /// Counts whose visitors could not be kept (the pending log was full): added as they
    /// are.
    pub(super) counts: HashMap<(String, i64, String, Option<String>), ArmTotals>,
    /// Counts with their visitors, each also a log entry: the database counts each once
    /// per visitor ([`Batch::counted`]).
    pub(super) events: Vec<Event>,
    /// The [`event_bytes`] of `events`.
    pub(super) events_bytes: usize,
    pub(super) dropped_events: u64,
    /// The counts made lately, to refuse repeats.
    pub(super) recent: Recent,
    /// A batch whose write failed, with its flush id. The failure may have been only the
    /// lost reply of a commit, so it is retried as it is, under the same id (which the
    /// database recognises), before anything newer, and never merged with newer counts.
    pub(super) unconfirmed: Option<(String, Batch)>,
    /// The [`event_bytes`] of the unconfirmed batch's entries.
    pub(super) unconfirmed_bytes: usize,
    /// Referrals captured, at most [`MAX_PENDING_PARTNER_ROWS`].
    pub(super) referrals: Vec<crate::store::NewReferral>,
    /// Triggers fired, at most [`MAX_PENDING_PARTNER_ROWS`].
    pub(super) firings: Vec<crate::store::Firing>,
    /// Users to link to referrals, at most [`MAX_PENDING_PARTNER_ROWS`].
    pub(super) links: Vec<crate::store::UserLink>,
    /// Referrals and firings dropped because their list was full.
    pub(super) dropped_partner_rows: u64,
}

/// Referrals, and triggers fired, kept at most between two flushes (each list): every one
/// is bounded (a visitor id, a uid, a trigger name, an entry of [`MAX_LOGGED_PATH`] bytes
/// and a user id of [`MAX_USER_LEN`] bytes at most), so the two lists hold a few
/// megabytes at most while the database is away. Past it, new ones are dropped and
/// counted.
pub const MAX_PENDING_PARTNER_ROWS: usize = 10_000;

/// The longest user id a referral keeps; a longer one is not kept.
pub const MAX_USER_LEN: usize = 256;

/// How many counts [`Tracker::record`] remembers at least (and at most twice as many) to
/// refuse repeats: 8 bytes each.
pub const RECENT_COUNTS: usize = 100_000;

/// Hashes of recent counts in two generations: when the newer is full it becomes the
/// older and the oldest is forgotten, so memory stays bounded and the latest
/// [`RECENT_COUNTS`] are always remembered.
#[derive(Default)]
pub(super) struct Recent {
    newer: HashSet<u64>,
    older: HashSet<u64>,
}

impl Recent {
    /// Remembers `key`; false if it was remembered already.
    pub(super) fn insert(&mut self, key: u64) -> bool {
        if self.newer.contains(&key) || self.older.contains(&key) {
            return false;
        }
        if self.newer.len() >= RECENT_COUNTS {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(key)
    }
}

impl Pending {
    /// Activity-log entries held, in the unconfirmed batch and since.
    pub(super) fn events_held(&self) -> usize {
        self.events.len()
            + self
                .unconfirmed
                .as_ref()
                .map_or(0, |(_, batch)| batch.counted.len())
    }

    /// The [`event_bytes`] of the entries [`events_held`](Self::events_held) counts.
    pub(super) fn event_bytes_held(&self) -> usize {
        self.events_bytes + self.unconfirmed_bytes
    }
}

/// The arms `batch` adds counts to.
pub(super) fn arms_counted(batch: &Batch) -> usize {
    distinct_arms(
        batch
            .increments
            .iter()
            .map(|i| (i.flag.as_str(), i.epoch, i.arm.as_str()))
            .chain(batch.counted.iter().map(Event::arm_key)),
    )
}

/// How many different arms (flag, epoch, arm) `arms` names.
pub(super) fn distinct_arms<'a>(arms: impl Iterator<Item = (&'a str, i64, &'a str)>) -> usize {
    arms.collect::<HashSet<_>>().len()
}
