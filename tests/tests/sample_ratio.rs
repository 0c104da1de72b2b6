//! The sample-ratio check as a site owner meets it, on SQLite and (with
//! BANDITS_TEST_POSTGRES_URL) PostgreSQL: a fixed split whose views are skewed is flagged
//! in the API's statistics, on the admin's list and on the flag's page; an adaptive policy
//! says it is not tested.

use bandits::engine::{FlagDefinition, Policy};
use bandits::store::{Batch, Increment, Store};
use bandits_integration_tests::browser::TOKEN;
use bandits_integration_tests::each_database;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::Value;

const NOW: i64 = 1_763_700_000_000;

async fn flag_with_views(store: &Store, name: &str, policy: Policy, views: [u64; 2]) {
    let flag = FlagDefinition::new(name)
        .with_policy(policy)
        .validate()
        .expect("a valid flag");
    let stored = store.create_flag(&flag, NOW).await.expect("created");
    let batch = Batch {
        increments: vec![
            Increment::new(&stored, "off", views[0], views[0] / 20),
            Increment::new(&stored, "on", views[1], views[1] / 20),
        ],
        ..Batch::default()
    };
    store.flush(&batch, NOW).await.expect("flushed");
}

async fn start(url: &str) -> Client {
    bandits_integration_tests::admin::staff_site(url).await
}

async fn stats(client: &Client, flag: &str) -> Value {
    let response = client
        .get(format!("/bandits/api/flags/{flag}/stats"))
        .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    response.into_json().await.expect("JSON")
}

async fn admin_page(client: &Client, path: &str) -> String {
    client
        .get(format!("/bandits/admin{path}"))
        .header(Header::new("X-Staff", "yes"))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn a_skewed_fixed_split_is_flagged_and_an_adaptive_policy_is_not_tested() {
    each_database(|store, url| async move {
        let even = Policy::Split {
            weights: vec![1.0, 1.0],
        };
        flag_with_views(&store, "skewed", even.clone(), [5_200, 4_800]).await;
        flag_with_views(&store, "fair", even, [5_030, 4_970]).await;
        flag_with_views(&store, "adaptive", Policy::thompson(), [9_000, 1_000]).await;
        let client = start(&url).await;

        let skewed = stats(&client, "skewed").await;
        let check = &skewed["sample_ratio"];
        assert_eq!(check["tested"], true, "{skewed}");
        assert_eq!(check["mismatch"], true);
        assert!(check["p_value"].as_f64().unwrap() < 0.001);
        assert!(check["message"]
            .as_str()
            .unwrap()
            .starts_with("Sample ratio mismatch"));
        let fair = stats(&client, "fair").await;
        assert_eq!(fair["sample_ratio"]["mismatch"], false, "{fair}");
        assert!(fair["sample_ratio"]["p_value"].as_f64().unwrap() > 0.001);
        let adaptive = stats(&client, "adaptive").await;
        assert_eq!(adaptive["sample_ratio"]["tested"], false);
        assert_eq!(adaptive["sample_ratio"]["mismatch"], false);
        assert!(adaptive["sample_ratio"]["message"]
            .as_str()
            .unwrap()
            .contains("not tested"));

        let list = admin_page(&client, "/").await;
        assert_eq!(
            list.matches(">sample ratio mismatch<").count(),
            1,
            "only the skewed flag: {list}"
        );
        let page = admin_page(&client, "/flags/skewed").await;
        assert!(
            page.contains("role=\"alert\">Sample ratio mismatch"),
            "{page}"
        );
        let page = admin_page(&client, "/flags/adaptive").await;
        assert!(page.contains("the sample ratio is not tested"), "{page}");
        client.terminate().await;
    })
    .await;
}
