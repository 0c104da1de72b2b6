//! Admins' switches of triggers: a trigger declared in the configuration can be switched
//! off (or on) from the admin or the API without a release. A switch, when set, wins over
//! the configuration's `enabled`, both ways; clearing it hands the decision back to the
//! configuration ([`Trigger::enabled_with`](crate::engine::partners::Trigger::enabled_with)).
//!
//! Switches are read into memory with the flags and partners, and each change raises the
//! configuration version, so every instance follows it at its next flush.
//!
//! ```no_run
//! use bandits::store::Store;
//!
//! # async fn example(store: Store) -> Result<(), bandits::store::StoreError> {
//! let now = 1_763_700_000_000;
//! store.set_trigger_switch("Order placed", false, now).await?; // fires nothing now
//! assert_eq!(store.trigger_switches().await?[0].enabled, false);
//! store.clear_trigger_switch("Order placed").await?; // the configuration decides again
//! # Ok(())
//! # }
//! ```

use sqlx::{Any, Row, Transaction};

use super::error::StoreError;
use super::handle::Store;

/// An admin's switch of one trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerSwitch {
    /// The trigger's name, as the configuration declares it.
    pub name: String,
    /// On or off, whatever the configuration says.
    pub enabled: bool,
    /// When it was set (milliseconds since the Unix epoch).
    pub updated_at: i64,
}

/// Every switch, by trigger name, for the snapshot the request path reads.
pub(super) async fn read_switches(
    tx: &mut Transaction<'_, Any>,
) -> Result<Vec<TriggerSwitch>, StoreError> {
    sqlx::query("SELECT name, enabled, updated_at FROM bandits_trigger_switches ORDER BY name")
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| {
            Ok(TriggerSwitch {
                name: row.try_get("name")?,
                enabled: row.try_get::<i64, _>("enabled")? != 0,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

impl Store {
    /// Switches trigger `name` on or off at `now`, whatever the configuration says, until
    /// [`clear_trigger_switch`](Self::clear_trigger_switch). The name is not checked
    /// here: the configuration declares triggers, and a switch of a trigger it does not
    /// declare changes nothing.
    pub async fn set_trigger_switch(
        &self,
        name: &str,
        enabled: bool,
        now: i64,
    ) -> Result<TriggerSwitch, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO bandits_trigger_switches (name, enabled, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE
             SET enabled = excluded.enabled, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(i64::from(enabled))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        super::bump_config_version(&mut tx).await?;
        tx.commit().await?;
        Ok(TriggerSwitch {
            name: name.to_string(),
            enabled,
            updated_at: now,
        })
    }

    /// Removes the admin's switch of trigger `name`, if any: the configuration's
    /// `enabled` decides again. Returns whether there was one.
    pub async fn clear_trigger_switch(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM bandits_trigger_switches WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted > 0 {
            super::bump_config_version(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Every switch an admin set, by trigger name.
    pub async fn trigger_switches(&self) -> Result<Vec<TriggerSwitch>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let switches = read_switches(&mut tx).await?;
        tx.commit().await?;
        Ok(switches)
    }
}
