//! A flag's activity log as a download, streamed as CSV or NDJSON for analysis outside
//! the admin (off-policy estimates read its `propensity`): the API's
//! `GET /bandits/api/flags/<name>/events` and the admin's "Export" links.
//!
//! The log is read a page of [`PAGE`] entries at a time, by id, and each page is written
//! out before the next is read: an export of millions of entries holds one page in
//! memory, and entries logged while it runs are included up to the moment it reaches
//! them. Should the database fail half-way, the stream ends there; in NDJSON its last
//! line says so (`{"error": "..."}`), a CSV export is simply cut short.

use rocket::http::ContentType;
use rocket::response::stream::TextStream;
use rocket::serde::json::{json, Value};

use crate::engine::{FieldError, Rule};
use crate::store::{LoggedEvent, Store};

/// Entries read per query while streaming.
const PAGE: u32 = 1_000;

/// The columns of the CSV export, and the keys of each NDJSON line, in order.
pub const COLUMNS: [&str; 10] = [
    "id",
    "at",
    "visitor",
    "kind",
    "epoch",
    "arm",
    "propensity",
    "path",
    "partner",
    "flag",
];

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Ndjson,
}

/// What to export: the format and the time window `from <= at < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Export {
    format: Format,
    from: i64,
    to: i64,
}

impl Export {
    /// Reads the query's `format` (`csv`, the default, or `ndjson`) and time bounds
    /// (milliseconds since the Unix epoch, both optional); every problem names its field.
    pub(crate) fn read(
        format: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Export, Vec<FieldError>> {
        let mut errors = Vec::new();
        let format = match format.unwrap_or("csv") {
            "csv" => Format::Csv,
            "ndjson" => Format::Ndjson,
            other => {
                errors.push(FieldError::new(
                    "format",
                    Rule::Unreadable {
                        message: format!("must be \"csv\" or \"ndjson\", got {:?}", cut(other)),
                    },
                ));
                Format::Csv
            }
        };
        let from = time_bound("from", from, i64::MIN, &mut errors);
        let to = time_bound("to", to, i64::MAX, &mut errors);
        if errors.is_empty() {
            Ok(Export { format, from, to })
        } else {
            Err(errors)
        }
    }

    /// Flag `flag`'s entries in the window, oldest first, as a stream of text with its
    /// content type. The caller checks that the flag exists first.
    pub(crate) fn stream(self, store: Store, flag: String) -> (ContentType, TextStream![String]) {
        let Export { format, from, to } = self;
        let content_type = match format {
            Format::Csv => ContentType::new("text", "csv").with_params(("charset", "utf-8")),
            Format::Ndjson => ContentType::new("application", "x-ndjson"),
        };
        let stream = TextStream! {
            if format == Format::Csv {
                yield csv_lines(None);
            }
            let mut after = 0;
            loop {
                match next_page(&store, &flag, after, from, to).await {
                    Ok(page) if page.is_empty() => break,
                    Ok(page) => {
                        after = page.last().map_or(after, |entry| entry.id);
                        yield match format {
                            Format::Csv => csv_lines(Some(&page)),
                            Format::Ndjson => ndjson_lines(&page),
                        };
                    }
                    Err(message) => {
                        log::warn!("bandits: the export of {flag:?} stopped: {message}");
                        if format == Format::Ndjson {
                            yield format!("{}\n", json!({ "error": message }));
                        }
                        break;
                    }
                }
            }
        };
        (content_type, stream)
    }
}

async fn next_page(
    store: &Store,
    flag: &str,
    after: i64,
    from: i64,
    to: i64,
) -> Result<Vec<LoggedEvent>, String> {
    store
        .export_page(flag, after, from, to, PAGE)
        .await
        .map_err(|error| error.to_string())
}

/// A time bound: milliseconds since the Unix epoch; `default` when absent.
fn time_bound(
    field: &'static str,
    text: Option<&str>,
    default: i64,
    errors: &mut Vec<FieldError>,
) -> i64 {
    let Some(text) = text else {
        return default;
    };
    text.parse::<i64>().unwrap_or_else(|_| {
        errors.push(FieldError::new(
            field,
            Rule::Unreadable {
                message: format!(
                    "must be a time in milliseconds since the Unix epoch, got {:?}",
                    cut(text)
                ),
            },
        ));
        default
    })
}

/// The first 40 characters of what a client sent, for an error message.
fn cut(text: &str) -> String {
    text.chars().take(40).collect()
}

/// One entry as its column values, in [`COLUMNS`] order.
fn row(entry: &LoggedEvent) -> [String; 10] {
    let event = &entry.event;
    [
        entry.id.to_string(),
        event.at.to_string(),
        event.visitor.clone(),
        event.kind.as_str().to_string(),
        event.epoch.to_string(),
        event.arm.clone(),
        event.propensity.map(|p| p.to_string()).unwrap_or_default(),
        event.path.clone(),
        event.partner.clone().unwrap_or_default(),
        event.flag.clone(),
    ]
}

/// The header row (`None`) or a page of entries as CSV, quoted where a value needs it.
fn csv_lines(page: Option<&[LoggedEvent]>) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail but for a value that is not UTF-8, and every value
    // here is a Rust string.
    let _ = match page {
        None => writer.write_record(COLUMNS),
        Some(page) => page
            .iter()
            .try_for_each(|entry| writer.write_record(row(entry))),
    };
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// A page of entries as NDJSON: one object per line, with JSON's own types (a number
/// for `at` and `propensity`, `null` where nothing is known).
fn ndjson_lines(page: &[LoggedEvent]) -> String {
    let mut out = String::new();
    for entry in page {
        let event = &entry.event;
        let line: Value = json!({
            "id": entry.id,
            "at": event.at,
            "visitor": event.visitor,
            "kind": event.kind.as_str(),
            "epoch": event.epoch,
            "arm": event.arm,
            "propensity": event.propensity,
            "path": event.path,
            "partner": event.partner,
            "flag": event.flag,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EventKind;
    use crate::store::Event;

    fn entry(id: i64, path: &str, propensity: Option<f64>) -> LoggedEvent {
        LoggedEvent {
            id,
            event: Event {
                at: 1_000 + id,
                kind: EventKind::Exposure,
                visitor: "0123456789abcdef0123456789abcdef".into(),
                flag: "headline".into(),
                epoch: 1,
                arm: "on".into(),
                path: path.into(),
                partner: None,
                propensity,
            },
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_leaves_unknowns_empty() {
        assert_eq!(
            csv_lines(None),
            "id,at,visitor,kind,epoch,arm,propensity,path,partner,flag\n"
        );
        let page = [entry(1, "/a,\"b\"", Some(0.25)), entry(2, "/", None)];
        assert_eq!(
            csv_lines(Some(&page)),
            "1,1001,0123456789abcdef0123456789abcdef,exposure,1,on,0.25,\"/a,\"\"b\"\"\",,headline\n\
             2,1002,0123456789abcdef0123456789abcdef,exposure,1,on,,/,,headline\n"
        );
    }

    #[test]
    fn ndjson_is_one_object_per_line_with_null_for_unknowns() {
        let text = ndjson_lines(&[entry(1, "/", Some(0.5)), entry(2, "/", None)]);
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["propensity"], json!(0.5));
        assert_eq!(lines[1]["propensity"], Value::Null);
        let keys: Vec<&str> = lines[0]
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = COLUMNS.to_vec();
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }
}
