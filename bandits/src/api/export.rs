//! `GET /bandits/api/flags/<name>/events`: a flag's activity log, streamed
//! ([`crate::export`]).

use rocket::get;
use rocket::http::ContentType;
use rocket::response::stream::TextStream;

use super::answer::{invalid, Failure};
use super::store_failure;
use crate::api::Admin;
use crate::database::BanditsDatabase;
use crate::export::Export;

/// Flag `name`'s log entries with `from <= at < to` (milliseconds since the Unix epoch;
/// both optional), oldest first, as `format=csv` (the default, with a header row) or
/// `format=ndjson` (one JSON object per line).
#[get("/flags/<name>/events?<format>&<from>&<to>")]
pub(super) async fn events(
    _admin: Admin,
    db: &BanditsDatabase,
    name: &str,
    format: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(ContentType, TextStream![String]), Failure> {
    let export = Export::read(format, from, to).map_err(invalid)?;
    let store = db.store().clone();
    // Unknown flags answer 404 before any line is sent.
    store.flag(name).await.map_err(store_failure)?;
    Ok(export.stream(store, name.to_string()))
}
