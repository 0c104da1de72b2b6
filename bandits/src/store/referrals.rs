//! Referred visitors and completed triggers: written by the flush, which resolves each
//! firing against the referral (from the cookie, or stored for a background job), records a
//! completion once per visitor and trigger, and puts its callbacks in the outbox in the
//! same transaction.

use sqlx::{Any, Row, Transaction};

use super::error::StoreError;
use super::handle::Store;
use super::outbox::{self, Callback};
use crate::engine::partners::{CallbackUrl, Placeholders, Referral, ReferralRules};

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

/// A signed-in user seen with a referred visitor's cookie: linked at the next flush to
/// the visitor's stored referral, if it has no user yet (the visitor signed in after
/// following the partner's link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLink {
    /// The visitor's id.
    pub visitor: String,
    /// The user's id, as the site's user hook gives it.
    pub user: String,
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

impl Store {
    /// The stored referral of `visitor`, if a partner referred them.
    pub async fn referral(&self, visitor: &str) -> Result<Option<StoredReferral>, StoreError> {
        let row = sqlx::query(
            "SELECT visitor, partner, referred_at, entry, user_id FROM bandits_referrals
             WHERE visitor = $1",
        )
        .bind(visitor)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_referral).transpose()
    }

    /// The visitors `partner` referred, most recently referred first, at most `limit`.
    pub async fn referrals_of(
        &self,
        partner: &str,
        limit: u32,
    ) -> Result<Vec<StoredReferral>, StoreError> {
        let rows = sqlx::query(
            "SELECT visitor, partner, referred_at, entry, user_id FROM bandits_referrals
             WHERE partner = $1 ORDER BY referred_at DESC, visitor LIMIT $2",
        )
        .bind(partner)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_referral).collect()
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

fn stored_referral(row: &sqlx::any::AnyRow) -> Result<StoredReferral, StoreError> {
    Ok(StoredReferral {
        visitor: row.try_get("visitor")?,
        referral: Referral {
            partner: row.try_get("partner")?,
            referred_at: row.try_get("referred_at")?,
        },
        entry: row.try_get("entry")?,
        user: row.try_get("user_id")?,
    })
}

/// Writes `referrals` and resolves `firings` inside the flush's transaction `tx`, at
/// `now`: a firing completes at most once per visitor and trigger (across instances: the
/// primary key decides), and a completion's callbacks go to the outbox in the same
/// transaction.
pub(super) async fn record(
    tx: &mut Transaction<'_, Any>,
    referrals: &[NewReferral],
    firings: &[Firing],
    links: &[UserLink],
    now: i64,
) -> Result<Written, StoreError> {
    let mut written = Written::default();
    // Every row of bandits_referrals this flush writes, in one pass in visitor order (as
    // every instance does), before any completion: two flushes take their locks in one
    // order and cannot deadlock each other. A visitor's new referrals go in the order
    // they were captured, then the users that firings and sign-ins link.
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
        .chain(links.iter().map(|link| {
            (
                link.visitor.as_str(),
                1,
                now,
                Change::Link(link.user.as_str()),
            )
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
