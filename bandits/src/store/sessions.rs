//! Signed-in admin sessions, known by the SHA-256 of their ids: opened at sign-in, ended at
//! sign-out for every instance sharing the database.

use super::error::StoreError;
use super::handle::Store;

/// How long a signed-in admin session lasts at most.
pub const ADMIN_SESSION_MS: i64 = 12 * 60 * 60 * 1000;

impl Store {
    /// Opens a signed-in admin session: remembers `id_digest` (the SHA-256 of the
    /// session's id, never the id) until `expires_at`, and forgets sessions that expired.
    #[doc(hidden)] // The admin's own, public for the integration tests.
    pub async fn open_admin_session(
        &self,
        id_digest: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
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
    #[doc(hidden)] // The admin's own, public for the integration tests.
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
    #[doc(hidden)] // The admin's own, public for the integration tests.
    pub async fn end_admin_session(&self, id_digest: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM bandits_admin_sessions WHERE id = $1")
            .bind(id_digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
