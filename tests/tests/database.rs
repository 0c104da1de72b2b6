//! The plugin's database in Rocket's usual place: ignition connects and migrates, on
//! SQLite and PostgreSQL, and a wrong configuration fails ignition with the reason.

use bandits::database::{BanditsDatabase, DatabaseError, StorePool};
use bandits_integration_tests::kinds;
use rocket::figment::Figment;
use rocket_db_pools::{Database, Pool};

fn rocket_with(figment: Figment) -> rocket::Rocket<rocket::Build> {
    rocket::custom(figment).attach(BanditsDatabase::init())
}

#[tokio::test]
async fn ignition_connects_and_creates_the_tables() {
    for kind in kinds() {
        let database = kind.create().await;
        let figment = rocket::Config::figment().merge(("databases.bandits.url", &database.url));
        let rocket = rocket_with(figment).ignite().await;
        let label = database.label;
        let outcome = match rocket {
            Ok(rocket) => match BanditsDatabase::fetch(&rocket) {
                Some(db) => db
                    .store()
                    .snapshot()
                    .await
                    .map(|snapshot| snapshot.config_version)
                    .map_err(|e| e.to_string()),
                None => Err("no database managed".to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        database.remove().await;
        assert_eq!(outcome, Ok(0), "{label}: a migrated, empty store");
    }
}

#[tokio::test]
async fn an_unreachable_database_fails_ignition_without_leaking_its_password() {
    let figment = rocket::Config::figment()
        .merge((
            "databases.bandits.url",
            "postgres://app:s3cret@127.0.0.1:1/app",
        ))
        .merge(("databases.bandits.connect_timeout", 1));
    match rocket_with(figment.clone()).ignite().await {
        // Inspecting the error marks it handled (Rocket panics on an unhandled one).
        Err(error) => assert!(
            matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
            "{error}"
        ),
        Ok(_) => panic!("ignition must fail without a database"),
    }

    let error = StorePool::init(&figment.focus("databases.bandits"))
        .await
        .err()
        .expect("no server listens on port 1");
    let message = error.to_string();
    assert!(matches!(error, DatabaseError::Store { .. }), "{message}");
    assert!(
        message.contains("postgres://app:***@127.0.0.1:1/app"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn a_wrong_value_names_its_key() {
    let figment = Figment::new()
        .merge(("url", "sqlite::memory:"))
        .merge(("max_connections", "many"))
        .merge(("connect_timeout", 5));
    let error = StorePool::init(&figment)
        .await
        .err()
        .expect("a wrong value");
    assert!(matches!(error, DatabaseError::Config(_)), "{error}");
    assert!(error.to_string().contains("max_connections"), "{error}");

    let unsupported = Figment::new()
        .merge(("url", "mysql://localhost/app"))
        .merge(("max_connections", 2))
        .merge(("connect_timeout", 1));
    let error = StorePool::init(&unsupported)
        .await
        .err()
        .expect("no MySQL driver");
    assert!(
        error.to_string().contains("mysql://localhost/app"),
        "{error}"
    );
}
