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
mod flush;
mod handle;
mod log;
mod outbox;
mod partner_arms;
mod partner_totals;
mod partners;
mod referrals;
mod schema;
mod sessions;
mod snapshot;
mod triggers;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::engine::{ArmTotals, Flag, FlagDefinition};

pub use backend::Backend;
pub use error::StoreError;
pub use flush::{new_flush_id, Batch, FlushReport, Increment};
pub use handle::Store;
pub use log::{Event, EventQuery, History, HistoryPoint, LoggedEvent};
pub use outbox::{Callback, Claimed, Delivery, DeliveryState, Outcome};
pub use partner_arms::{NamedSegment, PartnerArms};
pub use partner_totals::PartnerTotals;
pub use partners::{StoredPartner, StoredSubscription};
pub use referrals::{Completion, Firing, NewReferral, StoredReferral, UserLink};
pub use schema::SCHEMA_VERSION;
pub use sessions::ADMIN_SESSION_MS;
pub use snapshot::{ArmCounter, ChangeMarks, Snapshot, StoredFlag};
pub use triggers::TriggerSwitch;

use snapshot::{to_u64, totals_in_arm_order};

/// What an activity-log entry records: the engine's [`EventKind`](crate::engine::EventKind).
pub use crate::engine::EventKind;

impl Store {
    /// Creates the tables if they are missing; safe to run at every start, and from
    /// several instances at once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            // Readers no longer wait for the flush's writer; the setting stays with the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&self.pool)
                .await?;
        }
        let mut tx = self.write().await?;
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
        let (partners, subscriptions) = partners::read_all(&mut tx).await?;
        let trigger_switches = triggers::read_switches(&mut tx).await?;
        tx.commit().await?;

        let mut snapshot = Snapshot {
            config_version,
            flags: rows.iter().map(stored_flag).collect::<Result<_, _>>()?,
            partners,
            subscriptions,
            trigger_switches,
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
        let mut tx = self.write().await?;
        insert_flag(&mut tx, flag, now).await?;
        finish_change(tx, flag.name()).await
    }

    /// Replaces a flag's definition. Counters of arms that remain are kept, new arms start
    /// at zero, removed arms' counters are deleted. Locking a winner here records `now`
    /// as the time of the lock.
    pub async fn update_flag(&self, flag: &Flag, now: i64) -> Result<StoredFlag, StoreError> {
        let mut tx = self.write().await?;
        let before = read_flag(&mut tx, flag.name()).await?;
        replace_flag(&mut tx, &before, flag, now).await?;
        finish_change(tx, flag.name()).await
    }

    /// Creates each of `flags` that does not exist and replaces the definition of each
    /// that does, in one transaction, without changing any counter: the way to copy
    /// experiments from one environment to another (the command line's `flags import`).
    ///
    /// An existing flag keeps its epoch and its counters; an arm it gains starts at zero.
    /// A definition that leaves out an arm the stored flag has would delete that arm's
    /// counts, so it is refused ([`StoreError::ArmLeftOut`]), and then nothing at all is
    /// written. A definition equal to the stored one is left alone. The configuration
    /// version is raised once if anything changed, so running sites see every change
    /// together at their next flush.
    ///
    /// ```no_run
    /// use bandits::engine::FlagDefinition;
    /// use bandits::store::{Imported, Store};
    ///
    /// # async fn example(store: Store) -> Result<(), Box<dyn std::error::Error>> {
    /// let flags = [FlagDefinition::new("headline-flag").validate()?];
    /// let done = store.import_flags(&flags, 1_700_000_000_000).await?;
    /// assert!(matches!(done[0], Imported::Created | Imported::Updated | Imported::Unchanged));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn import_flags(
        &self,
        flags: &[Flag],
        now: i64,
    ) -> Result<Vec<Imported>, StoreError> {
        let mut tx = self.write().await?;
        let mut done = Vec::with_capacity(flags.len());
        for flag in flags {
            let before = match read_flag(&mut tx, flag.name()).await {
                Ok(before) => Some(before),
                Err(StoreError::NotFound(_)) => None,
                Err(error) => return Err(error),
            };
            let Some(before) = before else {
                insert_flag(&mut tx, flag, now).await?;
                done.push(Imported::Created);
                continue;
            };
            if let Some(left_out) = before
                .flag
                .arms()
                .iter()
                .find(|arm| flag.arm_index(&arm.name).is_none())
            {
                // Dropping the transaction rolls back the flags written before this one.
                return Err(StoreError::ArmLeftOut {
                    flag: flag.name().to_string(),
                    arm: left_out.name.clone(),
                });
            }
            if before.flag.definition() == flag.definition() {
                done.push(Imported::Unchanged);
            } else {
                replace_flag(&mut tx, &before, flag, now).await?;
                done.push(Imported::Updated);
            }
        }
        if done.iter().any(|imported| *imported != Imported::Unchanged) {
            bump_config_version(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(done)
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
        for table in ["bandits_counted", "bandits_partner_arms"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE flag = $1 AND epoch < $2"
            ))
            .bind(name)
            .bind(epoch)
            .execute(&mut *tx)
            .await?;
        }
        finish_change(tx, name).await
    }

    /// Deletes a flag, its counters and its activity log.
    pub async fn delete_flag(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM bandits_flags WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound(name.to_string()));
        }
        for table in [
            "bandits_arms",
            "bandits_events",
            "bandits_counted",
            "bandits_partner_arms",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE flag = $1"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        bump_config_version(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn definition_json(flag: &Flag) -> String {
    // A validated definition holds only strings, finite numbers and JSON values, so
    // serialization cannot fail; an empty object would fail validation on the way back.
    serde_json::to_string(flag.definition()).unwrap_or_else(|_| "{}".to_string())
}

/// What [`Store::import_flags`] did with one flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// There was no flag of its name: it was created with zero counters.
    Created,
    /// Its definition was replaced; its counters were kept.
    Updated,
    /// The stored definition was the same: nothing was written.
    Unchanged,
}

/// Inserts `flag` with zero counters; refused when its name is taken.
async fn insert_flag(
    tx: &mut Transaction<'_, Any>,
    flag: &Flag,
    now: i64,
) -> Result<(), StoreError> {
    let exists = sqlx::query("SELECT 1 FROM bandits_flags WHERE name = $1")
        .bind(flag.name())
        .fetch_optional(&mut **tx)
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
    .execute(&mut **tx)
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
        insert_arm(tx, flag.name(), &arm.name, 0).await?;
    }
    Ok(())
}

/// Replaces the definition of `before` by `flag`: counters of arms that remain are kept,
/// new arms start at zero, removed arms' counters are deleted.
async fn replace_flag(
    tx: &mut Transaction<'_, Any>,
    before: &StoredFlag,
    flag: &Flag,
    now: i64,
) -> Result<(), StoreError> {
    for old in before.flag.arms() {
        if flag.arm_index(&old.name).is_none() {
            sqlx::query("DELETE FROM bandits_arms WHERE flag = $1 AND arm = $2")
                .bind(flag.name())
                .bind(&old.name)
                .execute(&mut **tx)
                .await?;
        }
    }
    for arm in flag.arms() {
        if before.flag.arm_index(&arm.name).is_none() {
            insert_arm(tx, flag.name(), &arm.name, before.epoch).await?;
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
    .execute(&mut **tx)
    .await?;
    Ok(())
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
