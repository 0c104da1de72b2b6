//! Cross-crate tests of rocket-bandits: the library and the example site, driven the way
//! a site runs them. The tests are in `tests/tests/`; this library holds what they share.
//!
//! # Databases
//!
//! [`each_database`] runs a test once on a fresh SQLite file and, when
//! `BANDITS_TEST_POSTGRES_URL` is set (for example
//! `postgres://postgres@127.0.0.1:5432/postgres`), once more on a fresh PostgreSQL database
//! created for that test alone and dropped afterwards, even when the test fails. Without
//! the variable the PostgreSQL runs are skipped, and each test binary says at its exit
//! how many (after cargo's `test result` line): "PostgreSQL skipped
//! (BANDITS_TEST_POSTGRES_URL is unset): 12 tests of this binary ran on SQLite only and 3
//! did not run".

pub mod admin;
pub mod browser;
pub mod headless;
pub mod log_capture;
pub mod process;
pub mod proxy;
pub mod receiver;
pub mod routes;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use bandits::store::Store;
use sqlx::{AnyConnection, Connection, Executor};

/// The variable naming the PostgreSQL server to test against.
pub const POSTGRES_URL_VAR: &str = "BANDITS_TEST_POSTGRES_URL";

/// A migrated store on a database of its own, and how to remove it.
pub struct TestDatabase {
    /// `sqlite` or `postgres`, for failure messages.
    pub label: &'static str,
    /// The database's URL.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres { server_url: String, name: String },
}

impl TestDatabase {
    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bandits.sqlite").display()
        );
        TestDatabase {
            label: "sqlite",
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database on the server at `server_url`.
    pub async fn postgres(server_url: &str) -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bandits_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        sqlx::any::install_default_drivers();
        let mut admin = AnyConnection::connect(server_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={server_url}: cannot connect: {e}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let _ = admin.close().await;
        TestDatabase {
            label: "postgres",
            url: with_database(server_url, &name),
            cleanup: Cleanup::Postgres {
                server_url: server_url.to_string(),
                name,
            },
        }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{}: cannot connect: {e}", self.label));
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("{}: cannot migrate: {e}", self.label));
        store
    }

    /// Removes the database.
    pub async fn remove(self) {
        match self.cleanup {
            Cleanup::Sqlite(dir) => drop(dir),
            Cleanup::Postgres { server_url, name } => {
                if let Ok(mut admin) = AnyConnection::connect(&server_url).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = admin.execute(drop.as_str()).await {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                    let _ = admin.close().await;
                }
            }
        }
    }
}

/// `server_url` with its database name replaced by `name`.
fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Where a test's database lives.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A database on the PostgreSQL server at this URL.
    Postgres(String),
}

impl Kind {
    /// Creates a fresh database of this kind.
    pub async fn create(&self) -> TestDatabase {
        match self {
            Kind::Sqlite => TestDatabase::sqlite().await,
            Kind::Postgres(url) => TestDatabase::postgres(url).await,
        }
    }
}

/// The kinds of database a test runs on: SQLite always, PostgreSQL when configured.
/// Without PostgreSQL the skip is counted, and the binary says how many at its exit
/// ([`skip_summary`]).
pub fn kinds() -> Vec<Kind> {
    let mut kinds = vec![Kind::Sqlite];
    match postgres_server() {
        Some(url) => kinds.push(Kind::Postgres(url)),
        None => skipped(&WITHOUT_POSTGRES),
    }
    kinds
}

/// Tests of this binary that ran on SQLite only, and tests that did not run at all (they
/// need PostgreSQL), for lack of `BANDITS_TEST_POSTGRES_URL`.
static WITHOUT_POSTGRES: AtomicU32 = AtomicU32::new(0);
static NOT_RUN: AtomicU32 = AtomicU32::new(0);

fn skipped(count: &AtomicU32) {
    static SUMMARY: std::sync::Once = std::sync::Once::new();
    count.fetch_add(1, Ordering::Relaxed);
    SUMMARY.call_once(|| {
        // SAFETY: atexit(3) with a function that takes nothing, returns nothing and does
        // not unwind; it runs once, when the test binary exits.
        let registered = unsafe { libc::atexit(print_skip_summary) };
        if registered != 0 {
            eprintln!("{}", skip_summary());
        }
    });
}

/// What a run without PostgreSQL left out, in one line.
pub fn skip_summary() -> String {
    format!(
        "PostgreSQL skipped ({POSTGRES_URL_VAR} is unset): {} tests of this binary ran on \
         SQLite only and {} did not run",
        WITHOUT_POSTGRES.load(Ordering::Relaxed),
        NOT_RUN.load(Ordering::Relaxed)
    )
}

/// Writes [`skip_summary`] straight to the standard error at exit: past the test
/// harness, which captures what passing tests print, and after its own summary.
extern "C" fn print_skip_summary() {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{}", skip_summary());
}

/// Runs `test` on every kind of database from [`kinds`], each time on a fresh, migrated
/// database that is removed afterwards, whether the test passed or not. The test gets a
/// store and the database's URL (to start a second instance on the same database).
pub async fn each_database<F, Fut>(test: F)
where
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_on(kinds(), test).await;
}

/// As [`each_database`], on PostgreSQL only (tests of what only a server can do: dropped
/// connections, a closed port); skipped with a line saying so without
/// `BANDITS_TEST_POSTGRES_URL`.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    match postgres_server() {
        Some(url) => run_on(vec![Kind::Postgres(url)], test).await,
        None => skipped(&NOT_RUN),
    }
}

async fn run_on<F, Fut>(kinds: Vec<Kind>, test: F)
where
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for kind in kinds {
        let database = kind.create().await;
        let store = database.store().await;
        let outcome = tokio::spawn(test(store, database.url.clone())).await;
        let label = database.label;
        database.remove().await;
        if let Err(error) = outcome {
            match error.try_into_panic() {
                Ok(panic) => {
                    eprintln!("failed on {label}");
                    std::panic::resume_unwind(panic)
                }
                Err(error) => panic!("{label}: {error}"),
            }
        }
    }
}

/// Polls `check` every 25 ms for up to 30 s; true as soon as it holds. For what happens
/// within a flush interval or two (another instance's flush, a database coming back),
/// never for timing assertions.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..1_200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

/// Opens a second connection to the database at `url` and takes the counters table with
/// it (SQLite: an exclusive transaction; PostgreSQL: an exclusive table lock), so every
/// flush waits. `ROLLBACK` on the returned connection lets go.
pub async fn lock_counters(url: &str, backend: bandits::store::Backend) -> AnyConnection {
    let mut locker = AnyConnection::connect(url)
        .await
        .expect("a second connection");
    let lock = match backend {
        bandits::store::Backend::Sqlite => "BEGIN EXCLUSIVE",
        bandits::store::Backend::Postgres => {
            "BEGIN; LOCK TABLE bandits_arms IN ACCESS EXCLUSIVE MODE"
        }
    };
    locker.execute(lock).await.expect("the lock");
    locker
}

/// The server URL of `BANDITS_TEST_POSTGRES_URL`, when set.
pub fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced_and_options_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@localhost/db?sslmode=disable", "t2"),
            "postgres://u:p@localhost/t2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://localhost:5432", "t3"),
            "postgres://localhost:5432/t3"
        );
    }
}
