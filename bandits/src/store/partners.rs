//! Referral partners as stored: partners and their subscriptions, edited by admins and
//! read into memory with the flags (each edit raises the configuration version). The
//! referred visitors and completed triggers the flush writes are in `referrals.rs`.
//!
//! ```no_run
//! use bandits::engine::partners::{PartnerDefinition, SubscriptionDefinition};
//! use bandits::store::Store;
//!
//! # async fn example(store: Store) -> Result<(), Box<dyn std::error::Error>> {
//! let now = 1_763_700_000_000;
//! let partner = PartnerDefinition::new("Acme ads").validate().expect("a valid partner");
//! let acme = store.create_partner(&partner, now).await?;
//! let subscription = SubscriptionDefinition {
//!     partner: acme.uid.clone(),
//!     trigger: "User registered".into(),
//!     callback_url: "https://acme.example/track/?visitor_id={visitor_id}".into(),
//! }
//! .validate()
//! .expect("a valid subscription"); // or the errors, each naming its field
//! store.subscribe(&subscription, now).await?;
//! // Links to the site now carry ?affiliate_id=<acme.uid>.
//! store.deactivate_partner(&acme.uid, now).await?;
//! # Ok(())
//! # }
//! ```

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::error::StoreError;
use super::handle::Store;
use crate::engine::partners::{
    new_uid, Partner, PartnerDefinition, Subscription, SubscriptionDefinition,
};

/// Tries at a fresh uid before giving up: with 62⁸ uids, a second try is already rare.
const UID_TRIES: usize = 10;

/// A partner as stored: its uid and details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPartner {
    /// The partner's uid, which its links carry: generated, never changed.
    pub uid: String,
    /// Name, whether active, note.
    pub partner: Partner,
    /// When it was created (milliseconds since the Unix epoch).
    pub created_at: i64,
    /// When it was last changed.
    pub updated_at: i64,
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// Its id.
    pub id: i64,
    /// Partner, trigger and callback URL.
    pub subscription: Subscription,
    /// When it was created.
    pub created_at: i64,
    /// When it was last changed.
    pub updated_at: i64,
}

const PARTNER_COLUMNS: &str = "uid, name, active, note, created_at, updated_at";
const SUBSCRIPTION_COLUMNS: &str =
    "id, partner, trigger_name, callback_url, created_at, updated_at";

fn stored_partner(row: &AnyRow) -> Result<StoredPartner, StoreError> {
    let uid: String = row.try_get("uid")?;
    let definition = PartnerDefinition {
        name: row.try_get("name")?,
        active: row.try_get::<i64, _>("active")? != 0,
        note: row.try_get("note")?,
    };
    let partner = definition
        .validate()
        .map_err(|errors| StoreError::Corrupt {
            name: uid.clone(),
            reason: format!("{}: {}", errors[0].field, errors[0].rule),
        })?;
    Ok(StoredPartner {
        uid,
        partner,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn stored_subscription(row: &AnyRow) -> Result<StoredSubscription, StoreError> {
    let id: i64 = row.try_get("id")?;
    let subscription = SubscriptionDefinition {
        partner: row.try_get("partner")?,
        trigger: row.try_get("trigger_name")?,
        callback_url: row.try_get("callback_url")?,
    }
    .validate()
    .map_err(|errors| StoreError::Corrupt {
        name: format!("subscription {id}"),
        reason: format!("{}: {}", errors[0].field, errors[0].rule),
    })?;
    Ok(StoredSubscription {
        id,
        subscription,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Every partner and every subscription, for the snapshot the request path reads.
pub(super) async fn read_all(
    tx: &mut Transaction<'_, Any>,
) -> Result<(Vec<StoredPartner>, Vec<StoredSubscription>), StoreError> {
    let partners = sqlx::query(&format!(
        "SELECT {PARTNER_COLUMNS} FROM bandits_partners ORDER BY uid"
    ))
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(stored_partner)
    .collect::<Result<_, _>>()?;
    let subscriptions = sqlx::query(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM bandits_subscriptions ORDER BY id"
    ))
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(stored_subscription)
    .collect::<Result<_, _>>()?;
    Ok((partners, subscriptions))
}

async fn read_partner(
    tx: &mut Transaction<'_, Any>,
    uid: &str,
) -> Result<StoredPartner, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {PARTNER_COLUMNS} FROM bandits_partners WHERE uid = $1"
    ))
    .bind(uid)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NoPartner(uid.to_string()))?;
    stored_partner(&row)
}

async fn read_subscription(
    tx: &mut Transaction<'_, Any>,
    id: i64,
) -> Result<StoredSubscription, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM bandits_subscriptions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NoSubscription(id))?;
    stored_subscription(&row)
}

/// A unique violation as [`StoreError::SubscriptionExists`].
fn duplicate(error: sqlx::Error, subscription: &Subscription) -> StoreError {
    match error.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::SubscriptionExists {
            partner: subscription.partner().to_string(),
            trigger: subscription.trigger().to_string(),
        },
        _ => StoreError::Database(error),
    }
}

impl Store {
    /// Stores a new partner with a fresh uid, at `now`. Raises the configuration version:
    /// every instance knows the partner after its next flush.
    pub async fn create_partner(
        &self,
        partner: &Partner,
        now: i64,
    ) -> Result<StoredPartner, StoreError> {
        let mut tx = self.write().await?;
        for _ in 0..UID_TRIES {
            let uid = new_uid(&mut rand::rng());
            let inserted = sqlx::query(
                "INSERT INTO bandits_partners (uid, name, active, note, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (uid) DO NOTHING",
            )
            .bind(&uid)
            .bind(partner.name())
            .bind(i64::from(partner.active()))
            .bind(partner.note())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                super::bump_config_version(&mut tx).await?;
                let stored = read_partner(&mut tx, &uid).await?;
                tx.commit().await?;
                return Ok(stored);
            }
        }
        Err(StoreError::Database(sqlx::Error::Protocol(
            "no free partner uid after 10 tries".into(),
        )))
    }

    /// Replaces partner `uid`'s name, note and active switch (its uid stays).
    pub async fn update_partner(
        &self,
        uid: &str,
        partner: &Partner,
        now: i64,
    ) -> Result<StoredPartner, StoreError> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE bandits_partners SET name = $1, active = $2, note = $3, updated_at = $4
             WHERE uid = $5",
        )
        .bind(partner.name())
        .bind(i64::from(partner.active()))
        .bind(partner.note())
        .bind(now)
        .bind(uid)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NoPartner(uid.to_string()));
        }
        super::bump_config_version(&mut tx).await?;
        let stored = read_partner(&mut tx, uid).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Switches partner `uid` off: its links register no one and its subscriptions
    /// complete nothing, from the next flush of each instance on. Its referrals and
    /// completions are kept.
    pub async fn deactivate_partner(
        &self,
        uid: &str,
        now: i64,
    ) -> Result<StoredPartner, StoreError> {
        let before = self.partner(uid).await?;
        self.update_partner(uid, &before.partner.with_active(false), now)
            .await
    }

    /// Partner `uid`.
    pub async fn partner(&self, uid: &str) -> Result<StoredPartner, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored = read_partner(&mut tx, uid).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Every partner, by uid.
    pub async fn partners(&self) -> Result<Vec<StoredPartner>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (partners, _) = read_all(&mut tx).await?;
        tx.commit().await?;
        Ok(partners)
    }

    /// Subscribes a partner to a trigger. Refused when the partner does not exist
    /// ([`StoreError::NoPartner`]) or has the same subscription already
    /// ([`StoreError::SubscriptionExists`]). The trigger is not checked here: the
    /// configuration declares triggers, and a subscription to one it does not declare
    /// completes nothing.
    pub async fn subscribe(
        &self,
        subscription: &Subscription,
        now: i64,
    ) -> Result<StoredSubscription, StoreError> {
        let mut tx = self.write().await?;
        read_partner(&mut tx, subscription.partner()).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bandits_subscriptions
                (partner, trigger_name, callback_url, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(subscription.partner())
        .bind(subscription.trigger())
        .bind(subscription.callback_url().as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|error| duplicate(error, subscription))?;
        super::bump_config_version(&mut tx).await?;
        let stored = read_subscription(&mut tx, id).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Replaces subscription `id`.
    pub async fn update_subscription(
        &self,
        id: i64,
        subscription: &Subscription,
        now: i64,
    ) -> Result<StoredSubscription, StoreError> {
        let mut tx = self.write().await?;
        read_partner(&mut tx, subscription.partner()).await?;
        let updated = sqlx::query(
            "UPDATE bandits_subscriptions
             SET partner = $1, trigger_name = $2, callback_url = $3, updated_at = $4
             WHERE id = $5",
        )
        .bind(subscription.partner())
        .bind(subscription.trigger())
        .bind(subscription.callback_url().as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|error| duplicate(error, subscription))?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NoSubscription(id));
        }
        super::bump_config_version(&mut tx).await?;
        let stored = read_subscription(&mut tx, id).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Deletes subscription `id`. Callbacks already in the outbox are still sent.
    pub async fn unsubscribe(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM bandits_subscriptions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NoSubscription(id));
        }
        super::bump_config_version(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every subscription, by id.
    pub async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (_, subscriptions) = read_all(&mut tx).await?;
        tx.commit().await?;
        Ok(subscriptions)
    }
}
