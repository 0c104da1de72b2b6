//! The `bandits` table of Rocket's configuration.
//!
//! Every key is optional. In `Rocket.toml`:
//!
//! ```toml
//! [default.bandits]
//! admin_token = "a long random string, 16 characters or more"
//! admin_password = "for the admin's sign-in form, 12 characters or more"
//! admin_prefix = "/bandits/admin"               # the default
//! exclude_prefixes = ["/static", "/healthz"]   # "/bandits" is always excluded
//! exclude_regex = "\\.(css|js|png|ico)$"
//! exclude_bots = true                           # the default
//! flush_interval_ms = 500                       # the default; 10 to 60000
//! cookie_name = "bandits"                       # the default
//! cookie_max_age_days = 365                     # the default; 1 to 3650: how long a browser keeps it
//! secure_cookie = true                          # default: only when Rocket serves TLS
//! require_database = false                      # default true: no database, no launch
//! max_pending_events = 100000                   # the default; log entries kept during an outage
//! max_pending_event_bytes = 16777216            # the default; and their bytes, at most
//! admin_client_ip_header = "X-Real-IP"          # default none: the connection's address
//! warning_interval_ms = 30000                   # the default; one outage warning per interval
//!
//! [default.bandits.callbacks]                   # callbacks to referral partners
//! timeout_ms = 10000                            # see [`CallbackSettings`] for every key
//! [default.bandits.partners]                    # referral partners: every key optional
//! query_key = "affiliate_id"                    # the default: links carry ?affiliate_id=<uid>
//! credit = "first"                              # the default; "last": the latest link wins
//! window_days = 30                              # the default; 1 to 3650: a referral's life
//!
//! [[default.bandits.triggers]]                  # what partners are paid for, one table each
//! name = "User registered"
//! method = "POST"                               # any method when left out
//! path = "/signup"                              # requests here fire it...
//! status = ["2xx", "3xx"]                       # ...when answered so (the default)
//!
//! [[default.bandits.triggers]]
//! name = "Order placed"                         # no path: fired from code only
//! enabled = true                                # the default; false fires nothing, unless an admin switches it on
//! ```
//!
//! or in the environment: `ROCKET_BANDITS='{flush_interval_ms=250,exclude_bots=false}'`.
//! A wrong value is an error that names its key, so the fairing can fail ignition with it
//! instead of misbehaving at the first request.
//!
//! ```
//! use bandits::config::Config;
//! use rocket::figment::{providers::{Format, Toml}, Figment};
//!
//! // As in Rocket.toml: profiles at the top, the `bandits` table inside.
//! let figment = Figment::new().merge(Toml::string(r#"
//!     [default.bandits]
//!     exclude_prefixes = ["/static"]
//!     flush_interval_ms = 250
//! "#).nested());
//! let config = Config::from_figment(&figment).unwrap();
//! assert!(config.is_excluded_path("/static/app.css"));
//! assert!(config.is_excluded_path("/bandits/admin"));
//! assert!(!config.is_excluded_path("/"));
//! assert_eq!(config.flush_interval().as_millis(), 250);
//!
//! let wrong = Figment::new().merge(("bandits.flush_interval_ms", 5));
//! let error = Config::from_figment(&wrong).unwrap_err();
//! assert_eq!(error.key, "bandits.flush_interval_ms");
//! ```

use std::fmt;
use std::time::Duration;

use regex::Regex;

use crate::engine::partners::TriggerDefinition;

mod partners;

use partners::{validate_partners, validate_triggers, RawPartners};
pub use partners::{
    PartnerSettings, Triggers, DEFAULT_PARTNER_QUERY_KEY, MAX_TRIGGERS, REFERRAL_WINDOW_DAYS,
};
use rocket::figment::Figment;
use serde::Deserialize;

mod callbacks;

pub use callbacks::CallbackSettings;

/// Query parameters the plugin reads start with this: `?bandits_<flag>=<arm>`.
pub const QUERY_PREFIX: &str = "bandits_";
/// The path prefix of the plugin's own routes, never counted.
pub const ALWAYS_EXCLUDED: &str = "/bandits";
/// The configuration table's name.
pub const TABLE: &str = "bandits";
/// Where the JSON API is mounted ([`api::BASE`](crate::api::BASE)).
pub const API_BASE: &str = "/bandits/api";
/// Where the admin pages are, unless `admin_prefix` says otherwise.
pub const DEFAULT_ADMIN_PREFIX: &str = "/bandits/admin";
/// The shortest admin password accepted.
pub const MIN_ADMIN_PASSWORD_LEN: usize = 12;
/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// The flush interval's allowed range, in milliseconds.
pub const FLUSH_INTERVAL_MS: std::ops::RangeInclusive<u64> = 10..=60_000;

/// The outage warning interval's allowed range, in milliseconds.
pub const WARNING_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// The days a visitor cookie may be kept for (`bandits.cookie_max_age_days`): a day to
/// ten years.
pub const COOKIE_MAX_AGE_DAYS: std::ops::RangeInclusive<u32> = 1..=3_650;

/// Markers of automated clients in a User-Agent, compared without case.
const BOT_MARKERS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "facebookexternalhit",
    "mediapartners",
    "preview",
    "curl/",
    "wget/",
    "python-requests",
    "go-http-client",
    "okhttp",
    "java/",
];

/// [`BOT_MARKERS`] as one case-insensitive automaton: a User-Agent is searched once,
/// without being copied, on every request that concerns a flag. A DFA: the fastest search
/// aho-corasick offers, for a few kilobytes with this few markers.
static BOT_MATCHER: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .build(BOT_MARKERS)
            .expect("the bot markers are plain strings")
    });

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    admin_token: Option<String>,
    admin_password: Option<String>,
    admin_prefix: String,
    exclude_prefixes: Vec<String>,
    exclude_regex: Option<String>,
    exclude_bots: bool,
    flush_interval_ms: u64,
    cookie_name: String,
    cookie_max_age_days: u32,
    secure_cookie: Option<bool>,
    require_database: bool,
    max_pending_events: usize,
    max_pending_event_bytes: usize,
    warning_interval_ms: u64,
    admin_client_ip_header: Option<String>,
    callbacks: callbacks::RawCallbacks,
    partners: RawPartners,
    triggers: Vec<TriggerDefinition>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            admin_token: None,
            admin_password: None,
            admin_prefix: DEFAULT_ADMIN_PREFIX.to_string(),
            exclude_prefixes: Vec::new(),
            exclude_regex: None,
            exclude_bots: true,
            flush_interval_ms: 500,
            cookie_name: "bandits".to_string(),
            cookie_max_age_days: 365,
            secure_cookie: None,
            require_database: true,
            max_pending_events: crate::track::DEFAULT_MAX_PENDING_EVENTS,
            max_pending_event_bytes: crate::track::DEFAULT_MAX_PENDING_EVENT_BYTES,
            warning_interval_ms: 30_000,
            admin_client_ip_header: None,
            callbacks: callbacks::RawCallbacks::default(),
            partners: RawPartners::default(),
            triggers: Vec::new(),
        }
    }
}

/// A configuration value that is wrong, with its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The key, for example `bandits.flush_interval_ms`.
    pub key: String,
    /// What is wrong with its value.
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            key: format!("{TABLE}.{key}"),
            message: message.into(),
        }
    }
}

/// The secret that opens the admin and the API. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// The token's text, for comparing with what a request presents.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// The plugin's configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    admin_token: Option<AdminToken>,
    admin_password: Option<AdminToken>,
    admin_prefix: String,
    exclude_prefixes: Vec<String>,
    exclude_regex: Option<Regex>,
    exclude_bots: bool,
    flush_interval: Duration,
    cookie_name: String,
    cookie_max_age_days: u32,
    secure_cookie: Option<bool>,
    require_database: bool,
    max_pending_events: usize,
    max_pending_event_bytes: usize,
    warning_interval: Duration,
    admin_client_ip_header: Option<String>,
    callbacks: CallbackSettings,
    partners: PartnerSettings,
    triggers: Triggers,
}

impl Default for Config {
    /// The defaults of every key. They are constants, checked by a test.
    fn default() -> Self {
        Config::validate(RawConfig::default()).expect("the default configuration is valid")
    }
}

impl Config {
    /// Reads and checks the `bandits` table of `figment` (Rocket's configuration, for
    /// example `rocket.figment()`); a missing table gives the defaults.
    pub fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        if !figment.contains(TABLE) {
            return Config::validate(RawConfig::default());
        }
        let raw: RawConfig = figment.extract_inner(TABLE).map_err(|error| {
            // Figment puts the table's own name in the path too (at the end for a field
            // of it); no key of the table is called "bandits", so drop it wherever it is.
            let key: Vec<&str> = error
                .path
                .iter()
                .map(String::as_str)
                .filter(|segment| *segment != TABLE)
                .collect();
            let message = error.kind.to_string();
            if key.is_empty() {
                ConfigError {
                    key: TABLE.to_string(),
                    message,
                }
            } else {
                ConfigError::new(&key.join("."), message)
            }
        })?;
        Config::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let admin_token = match raw.admin_token {
            None => None,
            Some(token) if token.chars().count() < MIN_ADMIN_TOKEN_LEN => {
                return Err(ConfigError::new(
                    "admin_token",
                    format!(
                        "must be at least {MIN_ADMIN_TOKEN_LEN} characters long \
                         (a long random string)"
                    ),
                ))
            }
            Some(token) => Some(AdminToken(token)),
        };
        let admin_password = match raw.admin_password {
            None => None,
            Some(password) if password.chars().count() < MIN_ADMIN_PASSWORD_LEN => {
                return Err(ConfigError::new(
                    "admin_password",
                    format!("must be at least {MIN_ADMIN_PASSWORD_LEN} characters long"),
                ))
            }
            Some(password) => Some(AdminToken(password)),
        };
        let admin_prefix = raw.admin_prefix.trim_end_matches('/').to_string();
        if !admin_prefix.starts_with('/')
            || admin_prefix
                .chars()
                .any(|c| c.is_whitespace() || "?#<>\"'".contains(c))
            || admin_prefix == API_BASE
        {
            return Err(ConfigError::new(
                "admin_prefix",
                format!(
                    "must be a path such as \"{DEFAULT_ADMIN_PREFIX}\" (not the API's {}), got {:?}",
                    API_BASE,
                    raw.admin_prefix
                ),
            ));
        }
        let mut exclude_prefixes = Vec::with_capacity(raw.exclude_prefixes.len());
        for (i, prefix) in raw.exclude_prefixes.iter().enumerate() {
            if !prefix.starts_with('/') {
                return Err(ConfigError::new(
                    &format!("exclude_prefixes[{i}]"),
                    format!("must start with '/', got {prefix:?}"),
                ));
            }
            let trimmed = prefix.trim_end_matches('/');
            exclude_prefixes.push(if trimmed.is_empty() { "/" } else { trimmed }.to_string());
        }
        let exclude_regex = match raw.exclude_regex {
            None => None,
            Some(pattern) => Some(Regex::new(&pattern).map_err(|e| {
                ConfigError::new("exclude_regex", format!("is not a valid regex: {e}"))
            })?),
        };
        if !FLUSH_INTERVAL_MS.contains(&raw.flush_interval_ms) {
            return Err(ConfigError::new(
                "flush_interval_ms",
                format!(
                    "must be between {} and {} milliseconds, got {}",
                    FLUSH_INTERVAL_MS.start(),
                    FLUSH_INTERVAL_MS.end(),
                    raw.flush_interval_ms
                ),
            ));
        }
        if !WARNING_INTERVAL_MS.contains(&raw.warning_interval_ms) {
            return Err(ConfigError::new(
                "warning_interval_ms",
                format!(
                    "must be between {} and {} milliseconds, got {}",
                    WARNING_INTERVAL_MS.start(),
                    WARNING_INTERVAL_MS.end(),
                    raw.warning_interval_ms
                ),
            ));
        }
        if raw.cookie_name.is_empty() || !raw.cookie_name.chars().all(is_cookie_name_char) {
            return Err(ConfigError::new(
                "cookie_name",
                format!(
                    "must be a cookie name: letters, digits and !#$%&'*+-.^_`|~, got {:?}",
                    raw.cookie_name
                ),
            ));
        }
        if !COOKIE_MAX_AGE_DAYS.contains(&raw.cookie_max_age_days) {
            return Err(ConfigError::new(
                "cookie_max_age_days",
                format!(
                    "must be between {} and {} days, got {}",
                    COOKIE_MAX_AGE_DAYS.start(),
                    COOKIE_MAX_AGE_DAYS.end(),
                    raw.cookie_max_age_days
                ),
            ));
        }
        let admin_client_ip_header = match raw.admin_client_ip_header {
            None => None,
            Some(name) if !name.is_empty() && name.chars().all(is_cookie_name_char) => Some(name),
            Some(name) => {
                return Err(ConfigError::new(
                    "admin_client_ip_header",
                    format!("must be a header name such as \"X-Real-IP\", got {name:?}"),
                ))
            }
        };
        let callbacks = callbacks::validate(raw.callbacks)
            .map_err(|(key, message)| ConfigError::new(&key, message))?;
        let partners = validate_partners(raw.partners)?;
        let triggers = validate_triggers(raw.triggers)?;
        Ok(Config {
            partners,
            triggers,
            admin_token,
            admin_password,
            admin_prefix,
            exclude_prefixes,
            exclude_regex,
            exclude_bots: raw.exclude_bots,
            flush_interval: Duration::from_millis(raw.flush_interval_ms),
            cookie_name: raw.cookie_name,
            cookie_max_age_days: raw.cookie_max_age_days,
            secure_cookie: raw.secure_cookie,
            require_database: raw.require_database,
            max_pending_events: raw.max_pending_events,
            max_pending_event_bytes: raw.max_pending_event_bytes,
            warning_interval: Duration::from_millis(raw.warning_interval_ms),
            admin_client_ip_header,
            callbacks,
        })
    }

    /// How callbacks to referral partners are sent (`bandits.callbacks`).
    pub fn callbacks(&self) -> CallbackSettings {
        self.callbacks
    }

    /// How partners' links are read and credited (`bandits.partners`).
    pub fn partners(&self) -> &PartnerSettings {
        &self.partners
    }

    /// The triggers partners can be paid for (`bandits.triggers`).
    pub fn triggers(&self) -> &Triggers {
        &self.triggers
    }

    /// The admin token, if one is configured.
    pub fn admin_token(&self) -> Option<&AdminToken> {
        self.admin_token.as_ref()
    }

    /// The admin password, if one is configured (the token signs in too).
    pub fn admin_password(&self) -> Option<&AdminToken> {
        self.admin_password.as_ref()
    }

    /// Where the admin pages are mounted, without a trailing slash.
    pub fn admin_prefix(&self) -> &str {
        &self.admin_prefix
    }

    /// How often counts are written to the database.
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }

    /// The visitor cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// How long a browser keeps the visitor cookie (`Max-Age` and `Expires`): a visitor who
    /// returns later is a new visitor.
    pub fn cookie_max_age(&self) -> rocket::time::Duration {
        rocket::time::Duration::days(i64::from(self.cookie_max_age_days))
    }

    /// Whether ignition fails when the database cannot be reached (the default). When
    /// false, the site starts anyway on the flags defined in code, showing every visitor
    /// the control until the database answers.
    pub fn require_database(&self) -> bool {
        self.require_database
    }

    /// Activity-log entries kept in memory while the database is away; past this many the
    /// entries are dropped (and counted in the outage warnings). Counts are never dropped.
    pub fn max_pending_events(&self) -> usize {
        self.max_pending_events
    }

    /// Bytes of activity-log entries kept in memory while the database is away (see
    /// [`track::event_bytes`](crate::track::event_bytes)); entries past it are dropped and
    /// counted, like those past [`max_pending_events`](Self::max_pending_events).
    pub fn max_pending_event_bytes(&self) -> usize {
        self.max_pending_event_bytes
    }

    /// The header a trusted proxy in front of the site puts the client's address in, for
    /// the admin's sign-in limit. `None` (the default): the limit keys on the address of
    /// the connection itself, whatever headers say, since any client can send them.
    ///
    /// Rocket's own `ip_header` setting (default `X-Real-IP`), which fills
    /// `Request::client_ip()`, is not used for the limit: a client reaching the site
    /// directly could pick a new address for every attempt. Set this key only when every
    /// request passes through a proxy that overwrites the header; with a list such as
    /// `X-Forwarded-For`, the last address in it (the one the proxy saw) is used.
    pub fn admin_client_ip_header(&self) -> Option<&str> {
        self.admin_client_ip_header.as_deref()
    }

    /// How often, at most, a database outage is reported in the log.
    pub fn warning_interval(&self) -> Duration {
        self.warning_interval
    }

    /// Whether the visitor cookie is marked `Secure` (sent over HTTPS only): as configured,
    /// or, by default, when Rocket itself serves TLS. A site behind a proxy that
    /// terminates TLS sets `secure_cookie = true`.
    pub fn secure_cookie(&self, tls_enabled: bool) -> bool {
        self.secure_cookie.unwrap_or(tls_enabled)
    }

    /// Whether `path` is one of the plugin's own pages: the JSON API or the admin.
    pub fn is_plugin_path(&self, path: &str) -> bool {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        under(API_BASE) || under(&self.admin_prefix)
    }

    /// Whether requests to `path` are never counted: `/bandits` and everything under it,
    /// the configured prefixes (whole path segments: `/static` excludes `/static/x`, not
    /// `/statistics`), and paths matching the configured regex.
    pub fn is_excluded_path(&self, path: &str) -> bool {
        let under = |prefix: &str| {
            prefix == "/"
                || path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        under(ALWAYS_EXCLUDED)
            || under(&self.admin_prefix)
            || self.exclude_prefixes.iter().any(|prefix| under(prefix))
            || self
                .exclude_regex
                .as_ref()
                .is_some_and(|re| re.is_match(path))
    }

    /// Whether a request with this User-Agent is never counted: when bot exclusion is on
    /// (the default), a missing User-Agent or one with a marker of an automated client
    /// (`bot`, `crawl`, `spider`, `curl/`, `python-requests`, ...). Load generators and
    /// test clients must send a browser-like User-Agent to be counted.
    pub fn is_excluded_user_agent(&self, user_agent: Option<&str>) -> bool {
        if !self.exclude_bots {
            return false;
        }
        match user_agent {
            None => true,
            Some(agent) => agent.trim().is_empty() || is_bot_agent(agent),
        }
    }
}

/// User-Agents a worker thread remembers the verdict of, at most; then it starts afresh.
const AGENTS_KEPT: usize = 256;
/// Longer User-Agents are searched every time, so the memory stays bounded.
const AGENT_KEPT_LEN: usize = 512;

thread_local! {
    /// The User-Agents this thread searched lately and whether they are bots. A site's
    /// visitors send a few hundred distinct ones at most between them, so a hash lookup
    /// replaces the search on almost every request.
    static AGENTS: std::cell::RefCell<foldhash::HashMap<Box<str>, bool>> =
        std::cell::RefCell::new(foldhash::HashMap::default());
}

/// Whether `agent` has a marker of an automated client ([`BOT_MATCHER`]), remembered.
fn is_bot_agent(agent: &str) -> bool {
    if agent.len() > AGENT_KEPT_LEN {
        return BOT_MATCHER.is_match(agent);
    }
    AGENTS.with(|agents| {
        if let Some(&bot) = agents.borrow().get(agent) {
            return bot;
        }
        let bot = BOT_MATCHER.is_match(agent);
        let mut agents = agents.borrow_mut();
        if agents.len() >= AGENTS_KEPT {
            agents.clear();
        }
        agents.insert(agent.into(), bot);
        bot
    })
}

/// RFC 6265's cookie-name characters (an HTTP token).
fn is_cookie_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests;
