//! The store itself: a pool on SQLite or PostgreSQL, and which of the two it is. Its
//! operations are in the files beside this one.

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

use super::backend::Backend;
use super::error::StoreError;

/// The flags, counters and activity log of one database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) pool: AnyPool,
    pub(super) backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`) with a pool of
    /// its own. A site using Rocket gets its pool from `rocket_db_pools` instead and
    /// calls [`Store::new`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(5)
            .connect(url)
            .await?;
        Store::new(pool).await
    }

    /// A store on an existing pool, which must reach SQLite or PostgreSQL.
    pub async fn new(pool: AnyPool) -> Result<Store, StoreError> {
        let backend = {
            let connection = pool.acquire().await?;
            match connection.backend_name() {
                "SQLite" => Backend::Sqlite,
                "PostgreSQL" => Backend::Postgres,
                other => return Err(StoreError::UnsupportedBackend(other.to_string())),
            }
        };
        Ok(Store { pool, backend })
    }

    /// A store on a pool that may not be connected yet (`connect_lazy`), its backend known
    /// from the URL: nothing is read until the store is used.
    pub fn with_backend(pool: AnyPool, backend: Backend) -> Store {
        Store { pool, backend }
    }

    /// The database behind the store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that writes. On SQLite it takes the write lock as it begins (`BEGIN
    /// IMMEDIATE`), so it waits its turn within the busy timeout: a transaction that reads
    /// first and writes later is refused at once ("database is locked") when another
    /// connection wrote in between.
    pub(super) async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}
