//! Times as the admin shows and edits them: to the minute, in UTC. The one date formatter
//! of the admin.

/// `ms` (milliseconds since the Unix epoch) as `YYYY-MM-DD`, `separator`, `HH:MM`, in
/// UTC; `None` outside the dates the time crate represents.
fn utc_minute(ms: i64, separator: char) -> Option<String> {
    let at = rocket::time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}{separator}{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    ))
}

/// Milliseconds since the Unix epoch as `2026-11-21 11:32 UTC` (the number itself when out
/// of range).
pub(super) fn date(ms: i64) -> String {
    utc_minute(ms, ' ').map_or_else(|| ms.to_string(), |at| format!("{at} UTC"))
}

/// Milliseconds since the Unix epoch as an HTML `datetime-local` value, in UTC (empty when
/// out of range).
pub(super) fn datetime_local(ms: i64) -> String {
    utc_minute(ms, 'T').unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_to_the_minute_in_utc() {
        assert_eq!(date(1_763_724_720_000), "2025-11-21 11:32 UTC");
        assert_eq!(datetime_local(1_763_724_720_000), "2025-11-21T11:32");
        assert_eq!(date(i64::MAX), i64::MAX.to_string());
        assert_eq!(datetime_local(i64::MIN), "");
    }
}
