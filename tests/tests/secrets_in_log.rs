//! A database URL's password never reaches the log, in the user info or in the query, on
//! PostgreSQL and SQLite URLs. In a test binary of its own, because it installs the
//! process's logger before Rocket does.

use bandits::Bandits;
use bandits_integration_tests::browser::SECRET_KEY;
use bandits_integration_tests::log_capture;
use rocket::local::asynchronous::Client;

/// What the log says while a site on `url` fails to start.
async fn log_of_failed_start(url: &str) -> Vec<String> {
    log_capture::clear();
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("databases.bandits.connect_timeout", 1))
        .merge(("secret_key", SECRET_KEY));
    let ignition = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        Client::untracked(rocket::custom(figment).attach(Bandits::fairing())),
    );
    let Ok(started) = ignition.await else {
        panic!("{url}: ignition did not end");
    };
    match started {
        // Reading the kind marks the error handled (Rocket panics on an unhandled one).
        Err(error) => assert!(
            matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
            "{url}"
        ),
        Ok(_) => panic!("{url} cannot be reached"),
    }
    log_capture::take()
}

#[tokio::test]
async fn database_passwords_never_reach_the_log() {
    log_capture::install();
    let missing = tempfile::tempdir().expect("a temporary directory");
    let sqlite = format!(
        "sqlite://{}?password=s3cret-of-the-query",
        missing
            .path()
            .join("no-such-dir")
            .join("b.sqlite")
            .display()
    );
    for url in [
        // Nothing listens on port 1.
        "postgres://app:s3cret-of-the-user@127.0.0.1:1/app?sslmode=disable",
        "postgres://app@127.0.0.1:1/app?password=s3cret-of-the-query",
        "postgres://app:p%40ss@s3cret@127.0.0.1:1/app",
        sqlite.as_str(),
    ] {
        let lines = log_of_failed_start(url).await;
        let leaks: Vec<&String> = lines.iter().filter(|l| l.contains("s3cret")).collect();
        assert!(leaks.is_empty(), "{url}: {leaks:#?}");
        assert!(
            lines
                .iter()
                .any(|line| line.contains("databases.bandits") && line.contains("***")),
            "{url}: the failure is logged with the URL redacted: {lines:#?}"
        );
    }
}
