//! What each partner has brought so far, for the partners list: referred visitors,
//! completions per trigger, and its callbacks by where they stand. One grouped query per
//! kind, however many partners there are.

use std::collections::BTreeMap;

use sqlx::Row;

use super::error::StoreError;
use super::handle::Store;

/// One partner's counts. A partner with nothing yet has none of them (all zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerTotals {
    /// Visitors whose stored referral names the partner.
    pub referred: i64,
    /// Completions credited to the partner, by trigger.
    pub completions: BTreeMap<String, i64>,
    /// Callbacks still to deliver.
    pub pending: i64,
    /// Callbacks a `2xx` answered.
    pub delivered: i64,
    /// Callbacks given up.
    pub given_up: i64,
}

impl Store {
    /// The counts of every partner that has any, by uid.
    ///
    /// ```no_run
    /// # async fn example(store: bandits::store::Store) -> Result<(), bandits::store::StoreError> {
    /// let totals = store.partner_totals().await?;
    /// let acme = totals.get("Ab3dE6gH").cloned().unwrap_or_default();
    /// println!("{} referred, {} callbacks pending", acme.referred, acme.pending);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn partner_totals(&self) -> Result<BTreeMap<String, PartnerTotals>, StoreError> {
        let mut totals: BTreeMap<String, PartnerTotals> = BTreeMap::new();
        let mut tx = self.pool.begin().await?;
        let referred =
            sqlx::query("SELECT partner, COUNT(*) AS n FROM bandits_referrals GROUP BY partner")
                .fetch_all(&mut *tx)
                .await?;
        for row in &referred {
            totals.entry(row.try_get("partner")?).or_default().referred = row.try_get("n")?;
        }
        let completions = sqlx::query(
            "SELECT partner, trigger_name, COUNT(*) AS n FROM bandits_completions
             GROUP BY partner, trigger_name",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &completions {
            totals
                .entry(row.try_get("partner")?)
                .or_default()
                .completions
                .insert(row.try_get("trigger_name")?, row.try_get("n")?);
        }
        // COUNT of a CASE without ELSE counts its non-NULL values: a bigint on PostgreSQL
        // (where SUM of a bigint would be a numeric the Any driver cannot decode).
        let deliveries = sqlx::query(
            "SELECT partner,
                COUNT(CASE WHEN delivered_at IS NULL AND gave_up_at IS NULL THEN 1 END)
                    AS pending,
                COUNT(delivered_at) AS delivered,
                COUNT(CASE WHEN delivered_at IS NULL AND gave_up_at IS NOT NULL THEN 1 END)
                    AS given_up
             FROM bandits_outbox GROUP BY partner",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &deliveries {
            let partner = totals.entry(row.try_get("partner")?).or_default();
            partner.pending = row.try_get("pending")?;
            partner.delivered = row.try_get("delivered")?;
            partner.given_up = row.try_get("given_up")?;
        }
        tx.commit().await?;
        Ok(totals)
    }
}
