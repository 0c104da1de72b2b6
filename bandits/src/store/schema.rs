//! The tables, and the migration that creates them on SQLite and PostgreSQL.
//!
//! Every table is prefixed `bandits_` so the plugin can share a site's database. Times are
//! milliseconds since the Unix epoch in a `BIGINT`, which both databases store alike.
//! Migrating is idempotent: every statement is `IF NOT EXISTS`, and on PostgreSQL an
//! advisory lock makes instances that start together take turns. A database that has
//! every table and index already is not sent the statements at all: `CREATE INDEX IF NOT
//! EXISTS` still locks its table, and an instance starting while another one flushes
//! would wait for it, or deadlock with it (PostgreSQL then fails the start).

use sqlx::{Any, Transaction};

use super::backend::Backend;
use super::error::StoreError;

/// The schema version this build writes. Raised with every change to the tables.
pub const SCHEMA_VERSION: i64 = 1;

/// Key of the PostgreSQL advisory lock held while migrating ("bandits" in ASCII).
const MIGRATION_LOCK: i64 = 0x62_61_6e_64_69_74_73;

/// The tables and indexes [`statements`] creates.
const OBJECTS: [&str; 22] = [
    "bandits_state",
    "bandits_flags",
    "bandits_arms",
    "bandits_events",
    "bandits_events_flag_at",
    "bandits_events_visitor",
    "bandits_flushes",
    "bandits_flushes_at",
    "bandits_counted",
    "bandits_admin_sessions",
    "bandits_admin_sessions_expires",
    "bandits_outbox",
    "bandits_outbox_due",
    "bandits_outbox_pending",
    "bandits_outbox_partner",
    "bandits_partners",
    "bandits_subscriptions",
    "bandits_referrals",
    "bandits_referrals_partner",
    "bandits_completions",
    "bandits_partner_arms",
    "bandits_trigger_switches",
];

/// Columns added to tables that existed before them: `(table, column, type)`. A database
/// whose table lacks one gets it with `ALTER TABLE ... ADD COLUMN` (rows written before
/// read it as `NULL`); a new table is created with it.
const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("bandits_events", "partner", "TEXT"),
    ("bandits_events", "propensity", "DOUBLE PRECISION"),
];

/// Whether every table and index of [`OBJECTS`] exists, read from the catalog without
/// locking any of them.
async fn complete(tx: &mut Transaction<'_, Any>, backend: Backend) -> Result<bool, StoreError> {
    let query = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE name = $1",
        Backend::Postgres => {
            "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_catalog.pg_class WHERE oid = to_regclass($1)"
        }
    };
    for name in OBJECTS {
        let found: i64 = sqlx::query_scalar(query)
            .bind(name)
            .fetch_one(&mut **tx)
            .await?;
        if found == 0 {
            return Ok(false);
        }
    }
    for (table, column, _) in ADDED_COLUMNS {
        if !has_column(tx, backend, table, column).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `table` has `column`, read from the catalog.
async fn has_column(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    table: &str,
    column: &str,
) -> Result<bool, StoreError> {
    let query = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2",
        Backend::Postgres => {
            "SELECT CAST(COUNT(*) AS BIGINT) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
        }
    };
    let found: i64 = sqlx::query_scalar(query)
        .bind(table)
        .bind(column)
        .fetch_one(&mut **tx)
        .await?;
    Ok(found > 0)
}

fn statements(backend: Backend) -> Vec<String> {
    let event_id = match backend {
        Backend::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    };
    vec![
        // One row: the schema version, and the configuration version every change to a
        // flag raises, so instances sharing the database notice edits with one cheap read.
        "CREATE TABLE IF NOT EXISTS bandits_state (
            id BIGINT PRIMARY KEY,
            schema_version BIGINT NOT NULL,
            config_version BIGINT NOT NULL
        )"
        .to_string(),
        // A flag: its definition as the engine's JSON, and the epoch that a reset raises
        // so that assignments and counts from before the reset no longer count.
        "CREATE TABLE IF NOT EXISTS bandits_flags (
            name TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            epoch BIGINT NOT NULL,
            winner_locked_at BIGINT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )"
        .to_string(),
        // The one source of truth for the counters; only ever changed additively.
        "CREATE TABLE IF NOT EXISTS bandits_arms (
            flag TEXT NOT NULL,
            arm TEXT NOT NULL,
            epoch BIGINT NOT NULL,
            views BIGINT NOT NULL,
            conversions BIGINT NOT NULL,
            PRIMARY KEY (flag, arm)
        )"
        .to_string(),
        // The activity log: one row per exposure and per conversion.
        format!(
            "CREATE TABLE IF NOT EXISTS bandits_events (
                {event_id},
                at BIGINT NOT NULL,
                kind TEXT NOT NULL,
                visitor TEXT NOT NULL,
                flag TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                arm TEXT NOT NULL,
                path TEXT NOT NULL,
                partner TEXT,
                propensity DOUBLE PRECISION
            )"
        ),
        "CREATE INDEX IF NOT EXISTS bandits_events_flag_at ON bandits_events (flag, at)"
            .to_string(),
        "CREATE INDEX IF NOT EXISTS bandits_events_visitor ON bandits_events (visitor)".to_string(),
        // The ids of recent flushes, written in the flush's own transaction: a flush retried
        // because its reply was lost (the connection died after the commit) finds its id and
        // is not counted twice. Rows older than a day are removed by later flushes. Added
        // without raising the schema version: older builds never read it.
        "CREATE TABLE IF NOT EXISTS bandits_flushes (
            id TEXT PRIMARY KEY,
            at BIGINT NOT NULL
        )"
        .to_string(),
        "CREATE INDEX IF NOT EXISTS bandits_flushes_at ON bandits_flushes (at)".to_string(),
        // Who was counted: one row per visitor, flag, epoch and kind, written in the flush
        // that counts them, so a visitor is counted once however often an old cookie is
        // replayed, on whichever instance, after whatever restart. A reset or a delete of
        // the flag removes its rows. Added without raising the schema version: older
        // builds never read it.
        "CREATE TABLE IF NOT EXISTS bandits_counted (
            flag TEXT NOT NULL,
            epoch BIGINT NOT NULL,
            kind TEXT NOT NULL,
            visitor TEXT NOT NULL,
            PRIMARY KEY (flag, epoch, kind, visitor)
        )"
        .to_string(),
        // Signed-in admin sessions, by the SHA-256 of their id: signing out deletes the row,
        // which ends the session on every instance.
        "CREATE TABLE IF NOT EXISTS bandits_admin_sessions (
            id TEXT PRIMARY KEY,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL
        )"
        .to_string(),
        "CREATE INDEX IF NOT EXISTS bandits_admin_sessions_expires ON bandits_admin_sessions \
         (expires_at)"
            .to_string(),
        // Callbacks to referral partners, written in the transaction that records what
        // they report, and delivered by the sender until a 2xx or the retry time runs out.
        // An instance claims a row by setting its lease; another instance skips a row whose
        // lease has not run out, on SQLite as on PostgreSQL.
        "CREATE TABLE IF NOT EXISTS bandits_outbox (
            event_id TEXT PRIMARY KEY,
            partner TEXT NOT NULL,
            trigger_name TEXT NOT NULL,
            visitor TEXT NOT NULL,
            url TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            attempts BIGINT NOT NULL,
            next_try_at BIGINT NOT NULL,
            lease_owner TEXT,
            lease_until BIGINT,
            delivered_at BIGINT,
            gave_up_at BIGINT,
            last_status BIGINT,
            last_error TEXT
        )"
        .to_string(),
        "CREATE INDEX IF NOT EXISTS bandits_outbox_due ON bandits_outbox (next_try_at)".to_string(),
        // The sender's claim reads only callbacks still to deliver: delivered and given-up
        // rows pile up behind them and must not slow it down.
        "CREATE INDEX IF NOT EXISTS bandits_outbox_pending ON bandits_outbox (next_try_at) \
         WHERE delivered_at IS NULL AND gave_up_at IS NULL"
            .to_string(),
        // The admin's delivery log of one partner, newest first.
        "CREATE INDEX IF NOT EXISTS bandits_outbox_partner ON bandits_outbox (partner, created_at)"
            .to_string(),
        // Referral partners, edited by admins and read into memory with the flags (each
        // edit raises the configuration version). `active` is 0 or 1 on both databases.
        "CREATE TABLE IF NOT EXISTS bandits_partners (
            uid TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            active BIGINT NOT NULL,
            note TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )"
        .to_string(),
        format!(
            "CREATE TABLE IF NOT EXISTS bandits_subscriptions (
                {event_id},
                partner TEXT NOT NULL,
                trigger_name TEXT NOT NULL,
                callback_url TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (partner, trigger_name, callback_url)
            )"
        ),
        // Who was referred by whom: one row per visitor, written by the flush.
        "CREATE TABLE IF NOT EXISTS bandits_referrals (
            visitor TEXT PRIMARY KEY,
            partner TEXT NOT NULL,
            referred_at BIGINT NOT NULL,
            entry TEXT NOT NULL,
            user_id TEXT
        )"
        .to_string(),
        // A partner's referred visitors, newest first (the admin's partner page), and
        // the partners list's count of them.
        "CREATE INDEX IF NOT EXISTS bandits_referrals_partner ON bandits_referrals \
         (partner, referred_at)"
            .to_string(),
        // Triggers completed: the primary key makes each visitor complete each trigger
        // once, whichever instance flushes first.
        "CREATE TABLE IF NOT EXISTS bandits_completions (
            visitor TEXT NOT NULL,
            trigger_name TEXT NOT NULL,
            partner TEXT NOT NULL,
            event_id TEXT NOT NULL,
            completed_at BIGINT NOT NULL,
            PRIMARY KEY (visitor, trigger_name)
        )"
        .to_string(),
        // A flag's counters split by the partner who referred the visitor (visitors of no
        // partner are the arm's counters less these), changed additively like
        // `bandits_arms`. A reset or a delete of the flag removes its rows.
        "CREATE TABLE IF NOT EXISTS bandits_partner_arms (
            flag TEXT NOT NULL,
            epoch BIGINT NOT NULL,
            arm TEXT NOT NULL,
            partner TEXT NOT NULL,
            views BIGINT NOT NULL,
            conversions BIGINT NOT NULL,
            PRIMARY KEY (flag, epoch, arm, partner)
        )"
        .to_string(),
        // Admins' switches of triggers declared in the configuration: a row wins over the
        // configuration's `enabled`; no row, the configuration decides. Read into memory
        // with the partners (each change raises the configuration version). `enabled` is 0
        // or 1 on both databases. Added without raising the schema version: older builds
        // never read it.
        "CREATE TABLE IF NOT EXISTS bandits_trigger_switches (
            name TEXT PRIMARY KEY,
            enabled BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )"
        .to_string(),
    ]
}

/// Creates or upgrades the tables inside `tx`. Fails, changing nothing, if the database
/// was written by a newer version of rocket-bandits.
pub(crate) async fn migrate(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        // "relation ... already exists, skipping" at every start is noise in the site's log.
        sqlx::query("SET LOCAL client_min_messages = warning")
            .execute(&mut **tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    if !complete(tx, backend).await? {
        for statement in statements(backend) {
            sqlx::query(&statement).execute(&mut **tx).await?;
        }
        for (table, column, kind) in ADDED_COLUMNS {
            if !has_column(tx, backend, table, column).await? {
                sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    sqlx::query(
        "INSERT INTO bandits_state (id, schema_version, config_version) VALUES (1, $1, 0)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(SCHEMA_VERSION)
    .execute(&mut **tx)
    .await?;
    let found: i64 = sqlx::query_scalar("SELECT schema_version FROM bandits_state WHERE id = 1")
        .fetch_one(&mut **tx)
        .await?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_objects_checked_are_those_the_statements_create() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let statements = statements(backend);
            assert_eq!(statements.len(), OBJECTS.len());
            for (statement, name) in statements.iter().zip(OBJECTS) {
                assert!(
                    statement.contains(&format!("IF NOT EXISTS {name} ")),
                    "{name}: {statement}"
                );
            }
        }
    }
}
