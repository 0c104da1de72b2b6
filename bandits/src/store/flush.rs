//! Writing counts: a [`Batch`] of increments, counted visitors and log entries added in one
//! transaction, recognised by its flush id when retried, each visitor counted once.

use std::collections::{BTreeMap, HashSet};

use sqlx::{Any, Row, Transaction};

use super::error::StoreError;
use super::handle::Store;
use super::log::Event;
use super::referrals::{self, Firing, NewReferral, UserLink};
use super::snapshot::{to_i64, StoredFlag};
use crate::engine::EventKind;

/// Exposures and conversions to add to one arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Increment {
    /// The flag.
    pub flag: String,
    /// The flag's epoch when these were counted.
    pub epoch: i64,
    /// The arm.
    pub arm: String,
    /// Exposures to add.
    pub views: u64,
    /// Conversions to add.
    pub conversions: u64,
    /// The partner whose counters of the arm these add to as well, if any.
    pub partner: Option<String>,
}

impl Increment {
    /// An increment for `arm` of `stored`, at the flag's current epoch.
    pub fn new(stored: &StoredFlag, arm: &str, views: u64, conversions: u64) -> Self {
        Increment {
            flag: stored.flag.name().to_string(),
            epoch: stored.epoch,
            arm: arm.to_string(),
            views,
            conversions,
            partner: None,
        }
    }
}

/// Counter increments and log entries written together by [`Store::flush`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Additions to the arms' counters, added as they are.
    pub increments: Vec<Increment>,
    /// New activity-log entries, logged as they are (they count nothing).
    pub events: Vec<Event>,
    /// Exposures and conversions of one visitor each, counted at most once per visitor,
    /// flag, epoch and kind in the database's life: each adds one to its arm's counter and
    /// is logged, unless the database has counted the same already (on any instance, at
    /// any time), in which case it is dropped and reported as a repeat.
    pub counted: Vec<Event>,
    /// Visitors referred by partners: each replaces the visitor's stored referral only
    /// when that one is older than [`NewReferral::replaces_older_than`].
    pub referrals: Vec<NewReferral>,
    /// Triggers fired, resolved against the referral: each completes at most once per
    /// visitor and trigger in the database's life, and a completion puts its partner's
    /// callbacks in the outbox.
    pub firings: Vec<Firing>,
    /// Signed-in users to link to their visitors' stored referrals that have none.
    pub links: Vec<UserLink>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.increments.is_empty()
            && self.events.is_empty()
            && self.counted.is_empty()
            && self.referrals.is_empty()
            && self.firings.is_empty()
            && self.links.is_empty()
    }
}

/// A fresh id for a flush: 128 random bits, in hex.
pub fn new_flush_id() -> String {
    crate::secret::random_id()
}

/// What a flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Increments added to a counter.
    pub applied: usize,
    /// Increments dropped because their flag was deleted, reset or lost the arm since.
    pub dropped: usize,
    /// Log entries written.
    pub events: usize,
    /// Entries of [`Batch::counted`] dropped because the database had counted the same
    /// visitor, flag, epoch and kind already.
    pub repeats: usize,
    /// Referrals written (new, or replacing an older one).
    pub referrals: usize,
    /// Triggers completed for the first time.
    pub completions: usize,
    /// The batch had been written already (by an earlier try whose reply was lost), so
    /// nothing was written this time.
    pub already_written: bool,
}

/// How long the ids of written flushes are kept to recognise a retry: far longer than any
/// retry waits.
const FLUSH_IDS_KEPT_MS: i64 = 24 * 60 * 60 * 1000;

/// Log entries per `INSERT`: 8 values each, well under SQLite's 999 parameters.
const EVENTS_PER_INSERT: usize = 100;

impl Store {
    /// Adds a batch of increments and writes its log entries, all in one transaction, at
    /// time `now` (milliseconds since the Unix epoch): either all of it lands or none of it
    /// does. To retry a batch whose outcome is unknown
    /// (the connection died around the commit), use [`flush_once`](Self::flush_once).
    pub async fn flush(&self, batch: &Batch, now: i64) -> Result<FlushReport, StoreError> {
        self.flush_once(&new_flush_id(), batch, now).await
    }

    /// As [`flush`](Self::flush), recording `id` in the same transaction; a batch whose id
    /// is already recorded is not written again (the report says `already_written`). Retry
    /// a failed batch under the same id: if the failure was only the lost reply of a
    /// commit, the retry counts nothing twice. Ids are kept a day after `now`, the time of
    /// the flush.
    pub async fn flush_once(
        &self,
        id: &str,
        batch: &Batch,
        now: i64,
    ) -> Result<FlushReport, StoreError> {
        let mut report = FlushReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        let mut tx = self.write().await?;
        let first_time = sqlx::query(
            "INSERT INTO bandits_flushes (id, at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first_time {
            tx.rollback().await?;
            report.already_written = true;
            return Ok(report);
        }
        sqlx::query("DELETE FROM bandits_flushes WHERE at < $1")
            .bind(now - FLUSH_IDS_KEPT_MS)
            .execute(&mut *tx)
            .await?;
        let (first_counts, repeats) = first_counts(&mut tx, &batch.counted).await?;
        report.repeats = repeats;
        // In key order, as every instance does: two flushes updating the same rows take
        // their locks in one order and cannot deadlock each other.
        let mut increments: BTreeMap<(&str, i64, &str), (u64, u64)> = BTreeMap::new();
        for increment in &batch.increments {
            let entry = increments
                .entry((&increment.flag, increment.epoch, &increment.arm))
                .or_default();
            entry.0 += increment.views;
            entry.1 += increment.conversions;
        }
        for event in &first_counts {
            let entry = increments
                .entry((&event.flag, event.epoch, &event.arm))
                .or_default();
            match event.kind {
                EventKind::Exposure => entry.0 += 1,
                EventKind::Conversion => entry.1 += 1,
            }
        }
        let by_partner = partner_increments(&batch.increments, &first_counts);
        let mut counted_arms = HashSet::new();
        for ((flag, epoch, arm), (views, conversions)) in increments {
            let updated = sqlx::query(
                "UPDATE bandits_arms
                 SET views = views + $1, conversions = conversions + $2
                 WHERE flag = $3 AND arm = $4 AND epoch = $5",
            )
            .bind(to_i64(views))
            .bind(to_i64(conversions))
            .bind(flag)
            .bind(arm)
            .bind(epoch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                report.dropped += 1;
            } else {
                report.applied += 1;
                counted_arms.insert((flag, epoch, arm));
            }
        }
        // Only for arms that took their counts: a deleted or reset flag's are dropped.
        for ((flag, epoch, arm, partner), (views, conversions)) in by_partner {
            if !counted_arms.contains(&(flag, epoch, arm)) {
                continue;
            }
            sqlx::query(
                "INSERT INTO bandits_partner_arms
                     (flag, epoch, arm, partner, views, conversions)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (flag, epoch, arm, partner) DO UPDATE
                 SET views = bandits_partner_arms.views + excluded.views,
                     conversions = bandits_partner_arms.conversions + excluded.conversions",
            )
            .bind(flag)
            .bind(epoch)
            .bind(arm)
            .bind(partner)
            .bind(to_i64(views))
            .bind(to_i64(conversions))
            .execute(&mut *tx)
            .await?;
        }
        let logged: Vec<&Event> = batch.events.iter().chain(first_counts).collect();
        for chunk in logged.chunks(EVENTS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO bandits_events \
                 (at, kind, visitor, flag, epoch, arm, path, partner, propensity) VALUES {}",
                placeholders(chunk.len(), 9)
            );
            let mut query = sqlx::query(&sql);
            for event in chunk {
                query = query
                    .bind(event.at)
                    .bind(event.kind.as_str())
                    .bind(&event.visitor)
                    .bind(&event.flag)
                    .bind(event.epoch)
                    .bind(&event.arm)
                    .bind(&event.path)
                    .bind(event.partner.as_deref());
                // sqlx 0.8's Any driver sends a NULL `f64` to PostgreSQL as a `real`
                // (float4) and a NULL `f32` as a `double precision`: binding `None::<f64>`
                // beside `Some(f64)` in one prepared statement makes PostgreSQL refuse the
                // whole flush. A NULL `f32` is the NULL `double precision` the column is.
                query = match event.propensity {
                    Some(propensity) => query.bind(propensity),
                    None => query.bind(None::<f32>),
                };
            }
            query.execute(&mut *tx).await?;
            report.events += chunk.len();
        }
        let written =
            referrals::record(&mut tx, &batch.referrals, &batch.firings, &batch.links, now).await?;
        report.referrals = written.referrals;
        report.completions = written.completions;
        tx.commit().await?;
        Ok(report)
    }
}

/// What `increments` and the first `counted` entries add to partners' counters, by flag,
/// epoch, arm and partner, in key order (as every instance writes them, so two flushes
/// take their locks in one order).
fn partner_increments<'a>(
    increments: &'a [Increment],
    counted: &[&'a Event],
) -> BTreeMap<(&'a str, i64, &'a str, &'a str), (u64, u64)> {
    let mut by_partner: BTreeMap<_, (u64, u64)> = BTreeMap::new();
    let credited = increments
        .iter()
        .map(|i| (&i.flag, i.epoch, &i.arm, &i.partner, i.views, i.conversions))
        .chain(counted.iter().map(|event| {
            let (views, conversions) = match event.kind {
                EventKind::Exposure => (1, 0),
                EventKind::Conversion => (0, 1),
            };
            let event: &'a Event = event;
            (
                &event.flag,
                event.epoch,
                &event.arm,
                &event.partner,
                views,
                conversions,
            )
        }));
    for (flag, epoch, arm, partner, views, conversions) in credited {
        if let Some(partner) = partner {
            let entry = by_partner
                .entry((flag.as_str(), epoch, arm.as_str(), partner.as_str()))
                .or_default();
            entry.0 += views;
            entry.1 += conversions;
        }
    }
    by_partner
}

/// Records `counted` in `bandits_counted`; returns those recorded for the first time (in
/// order) and how many were repeats (the database, or an earlier entry of the same batch,
/// had them already).
async fn first_counts<'a>(
    tx: &mut Transaction<'_, Any>,
    counted: &'a [Event],
) -> Result<(Vec<&'a Event>, usize), StoreError> {
    let key = |event: &Event| {
        (
            event.flag.clone(),
            event.epoch,
            event.kind.as_str().to_string(),
            event.visitor.clone(),
        )
    };
    // Inserted in key order, as every instance does, so that two flushes of the same
    // visitors take their locks in one order and cannot deadlock each other.
    let mut sorted: Vec<&Event> = counted.iter().collect();
    sorted.sort_by_key(|event| event.counted_key());
    let mut inserted: HashSet<(String, i64, String, String)> = HashSet::new();
    for chunk in sorted.chunks(EVENTS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO bandits_counted (flag, epoch, kind, visitor) VALUES {}
             ON CONFLICT DO NOTHING RETURNING flag, epoch, kind, visitor",
            placeholders(chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            query = query
                .bind(&event.flag)
                .bind(event.epoch)
                .bind(event.kind.as_str())
                .bind(&event.visitor);
        }
        for row in query.fetch_all(&mut **tx).await? {
            inserted.insert((
                row.try_get("flag")?,
                row.try_get("epoch")?,
                row.try_get("kind")?,
                row.try_get("visitor")?,
            ));
        }
    }
    // In the batch's order, so the log keeps the order of the requests.
    let mut first = Vec::with_capacity(inserted.len());
    let mut repeats = 0;
    for event in counted {
        // Taken by its first entry: a second one in the same batch is a repeat.
        if inserted.remove(&key(event)) {
            first.push(event);
        } else {
            repeats += 1;
        }
    }
    Ok((first, repeats))
}

/// The `VALUES` list of a multi-row insert: `rows` rows of `columns` numbered parameters,
/// `($1, $2), ($3, $4)` for two of two.
fn placeholders(rows: usize, columns: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 1..=columns {
            if column > 1 {
                out.push_str(", ");
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "${}", row * columns + column);
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_every_value_of_every_row() {
        assert_eq!(placeholders(1, 1), "($1)");
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
