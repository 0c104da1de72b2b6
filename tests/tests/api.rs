//! The JSON API as an operator uses it: with the admin token, on SQLite and PostgreSQL.

use bandits::api::{self, AdminCheck};
use bandits::config::Config;
use bandits::database::BanditsDatabase;
use bandits::store::{Batch, Increment, Store};
use bandits_integration_tests::each_database;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket_db_pools::Database;

const TOKEN: &str = "test-admin-token-0123456789";

async fn client(url: &str) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("log_level", "off"));
    let config = Config::from_figment(&figment).expect("a valid configuration");
    let rocket = rocket::custom(figment)
        .attach(BanditsDatabase::init())
        .manage(config)
        .mount(api::BASE, api::routes())
        .register(api::BASE, api::catchers());
    Client::tracked(rocket).await.expect("the API ignites")
}

fn bearer(token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {token}"))
}

async fn send(client: &Client, method: &str, path: &str, body: Option<Value>) -> (Status, Value) {
    let uri = format!("{}{path}", api::BASE);
    let mut request = match method {
        "GET" => client.get(uri),
        "POST" => client.post(uri),
        "PUT" => client.put(uri),
        "DELETE" => client.delete(uri),
        other => panic!("{other}"),
    }
    .header(bearer(TOKEN));
    if let Some(body) = body {
        request = request.header(ContentType::JSON).body(body.to_string());
    }
    let response = request.dispatch().await;
    let status = response.status();
    let text = response.into_string().await.unwrap_or_default();
    let value = if text.is_empty() {
        Value::Null
    } else {
        rocket::serde::json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
    };
    (status, value)
}

fn headline() -> Value {
    json!({
        "name": "headline-flag",
        "note": "Which headline sells?",
        "arms": [{"name": "off"}, {"name": "on", "payload": {"headline": "Big news"}}],
        "policy": {"kind": "thompson"},
        "source_path": "/",
        "target_path": "contact/"
    })
}

#[tokio::test]
async fn without_the_token_every_route_answers_401() {
    each_database(|_store: Store, url| async move {
        let client = client(&url).await;
        let routes = [
            ("GET", "/flags"),
            ("POST", "/flags"),
            ("GET", "/flags/headline-flag"),
            ("PUT", "/flags/headline-flag"),
            ("DELETE", "/flags/headline-flag"),
            ("POST", "/flags/headline-flag/reset"),
            ("GET", "/flags/headline-flag/stats"),
            ("GET", "/status"),
        ];
        for (method, path) in routes {
            for auth in [None, Some("wrong-token-0123456789"), Some("")] {
                let uri = format!("{}{path}", api::BASE);
                let mut request = match method {
                    "GET" => client.get(uri),
                    "POST" => client.post(uri),
                    "PUT" => client.put(uri),
                    _ => client.delete(uri),
                }
                .header(ContentType::JSON)
                .body(headline().to_string());
                if let Some(token) = auth {
                    request = request.header(bearer(token));
                }
                let response = request.dispatch().await;
                assert_eq!(
                    response.status(),
                    Status::Unauthorized,
                    "{method} {path} {auth:?}"
                );
                let body = response.into_string().await.unwrap_or_default();
                assert!(body.contains("Bearer"), "{body}");
            }
        }
        // Nothing was created by the refused POSTs.
        assert_eq!(
            send(&client, "GET", "/flags", None).await.1["flags"],
            json!([])
        );
    })
    .await;
}

#[tokio::test]
async fn flags_are_created_read_updated_reset_and_deleted() {
    each_database(|_store: Store, url| async move {
        let client = client(&url).await;
        let (status, created) = send(&client, "POST", "/flags", Some(headline())).await;
        assert_eq!(status, Status::Created, "{created}");
        assert_eq!(created["flag"]["target_path"], "/contact/");
        assert_eq!(created["flag"]["min_views"], 100);
        assert_eq!(
            created["totals"][1],
            json!({"arm": "on", "views": 0, "conversions": 0})
        );

        let (status, again) = send(&client, "POST", "/flags", Some(headline())).await;
        assert_eq!(status, Status::Conflict, "{again}");

        let (status, listed) = send(&client, "GET", "/flags", None).await;
        assert_eq!(status, Status::Ok);
        assert_eq!(listed["flags"].as_array().map(Vec::len), Some(1));

        let mut changed = headline();
        changed["arms"] = json!([{"name": "off"}, {"name": "on"}, {"name": "bold"}]);
        changed.as_object_mut().unwrap().remove("name");
        let (status, updated) = send(&client, "PUT", "/flags/headline-flag", Some(changed)).await;
        assert_eq!(status, Status::Ok, "{updated}");
        assert_eq!(updated["totals"].as_array().map(Vec::len), Some(3));

        let (status, reset) = send(&client, "POST", "/flags/headline-flag/reset", None).await;
        assert_eq!(status, Status::Ok);
        assert_eq!(reset["epoch"], 1);

        let (status, _) = send(&client, "DELETE", "/flags/headline-flag", None).await;
        assert_eq!(status, Status::NoContent);
        for path in ["/flags/headline-flag", "/flags/headline-flag/stats"] {
            let (status, body) = send(&client, "GET", path, None).await;
            assert_eq!(status, Status::NotFound, "{path}: {body}");
            assert!(body["error"]
                .as_str()
                .unwrap_or("")
                .contains("headline-flag"));
        }
        let (status, _) = send(&client, "DELETE", "/flags/headline-flag", None).await;
        assert_eq!(status, Status::NotFound);
    })
    .await;
}

#[tokio::test]
async fn invalid_input_is_refused_with_the_field_named_and_nothing_changes() {
    each_database(|_store: Store, url| async move {
        let client = client(&url).await;
        let cases = [
            (
                json!({"name": "f", "policy": {"kind": "epsilon_greedy", "epsilon": 3}}),
                "policy.epsilon",
            ),
            (json!({"name": "Bad Name"}), "name"),
            (
                json!({"name": "f", "arms": [{"name": "a"}, {"name": "a"}]}),
                "arms[1].name",
            ),
            (
                json!({"name": "f", "significance_level": 0}),
                "significance_level",
            ),
            (
                json!({"name": "f", "significance_level": "high"}),
                "significance_level",
            ),
            (json!({"name": "f", "min_views": -1}), "min_views"),
            (json!({"name": "f", "colour": "red"}), "colour"),
            (json!({"name": "f", "target_path": "/a b"}), "target_path"),
        ];
        for (body, field) in cases {
            let (status, answer) = send(&client, "POST", "/flags", Some(body.clone())).await;
            assert_eq!(status, Status::UnprocessableEntity, "{body}: {answer}");
            let fields: Vec<&str> = answer["errors"]
                .as_array()
                .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
                .unwrap_or_default();
            let named =
                fields.contains(&field) || answer["error"].as_str().unwrap_or("").contains(field);
            assert!(named, "{body}: expected {field} in {answer}");
        }
        // A body that is not JSON at all gets a JSON answer too.
        let response = client
            .post(format!("{}/flags", api::BASE))
            .header(bearer(TOKEN))
            .header(ContentType::JSON)
            .body("name=f")
            .dispatch()
            .await;
        assert!(response.status().code >= 400 && response.status().code < 500);
        let text = response.into_string().await.unwrap_or_default();
        assert!(
            rocket::serde::json::from_str::<Value>(&text).is_ok(),
            "{text}"
        );

        // A rename through PUT is refused too.
        send(&client, "POST", "/flags", Some(headline())).await;
        let mut renamed = headline();
        renamed["name"] = json!("other-name");
        let (status, answer) = send(&client, "PUT", "/flags/headline-flag", Some(renamed)).await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert_eq!(answer["errors"][0]["field"], "name");

        let (_, listed) = send(&client, "GET", "/flags", None).await;
        let names: Vec<&str> = listed["flags"]
            .as_array()
            .map(|flags| {
                flags
                    .iter()
                    .filter_map(|f| f["flag"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names, ["headline-flag"], "only the valid flag exists");
    })
    .await;
}

#[tokio::test]
async fn statistics_show_rates_intervals_p_values_and_the_winner() {
    each_database(|store: Store, url| async move {
        let client = client(&url).await;
        send(&client, "POST", "/flags", Some(headline())).await;
        let stored = store.flag("headline-flag").await.unwrap();
        store
            .flush(
                &Batch {
                    increments: vec![
                        Increment::new(&stored, "off", 1000, 37),
                        Increment::new(&stored, "on", 1000, 66),
                    ],
                    events: vec![],
                    ..Batch::default()
                },
                1,
            )
            .await
            .unwrap();
        store
            .lock_winner("headline-flag", 0, "on", 1_763_700_000_000)
            .await
            .unwrap();

        let (status, stats) = send(&client, "GET", "/flags/headline-flag/stats", None).await;
        assert_eq!(status, Status::Ok, "{stats}");
        let on = &stats["arms"][1];
        assert_eq!(on["views"], 1000);
        assert_eq!(on["conversions"], 66);
        assert_eq!(on["rate"], 0.066);
        let lower = on["interval"]["lower"].as_f64().unwrap();
        let upper = on["interval"]["upper"].as_f64().unwrap();
        assert!(lower < 0.066 && 0.066 < upper, "{on}");
        // SciPy's ttest_ind on these counts gives p = 0.00333 (stats_vectors.json).
        let p = on["p_value_against_control"].as_f64().unwrap();
        assert!((p - 0.0033319045078858633).abs() < 1e-9, "{p}");
        assert_eq!(stats["arms"][0]["p_value_against_control"], Value::Null);
        let best = on["probability_best"].as_f64().unwrap();
        assert!(best > 0.99, "{best}");
        assert_eq!(stats["winner"]["arm"], "on");
        assert_eq!(stats["winner"]["locked_at"], 1_763_700_000_000i64);
        assert_eq!(stats["policy"], "Thompson sampling");
        assert!(
            stats["rule"].as_str().unwrap_or("").contains("t-test"),
            "{stats}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_sites_own_admin_check_opens_the_api_too() {
    each_database(|_store: Store, url| async move {
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", &url))
            .merge(("log_level", "off"));
        // No token configured at all: only the site's check can open the API.
        let rocket = rocket::custom(figment)
            .attach(BanditsDatabase::init())
            .manage(Config::default())
            .manage(AdminCheck::new(|request| {
                request.headers().get_one("X-Site-Staff") == Some("yes")
            }))
            .mount(api::BASE, api::routes())
            .register(api::BASE, api::catchers());
        let client = Client::tracked(rocket).await.expect("the API ignites");
        let uri = format!("{}/flags", api::BASE);
        let staff = client
            .get(uri.clone())
            .header(Header::new("X-Site-Staff", "yes"))
            .dispatch()
            .await;
        assert_eq!(staff.status(), Status::Ok);
        let stranger = client.get(uri.clone()).dispatch().await;
        assert_eq!(stranger.status(), Status::Unauthorized);
        let guessing = client.get(uri).header(bearer("")).dispatch().await;
        assert_eq!(guessing.status(), Status::Unauthorized);
    })
    .await;
}

#[tokio::test]
async fn a_percentage_flag_is_one_field() {
    each_database(|_store: Store, url| async move {
        let client = client(&url).await;
        let body = json!({ "name": "new-checkout", "percentage": 10 });
        let (status, created) = send(&client, "POST", "/flags", Some(body)).await;
        assert_eq!(status, Status::Created, "{created}");
        assert_eq!(created["flag"]["targeting"]["percent"], 10.0);
        assert_eq!(created["flag"]["policy"]["kind"], "split");
        assert_eq!(created["flag"]["winner_rule"]["kind"], "manual");

        let wrong = json!({ "name": "other", "percentage": 150 });
        let (status, refused) = send(&client, "POST", "/flags", Some(wrong)).await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert_eq!(
            refused["errors"][0]["field"], "targeting.percent",
            "{refused}"
        );
    })
    .await;
}
