//! The `bandits.callbacks` table: how callbacks to referral partners are sent.
//!
//! ```toml
//! [default.bandits.callbacks]
//! timeout_ms = 10000            # the default; 100 to 120000: one try, connect to last byte
//! retry_for_hours = 24          # the default; up to 720, fractions allowed (0.5 = 30 minutes)
//! retry_initial_ms = 1000       # the default; 10 to 3600000: the wait after a first failure
//! retry_max_ms = 3600000        # the default; the longest wait between two tries
//! poll_interval_ms = 1000       # the default; 10 to 60000: how often the outbox is read
//! max_in_flight = 16            # the default; 1 to 1024: tries at once, per instance
//! ```

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::Deserialize;

/// A wrong value: its key under `bandits` (`callbacks.timeout_ms`), and what is wrong.
/// `config.rs` makes it a `ConfigError`.
pub(super) type Invalid = (String, String);

/// The timeout's allowed range, in milliseconds.
pub const TIMEOUT_MS: RangeInclusive<u64> = 100..=120_000;
/// The longest retry time, in hours: 30 days.
pub const MAX_RETRY_FOR_HOURS: f64 = 720.0;
/// The allowed range of the waits between tries, in milliseconds.
pub const RETRY_WAIT_MS: RangeInclusive<u64> = 10..=86_400_000;
/// The poll interval's allowed range, in milliseconds.
pub const POLL_INTERVAL_MS: RangeInclusive<u64> = 10..=60_000;
/// The allowed range of tries in flight per instance.
pub const MAX_IN_FLIGHT: RangeInclusive<u32> = 1..=1_024;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawCallbacks {
    timeout_ms: u64,
    retry_for_hours: f64,
    retry_initial_ms: u64,
    retry_max_ms: u64,
    poll_interval_ms: u64,
    max_in_flight: u32,
}

impl Default for RawCallbacks {
    fn default() -> Self {
        RawCallbacks {
            timeout_ms: 10_000,
            retry_for_hours: 24.0,
            retry_initial_ms: 1_000,
            retry_max_ms: 3_600_000,
            poll_interval_ms: 1_000,
            max_in_flight: 16,
        }
    }
}

/// How callbacks to partners are sent, validated (`bandits.callbacks`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallbackSettings {
    timeout: Duration,
    retry_for: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    poll_interval: Duration,
    max_in_flight: u32,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        validate(RawCallbacks::default()).expect("the default callback settings are valid")
    }
}

fn in_range(key: &str, value: u64, range: &RangeInclusive<u64>, unit: &str) -> Result<(), Invalid> {
    if range.contains(&value) {
        return Ok(());
    }
    Err((
        format!("callbacks.{key}"),
        format!(
            "must be between {} and {} {unit}, got {value}",
            range.start(),
            range.end()
        ),
    ))
}

pub(super) fn validate(raw: RawCallbacks) -> Result<CallbackSettings, Invalid> {
    in_range("timeout_ms", raw.timeout_ms, &TIMEOUT_MS, "milliseconds")?;
    in_range(
        "retry_initial_ms",
        raw.retry_initial_ms,
        &RETRY_WAIT_MS,
        "milliseconds",
    )?;
    in_range(
        "retry_max_ms",
        raw.retry_max_ms,
        &RETRY_WAIT_MS,
        "milliseconds",
    )?;
    if raw.retry_max_ms < raw.retry_initial_ms {
        return Err((
            "callbacks.retry_max_ms".to_string(),
            format!(
                "must be at least retry_initial_ms ({}), got {}",
                raw.retry_initial_ms, raw.retry_max_ms
            ),
        ));
    }
    in_range(
        "poll_interval_ms",
        raw.poll_interval_ms,
        &POLL_INTERVAL_MS,
        "milliseconds",
    )?;
    let max_in_flight = u64::from(raw.max_in_flight);
    let allowed = u64::from(*MAX_IN_FLIGHT.start())..=u64::from(*MAX_IN_FLIGHT.end());
    in_range("max_in_flight", max_in_flight, &allowed, "tries")?;
    let hours = raw.retry_for_hours;
    // At least a millisecond; NaN fails the comparison too.
    if !(hours * 3_600_000.0 >= 1.0 && hours <= MAX_RETRY_FOR_HOURS) {
        return Err((
            "callbacks.retry_for_hours".to_string(),
            format!("must be more than 0 and at most {MAX_RETRY_FOR_HOURS} hours, got {hours}"),
        ));
    }
    Ok(CallbackSettings {
        timeout: Duration::from_millis(raw.timeout_ms),
        retry_for: Duration::from_secs_f64(hours * 3_600.0),
        retry_initial: Duration::from_millis(raw.retry_initial_ms),
        retry_max: Duration::from_millis(raw.retry_max_ms),
        poll_interval: Duration::from_millis(raw.poll_interval_ms),
        max_in_flight: raw.max_in_flight,
    })
}

impl CallbackSettings {
    /// How long one try may take, from connecting to the answer's last byte.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How long after it was written a callback is still tried.
    pub fn retry_for(&self) -> Duration {
        self.retry_for
    }

    /// The wait after a first failure; each further failure doubles it.
    pub fn retry_initial(&self) -> Duration {
        self.retry_initial
    }

    /// The longest wait between two tries.
    pub fn retry_max(&self) -> Duration {
        self.retry_max
    }

    /// How often the outbox is read for callbacks that are due.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// How many tries one instance has in flight at most.
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight
    }

    /// How long an instance holds a callback it claimed: twice the timeout and five
    /// seconds more, so the try and the record of its outcome end well before another
    /// instance may take it.
    pub fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use rocket::figment::providers::{Format, Toml};
    use rocket::figment::Figment;
    use std::time::Duration;

    fn error(toml: &str) -> super::super::ConfigError {
        Config::from_figment(&Figment::new().merge(Toml::string(toml))).unwrap_err()
    }

    #[test]
    fn defaults_and_every_key() {
        let defaults = Config::default().callbacks();
        assert_eq!(defaults.timeout(), Duration::from_secs(10));
        assert_eq!(defaults.retry_for(), Duration::from_secs(24 * 3_600));
        assert_eq!(defaults.retry_initial(), Duration::from_secs(1));
        assert_eq!(defaults.retry_max(), Duration::from_secs(3_600));
        assert_eq!(defaults.poll_interval(), Duration::from_secs(1));
        assert_eq!(defaults.max_in_flight(), 16);
        assert!(defaults.lease() > defaults.timeout());

        let toml = r#"
            [bandits.callbacks]
            timeout_ms = 500
            retry_for_hours = 0.5
            retry_initial_ms = 20
            retry_max_ms = 40
            poll_interval_ms = 15
            max_in_flight = 3
        "#;
        let config = Config::from_figment(&Figment::new().merge(Toml::string(toml))).unwrap();
        let set = config.callbacks();
        assert_eq!(set.timeout(), Duration::from_millis(500));
        assert_eq!(set.retry_for(), Duration::from_secs(1_800));
        assert_eq!(set.retry_initial(), Duration::from_millis(20));
        assert_eq!(set.retry_max(), Duration::from_millis(40));
        assert_eq!(set.poll_interval(), Duration::from_millis(15));
        assert_eq!(set.max_in_flight(), 3);
    }

    #[test]
    fn a_wrong_value_names_its_key() {
        for (toml, key) in [
            ("timeout_ms = 5", "bandits.callbacks.timeout_ms"),
            ("retry_for_hours = 0", "bandits.callbacks.retry_for_hours"),
            ("retry_for_hours = -1", "bandits.callbacks.retry_for_hours"),
            ("retry_for_hours = 721", "bandits.callbacks.retry_for_hours"),
            ("retry_initial_ms = 1", "bandits.callbacks.retry_initial_ms"),
            (
                "retry_initial_ms = 100\nretry_max_ms = 50",
                "bandits.callbacks.retry_max_ms",
            ),
            ("poll_interval_ms = 0", "bandits.callbacks.poll_interval_ms"),
            ("max_in_flight = 0", "bandits.callbacks.max_in_flight"),
            ("max_in_flight = -2", "bandits.callbacks.max_in_flight"),
            ("timeout_ms = \"soon\"", "bandits.callbacks.timeout_ms"),
            ("retries = 3", "bandits.callbacks.retries"),
        ] {
            let error = error(&format!("[bandits.callbacks]\n{toml}"));
            assert_eq!(error.key, key, "{toml}: {error}");
        }
    }
}
