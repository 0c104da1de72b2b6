//! The outbox: callbacks to referral partners, written in the same transaction as the
//! completion they report, so that none is lost and none is written twice; claimed by
//! one instance at a time with a lease (`lease_owner`, `lease_until`), which SQLite and
//! PostgreSQL honour alike and which simply runs out when its instance dies; and the
//! delivery log the admin shows.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::backend::Backend;
use super::error::StoreError;

/// One callback to deliver: a partner's URL, with its placeholders filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The completion's id, unique: sent as the `Idempotency-Key` header.
    pub event_id: String,
    /// The partner's uid.
    pub partner: String,
    /// The trigger that completed.
    pub trigger: String,
    /// The visitor who completed it.
    pub visitor: String,
    /// Where to send it (`http` or `https`).
    pub url: String,
}

/// Adds `callbacks` to the outbox inside `tx`, due at `now`. A callback whose event id is
/// there already is left as it is.
pub(crate) async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    callbacks: &[Callback],
    now: i64,
) -> Result<(), StoreError> {
    for callback in callbacks {
        sqlx::query(
            "INSERT INTO bandits_outbox (event_id, partner, trigger_name, visitor, url, \
             created_at, attempts, next_try_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $6) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&callback.event_id)
        .bind(&callback.partner)
        .bind(&callback.trigger)
        .bind(&callback.visitor)
        .bind(&callback.url)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl super::Store {
    /// Adds `callbacks` to the outbox in a transaction of their own, due at `now`.
    #[doc(hidden)] // The completion path writes them with its own transaction.
    pub async fn enqueue_callbacks(
        &self,
        callbacks: &[Callback],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        enqueue(&mut tx, callbacks, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A callback an instance has claimed: it alone sends it until its lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The callback.
    pub callback: Callback,
    /// When it was written (milliseconds since the Unix epoch): its retry time counts
    /// from here.
    pub created_at: i64,
    /// Tries before this one.
    pub attempts: i64,
}

/// Where a callback stands, for the admin's delivery log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Still to deliver: due at its next try.
    Pending,
    /// A `2xx` answer came back.
    Delivered,
    /// Its retry time ran out (or its URL cannot be called); its last failure is kept.
    GaveUp,
}

/// One callback in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The completion's id, sent as the `Idempotency-Key` header.
    pub event_id: String,
    /// The partner's uid.
    pub partner: String,
    /// The trigger that completed.
    pub trigger: String,
    /// The visitor who completed it.
    pub visitor: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Tries so far.
    pub attempts: i64,
    /// When it was written.
    pub created_at: i64,
    /// When it is (or was last) due to be tried.
    pub next_try_at: i64,
    /// When a `2xx` came back.
    pub delivered_at: Option<i64>,
    /// When it was given up.
    pub gave_up_at: Option<i64>,
    /// The status of the last try that got an answer.
    pub last_status: Option<u16>,
    /// What went wrong at the last failed try (kept after a later delivery).
    pub last_error: Option<String>,
}

/// What a try came to, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The status answered, if any.
    pub status: Option<u16>,
    /// What went wrong; `None` when delivered.
    pub error: Option<String>,
    /// What becomes of the callback.
    pub next: crate::engine::backoff::Next,
}

/// The longest failure description kept, in bytes.
const MAX_ERROR_LEN: usize = 1_000;

/// The claim's condition: still to deliver, due, and no lease that still holds.
const CLAIMABLE: &str = "delivered_at IS NULL AND gave_up_at IS NULL AND next_try_at <= $2 \
                         AND (lease_until IS NULL OR lease_until < $2)";

const CLAIMED_COLUMNS: &str = "event_id, partner, trigger_name, visitor, url, created_at, attempts";

const DELIVERY_COLUMNS: &str = "event_id, partner, trigger_name, visitor, attempts, created_at, \
                                next_try_at, delivered_at, gave_up_at, last_status, last_error";

impl super::Store {
    /// Claims up to `limit` callbacks due at `now` for `owner`, until `lease_until`:
    /// another instance claims none of them before the lease runs out, whatever the
    /// database. The earliest due come first.
    #[doc(hidden)] // The sender's own, public for the integration tests.
    pub async fn claim_callbacks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        // The condition is checked twice: in the SELECT that picks rows, and again in the
        // UPDATE, which on PostgreSQL re-reads a row another transaction changed meanwhile;
        // so of two instances claiming together, one gets each row. On PostgreSQL the
        // pick is a materialised CTE with SKIP LOCKED (instances pass each other's rows
        // instead of waiting): as a plain `IN (subquery)` it may be run again for every
        // row updated, each run skipping the rows the last one locked, and the claim then
        // takes far more than its limit. SQLite runs the subquery once.
        let sql = match self.backend {
            Backend::Postgres => format!(
                "WITH picked AS MATERIALIZED (SELECT event_id FROM bandits_outbox \
                   WHERE {CLAIMABLE} ORDER BY next_try_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 UPDATE bandits_outbox SET lease_owner = $1, lease_until = $3 \
                 WHERE event_id IN (SELECT event_id FROM picked) AND {CLAIMABLE} \
                 RETURNING {CLAIMED_COLUMNS}"
            ),
            Backend::Sqlite => format!(
                "UPDATE bandits_outbox SET lease_owner = $1, lease_until = $3 \
                 WHERE event_id IN (SELECT event_id FROM bandits_outbox WHERE {CLAIMABLE} \
                                    ORDER BY next_try_at LIMIT $4) \
                 AND {CLAIMABLE} RETURNING {CLAIMED_COLUMNS}"
            ),
        };
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(now)
            .bind(lease_until)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok(Claimed {
                    callback: Callback {
                        event_id: row.try_get("event_id")?,
                        partner: row.try_get("partner")?,
                        trigger: row.try_get("trigger_name")?,
                        visitor: row.try_get("visitor")?,
                        url: row.try_get("url")?,
                    },
                    created_at: row.try_get("created_at")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        claimed.sort_by_key(|claimed| claimed.created_at);
        Ok(claimed)
    }

    /// Records what the try of a callback claimed by `owner` came to, at `now`, and lets
    /// go of it. Returns false, recording nothing, when `owner` no longer holds it (its
    /// lease ran out and another instance took it).
    #[doc(hidden)] // The sender's own, public for the integration tests.
    pub async fn record_callback(
        &self,
        event_id: &str,
        owner: &str,
        outcome: &Outcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        use crate::engine::backoff::Next;
        let (delivered_at, gave_up_at, next_try_at) = match outcome.next {
            Next::Delivered => (Some(now), None, None),
            Next::GiveUp => (None, Some(now), None),
            Next::RetryAt(at) => (None, None, Some(at)),
        };
        let error = outcome
            .error
            .as_deref()
            .map(|error| bounded(error, MAX_ERROR_LEN));
        let updated = sqlx::query(
            "UPDATE bandits_outbox SET attempts = attempts + 1, delivered_at = $1, \
             gave_up_at = $2, next_try_at = COALESCE($3, next_try_at), last_status = $4, \
             last_error = COALESCE($5, last_error), lease_owner = NULL, lease_until = NULL \
             WHERE event_id = $6 AND lease_owner = $7",
        )
        .bind(delivered_at)
        .bind(gave_up_at)
        .bind(next_try_at)
        .bind(outcome.status.map(i64::from))
        .bind(error)
        .bind(event_id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Lets go of the callbacks `owner` claimed and did not record (a sender stopping
    /// mid-try): another instance, or this one restarted, may send them at once.
    #[doc(hidden)] // The sender's own.
    pub async fn release_callbacks(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE bandits_outbox SET lease_owner = NULL, lease_until = NULL \
             WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The callbacks to `partner` (every partner's with `None`), newest first, at most
    /// `limit`: the delivery log, with tries, state, next try and last failure.
    pub async fn callback_deliveries(
        &self,
        partner: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = match partner {
            Some(partner) => {
                sqlx::query(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM bandits_outbox WHERE partner = $1 \
                     ORDER BY created_at DESC, event_id LIMIT $2"
                ))
                .bind(partner)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM bandits_outbox \
                     ORDER BY created_at DESC, event_id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(delivery).collect()
    }

    /// The callback of `event_id` in the delivery log, if there is one.
    pub async fn callback_delivery(&self, event_id: &str) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM bandits_outbox WHERE event_id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery).transpose()
    }

    /// "Retry now": makes the callback of `event_id`, pending or given up, due at `now`.
    /// A given-up callback gets one more try (its retry time has run out, so a failure
    /// gives it up again). Returns false when there is no such callback or it was
    /// delivered. A try in progress is not interrupted.
    pub async fn retry_callback_now(&self, event_id: &str, now: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE bandits_outbox SET next_try_at = $1, gave_up_at = NULL \
             WHERE event_id = $2 AND delivered_at IS NULL",
        )
        .bind(now)
        .bind(event_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }
}

fn delivery(row: &AnyRow) -> Result<Delivery, StoreError> {
    let delivered_at: Option<i64> = row.try_get("delivered_at")?;
    let gave_up_at: Option<i64> = row.try_get("gave_up_at")?;
    let state = match (delivered_at, gave_up_at) {
        (Some(_), _) => DeliveryState::Delivered,
        (None, Some(_)) => DeliveryState::GaveUp,
        (None, None) => DeliveryState::Pending,
    };
    let last_status: Option<i64> = row.try_get("last_status")?;
    Ok(Delivery {
        event_id: row.try_get("event_id")?,
        partner: row.try_get("partner")?,
        trigger: row.try_get("trigger_name")?,
        visitor: row.try_get("visitor")?,
        state,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        next_try_at: row.try_get("next_try_at")?,
        delivered_at,
        gave_up_at,
        last_status: last_status.and_then(|status| u16::try_from(status).ok()),
        last_error: row.try_get("last_error")?,
    })
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
