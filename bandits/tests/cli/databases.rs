//! A fresh database for each test: an SQLite file in a temporary directory, and, when
//! `BANDITS_TEST_POSTGRES_URL` is set, a PostgreSQL database created for the test and
//! dropped after it, even when it fails. (The same as the integration tests' helpers in
//! `tests/src/lib.rs`, which this package cannot depend on: they depend on it.)

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AnyConnection, Connection, Executor};

/// The variable naming the PostgreSQL server to test against.
pub const POSTGRES_URL_VAR: &str = "BANDITS_TEST_POSTGRES_URL";

/// Where a test's databases live.
#[derive(Debug, Clone)]
pub enum Kind {
    Sqlite,
    Postgres(String),
}

/// SQLite, and PostgreSQL when `BANDITS_TEST_POSTGRES_URL` is set (else one line on the
/// standard error says it was skipped).
pub fn kinds() -> Vec<Kind> {
    match std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
    {
        Some(server) => vec![Kind::Sqlite, Kind::Postgres(server)],
        None => {
            static SAID: std::sync::Once = std::sync::Once::new();
            // Past the harness's capture of eprintln!, once per run.
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "PostgreSQL part of the command line's tests skipped: {POSTGRES_URL_VAR} is unset"
                );
            });
            vec![Kind::Sqlite]
        }
    }
}

/// A database of its own; removed when dropped.
pub struct TestDatabase {
    pub url: String,
    cleanup: Option<Cleanup>,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { server: String, name: String },
}

impl Kind {
    pub fn label(&self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres(_) => "postgres",
        }
    }

    /// A fresh, empty database (no tables: the command line creates them).
    pub async fn create(&self) -> TestDatabase {
        match self {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bandits.sqlite").display()
                );
                TestDatabase {
                    url,
                    cleanup: Some(Cleanup::Sqlite(dir)),
                }
            }
            Kind::Postgres(server) => {
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "bandits_cli_test_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                );
                sqlx::any::install_default_drivers();
                let mut admin = AnyConnection::connect(server)
                    .await
                    .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={server}: {e}"));
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
                let _ = admin.close().await;
                TestDatabase {
                    url: with_database(server, &name),
                    cleanup: Some(Cleanup::Postgres {
                        server: server.clone(),
                        name,
                    }),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(Cleanup::Postgres { server, name }) = self.cleanup.take() else {
            return;
        };
        // Dropped inside a test's runtime or after it: a runtime of its own, on a
        // thread of its own, either way.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = AnyConnection::connect(&server).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = admin.execute(drop.as_str()).await {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// `server` with its database name replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let authority = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
