//! A flag's counters split by partner, as the flush adds them
//! (`bandits_partner_arms`), for [`by_partner::split`](crate::engine::by_partner::split).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::error::StoreError;
use super::handle::Store;
use super::snapshot::{to_u64, StoredFlag};
use crate::engine::by_partner::{split, Segment};
use crate::engine::ArmTotals;

/// Counts of one flag's arms, by partner uid then arm name.
pub type PartnerArms = BTreeMap<String, BTreeMap<String, ArmTotals>>;

/// One segment of a flag's statistics split by partner, with the partner's name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedSegment {
    /// The partner's name; `None` for visitors of no partner (or a partner no longer
    /// stored).
    pub name: Option<String>,
    /// The segment's numbers.
    #[serde(flatten)]
    pub segment: Segment,
}

impl Store {
    /// The counts of flag `flag` at `epoch` that partners' visitors brought, by partner
    /// and arm. Partners with none are not listed.
    ///
    /// ```no_run
    /// # async fn example(store: bandits::store::Store) -> Result<(), bandits::store::StoreError> {
    /// use bandits::engine::by_partner::split;
    ///
    /// let stored = store.flag("headline-flag").await?;
    /// let partners = store.partner_arms("headline-flag", stored.epoch).await?;
    /// for segment in split(&stored.flag, &stored.totals, &partners) {
    ///     println!("{:?}: {} visitors", segment.partner, segment.views());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn partner_arms(&self, flag: &str, epoch: i64) -> Result<PartnerArms, StoreError> {
        let rows = sqlx::query(
            "SELECT partner, arm, views, conversions FROM bandits_partner_arms
             WHERE flag = $1 AND epoch = $2",
        )
        .bind(flag)
        .bind(epoch)
        .fetch_all(&self.pool)
        .await?;
        let mut arms = PartnerArms::new();
        for row in &rows {
            let views: i64 = row.try_get("views")?;
            let conversions: i64 = row.try_get("conversions")?;
            arms.entry(row.try_get("partner")?).or_default().insert(
                row.try_get("arm")?,
                ArmTotals::new(to_u64(views), to_u64(conversions)),
            );
        }
        Ok(arms)
    }

    /// `stored`'s statistics split by the partner who referred its visitors
    /// ([`split`]), each partner named: the flag's admin page and the API's
    /// `?by=partner`.
    pub async fn partner_split(
        &self,
        stored: &StoredFlag,
    ) -> Result<Vec<NamedSegment>, StoreError> {
        let counts = self.partner_arms(stored.flag.name(), stored.epoch).await?;
        let names: BTreeMap<String, String> = if counts.is_empty() {
            BTreeMap::new()
        } else {
            self.partners()
                .await?
                .into_iter()
                .map(|partner| (partner.uid, partner.partner.name().to_string()))
                .collect()
        };
        Ok(split(&stored.flag, &stored.totals, &counts)
            .into_iter()
            .map(|segment| NamedSegment {
                name: segment
                    .partner
                    .as_ref()
                    .and_then(|uid| names.get(uid).cloned()),
                segment,
            })
            .collect())
    }
}
