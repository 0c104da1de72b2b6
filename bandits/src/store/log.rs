//! The activity log: one entry per counted exposure and conversion, read back by page and
//! as a flag's history over time.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::error::StoreError;
use super::handle::Store;
use crate::engine::EventKind;

/// One entry of the activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When (milliseconds since the Unix epoch).
    pub at: i64,
    /// Exposure or conversion.
    pub kind: EventKind,
    /// The visitor's id.
    pub visitor: String,
    /// The flag.
    pub flag: String,
    /// The flag's epoch at the time.
    pub epoch: i64,
    /// The visitor's arm.
    pub arm: String,
    /// The path requested.
    pub path: String,
    /// The partner the visitor counts for in the flag: the one whose referral was
    /// current when they were counted as a view. `None`: no partner (and entries logged
    /// before partners were kept).
    pub partner: Option<String>,
    /// For an exposure, the probability with which the policy chose the arm at that
    /// moment ([`Choice::propensity`](crate::engine::Choice::propensity)); `None` for a
    /// conversion, and where it is not known.
    pub propensity: Option<f64>,
}

impl Event {
    /// The arm the event counts for: flag, epoch and arm.
    pub fn arm_key(&self) -> (&str, i64, &str) {
        (&self.flag, self.epoch, &self.arm)
    }

    /// What a visitor is counted once by: flag, epoch, kind and visitor.
    pub(super) fn counted_key(&self) -> (&str, i64, &'static str, &str) {
        (&self.flag, self.epoch, self.kind.as_str(), &self.visitor)
    }
}

/// A logged event with its id, the key of the log's pages.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    /// Increasing with time of writing.
    pub id: i64,
    /// The event.
    pub event: Event,
}

/// Which activity-log entries to read, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this flag's.
    pub flag: Option<String>,
    /// Only this visitor's.
    pub visitor: Option<String>,
    /// Only those on this path.
    pub path: Option<String>,
    /// Only entries older than this id (the last id of the previous page).
    pub before: Option<i64>,
    /// At most this many (capped at 1,000).
    pub limit: u32,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            flag: None,
            visitor: None,
            path: None,
            before: None,
            limit: 50,
        }
    }
}

/// A flag's activity over time ([`Store::history`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Each bucket's length in milliseconds.
    pub bucket_ms: i64,
    /// Per bucket and arm (and kind), oldest first.
    pub points: Vec<HistoryPoint>,
}

/// What one arm logged in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPoint {
    /// The bucket's start (milliseconds since the Unix epoch).
    pub start: i64,
    /// The arm.
    pub arm: String,
    /// Exposures logged.
    pub exposures: u64,
    /// Conversions logged.
    pub conversions: u64,
}

fn logged_event(row: &AnyRow) -> Result<LoggedEvent, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(LoggedEvent {
        id: row.try_get("id")?,
        event: Event {
            at: row.try_get("at")?,
            kind: EventKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                name: "bandits_events".to_string(),
                reason: format!("unknown event kind {kind:?}"),
            })?,
            visitor: row.try_get("visitor")?,
            flag: row.try_get("flag")?,
            epoch: row.try_get("epoch")?,
            arm: row.try_get("arm")?,
            path: row.try_get("path")?,
            partner: row.try_get("partner")?,
            propensity: row.try_get("propensity")?,
        },
    })
}

impl Store {
    /// Activity-log entries matching `query`, newest first.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<LoggedEvent>, StoreError> {
        let mut conditions = Vec::new();
        let mut text_values = Vec::new();
        for (column, value) in [
            ("flag", &query.flag),
            ("visitor", &query.visitor),
            ("path", &query.path),
        ] {
            if let Some(value) = value {
                text_values.push(value.as_str());
                conditions.push(format!("{column} = ${}", text_values.len()));
            }
        }
        if query.before.is_some() {
            conditions.push(format!("id < ${}", text_values.len() + 1));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT id, at, kind, visitor, flag, epoch, arm, path, partner, propensity
             FROM bandits_events {filter}
             ORDER BY id DESC LIMIT {}",
            query.limit.min(1_000)
        );
        let mut select = sqlx::query(&sql);
        for value in text_values {
            select = select.bind(value);
        }
        if let Some(before) = query.before {
            select = select.bind(before);
        }
        let rows = select.fetch_all(&self.pool).await?;
        rows.iter().map(logged_event).collect()
    }

    /// Up to `limit` (capped at 10,000) of flag `flag`'s log entries with an id after
    /// `after` and a time in `[from, to)` (milliseconds since the Unix epoch), oldest
    /// first: one page of an export, read by id so that the next page starts where this
    /// one ended however many entries arrive meanwhile.
    pub async fn export_page(
        &self,
        flag: &str,
        after: i64,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let sql = format!(
            "SELECT id, at, kind, visitor, flag, epoch, arm, path, partner, propensity
             FROM bandits_events WHERE flag = $1 AND id > $2 AND at >= $3 AND at < $4
             ORDER BY id LIMIT {}",
            limit.clamp(1, 10_000)
        );
        let rows = sqlx::query(&sql)
            .bind(flag)
            .bind(after)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(logged_event).collect()
    }

    /// Flag `flag`'s activity at `epoch` over time, from the activity log: per time bucket
    /// and arm, the exposures and conversions logged. About `buckets` buckets span the
    /// first to the last entry (at least a minute each); oldest first.
    pub async fn history(
        &self,
        flag: &str,
        epoch: i64,
        buckets: i64,
    ) -> Result<History, StoreError> {
        let span: (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT MIN(at), MAX(at) FROM bandits_events WHERE flag = $1 AND epoch = $2",
        )
        .bind(flag)
        .bind(epoch)
        .fetch_one(&self.pool)
        .await?;
        let (Some(first), Some(last)) = span else {
            return Ok(History::default());
        };
        let bucket_ms = ((last - first) / buckets.max(1) + 1).max(60_000);
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT (at - $3) / $4 AS bucket, arm, kind, COUNT(*) FROM bandits_events
             WHERE flag = $1 AND epoch = $2 GROUP BY bucket, arm, kind ORDER BY bucket",
        )
        .bind(flag)
        .bind(epoch)
        .bind(first)
        .bind(bucket_ms)
        .fetch_all(&self.pool)
        .await?;
        let points = rows
            .into_iter()
            .map(|(bucket, arm, kind, count)| HistoryPoint {
                start: first + bucket * bucket_ms,
                arm,
                exposures: if kind == EventKind::Exposure.as_str() {
                    count as u64
                } else {
                    0
                },
                conversions: if kind == EventKind::Conversion.as_str() {
                    count as u64
                } else {
                    0
                },
            })
            .collect();
        Ok(History { bucket_ms, points })
    }
}
