//! The outbox: callbacks to referral partners, written in the same transaction as the
//! completion they report, so that none is lost and none is written twice.

use sqlx::{Any, Transaction};

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
        let mut tx = self.pool.begin().await?;
        enqueue(&mut tx, callbacks, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
