//! Storage: flags, their arms' counters and the activity log, on SQLite or PostgreSQL.
//!
//! The store is the one source of truth for the counters; what a site keeps in memory is
//! a [`Snapshot`] of it, with the configuration version it was read at. Counters change
//! only additively: [`Store::flush`] adds a [`Batch`] of increments in one transaction
//! (`views = views + $1`), so instances sharing a database never lose each other's counts
//! and a failed flush can be retried whole.
//!
//! Every increment carries the flag's *epoch*. Resetting a flag raises its epoch, and an
//! increment for an older epoch (counted before the reset, flushed after) is dropped
//! rather than added to the fresh counters.
//!
//! ```no_run
//! use bandits::engine::FlagDefinition;
//! use bandits::store::{Batch, Increment, Store};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::connect("sqlite://bandits.sqlite?mode=rwc").await?;
//! store.migrate().await?;
//! let flag = FlagDefinition::new("headline-flag").validate()?;
//! let stored = store.create_flag(&flag, 1_700_000_000_000).await?;
//!
//! let batch = Batch {
//!     increments: vec![Increment::new(&stored, "on", 3, 1)],
//!     ..Batch::default()
//! };
//! store.flush(&batch, 1_700_000_000_500).await?;
//! let snapshot = store.snapshot().await?;
//! assert_eq!(snapshot.flags[0].totals[1].views, 3);
//! # Ok(())
//! # }
//! ```

mod backend;
mod error;
mod schema;

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::engine::{ArmTotals, Flag, FlagDefinition};

pub use backend::Backend;
pub use error::StoreError;
pub use schema::SCHEMA_VERSION;

/// A flag as stored: the engine's flag, its counters and its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlag {
    /// The flag.
    pub flag: Flag,
    /// Raised by every reset: assignments and increments from an earlier epoch are void.
    pub epoch: i64,
    /// The counters, one per arm in the flag's arm order.
    pub totals: Vec<ArmTotals>,
    /// When the winner was locked (milliseconds since the Unix epoch), if it is.
    pub winner_locked_at: Option<i64>,
    /// When the flag was created.
    pub created_at: i64,
    /// When the flag was last changed.
    pub updated_at: i64,
}

/// Everything the site needs in memory, read at one configuration version.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The configuration version: raised by every change to any flag.
    pub config_version: i64,
    /// The flags, by name.
    pub flags: Vec<StoredFlag>,
}

impl Snapshot {
    /// The flag called `name`.
    pub fn flag(&self, name: &str) -> Option<&StoredFlag> {
        self.flags.iter().find(|stored| stored.flag.name() == name)
    }

    /// Replaces every flag's totals by those of `counters` at the flag's current epoch
    /// (zero for an arm without a counter).
    pub fn set_totals(&mut self, counters: &[ArmCounter]) {
        // Grouped by flag first, so this stays linear with a thousand flags.
        let mut by_flag: HashMap<&str, Vec<&ArmCounter>> = HashMap::new();
        for counter in counters {
            by_flag
                .entry(counter.flag.as_str())
                .or_default()
                .push(counter);
        }
        for stored in &mut self.flags {
            let own = by_flag
                .get(stored.flag.name())
                .into_iter()
                .flatten()
                .copied();
            stored.totals = totals_in_arm_order(stored, own);
        }
    }
}

/// One arm's counter as stored, for the cheap re-read after each flush.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmCounter {
    /// The flag.
    pub flag: String,
    /// The arm.
    pub arm: String,
    /// The flag's epoch these counts belong to.
    pub epoch: i64,
    /// The counts.
    pub totals: ArmTotals,
}

/// What tells whether anything stored changed since an earlier read, in one small row:
/// the configuration version (raised by every change to a flag, in the change's own
/// transaction) and the sums of every arm's counters. Between two changes of flags the
/// counters only grow (a flush adds, never subtracts), so equal marks at the same version
/// mean equal counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeMarks {
    /// The configuration version.
    pub config_version: i64,
    /// All views of all arms.
    pub views: i64,
    /// All conversions of all arms.
    pub conversions: i64,
}

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
        }
    }
}

/// What an activity-log entry records: the engine's [`EventKind`](crate::engine::EventKind).
pub use crate::engine::EventKind;

/// One entry of the activity log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When (milliseconds since the Unix epoch).
    pub at: i64,
    /// Exposure or conversion.
    pub kind: EventKind,
    /// The visitor's id.
    pub visitor: String,
    /// The flag.
    pub flag: String,
    /// The flag's epoch at the time.
    pub epoch: i64,
    /// The visitor's arm.
    pub arm: String,
    /// The path requested.
    pub path: String,
}

impl Event {
    /// The arm the event counts for: flag, epoch and arm.
    pub fn arm_key(&self) -> (&str, i64, &str) {
        (&self.flag, self.epoch, &self.arm)
    }

    /// What a visitor is counted once by: flag, epoch, kind and visitor.
    fn counted_key(&self) -> (&str, i64, &'static str, &str) {
        (&self.flag, self.epoch, self.kind.as_str(), &self.visitor)
    }
}

/// A logged event with its id, the key of the log's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Increasing with time of writing.
    pub id: i64,
    /// The event.
    pub event: Event,
}

/// Counter increments and log entries written together by [`Store::flush`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.increments.is_empty() && self.events.is_empty() && self.counted.is_empty()
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
    /// The batch had been written already (by an earlier try whose reply was lost), so
    /// nothing was written this time.
    pub already_written: bool,
}

/// How long the ids of written flushes are kept to recognise a retry: far longer than any
/// retry waits.
const FLUSH_IDS_KEPT_MS: i64 = 24 * 60 * 60 * 1000;

/// Which activity-log entries to read, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this flag's.
    pub flag: Option<String>,
    /// Only this visitor's.
    pub visitor: Option<String>,
    /// Only those on this path.
    pub path: Option<String>,
    /// Only entries older than this id (the last id of the previous page).
    pub before: Option<i64>,
    /// At most this many (capped at 1,000).
    pub limit: u32,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            flag: None,
            visitor: None,
            path: None,
            before: None,
            limit: 50,
        }
    }
}

/// Log entries per `INSERT`: 7 values each, well under SQLite's 999 parameters.
const EVENTS_PER_INSERT: usize = 100;

/// How long a signed-in admin session lasts at most.
pub const ADMIN_SESSION_MS: i64 = 12 * 60 * 60 * 1000;

/// The flags, counters and activity log of one database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`) with a pool of
    /// its own. A site using Rocket gets its pool from `rocket_db_pools` instead and
    /// calls [`Store::new`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(5)
            .connect(url)
            .await?;
        Store::new(pool).await
    }

    /// A store on an existing pool, which must reach SQLite or PostgreSQL.
    pub async fn new(pool: AnyPool) -> Result<Store, StoreError> {
        let backend = {
            let connection = pool.acquire().await?;
            match connection.backend_name() {
                "SQLite" => Backend::Sqlite,
                "PostgreSQL" => Backend::Postgres,
                other => return Err(StoreError::UnsupportedBackend(other.to_string())),
            }
        };
        Ok(Store { pool, backend })
    }

    /// A store on a pool that may not be connected yet (`connect_lazy`), its backend known
    /// from the URL: nothing is read until the store is used.
    pub fn with_backend(pool: AnyPool, backend: Backend) -> Store {
        Store { pool, backend }
    }

    /// The database behind the store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Creates the tables if they are missing; safe to run at every start, and from
    /// several instances at once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            // Readers no longer wait for the flush's writer; the setting stays with the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&self.pool)
                .await?;
        }
        let mut tx = self.pool.begin().await?;
        schema::migrate(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes the database ready for a site, the one way the plugin does it: the tables
    /// created or upgraded ([`migrate`](Self::migrate)), and each of `flags` (those the site
    /// defines in code) created at `now` if no flag of its name exists. An existing flag is
    /// left as it is: the admin's edits win.
    pub async fn prepare(&self, flags: &[Flag], now: i64) -> Result<(), StoreError> {
        self.migrate().await?;
        for flag in flags {
            match self.create_flag(flag, now).await {
                Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// The configuration version: compare it with a snapshot's to know whether any flag
    /// changed since.
    pub async fn config_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT config_version FROM bandits_state WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The configuration version and the sums of the counters, read in one statement:
    /// the cheap check a flush loop makes before reading every counter.
    pub async fn change_marks(&self) -> Result<ChangeMarks, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT config_version FROM bandits_state WHERE id = 1),
                    (SELECT CAST(COALESCE(SUM(views), 0) AS BIGINT) FROM bandits_arms),
                    (SELECT CAST(COALESCE(SUM(conversions), 0) AS BIGINT) FROM bandits_arms)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ChangeMarks {
            config_version: row.try_get(0)?,
            views: row.try_get(1)?,
            conversions: row.try_get(2)?,
        })
    }

    /// Every flag with its counters.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The version first: a change landing between the two reads makes the snapshot
        // look older than it is, so it is read again, never newer than it is.
        let config_version: i64 =
            sqlx::query_scalar("SELECT config_version FROM bandits_state WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let rows = sqlx::query(&format!(
            "SELECT {FLAG_COLUMNS} FROM bandits_flags ORDER BY name"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let counters = counters(&mut tx, None).await?;
        tx.commit().await?;

        let mut snapshot = Snapshot {
            config_version,
            flags: rows.iter().map(stored_flag).collect::<Result<_, _>>()?,
        };
        snapshot.set_totals(&counters);
        Ok(snapshot)
    }

    /// Every arm's counter: the cheap read that follows each flush.
    pub async fn counters(&self) -> Result<Vec<ArmCounter>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let counters = counters(&mut tx, None).await?;
        tx.commit().await?;
        Ok(counters)
    }

    /// One flag with its counters.
    pub async fn flag(&self, name: &str) -> Result<StoredFlag, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored = read_flag(&mut tx, name).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Stores a new flag with zero counters, at time `now` (milliseconds since the Unix
    /// epoch).
    pub async fn create_flag(&self, flag: &Flag, now: i64) -> Result<StoredFlag, StoreError> {
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM bandits_flags WHERE name = $1")
            .bind(flag.name())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return Err(StoreError::AlreadyExists(flag.name().to_string()));
        }
        let inserted = sqlx::query(
            "INSERT INTO bandits_flags
                (name, definition, epoch, winner_locked_at, created_at, updated_at)
             VALUES ($1, $2, 0, $3, $4, $4)",
        )
        .bind(flag.name())
        .bind(definition_json(flag))
        .bind(flag.winner().map(|_| now))
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(error) = inserted {
            // Another instance created it between our check and our insert.
            return Err(match error.as_database_error() {
                Some(db) if db.is_unique_violation() => {
                    StoreError::AlreadyExists(flag.name().to_string())
                }
                _ => StoreError::Database(error),
            });
        }
        for arm in flag.arms() {
            insert_arm(&mut tx, flag.name(), &arm.name, 0).await?;
        }
        finish_change(tx, flag.name()).await
    }

    /// Replaces a flag's definition. Counters of arms that remain are kept, new arms start
    /// at zero, removed arms' counters are deleted. Locking a winner here records `now`
    /// as the time of the lock.
    pub async fn update_flag(&self, flag: &Flag, now: i64) -> Result<StoredFlag, StoreError> {
        let mut tx = self.pool.begin().await?;
        let before = read_flag(&mut tx, flag.name()).await?;
        for old in before.flag.arms() {
            if flag.arm_index(&old.name).is_none() {
                sqlx::query("DELETE FROM bandits_arms WHERE flag = $1 AND arm = $2")
                    .bind(flag.name())
                    .bind(&old.name)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for arm in flag.arms() {
            if before.flag.arm_index(&arm.name).is_none() {
                insert_arm(&mut tx, flag.name(), &arm.name, before.epoch).await?;
            }
        }
        let old_winner = before.flag.definition().winner.as_deref();
        let new_winner = flag.definition().winner.as_deref();
        let locked_at = match new_winner {
            None => None,
            Some(_) if new_winner == old_winner => before.winner_locked_at,
            Some(_) => Some(now),
        };
        sqlx::query(
            "UPDATE bandits_flags SET definition = $1, winner_locked_at = $2, updated_at = $3
             WHERE name = $4",
        )
        .bind(definition_json(flag))
        .bind(locked_at)
        .bind(now)
        .bind(flag.name())
        .execute(&mut *tx)
        .await?;
        finish_change(tx, flag.name()).await
    }

    /// Locks `arm` as the winner of flag `name`, if the flag is still at `epoch` and no
    /// winner is locked yet; returns the flag as it now stands.
    ///
    /// Instances sharing a database may reach the same decision together: the first lock
    /// stands and the others change nothing.
    pub async fn lock_winner(
        &self,
        name: &str,
        epoch: i64,
        arm: &str,
        now: i64,
    ) -> Result<StoredFlag, StoreError> {
        let mut tx = self.pool.begin().await?;
        let before = read_flag(&mut tx, name).await?;
        if before.epoch != epoch || before.flag.winner().is_some() {
            tx.commit().await?;
            return Ok(before);
        }
        let locked = before
            .flag
            .arm_index(arm)
            .and_then(|index| before.flag.clone().lock_winner(index))
            .ok_or_else(|| StoreError::UnknownArm {
                flag: name.to_string(),
                arm: arm.to_string(),
            })?;
        sqlx::query(
            "UPDATE bandits_flags SET definition = $1, winner_locked_at = $2, updated_at = $2
             WHERE name = $3 AND epoch = $4 AND winner_locked_at IS NULL",
        )
        .bind(definition_json(&locked))
        .bind(now)
        .bind(name)
        .bind(epoch)
        .execute(&mut *tx)
        .await?;
        finish_change(tx, name).await
    }

    /// Starts a flag's experiment afresh: counters to zero, no winner, a new epoch (so
    /// every visitor is assigned again). The activity log keeps the old epoch's entries.
    pub async fn reset_flag(&self, name: &str, now: i64) -> Result<StoredFlag, StoreError> {
        let mut tx = self.pool.begin().await?;
        let before = read_flag(&mut tx, name).await?;
        let definition = FlagDefinition {
            winner: None,
            ..before.flag.definition().clone()
        };
        let flag = definition.validate().map_err(|e| StoreError::Corrupt {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let epoch = before.epoch + 1;
        sqlx::query(
            "UPDATE bandits_flags
             SET definition = $1, epoch = $2, winner_locked_at = NULL, updated_at = $3
             WHERE name = $4",
        )
        .bind(definition_json(&flag))
        .bind(epoch)
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE bandits_arms SET views = 0, conversions = 0, epoch = $1 WHERE flag = $2",
        )
        .bind(epoch)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        // Who was counted before the reset no longer matters: the new epoch counts afresh.
        sqlx::query("DELETE FROM bandits_counted WHERE flag = $1 AND epoch < $2")
            .bind(name)
            .bind(epoch)
            .execute(&mut *tx)
            .await?;
        finish_change(tx, name).await
    }

    /// Deletes a flag, its counters and its activity log.
    pub async fn delete_flag(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM bandits_flags WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound(name.to_string()));
        }
        for table in ["bandits_arms", "bandits_events", "bandits_counted"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE flag = $1"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        bump_config_version(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

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
        let mut tx = self.pool.begin().await?;
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
            }
        }
        let logged: Vec<&Event> = batch.events.iter().chain(first_counts).collect();
        for chunk in logged.chunks(EVENTS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO bandits_events (at, kind, visitor, flag, epoch, arm, path) VALUES {}",
                placeholders(chunk.len(), 7)
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
                    .bind(&event.path);
            }
            query.execute(&mut *tx).await?;
            report.events += chunk.len();
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Opens a signed-in admin session: remembers `id_digest` (the SHA-256 of the
    /// session's id, never the id) until `expires_at`, and forgets sessions that expired.
    pub async fn open_admin_session(
        &self,
        id_digest: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM bandits_admin_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO bandits_admin_sessions (id, created_at, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(id_digest)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the admin session of `id_digest` is open at `now`: opened, not ended, not
    /// expired.
    pub async fn admin_session_open(&self, id_digest: &str, now: i64) -> Result<bool, StoreError> {
        let found =
            sqlx::query("SELECT 1 FROM bandits_admin_sessions WHERE id = $1 AND expires_at > $2")
                .bind(id_digest)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Ends the admin session of `id_digest`, for every instance sharing the database.
    pub async fn end_admin_session(&self, id_digest: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM bandits_admin_sessions WHERE id = $1")
            .bind(id_digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Activity-log entries matching `query`, newest first.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<LoggedEvent>, StoreError> {
        let mut conditions = Vec::new();
        let mut text_values = Vec::new();
        for (column, value) in [
            ("flag", &query.flag),
            ("visitor", &query.visitor),
            ("path", &query.path),
        ] {
            if let Some(value) = value {
                text_values.push(value.as_str());
                conditions.push(format!("{column} = ${}", text_values.len()));
            }
        }
        if query.before.is_some() {
            conditions.push(format!("id < ${}", text_values.len() + 1));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT id, at, kind, visitor, flag, epoch, arm, path FROM bandits_events {filter}
             ORDER BY id DESC LIMIT {}",
            query.limit.min(1_000)
        );
        let mut select = sqlx::query(&sql);
        for value in text_values {
            select = select.bind(value);
        }
        if let Some(before) = query.before {
            select = select.bind(before);
        }
        let rows = select.fetch_all(&self.pool).await?;
        rows.iter().map(logged_event).collect()
    }

    /// Flag `flag`'s activity at `epoch` over time, from the activity log: per time bucket
    /// and arm, the exposures and conversions logged. About `buckets` buckets span the
    /// first to the last entry (at least a minute each); oldest first.
    pub async fn history(
        &self,
        flag: &str,
        epoch: i64,
        buckets: i64,
    ) -> Result<History, StoreError> {
        let span: (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT MIN(at), MAX(at) FROM bandits_events WHERE flag = $1 AND epoch = $2",
        )
        .bind(flag)
        .bind(epoch)
        .fetch_one(&self.pool)
        .await?;
        let (Some(first), Some(last)) = span else {
            return Ok(History::default());
        };
        let bucket_ms = ((last - first) / buckets.max(1) + 1).max(60_000);
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT (at - $3) / $4 AS bucket, arm, kind, COUNT(*) FROM bandits_events
             WHERE flag = $1 AND epoch = $2 GROUP BY bucket, arm, kind ORDER BY bucket",
        )
        .bind(flag)
        .bind(epoch)
        .bind(first)
        .bind(bucket_ms)
        .fetch_all(&self.pool)
        .await?;
        let points = rows
            .into_iter()
            .map(|(bucket, arm, kind, count)| HistoryPoint {
                start: first + bucket * bucket_ms,
                arm,
                exposures: if kind == EventKind::Exposure.as_str() {
                    count as u64
                } else {
                    0
                },
                conversions: if kind == EventKind::Conversion.as_str() {
                    count as u64
                } else {
                    0
                },
            })
            .collect();
        Ok(History { bucket_ms, points })
    }
}

/// A flag's activity over time ([`Store::history`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Each bucket's length in milliseconds.
    pub bucket_ms: i64,
    /// Per bucket and arm (and kind), oldest first.
    pub points: Vec<HistoryPoint>,
}

/// What one arm logged in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPoint {
    /// The bucket's start (milliseconds since the Unix epoch).
    pub start: i64,
    /// The arm.
    pub arm: String,
    /// Exposures logged.
    pub exposures: u64,
    /// Conversions logged.
    pub conversions: u64,
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

fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn to_u64(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

fn definition_json(flag: &Flag) -> String {
    // A validated definition holds only strings, finite numbers and JSON values, so
    // serialization cannot fail; an empty object would fail validation on the way back.
    serde_json::to_string(flag.definition()).unwrap_or_else(|_| "{}".to_string())
}

async fn insert_arm(
    tx: &mut Transaction<'_, Any>,
    flag: &str,
    arm: &str,
    epoch: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO bandits_arms (flag, arm, epoch, views, conversions) VALUES ($1, $2, $3, 0, 0)",
    )
    .bind(flag)
    .bind(arm)
    .bind(epoch)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn bump_config_version(tx: &mut Transaction<'_, Any>) -> Result<(), StoreError> {
    sqlx::query("UPDATE bandits_state SET config_version = config_version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ends a change to flag `name`: raises the configuration version, commits, and returns
/// the flag as it now stands.
async fn finish_change(mut tx: Transaction<'_, Any>, name: &str) -> Result<StoredFlag, StoreError> {
    bump_config_version(&mut tx).await?;
    let stored = read_flag(&mut tx, name).await?;
    tx.commit().await?;
    Ok(stored)
}

/// Every arm's counter, or only those of flag `only`.
async fn counters(
    tx: &mut Transaction<'_, Any>,
    only: Option<&str>,
) -> Result<Vec<ArmCounter>, StoreError> {
    let rows = match only {
        Some(flag) => {
            sqlx::query(
                "SELECT flag, arm, epoch, views, conversions FROM bandits_arms WHERE flag = $1",
            )
            .bind(flag)
            .fetch_all(&mut **tx)
            .await?
        }
        None => {
            sqlx::query("SELECT flag, arm, epoch, views, conversions FROM bandits_arms")
                .fetch_all(&mut **tx)
                .await?
        }
    };
    rows.iter()
        .map(|row| {
            Ok(ArmCounter {
                flag: row.try_get("flag")?,
                arm: row.try_get("arm")?,
                epoch: row.try_get("epoch")?,
                totals: ArmTotals::new(
                    to_u64(row.try_get("views")?),
                    to_u64(row.try_get("conversions")?),
                ),
            })
        })
        .collect()
}

async fn read_flag(tx: &mut Transaction<'_, Any>, name: &str) -> Result<StoredFlag, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {FLAG_COLUMNS} FROM bandits_flags WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
    let mut stored = stored_flag(&row)?;
    let counters = counters(tx, Some(name)).await?;
    stored.totals = totals_in_arm_order(&stored, counters.iter());
    Ok(stored)
}

/// The columns [`stored_flag`] reads.
const FLAG_COLUMNS: &str = "name, definition, epoch, created_at, updated_at, winner_locked_at";

/// A flag row without its counters (filled in by the caller).
fn stored_flag(row: &AnyRow) -> Result<StoredFlag, StoreError> {
    let name: String = row.try_get("name")?;
    let definition: String = row.try_get("definition")?;
    let flag: Flag = serde_json::from_str(&definition).map_err(|e| StoreError::Corrupt {
        name: name.clone(),
        reason: e.to_string(),
    })?;
    Ok(StoredFlag {
        flag,
        epoch: row.try_get("epoch")?,
        totals: Vec::new(),
        winner_locked_at: row.try_get("winner_locked_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The counters of `stored`'s current epoch, one per arm in the flag's order (zero for an
/// arm without a row).
fn totals_in_arm_order<'a>(
    stored: &StoredFlag,
    counters: impl Iterator<Item = &'a ArmCounter>,
) -> Vec<ArmTotals> {
    let mut totals = vec![ArmTotals::default(); stored.flag.arms().len()];
    for counter in counters {
        if counter.epoch == stored.epoch {
            if let Some(i) = stored.flag.arm_index(&counter.arm) {
                totals[i] = counter.totals;
            }
        }
    }
    totals
}

fn logged_event(row: &AnyRow) -> Result<LoggedEvent, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(LoggedEvent {
        id: row.try_get("id")?,
        event: Event {
            at: row.try_get("at")?,
            kind: EventKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                name: "bandits_events".to_string(),
                reason: format!("unknown event kind {kind:?}"),
            })?,
            visitor: row.try_get("visitor")?,
            flag: row.try_get("flag")?,
            epoch: row.try_get("epoch")?,
            arm: row.try_get("arm")?,
            path: row.try_get("path")?,
        },
    })
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
