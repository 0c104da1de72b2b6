//! Flags in the browser through rocket::local, on SQLite and (with
//! BANDITS_TEST_POSTGRES_URL) PostgreSQL: `flags.json`, `flags.js`, `POST
//! /bandits/convert` and OpenFeature's remote evaluation agree with the `Flags` guard,
//! count as the server counts, list only flags opted in, and refuse what is not a same-site
//! JSON request.

use bandits::engine::{Arm, FlagDefinition, Policy};
use bandits::store::Store;
use bandits::{Bandits, Flags};
use bandits_integration_tests::browser::{totals, Visitor, BROWSER, COOKIE, SECRET_KEY, TOKEN};
use bandits_integration_tests::each_database;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, serde_json, Value};
use rocket::{get, routes};

const NOW: i64 = 1_763_700_000_000;

/// What the server sees: the guard's arm of `flag`.
#[get("/arm/<flag>")]
fn arm(flags: Flags<'_>, flag: &str) -> String {
    flags.variant(flag).unwrap_or_default()
}

async fn start(url: &str) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        // Long enough that only the shutdown flush writes: counts are exact.
        .merge(("bandits.flush_interval_ms", 60_000))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let rocket = rocket::custom(figment)
        .attach(Bandits::fairing())
        .mount("/", routes![arm]);
    Client::untracked(rocket).await.expect("the site ignites")
}

/// `pricing-layout`, readable in the browser, shown on `/pricing` with the goal event
/// `buy`, its arms carrying payloads; `internal`, not readable; `launch`, a switch on;
/// `killed`, a switch off; `plain`, readable, no payloads, no page.
async fn flags(store: &Store) {
    let pricing = FlagDefinition {
        client_side: true,
        arms: vec![
            Arm::new("table").with_payload(json!({"columns": 3})),
            Arm::new("cards").with_payload(json!({"columns": 1, "note": "</script><b>"})),
        ],
        source_path: Some("/pricing".into()),
        goal_event: Some("buy".into()),
        ..FlagDefinition::new("pricing-layout").with_policy(Policy::thompson())
    };
    let internal = FlagDefinition {
        arms: vec![
            Arm::new("off"),
            Arm::new("on").with_payload(json!({"secret": "internal"})),
        ],
        goal_event: Some("buy".into()),
        ..FlagDefinition::new("internal")
    };
    let mut launch = FlagDefinition {
        client_side: true,
        ..FlagDefinition::new("launch")
    };
    launch.targeting.everyone = Some(true);
    let mut killed = FlagDefinition {
        client_side: true,
        ..FlagDefinition::new("killed")
    };
    killed.targeting.everyone = Some(false);
    let plain = FlagDefinition {
        client_side: true,
        ..FlagDefinition::new("plain")
    };
    for definition in [pricing, internal, launch, killed, plain] {
        let flag = definition.validate().expect("a valid flag");
        store.create_flag(&flag, NOW).await.expect("created");
    }
}

/// A same-site `POST` with a JSON body, as a page's script sends it.
async fn post_json(
    client: &Client,
    visitor: &mut Visitor,
    path: &str,
    body: &str,
    headers: &[(&'static str, &str)],
) -> (Status, Value, Option<String>) {
    let mut request = client
        .post(path.to_string())
        .header(ContentType::JSON)
        .header(Header::new("User-Agent", BROWSER))
        .body(body);
    for (name, value) in headers {
        request = request.header(Header::new(*name, value.to_string()));
    }
    if let Some(cookie) = &visitor.cookie {
        request = request.cookie(Cookie::new(COOKIE, cookie.clone()));
    }
    let response = request.dispatch().await;
    let status = response.status();
    if let Some(cookie) = response.cookies().get(COOKIE) {
        visitor.cookie = Some(cookie.value().to_string());
    }
    let etag = response.headers().get_one("ETag").map(str::to_string);
    let body = response.into_json::<Value>().await.unwrap_or(Value::Null);
    (status, body, etag)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[tokio::test]
async fn the_browser_reads_the_arm_the_server_sees_and_only_flags_opted_in() {
    each_database(|store, url| async move {
        flags(&store).await;
        let client = start(&url).await;
        let mut visitor = Visitor::browser();

        let answer = visitor.get(&client, "/bandits/flags.json").await;
        assert_eq!(answer.status, Status::Ok);
        assert!(answer.set_cookie.is_some(), "a new visitor is given arms");
        let listed = json_of(&answer.body);
        let names: Vec<&String> = listed["flags"].as_object().unwrap().keys().collect();
        assert_eq!(names, ["killed", "launch", "plain", "pricing-layout"]);
        let variant = listed["flags"]["pricing-layout"]["variant"]
            .as_str()
            .unwrap()
            .to_string();
        let payload = &listed["flags"]["pricing-layout"]["payload"];
        assert_eq!(payload["columns"], if variant == "table" { 3 } else { 1 });
        assert_eq!(listed["flags"]["launch"]["active"], true);
        assert_eq!(listed["flags"]["killed"]["active"], false);

        // The guard, the script and OpenFeature give the same arm.
        assert_eq!(
            visitor.get(&client, "/arm/pricing-layout").await.body,
            variant
        );
        let script = visitor.get(&client, "/bandits/flags.js").await;
        assert!(script.body.contains("window.bandits"));
        assert!(script.body.contains(&format!("\"variant\":\"{variant}\"")));
        assert!(
            !script.body.contains("</script>"),
            "payloads cannot end the element"
        );
        assert!(!script.body.contains("internal"));
        let (status, single, _) = post_json(
            &client,
            &mut visitor,
            "/ofrep/v1/evaluate/flags/pricing-layout",
            "{}",
            &[],
        )
        .await;
        assert_eq!(status, Status::Ok, "{single}");
        assert_eq!(single["key"], "pricing-layout");
        assert_eq!(single["variant"], variant.as_str());
        assert_eq!(single["reason"], "SPLIT");
        assert_eq!(
            single["value"], *payload,
            "a flag with payloads gives its payload"
        );
        let (status, bulk, etag) = post_json(
            &client,
            &mut visitor,
            "/ofrep/v1/evaluate/flags",
            r#"{"context": {}}"#,
            &[],
        )
        .await;
        assert_eq!(status, Status::Ok);
        let by_key = |key: &str| {
            bulk["flags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|flag| flag["key"] == key)
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert_eq!(by_key("pricing-layout")["variant"], variant.as_str());
        assert_eq!(by_key("launch")["reason"], "STATIC");
        assert_eq!(by_key("launch")["value"], true, "no payloads: active");
        assert_eq!(by_key("killed")["reason"], "DISABLED");
        assert_eq!(by_key("killed")["value"], false);
        assert_eq!(by_key("internal"), Value::Null, "never listed");
        assert_eq!(bulk["flags"].as_array().unwrap().len(), 4);

        // Nothing changed for this visitor: the same ETag answers 304.
        let etag = etag.expect("the bulk answer has an ETag");
        let again = client
            .post("/ofrep/v1/evaluate/flags")
            .header(ContentType::JSON)
            .header(Header::new("User-Agent", BROWSER))
            .header(Header::new("If-None-Match", etag.clone()))
            .cookie(Cookie::new(COOKIE, visitor.cookie.clone().unwrap()))
            .body("{}")
            .dispatch()
            .await;
        assert_eq!(again.status(), Status::NotModified);
        assert_eq!(again.headers().get_one("ETag"), Some(etag.as_str()));
        drop(again);

        // Unknown, or not opted in: FLAG_NOT_FOUND, as the spec says.
        for key in ["nope", "internal"] {
            let (status, failed, _) = post_json(
                &client,
                &mut visitor,
                &format!("/ofrep/v1/evaluate/flags/{key}"),
                "{}",
                &[],
            )
            .await;
            assert_eq!(status, Status::NotFound, "{key}");
            assert_eq!(failed["errorCode"], "FLAG_NOT_FOUND");
            assert_eq!(failed["key"], key);
        }
        // A targeting key that is not this visitor: INVALID_CONTEXT.
        let (status, failed, _) = post_json(
            &client,
            &mut visitor,
            "/ofrep/v1/evaluate/flags",
            r#"{"context": {"targetingKey": "someone-else"}}"#,
            &[],
        )
        .await;
        assert_eq!(status, Status::BadRequest);
        assert_eq!(failed["errorCode"], "INVALID_CONTEXT");
        let (status, failed, _) = post_json(
            &client,
            &mut visitor,
            "/ofrep/v1/evaluate/flags/plain",
            r#"{"context": []}"#,
            &[],
        )
        .await;
        assert_eq!(status, Status::BadRequest);
        assert_eq!(failed["errorCode"], "INVALID_CONTEXT");
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_page_rendered_in_the_browser_counts_one_view_and_one_conversion() {
    each_database(|store, url| async move {
        flags(&store).await;
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let first = visitor
            .get(&client, "/bandits/flags.json?page=/pricing")
            .await;
        assert_eq!(first.status, Status::Ok);
        let variant = json_of(&first.body)["flags"]["pricing-layout"]["variant"]
            .as_str()
            .unwrap()
            .to_string();
        // A reload: the same arm, no second view.
        let reload = visitor
            .get(&client, "/bandits/flags.js?page=/pricing")
            .await;
        assert!(reload.body.contains(&format!("\"variant\":\"{variant}\"")));

        // "Buy", twice: one conversion.
        for _ in 0..2 {
            let (status, answer, _) = post_json(
                &client,
                &mut visitor,
                "/bandits/convert",
                r#"{"event": "buy"}"#,
                &[("Origin", "http://localhost"), ("Host", "localhost")],
            )
            .await;
            assert_eq!(status, Status::Ok, "{answer}");
        }
        // A visitor without the cookie counts nothing, and is given none.
        let mut stranger = Visitor::browser();
        let (status, answer, _) = post_json(
            &client,
            &mut stranger,
            "/bandits/convert",
            r#"{"event": "buy"}"#,
            &[],
        )
        .await;
        assert_eq!(
            (status, answer["converted"].as_u64()),
            (Status::Ok, Some(0))
        );
        assert!(stranger.cookie.is_none());

        // Refused, counting nothing: another site's page, not JSON, too big, no event.
        let mut other = visitor.clone();
        let (status, _, _) = post_json(
            &client,
            &mut other,
            "/bandits/convert",
            r#"{"event": "buy"}"#,
            &[("Sec-Fetch-Site", "cross-site")],
        )
        .await;
        assert_eq!(status, Status::Forbidden);
        let (status, _, _) = post_json(
            &client,
            &mut other,
            "/bandits/convert",
            r#"{"event": "buy"}"#,
            &[("Origin", "https://evil.example"), ("Host", "localhost")],
        )
        .await;
        assert_eq!(status, Status::Forbidden);
        let not_json = client
            .post("/bandits/convert")
            .header(ContentType::Form)
            .cookie(Cookie::new(COOKIE, visitor.cookie.clone().unwrap()))
            .body("event=buy")
            .dispatch()
            .await;
        assert_eq!(not_json.status(), Status::UnsupportedMediaType);
        let body = not_json.into_json::<Value>().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("JSON"));
        let big = format!(r#"{{"event": "buy", "pad": "{}"}}"#, "x".repeat(2000));
        let (status, _, _) = post_json(&client, &mut other, "/bandits/convert", &big, &[]).await;
        assert_eq!(status, Status::PayloadTooLarge);
        let (status, refused, _) = post_json(
            &client,
            &mut other,
            "/bandits/convert",
            r#"{"event": "Buy Now"}"#,
            &[],
        )
        .await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert_eq!(refused["errors"][0]["field"], "event");

        // A bad page is refused with the field named.
        let bad = visitor
            .get(&client, "/bandits/flags.json?page=pricing")
            .await;
        assert_eq!(bad.status, Status::UnprocessableEntity);
        assert_eq!(json_of(&bad.body)["errors"][0]["field"], "page");

        client.terminate().await;
        let counted = totals(&store, "pricing-layout").await;
        assert_eq!(counted[&variant], (1, 1), "{counted:?}");
        let all: u64 = counted.values().map(|(views, _)| views).sum();
        assert_eq!(all, 1, "one visitor, one view: {counted:?}");
        // The internal flag shares the goal event but was never shown: nothing.
        assert_eq!(
            totals(&store, "internal")
                .await
                .values()
                .map(|(v, c)| v + c)
                .sum::<u64>(),
            0
        );
        let logged = store
            .events(&bandits::store::EventQuery {
                flag: Some("pricing-layout".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            logged.iter().any(|entry| entry.event.path == "/pricing"),
            "the view is logged on the page it stands for"
        );
    })
    .await;
}

#[tokio::test]
async fn browser_answers_are_the_visitors_own() {
    each_database(|store, url| async move {
        flags(&store).await;
        let client = start(&url).await;
        for path in ["/bandits/flags.json", "/bandits/flags.js"] {
            let response = client
                .get(path)
                .header(Header::new("User-Agent", BROWSER))
                .dispatch()
                .await;
            assert_eq!(response.status(), Status::Ok);
            let headers = response.headers();
            assert_eq!(
                headers.get_one("Cache-Control"),
                Some("private, no-store"),
                "{path}"
            );
            assert_eq!(headers.get_one("Vary"), Some("Cookie"), "{path}");
            if path.ends_with(".js") {
                assert_eq!(
                    response.content_type(),
                    Some(ContentType::JavaScript),
                    "{path}"
                );
            }
        }
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn the_api_opts_a_flag_in_and_out_of_the_browser() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let api = |method: rocket::http::Method, path: &str, body: &str| {
            client
                .req(method, path.to_string())
                .header(ContentType::JSON)
                .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
                .body(body)
        };
        let created = api(
            rocket::http::Method::Post,
            "/bandits/api/flags",
            r#"{"name": "banner", "client_side": true}"#,
        )
        .dispatch()
        .await;
        assert_eq!(created.status(), Status::Created);
        drop(created);
        let mut visitor = Visitor::browser();
        let listed = json_of(&visitor.get(&client, "/bandits/flags.json").await.body);
        assert!(listed["flags"].get("banner").is_some(), "{listed}");
        let replaced = api(
            rocket::http::Method::Put,
            "/bandits/api/flags/banner",
            r#"{"name": "banner"}"#,
        )
        .dispatch()
        .await;
        assert_eq!(replaced.status(), Status::Ok);
        drop(replaced);
        let listed = json_of(&visitor.get(&client, "/bandits/flags.json").await.body);
        assert!(
            listed["flags"].get("banner").is_none(),
            "off by default: {listed}"
        );
        client.terminate().await;
    })
    .await;
}
