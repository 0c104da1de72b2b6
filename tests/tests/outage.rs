//! The database goes away; the site does not notice. Locked tables, a pulled plug (a
//! closed port, then restored), connections killed mid-load and a start without any
//! database: every request is answered without waiting, and every count the visitors'
//! cookies remember reaches the database once it is back.
//!
//! Who was counted is read from the visitors' own cookies, decrypted with the test key: a
//! cookie that says its visitor saw (converted on) `headline` is one view (conversion) of
//! that arm in the database, and the database holds no other. `/all` lists the arms a
//! visitor holds, for the checks on each page.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bandits::engine::{FlagDefinition, Policy};
use bandits::store::Store;
use bandits::Bandits;
use bandits_integration_tests::browser::{remembered, totals, Visitor, SECRET_KEY};
use bandits_integration_tests::process::server_address;
use bandits_integration_tests::proxy::{through, Proxy};
use bandits_integration_tests::{each_database, eventually, on_postgres, postgres_server, routes};
use rocket::figment::value::Value;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{routes, Build, Rocket};
use sqlx::{AnyConnection, Connection, Executor};

fn site(url: &str, extra: &[(&str, Value)]) -> Rocket<Build> {
    let mut figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("databases.bandits.connect_timeout", 1))
        .merge(("bandits.flush_interval_ms", 25))
        .merge(("bandits.warning_interval_ms", 1_000))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    for (key, value) in extra {
        figment = figment.merge((*key, value.clone()));
    }
    let headline = FlagDefinition::new("headline")
        .with_policy(Policy::even_split(2))
        .with_paths("/", "/contact")
        .validate()
        .expect("a valid flag");
    rocket::custom(figment)
        .attach(Bandits::fairing().with_flag(headline))
        .mount(
            "/",
            routes![routes::home, routes::contact, routes::peek, routes::all],
        )
}

async fn start(url: &str) -> Client {
    Client::untracked(site(url, &[]))
        .await
        .expect("the site ignites")
}

/// (views, conversions) per arm of `headline`.
#[derive(Default, Debug, Clone, PartialEq)]
struct Ledger(HashMap<String, (u64, u64)>);

impl Ledger {
    /// What the visitors' cookies say was counted.
    async fn of(visitors: &[Visitor]) -> Ledger {
        let cookies: Vec<String> = visitors.iter().filter_map(|v| v.cookie.clone()).collect();
        let mut ledger = Ledger::default();
        for state in remembered(&cookies).await {
            let state = state.expect("every visitor cookie the site set decrypts and parses");
            if let Some(assigned) = state.get("headline") {
                let entry = ledger.0.entry(assigned.arm.clone()).or_default();
                entry.0 += u64::from(assigned.exposed);
                entry.1 += u64::from(assigned.converted);
            }
        }
        ledger.0.retain(|_, counts| *counts != (0, 0));
        ledger
    }
}

/// The database holds exactly what `visitors`' cookies say was counted, and someone was
/// counted, as a view and as a conversion (an empty ledger would match an empty database
/// and prove nothing).
async fn assert_counted_as_remembered(store: &Store, visitors: &[Visitor]) {
    let ledger = Ledger::of(visitors).await;
    let (views, converted) = ledger
        .0
        .values()
        .fold((0, 0), |(v, c), (views, conv)| (v + views, c + conv));
    assert!(views > 0, "nobody was counted: {ledger:?}");
    assert!(converted > 0, "no conversion was counted: {ledger:?}");
    assert_eq!(stored(store).await, ledger);
}

/// The arm of `headline` the visitor holds, if any.
async fn held(visitor: &mut Visitor, client: &Client) -> Option<String> {
    let all = visitor.get(client, "/all").await;
    assert_eq!(all.status, Status::Ok);
    all.body
        .split(',')
        .find_map(|item| item.strip_prefix("headline:"))
        .map(str::to_string)
}

/// The visitor's view of `/`: the page shows the arm the visitor holds after it, or the
/// control to a visitor without one.
async fn view(visitor: &mut Visitor, client: &Client) {
    let before = held(visitor, client).await;
    let page = visitor.get(client, "/").await;
    assert_eq!(page.status, Status::Ok, "the page must never fail");
    let after = held(visitor, client).await;
    match (before, after) {
        (None, Some(arm)) => {
            assert_eq!(page.body, arm, "the page showed the arm the visitor holds");
        }
        (None, None) => assert_eq!(page.body, "off", "unassigned visitors see the control"),
        (Some(before), Some(after)) => assert_eq!(before, after),
        (Some(_), None) => panic!("a visitor lost their arm"),
    }
}

/// The visitor reaches the goal.
async fn convert(visitor: &mut Visitor, client: &Client) {
    let goal = visitor.get(client, "/contact").await;
    assert_eq!(goal.status, Status::Ok, "the goal page must never fail");
}

async fn stored(store: &Store) -> Ledger {
    let mut ledger = Ledger::default();
    for (arm, counts) in totals(store, "headline").await {
        if counts != (0, 0) {
            ledger.0.insert(arm, counts);
        }
    }
    ledger
}

/// Whether a brand-new visitor is given an arm now (the plugin believes the database is
/// up). The probe reads the flag off its source path, so it is not counted.
async fn assigns(client: &Client) -> bool {
    let mut probe = Visitor::browser();
    probe.get(client, "/peek").await;
    held(&mut probe, client).await.is_some()
}

#[tokio::test]
async fn requests_never_wait_for_a_locked_database() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut early: Vec<Visitor> = Vec::new();
        for _ in 0..20 {
            let mut visitor = Visitor::browser();
            view(&mut visitor, &client).await;
            early.push(visitor);
        }
        let mut late: Vec<Visitor> = Vec::new();
        // Another connection takes the counters table and keeps it.
        let mut locker = bandits_integration_tests::lock_counters(&url, store.backend()).await;
        // Everything below is answered while the lock is held; a request waiting on the
        // database would hang here until the timeout.
        let served = tokio::time::timeout(Duration::from_secs(60), async {
            for visitor in early.iter_mut() {
                convert(visitor, &client).await;
            }
            for _ in 0..20 {
                let mut visitor = Visitor::browser();
                view(&mut visitor, &client).await;
                late.push(visitor);
            }
        })
        .await;
        locker.execute("ROLLBACK").await.expect("the lock ends");
        assert!(served.is_ok(), "requests waited for the locked database");
        client.terminate().await;
        early.append(&mut late);
        assert_counted_as_remembered(&store, &early).await;
    })
    .await;
}

#[tokio::test]
async fn pulling_the_plug_keeps_the_site_serving_and_loses_no_count() {
    on_postgres(|store, url| async move {
        let proxy = Proxy::start(server_address(&url)).await;
        let client = start(&through(&url, proxy.port())).await;

        // Before: visitors are assigned and counted.
        let mut before: Vec<Visitor> = Vec::new();
        for _ in 0..30 {
            let mut visitor = Visitor::browser();
            view(&mut visitor, &client).await;
            before.push(visitor);
        }

        proxy.close().await;
        assert!(
            eventually(|| async { !assigns(&client).await }).await,
            "the plugin never noticed the database was gone"
        );
        // During: the page keeps working; visitors with an arm keep it and convert (in
        // memory); new visitors see the control and are not counted.
        let mut during: Vec<Visitor> = Vec::new();
        for visitor in before.iter_mut() {
            convert(visitor, &client).await;
            view(visitor, &client).await;
        }
        for _ in 0..30 {
            let mut visitor = Visitor::browser();
            view(&mut visitor, &client).await;
            during.push(visitor);
        }

        proxy.open().await;
        assert!(
            eventually(|| async { assigns(&client).await }).await,
            "the plugin never noticed the database was back"
        );
        // After: the visitors who came during the outage are assigned and counted now.
        for visitor in during.iter_mut() {
            view(visitor, &client).await;
            convert(visitor, &client).await;
        }
        client.terminate().await;
        proxy.close().await;
        before.append(&mut during);
        assert_counted_as_remembered(&store, &before).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_mid_load_lose_no_count() {
    on_postgres(|store, url| async move {
        let server = postgres_server().expect("on_postgres runs only with a server");
        let database = url
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split('?').next())
            .expect("a database name")
            .to_string();
        let client = Arc::new(start(&url).await);

        let stop = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(AtomicU64::new(0));
        let (ready, running) = tokio::sync::oneshot::channel();
        let killer = {
            let stop = Arc::clone(&stop);
            let killed = Arc::clone(&killed);
            let mut ready = Some(ready);
            tokio::spawn(async move {
                let mut admin = AnyConnection::connect(&server)
                    .await
                    .expect("an admin connection");
                while !stop.load(Ordering::Relaxed) {
                    let query = format!(
                        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE datname = '{database}' AND pid <> pg_backend_pid()"
                    );
                    let count: i64 = sqlx::query_scalar(&query)
                        .fetch_one(&mut admin)
                        .await
                        .expect("pg_terminate_backend");
                    killed.fetch_add(count as u64, Ordering::Relaxed);
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            })
        };

        running.await.expect("the killer runs");
        let mut tasks = Vec::new();
        for task in 0..16 {
            let client = Arc::clone(&client);
            let killed = Arc::clone(&killed);
            tasks.push(tokio::spawn(async move {
                let mut visitors = Vec::new();
                // Until enough connections died under the load (bounded either way).
                for index in 0..400 {
                    if index >= 25 && killed.load(Ordering::Relaxed) >= 40 {
                        break;
                    }
                    let mut visitor = Visitor::browser();
                    view(&mut visitor, &client).await;
                    if (task + index) % 2 == 0 {
                        convert(&mut visitor, &client).await;
                    }
                    view(&mut visitor, &client).await;
                    visitors.push(visitor);
                }
                visitors
            }));
        }
        let mut visitors = Vec::new();
        for task in tasks {
            visitors.extend(task.await.expect("a load task"));
        }
        stop.store(true, Ordering::Relaxed);
        killer.await.expect("the killer");
        assert!(
            killed.load(Ordering::Relaxed) > 0,
            "no connection was killed: the test proves nothing"
        );
        // The last flush needs the database; it is back.
        let client = Arc::try_unwrap(client).unwrap_or_else(|_| panic!("tasks are done"));
        client.terminate().await;
        assert_counted_as_remembered(&store, &visitors).await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_database_fails_ignition_by_default() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("missing").join("b.sqlite").display()
    );
    let error = match Client::untracked(site(&url, &[])).await {
        Ok(_) => panic!("ignition should fail without the database"),
        Err(error) => error,
    };
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
        "{error:?}"
    );
}

/// Starts without a database (the directory of the SQLite file is missing), serves the
/// control meanwhile, and catches up once the directory exists.
#[tokio::test]
async fn without_require_database_the_site_starts_and_catches_up_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let later = dir.path().join("later");
    let url = format!("sqlite://{}?mode=rwc", later.join("b.sqlite").display());
    let relaxed = [("bandits.require_database", Value::from(false))];
    let client = Client::untracked(site(&url, &relaxed))
        .await
        .expect("ignites without the database");
    let mut early = Visitor::browser();
    assert_eq!(early.get(&client, "/").await.body, "off");
    assert_eq!(held(&mut early, &client).await, None);

    std::fs::create_dir(&later).expect("the directory appears");
    assert!(
        eventually(|| async { assigns(&client).await }).await,
        "the plugin never reached the database"
    );
    view(&mut early, &client).await;
    convert(&mut early, &client).await;
    client.terminate().await;
    let store = Store::connect(&url).await.expect("the database now exists");
    assert!(
        store.flag("headline").await.is_ok(),
        "the code's flag was created"
    );
    assert_counted_as_remembered(&store, &[early]).await;
}

#[tokio::test]
async fn without_require_database_the_site_starts_and_catches_up_on_postgres() {
    on_postgres(|store, url| async move {
        let proxy = Proxy::start(server_address(&url)).await;
        proxy.close().await;
        let relaxed = [("bandits.require_database", Value::from(false))];
        let client = Client::untracked(site(&through(&url, proxy.port()), &relaxed))
            .await
            .expect("ignites without the database");
        let mut early = Visitor::browser();
        assert_eq!(early.get(&client, "/").await.body, "off");
        assert_eq!(held(&mut early, &client).await, None);

        proxy.open().await;
        assert!(
            eventually(|| async { assigns(&client).await }).await,
            "the plugin never reached the database"
        );
        view(&mut early, &client).await;
        convert(&mut early, &client).await;
        client.terminate().await;
        proxy.close().await;
        assert_counted_as_remembered(&store, &[early]).await;
    })
    .await;
}
