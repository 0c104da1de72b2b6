//! The plugin's database, in Rocket's usual place: `databases.bandits`.
//!
//! ```toml
//! # Rocket.toml: PostgreSQL, for several instances behind a load balancer
//! [default.databases.bandits]
//! url = "postgres://app@db.internal/app"
//! max_connections = 16      # default: 4 per worker
//! connect_timeout = 5       # seconds, the default
//! ```
//!
//! or `ROCKET_DATABASES='{bandits={url="postgres://..."}}'`. Without a `url`, the plugin
//! keeps its data in an SQLite file, `bandits.sqlite` in the working directory, created at
//! first start: nothing to install. The tables are created or upgraded at ignition.
//!
//! [`BanditsDatabase`] is a `rocket_db_pools` database, so its fairing fails ignition
//! with the reason when the database cannot be reached or migrated. The
//! [`Bandits`](crate::Bandits) fairing attaches it (unless the site already did) and
//! closes its pool at shutdown after the last flush. A site that only wants the store,
//! without tracking, can attach it alone:
//!
//! ```no_run
//! use bandits::database::BanditsDatabase;
//! use rocket_db_pools::Database;
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build().attach(BanditsDatabase::init())
//! }
//! ```

use std::time::Duration;

use rocket::figment::Figment;
use rocket_db_pools::{Database, Pool};
use serde::Deserialize;
use sqlx::any::AnyPoolOptions;

use crate::store::{Backend, Store, StoreError};

/// The key the `Bandits` fairing sets in `databases.bandits` when the database is not
/// required at ignition (`bandits.require_database = false`).
pub(crate) const LAZY_KEY: &str = "databases.bandits._bandits_lazy";

/// The database used when `databases.bandits.url` is not set: a file in the working
/// directory, created if missing.
pub const DEFAULT_URL: &str = "sqlite://bandits.sqlite?mode=rwc";

/// The plugin's database: `rocket_db_pools` reads `databases.bandits`.
#[derive(Database)]
#[database("bandits")]
pub struct BanditsDatabase(StorePool);

/// A migrated [`Store`] as a `rocket_db_pools` pool. Its connections are the store itself
/// (a handle on the shared sqlx pool, cheap to clone).
pub struct StorePool {
    store: Store,
}

impl StorePool {
    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// `rocket_db_pools` joins defaults for the sizes (4 connections per worker, 5 seconds);
/// these apply when the pool is opened without it.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct PoolConfig {
    url: Option<String>,
    min_connections: Option<u32>,
    max_connections: u32,
    connect_timeout: u64,
    idle_timeout: Option<u64>,
    /// Set by the `Bandits` fairing when `bandits.require_database = false`: open the pool
    /// without connecting, and leave migration to the fairing.
    #[serde(rename = "_bandits_lazy")]
    lazy: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            url: None,
            min_connections: None,
            max_connections: 8,
            connect_timeout: 5,
            idle_timeout: None,
            lazy: false,
        }
    }
}

/// Why the plugin's database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// A key of `databases.bandits` has a wrong value.
    #[error("databases.bandits: {0}")]
    Config(#[from] rocket::figment::Error),
    /// The database could not be reached, or not migrated.
    #[error("databases.bandits ({url}): {source}")]
    Store {
        /// The database's URL, without its password.
        url: String,
        /// What went wrong.
        source: StoreError,
    },
}

/// Query parameters whose value is hidden in messages: any whose name holds one of these
/// (without case), such as `password`, `sslpassword`, `passwd`, `pwd`, `secret`, `token`,
/// `api_key`.
const SECRET_PARAMETERS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
];

/// What stands for a hidden value.
const HIDDEN: &str = "***";

/// `url` for messages: the password of its user info and the value of every
/// password-like query parameter ([`SECRET_PARAMETERS`]) replaced by `***`. A URL that
/// does not parse shows only its scheme: it may hold a password where no parser finds it.
pub(crate) fn redacted(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        let scheme = url.split(':').next().unwrap_or_default();
        let scheme = if scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            scheme
        } else {
            ""
        };
        return format!("{scheme}:{HIDDEN} (not shown: it does not parse as a URL)");
    };
    let mut changed = false;
    if parsed.password().is_some() {
        changed |= parsed.set_password(Some(HIDDEN)).is_ok();
    }
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        SECRET_PARAMETERS.iter().any(|marker| name.contains(marker))
    };
    if parsed.query_pairs().any(|(name, _)| secret(&name)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) {
                    HIDDEN.to_string()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        // Unchanged: as written (a parser may respell a host or a path).
        url.to_string()
    }
}

#[rocket::async_trait]
impl Pool for StorePool {
    type Connection = Store;
    type Error = DatabaseError;

    async fn init(figment: &Figment) -> Result<Self, Self::Error> {
        let config: PoolConfig = figment.extract()?;
        let url = config.url.unwrap_or_else(|| DEFAULT_URL.to_string());
        let store_error = |source| DatabaseError::Store {
            url: redacted(&url),
            source,
        };
        sqlx::any::install_default_drivers();
        let mut options = AnyPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(config.connect_timeout));
        if let Some(min) = config.min_connections {
            options = options.min_connections(min);
        }
        if let Some(idle) = config.idle_timeout {
            options = options.idle_timeout(Duration::from_secs(idle));
        }
        if config.lazy {
            let backend = Backend::from_url(&url).ok_or_else(|| {
                store_error(StoreError::UnsupportedBackend(
                    url.split(':').next().unwrap_or_default().to_string(),
                ))
            })?;
            let pool = options
                .connect_lazy(&url)
                .map_err(|e| store_error(StoreError::Database(e)))?;
            return Ok(StorePool {
                store: Store::with_backend(pool, backend),
            });
        }
        let pool = options
            .connect(&url)
            .await
            .map_err(|e| store_error(StoreError::Database(e)))?;
        let store = Store::new(pool).await.map_err(store_error)?;
        store
            .prepare(&[], crate::clock::now_ms())
            .await
            .map_err(store_error)?;
        Ok(StorePool { store })
    }

    async fn get(&self) -> Result<Self::Connection, Self::Error> {
        Ok(self.store.clone())
    }

    /// Leaves the pool open: the [`Bandits`](crate::Bandits) fairing writes its last
    /// counts at shutdown and closes the pool after them. (Rocket runs shutdown fairings
    /// concurrently, so closing here could race that last write.)
    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        // A password holding '@' (percent-encoded or not) is hidden whole.
        let at = redacted("postgres://app:p%40ss@w0rd@db:5432/app");
        assert!(!at.contains("ss") && !at.contains("w0rd"), "{at}");
        assert_eq!(redacted("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(
            redacted("sqlite://bandits.sqlite?mode=rwc"),
            "sqlite://bandits.sqlite?mode=rwc"
        );
        assert_eq!(
            redacted("postgres://db/app?user=app&password=s3cret&sslmode=require"),
            "postgres://db/app?user=app&password=***&sslmode=require"
        );
        for url in [
            "postgres://db/app?PASSWORD=s3cret",
            "postgres://db/app?sslpassword=s3cret",
            "postgres://db/app?passwd=s3cret",
            "postgres://db/app?api_key=s3cret",
            "postgres://app:s3cret@db/app?password=s3cret",
            "postgres://app:s3cret@[db/app",
            "not a url with s3cret",
        ] {
            let shown = redacted(url);
            assert!(!shown.contains("s3cret"), "{url} -> {shown}");
        }
    }
}
