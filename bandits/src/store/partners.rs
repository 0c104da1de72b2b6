//! Referral partners as stored: partners and their subscriptions (edited by admins, read
//! into memory with the flags), referred visitors and completed triggers (written by the
//! flush), and the callbacks a completion puts in the outbox in the same transaction.
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
use super::outbox::{self, Callback};
use crate::engine::partners::{
    new_uid, CallbackUrl, Partner, PartnerDefinition, Placeholders, Referral, ReferralRules,
    Subscription, SubscriptionDefinition,
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

/// A referral captured on the request path, to write at the next flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferral {
    /// The visitor's id.
    pub visitor: String,
    /// The partner's uid, and when the visitor followed its link.
    pub referral: Referral,
    /// The path and query the visitor landed on (bounded).
    pub entry: String,
    /// The signed-in user, if the site's user hook knew one.
    pub user: Option<String>,
    /// A stored referral of the visitor older than this is replaced; a newer one stands
    /// ([`ReferralRules::replaces_older_than`]).
    pub replaces_older_than: i64,
}

/// A trigger fired for a visitor, to resolve at the next flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The visitor's id.
    pub visitor: String,
    /// The trigger's name.
    pub trigger: String,
    /// The referral the visitor cookie carried; `None` (a background job knowing only the
    /// visitor's id): the stored referral is read.
    pub referral: Option<Referral>,
    /// When it fired.
    pub at: i64,
    /// How long a referral lasts, in milliseconds.
    pub window_ms: i64,
    /// The signed-in user, if the site's user hook knows one: linked to the stored
    /// referral that has none yet (the visitor signed in after following the link).
    pub user: Option<String>,
}

/// A referred visitor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReferral {
    /// The visitor's id.
    pub visitor: String,
    /// The partner's uid and the time of the referral.
    pub referral: Referral,
    /// The path and query the visitor landed on.
    pub entry: String,
    /// The signed-in user, if known.
    pub user: Option<String>,
}

/// A trigger completed for a visitor: once per visitor and trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The visitor's id.
    pub visitor: String,
    /// The trigger's name.
    pub trigger: String,
    /// The partner credited.
    pub partner: String,
    /// The completion's id.
    pub event_id: String,
    /// When it completed.
    pub completed_at: i64,
}

/// What the flush wrote of referrals and triggers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Written {
    pub(super) referrals: usize,
    pub(super) completions: usize,
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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

    /// The stored referral of `visitor`, if a partner referred them.
    pub async fn referral(&self, visitor: &str) -> Result<Option<StoredReferral>, StoreError> {
        let row = sqlx::query(
            "SELECT visitor, partner, referred_at, entry, user_id FROM bandits_referrals
             WHERE visitor = $1",
        )
        .bind(visitor)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredReferral {
                visitor: row.try_get("visitor")?,
                referral: Referral {
                    partner: row.try_get("partner")?,
                    referred_at: row.try_get("referred_at")?,
                },
                entry: row.try_get("entry")?,
                user: row.try_get("user_id")?,
            })
        })
        .transpose()
    }

    /// The completions of `visitor`, or of every visitor, oldest first.
    pub async fn completions(&self, visitor: Option<&str>) -> Result<Vec<Completion>, StoreError> {
        const SELECT: &str = "SELECT visitor, trigger_name, partner, event_id, completed_at
             FROM bandits_completions";
        const ORDER: &str = "ORDER BY completed_at, visitor, trigger_name";
        let rows = match visitor {
            Some(visitor) => {
                sqlx::query(&format!("{SELECT} WHERE visitor = $1 {ORDER}"))
                    .bind(visitor)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{SELECT} {ORDER}"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(Completion {
                    visitor: row.try_get("visitor")?,
                    trigger: row.try_get("trigger_name")?,
                    partner: row.try_get("partner")?,
                    event_id: row.try_get("event_id")?,
                    completed_at: row.try_get("completed_at")?,
                })
            })
            .collect()
    }
}

/// Writes `referrals` and resolves `firings` inside the flush's transaction `tx`, at
/// `now`: a firing completes at most once per visitor and trigger (across instances: the
/// primary key decides), and a completion's callbacks go to the outbox in the same
/// transaction.
pub(super) async fn record(
    tx: &mut Transaction<'_, Any>,
    referrals: &[NewReferral],
    firings: &[Firing],
    now: i64,
) -> Result<Written, StoreError> {
    let mut written = Written::default();
    // Every row of bandits_referrals this flush writes, in one pass in visitor order (as
    // every instance does), before any completion: two flushes take their locks in one
    // order and cannot deadlock each other. A visitor's new referrals go in the order
    // they were captured, then the users that firings link.
    enum Change<'a> {
        Refer(&'a NewReferral),
        Link(&'a str),
    }
    let mut changes: Vec<(&str, usize, i64, Change<'_>)> = referrals
        .iter()
        .map(|new| {
            (
                new.visitor.as_str(),
                0,
                new.referral.referred_at,
                Change::Refer(new),
            )
        })
        .chain(firings.iter().filter_map(|firing| {
            let user = firing.user.as_deref()?;
            Some((firing.visitor.as_str(), 1, firing.at, Change::Link(user)))
        }))
        .collect();
    changes.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    for (visitor, _, _, change) in changes {
        match change {
            Change::Refer(new) => {
                written.referrals += sqlx::query(
                    "INSERT INTO bandits_referrals (visitor, partner, referred_at, entry, user_id)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (visitor) DO UPDATE SET partner = excluded.partner,
                        referred_at = excluded.referred_at, entry = excluded.entry,
                        user_id = COALESCE(excluded.user_id, bandits_referrals.user_id)
                     WHERE bandits_referrals.referred_at < $6",
                )
                .bind(visitor)
                .bind(&new.referral.partner)
                .bind(new.referral.referred_at)
                .bind(&new.entry)
                .bind(new.user.as_deref())
                .bind(new.replaces_older_than)
                .execute(&mut **tx)
                .await?
                .rows_affected() as usize;
            }
            Change::Link(user) => {
                sqlx::query(
                    "UPDATE bandits_referrals SET user_id = $1
                     WHERE visitor = $2 AND user_id IS NULL",
                )
                .bind(user)
                .bind(visitor)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    let mut sorted: Vec<&Firing> = firings.iter().collect();
    sorted.sort_by(|a, b| (&a.visitor, &a.trigger).cmp(&(&b.visitor, &b.trigger)));
    for firing in sorted {
        if complete(tx, firing, now).await? {
            written.completions += 1;
        }
    }
    Ok(written)
}

/// django-affiliate-tracking's `complete_trigger`, in the flush: whether `firing`
/// completed (for the first time).
async fn complete(
    tx: &mut Transaction<'_, Any>,
    firing: &Firing,
    now: i64,
) -> Result<bool, StoreError> {
    let referral = match &firing.referral {
        Some(referral) => Some(referral.clone()),
        None => {
            sqlx::query("SELECT partner, referred_at FROM bandits_referrals WHERE visitor = $1")
                .bind(&firing.visitor)
                .fetch_optional(&mut **tx)
                .await?
                .map(|row| -> Result<Referral, StoreError> {
                    Ok(Referral {
                        partner: row.try_get("partner")?,
                        referred_at: row.try_get("referred_at")?,
                    })
                })
                .transpose()?
        }
    };
    let Some(referral) = referral else {
        return Ok(false);
    };

    // Active partners' subscriptions only: an inactive partner's have no rows here.
    let urls: Vec<String> = sqlx::query_scalar(
        "SELECT s.callback_url FROM bandits_subscriptions s
         JOIN bandits_partners p ON p.uid = s.partner
         WHERE s.partner = $1 AND s.trigger_name = $2 AND p.active <> 0
         ORDER BY s.id",
    )
    .bind(&referral.partner)
    .bind(&firing.trigger)
    .fetch_all(&mut **tx)
    .await?;
    let rules = ReferralRules {
        window_ms: firing.window_ms,
        ..ReferralRules::default()
    };
    if !rules.completes(Some(&referral), firing.at, true, !urls.is_empty()) {
        return Ok(false);
    }
    let event_id = crate::secret::random_id();
    let completed = sqlx::query(
        "INSERT INTO bandits_completions (visitor, trigger_name, partner, event_id, completed_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (visitor, trigger_name) DO NOTHING",
    )
    .bind(&firing.visitor)
    .bind(&firing.trigger)
    .bind(&referral.partner)
    .bind(&event_id)
    .bind(firing.at)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !completed {
        return Ok(false);
    }
    let callbacks: Vec<Callback> = urls
        .iter()
        .filter_map(|url| CallbackUrl::parse(url).ok())
        .map(|url| {
            let id = crate::secret::random_id();
            Callback {
                url: url.render(&Placeholders {
                    visitor_id: &firing.visitor,
                    trigger: &firing.trigger,
                    event_id: &id,
                    partner: &referral.partner,
                }),
                event_id: id,
                partner: referral.partner.clone(),
                trigger: firing.trigger.clone(),
                visitor: firing.visitor.clone(),
            }
        })
        .collect();
    outbox::enqueue(tx, &callbacks, now).await?;
    Ok(true)
}
