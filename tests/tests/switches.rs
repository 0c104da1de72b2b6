//! Switches and samples outside a request (`FlagsHandle`, waffle's `switch_is_active` and
//! `sample_is_active`): answered from memory, following a change at the next flush, on
//! SQLite and (with BANDITS_TEST_POSTGRES_URL) PostgreSQL.

use bandits::engine::targeting::Targeting;
use bandits::engine::{Flag, FlagDefinition};
use bandits::{Bandits, FlagsHandle};
use bandits_integration_tests::browser::SECRET_KEY;
use bandits_integration_tests::{each_database, eventually};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rocket::local::asynchronous::Client;

fn flag(name: &str, targeting: Targeting) -> Flag {
    FlagDefinition {
        targeting,
        ..FlagDefinition::new(name)
    }
    .validate()
    .expect("a valid flag")
}

fn flags() -> Vec<Flag> {
    let rules = |everyone: Option<bool>, percent: Option<f64>| Targeting {
        everyone,
        percent,
        ..Targeting::default()
    };
    vec![
        flag("maintenance-mode", rules(Some(true), None)),
        flag("kill-switch", rules(Some(false), None)),
        flag("experiment", rules(None, None)),
        flag("thirty", rules(None, Some(30.0))),
        flag("never", rules(None, Some(0.0))),
        flag("always", rules(None, Some(100.0))),
    ]
}

async fn start(url: &str) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.flush_interval_ms", 25))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let fairing = flags()
        .into_iter()
        .fold(Bandits::fairing(), |fairing, flag| fairing.with_flag(flag));
    Client::untracked(rocket::custom(figment).attach(fairing))
        .await
        .expect("the site ignites")
}

fn handle(client: &Client) -> FlagsHandle {
    client
        .rocket()
        .state::<FlagsHandle>()
        .cloned()
        .expect("the handle is managed once the plugin ignited")
}

#[tokio::test]
async fn switches_are_on_only_when_everyone_is_on() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let flags = handle(&client);
        assert!(flags.is_active("maintenance-mode"));
        assert!(!flags.is_active("kill-switch"));
        assert!(!flags.is_active("experiment"), "decided per visitor");
        assert!(!flags.is_active("no-such-flag"));
        let definition = flags.definition("thirty").expect("known");
        assert_eq!(definition.targeting.percent, Some(30.0));
        assert!(flags.definition("no-such-flag").is_none());
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn samples_are_true_for_their_percent_of_calls() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let flags = handle(&client);
        // A seeded generator: the share below is the same on every run. Drawn afresh on
        // every call, unlike a visitor's sticky bucket: the same caller gets both answers.
        let mut rng = StdRng::seed_from_u64(30);
        let calls = 10_000;
        let hits = (0..calls)
            .filter(|_| flags.sample_with("thirty", &mut rng))
            .count();
        let share = 100.0 * hits as f64 / calls as f64;
        assert!((28.5..=31.5).contains(&share), "{share:.2}% of calls");
        for _ in 0..1_000 {
            assert!(!flags.sample("never"));
            assert!(flags.sample("always"));
            assert!(!flags.sample("experiment"), "no percent: never sampled");
            assert!(!flags.sample("no-such-flag"));
        }
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_change_in_the_database_reaches_the_handle_at_the_next_flush() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let flags = handle(&client);
        assert!(flags.is_active("maintenance-mode"));
        let mut definition = flags.definition("maintenance-mode").expect("known");
        definition.targeting.everyone = Some(false);
        let flag = definition.validate().expect("valid");
        store
            .update_flag(&flag, 1_764_000_000_000)
            .await
            .expect("saved, as the admin or another instance would");
        // Cloned before the change: still the same instance's memory.
        let job = flags.clone();
        assert!(
            eventually(|| async { !job.is_active("maintenance-mode") }).await,
            "the switch never turned off"
        );
        client.terminate().await;
    })
    .await;
}
