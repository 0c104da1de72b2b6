//! Whatever a visitor or an admin sends, the site answers without a panic or a 5xx:
//! property tests over the visitor cookie's plain text (encrypted with the site's key, so
//! it reaches the decoder), query-parameter overrides, and the API's JSON input.

use bandits::engine::targeting::Targeting;
use bandits::engine::FlagDefinition;
use bandits::{Bandits, Flags};
use bandits_integration_tests::browser::{BROWSER, SECRET_KEY, TOKEN};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::blocking::Client;
use rocket::serde::json::Value;
use rocket::{get, routes};

#[get("/peek")]
fn peek(flags: Flags<'_>) -> String {
    format!("{}|{flags}", flags.variant("qa").unwrap_or_default())
}

fn client(dir: &tempfile::TempDir) -> Client {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("b.sqlite").display()
    );
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let qa = FlagDefinition {
        targeting: Targeting {
            testing: true,
            ..Targeting::default()
        },
        ..FlagDefinition::new("qa").with_paths("/peek", "/peek")
    }
    .validate()
    .expect("a valid flag");
    let rocket = rocket::custom(figment)
        .attach(
            Bandits::fairing()
                .with_flag(qa)
                .privileged(|request| request.headers().contains("X-QA")),
        )
        .mount("/", routes![peek]);
    Client::untracked(rocket).expect("the site ignites")
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn any_visitor_cookie_plain_text_makes_a_page_not_an_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let client = client(&dir);
    let plain_text = prop_oneof![
        ".{0,200}",
        // Near misses of the real format.
        r#"\{"v":"[0-9a-f]{30,34}","a":\{("[a-z-]{1,8}":\[-?[0-9]{1,20},"[a-zA-Z<>]{0,5}",[0-9]{1,3}\],?){0,3}\}(,"o":\{\})?\}"#,
    ];
    runner(300)
        .run(&plain_text, |text| {
            let response = client
                .get("/peek")
                .header(Header::new("User-Agent", BROWSER))
                .private_cookie(Cookie::new("bandits", text.clone()))
                .dispatch();
            prop_assert_eq!(response.status(), Status::Ok, "cookie {:?}", text);
            Ok(())
        })
        .expect("no cookie breaks the page");
}

#[test]
fn any_query_string_of_overrides_makes_a_page_not_an_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let client = client(&dir);
    let key = prop_oneof![
        Just("bandits_force".to_string()),
        Just("bandits_qa".to_string()),
        Just("bandits_".to_string()),
        Just("bandits_nope".to_string()),
        "bandits_[a-z_%-]{0,12}",
        "[a-z=&]{0,6}",
    ];
    let value = prop_oneof![
        Just("on".to_string()),
        Just("off".to_string()),
        Just("1".to_string()),
        Just("0".to_string()),
        Just(String::new()),
        "[a-z0-9:,%-]{0,24}",
        Just("qa:on,qa:off,qa:,:,,".to_string()),
        "\\PC{0,12}",
    ];
    let query = (proptest::collection::vec((key, value), 0..5), any::<bool>());
    runner(300)
        .run(&query, |(pairs, privileged)| {
            let query: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        rocket::http::RawStr::new(k).percent_encode(),
                        rocket::http::RawStr::new(v).percent_encode()
                    )
                })
                .collect();
            let mut request = client
                .get(format!("/peek?{}", query.join("&")))
                .header(Header::new("User-Agent", BROWSER));
            if privileged {
                request = request.header(Header::new("X-QA", "1"));
            }
            let response = request.dispatch();
            prop_assert_eq!(response.status(), Status::Ok, "query {:?}", pairs);
            let body = response.into_string().unwrap_or_default();
            prop_assert!(
                body.starts_with("on|") || body.starts_with("off|"),
                "{}",
                body
            );
            Ok(())
        })
        .expect("no query breaks the page");
}

/// JSON values of any shape, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(serde_json_number),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("headline-flag"),
            Just("thompson"),
            Just("split"),
            Just("sequential"),
            Just("off"),
            Just("/"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            Just("name"),
            Just("arms"),
            Just("policy"),
            Just("kind"),
            Just("epsilon"),
            Just("weights"),
            Just("winner_rule"),
            Just("targeting"),
            Just("percent"),
            Just("rollout"),
            Just("payload"),
            Just("winner"),
            Just("significance_level"),
            Just("min_views"),
            Just("source_path"),
            Just("x"),
        ]
        .prop_map(str::to_string);
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn serde_json_number(f: f64) -> Value {
    rocket::serde::json::serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

#[test]
fn any_json_sent_to_the_api_is_answered_without_a_server_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let client = client(&dir);
    runner(400)
        .run(&json(), |body| {
            for (method, path) in [
                ("POST", "/bandits/api/flags"),
                ("PUT", "/bandits/api/flags/qa"),
            ] {
                let request = if method == "POST" {
                    client.post(path)
                } else {
                    client.put(path)
                };
                let response = request
                    .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
                    .header(ContentType::JSON)
                    .body(body.to_string())
                    .dispatch();
                let status = response.status();
                prop_assert!(
                    matches!(status.code, 200 | 201 | 400 | 409 | 422),
                    "{} {} {}: {}",
                    method,
                    path,
                    body,
                    status
                );
                if status.code == 422 {
                    let error: Value = response.into_json().unwrap_or(Value::Null);
                    prop_assert!(
                        error["errors"].is_array(),
                        "422 without field errors: {}",
                        error
                    );
                }
            }
            Ok(())
        })
        .expect("no JSON breaks the API");
}
