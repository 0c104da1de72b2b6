//! The interval each flag chooses, through the JSON API and the admin, on SQLite and
//! (with BANDITS_TEST_POSTGRES_URL) PostgreSQL.

use bandits_integration_tests::browser::TOKEN;
use bandits_integration_tests::each_database;
use rocket::http::{ContentType, Header, Method, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::Value;

async fn start(url: &str) -> Client {
    bandits_integration_tests::admin::staff_site(url).await
}

async fn api(client: &Client, method: Method, path: &str, body: &str) -> (Status, Value) {
    let response = client
        .req(method, path.to_string())
        .header(ContentType::JSON)
        .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
        .body(body)
        .dispatch()
        .await;
    let status = response.status();
    (status, response.into_json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_flag_chooses_wilson_or_the_beta_posterior() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let (status, _) = api(
            &client,
            Method::Post,
            "/bandits/api/flags",
            r#"{"name": "posterior", "interval": "beta", "policy": {"kind": "thompson"}}"#,
        )
        .await;
        assert_eq!(status, Status::Created);
        let (_, stats) = api(
            &client,
            Method::Get,
            "/bandits/api/flags/posterior/stats",
            "",
        )
        .await;
        assert_eq!(stats["interval"], "beta", "{stats}");
        let (_, created) = api(
            &client,
            Method::Post,
            "/bandits/api/flags",
            r#"{"name": "plain"}"#,
        )
        .await;
        assert_eq!(
            created["flag"]["interval"], "wilson",
            "the default: {created}"
        );
        let (status, refused) = api(
            &client,
            Method::Post,
            "/bandits/api/flags",
            r#"{"name": "bad", "interval": "bootstrap"}"#,
        )
        .await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert!(refused.to_string().contains("interval"), "{refused}");
        let page =
            bandits_integration_tests::admin::staff_page(&client, "/bandits/admin/flags/posterior")
                .await;
        assert!(page.contains("95% Beta posterior interval"), "{page}");
        client.terminate().await;
    })
    .await;
}
