//! Which database the command line works on: the site's own, found the way the site finds
//! it, and opened without ever showing its password.

use std::time::Duration;

use rocket::figment::Figment;
use sqlx::any::AnyPoolOptions;

use super::failure::Failure;
use crate::database::{redacted, DEFAULT_URL};
use crate::engine::Rule;
use crate::store::{Backend, Store};

/// Where the site keeps its database URL in Rocket's configuration.
const URL_KEY: &str = "databases.bandits.url";

/// How long to wait for the database: the site's default `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The database URL: `given` (`--database`), else the site's `databases.bandits.url` from
/// `figment` (Rocket's: `Rocket.toml`, `ROCKET_PROFILE`, `ROCKET_DATABASES`), else the
/// site's default, an SQLite file in the working directory.
pub(crate) fn database_url(given: Option<String>, figment: &Figment) -> Result<String, Failure> {
    if let Some(url) = given {
        return Ok(url);
    }
    match figment.find_value(URL_KEY) {
        Ok(value) => value.into_string().ok_or_else(|| {
            Failure::field(
                URL_KEY,
                Rule::Unreadable {
                    message: "must be a string".into(),
                },
            )
        }),
        Err(error) if error.missing() => Ok(DEFAULT_URL.to_string()),
        Err(error) => Err(unreadable(&error)),
    }
}

/// A configuration that does not parse, said without quoting it: the parser's message
/// shows the offending line, which may be the one holding a password.
fn unreadable(error: &rocket::figment::Error) -> Failure {
    let kind = error.kind.to_string();
    let first_line = kind.lines().next().unwrap_or_default();
    let place = match &error.metadata {
        Some(metadata) => match &metadata.source {
            Some(source) => format!(" ({} {source})", metadata.name),
            None => format!(" ({})", metadata.name),
        },
        None => String::new(),
    };
    Failure::Usage(format!(
        "cannot read the site's configuration{place}: {first_line} (the line is not \
         shown: it may hold a password)"
    ))
}

/// The store at `url`, its tables created or upgraded as the site does at start (so a
/// flag can be created before the site first runs).
pub(crate) async fn open(url: &str) -> Result<Store, Failure> {
    let shown = redacted(url);
    if Backend::from_url(url).is_none() {
        return Err(Failure::Usage(format!(
            "database {shown}: rocket-bandits stores to SQLite (sqlite://...) or \
             PostgreSQL (postgres://...)"
        )));
    }
    sqlx::any::install_default_drivers();
    let failed = |error: &dyn std::fmt::Display| {
        Failure::Database(format!(
            "database {shown}: {}",
            without_secrets(&error.to_string(), url)
        ))
    };
    let pool = AnyPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
        .map_err(|error| failed(&error))?;
    let store = Store::new(pool).await.map_err(|error| failed(&error))?;
    store.migrate().await.map_err(|error| failed(&error))?;
    Ok(store)
}

/// `message` with every secret of `url` (its password, password-like query values) and
/// the URL itself replaced: a driver's message may quote what it was given.
fn without_secrets(message: &str, url: &str) -> String {
    let mut message = message.replace(url, &redacted(url));
    for secret in secrets_of(url) {
        message = message.replace(&secret, "***");
    }
    message
}

/// The password of `url` and the values [`redacted`] hides, as written and decoded.
fn secrets_of(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        // Not a URL: no part of it is known to be harmless.
        return vec![url.to_string()];
    };
    let shown = url::Url::parse(&redacted(url)).ok();
    let mut secrets: Vec<String> = parsed.password().map(str::to_string).into_iter().collect();
    if let Some(shown) = shown {
        let hidden: Vec<String> = shown
            .query_pairs()
            .filter(|(_, value)| value == "***")
            .map(|(name, _)| name.into_owned())
            .collect();
        secrets.extend(
            parsed
                .query_pairs()
                .filter(|(name, _)| hidden.iter().any(|h| h == name))
                .map(|(_, value)| value.into_owned()),
        );
    }
    let decoded: Vec<String> = secrets
        .iter()
        .filter_map(|secret| {
            url::form_urlencoded::parse(format!("s={secret}").as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
        })
        .collect();
    secrets.extend(decoded);
    secrets.retain(|secret| !secret.is_empty() && secret != "***");
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::failure::messages;
    use rocket::figment::providers::{Format, Toml};

    #[test]
    fn the_url_comes_from_the_option_then_the_site_then_the_default() {
        let site = Figment::new().merge(
            Toml::string("[default.databases.bandits]\nurl = \"postgres://db/site\"").nested(),
        );
        assert_eq!(
            database_url(Some("sqlite://other.sqlite".into()), &site).ok(),
            Some("sqlite://other.sqlite".into())
        );
        assert_eq!(
            database_url(None, &site).ok(),
            Some("postgres://db/site".into())
        );
        assert_eq!(
            database_url(None, &Figment::new()).ok(),
            Some(DEFAULT_URL.into())
        );
        let wrong = Figment::new().merge((URL_KEY, 3));
        let lines = database_url(None, &wrong).err().map(|f| messages(&f));
        assert_eq!(
            lines,
            Some(vec![format!("error: {URL_KEY}: must be a string")])
        );
    }

    #[test]
    fn a_configuration_that_does_not_parse_is_not_quoted() {
        let broken = Figment::new().merge(
            Toml::string("[default.databases.bandits]\nurl = \"postgres://app:s3cret@db/app\n")
                .nested(),
        );
        let lines = database_url(None, &broken).err().map(|f| messages(&f));
        let lines = lines.unwrap_or_default();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("line 2"), "{lines:?}");
        assert!(!lines[0].contains("s3cret"), "{lines:?}");
    }

    #[test]
    fn messages_never_hold_a_password() {
        let url = "postgres://app:p%40ss@db/app?sslpassword=t0ken";
        let message = format!("cannot reach {url}: bad password p@ss, key t0ken");
        let shown = without_secrets(&message, url);
        for secret in ["p%40ss", "p@ss", "t0ken"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("postgres://app:***@db/app"), "{shown}");
    }
}
