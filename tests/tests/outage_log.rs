//! What an outage puts in the log: one warning per `bandits.warning_interval_ms`, however
//! often the flush fails, and one line when the database answers again. In a test binary
//! of its own, because it installs the process's logger before Rocket does.

use std::time::{Duration, Instant};

use bandits::engine::FlagDefinition;
use bandits::Bandits;
use bandits_integration_tests::browser::{Visitor, SECRET_KEY};
use bandits_integration_tests::{log_capture, routes};
use rocket::local::asynchronous::Client;
use rocket::routes;

#[tokio::test]
async fn an_outage_warns_once_per_interval_and_says_when_it_ends() {
    log_capture::install();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let later = dir.path().join("later");
    let url = format!("sqlite://{}?mode=rwc", later.join("b.sqlite").display());
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("databases.bandits.connect_timeout", 1))
        .merge(("bandits.require_database", false))
        .merge(("bandits.flush_interval_ms", 20))
        .merge(("bandits.warning_interval_ms", 500))
        .merge(("secret_key", SECRET_KEY));
    let flag = FlagDefinition::new("headline")
        .validate()
        .expect("a valid flag");
    let rocket = rocket::custom(figment)
        .attach(Bandits::fairing().with_flag(flag))
        .mount("/", routes![routes::peek, routes::all]);
    let client = Client::untracked(rocket)
        .await
        .expect("ignites without the database");

    // About 1.6 s of outage, flushing every 20 ms: dozens of failed flushes.
    let outage = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    std::fs::create_dir(&later).expect("the database's directory appears");
    let lasted = outage.elapsed();
    let mut back = false;
    for _ in 0..1_200 {
        let mut probe = Visitor::browser();
        probe.get(&client, "/peek").await;
        if probe.get(&client, "/all").await.body.contains("headline:") {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(back, "the plugin never reached the database");
    client.terminate().await;

    let lines: Vec<String> = log_capture::at_least(log::Level::Warn)
        .into_iter()
        .filter(|line| line.starts_with("rocket-bandits:"))
        .collect();
    let at_start = lines
        .iter()
        .filter(|l| l.contains("starting on the"))
        .count();
    let during = lines
        .iter()
        .filter(|l| l.contains("is unreachable"))
        .count()
        - at_start;
    let ended = lines.iter().filter(|l| l.contains("answers again")).count();
    assert_eq!(at_start, 1, "{lines:#?}");
    // One at the first failed flush, then at most one per 500 ms.
    let most = 1 + (lasted.as_millis() / 500) as usize + 1;
    assert!(
        (1..=most).contains(&during),
        "{during} warnings in {lasted:?}: {lines:#?}"
    );
    assert_eq!(ended, 1, "{lines:#?}");
}
