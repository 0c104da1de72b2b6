//! The JSON API's referral partners, as an operator uses them with the admin token, on
//! SQLite and (with BANDITS_TEST_POSTGRES_URL) PostgreSQL: partners with their counts,
//! subscriptions, the delivery log with "retry now", and the configured triggers.

use bandits::api;
use bandits::config::Config;
use bandits::database::BanditsDatabase;
use bandits::engine::backoff::Next;
use bandits::store::{Callback, Outcome, Store};
use bandits::Bandits;
use bandits_integration_tests::browser::{Visitor, SECRET_KEY};
use bandits_integration_tests::{each_database, eventually};
use rocket::figment::value::{Dict, Value as ConfigValue};
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::response::Redirect;
use rocket::serde::json::{json, Value};
use rocket::{get, post, routes};
use rocket_db_pools::Database;

const TOKEN: &str = "test-admin-token-0123456789";

fn figment(url: &str) -> Figment {
    let trigger = |fields: &[(&str, ConfigValue)]| {
        let mut dict = Dict::new();
        for (key, value) in fields {
            dict.insert(key.to_string(), value.clone());
        }
        ConfigValue::from(dict)
    };
    rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge((
            "bandits.triggers",
            ConfigValue::from(vec![
                trigger(&[
                    ("name", "User registered".into()),
                    ("method", "POST".into()),
                    ("path", "/signup".into()),
                ]),
                trigger(&[("name", "Order placed".into())]),
                trigger(&[("name", "Newsletter".into()), ("enabled", false.into())]),
            ]),
        ))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"))
}

/// The API alone (no fairing: nothing flushes, nothing sends callbacks).
async fn api_client(url: &str) -> Client {
    let figment = figment(url);
    let config = Config::from_figment(&figment).expect("a valid configuration");
    let rocket = rocket::custom(figment)
        .attach(BanditsDatabase::init())
        .manage(config)
        .mount(api::BASE, api::routes())
        .register(api::BASE, api::catchers());
    Client::tracked(rocket).await.expect("the API ignites")
}

#[get("/landing")]
fn landing() -> &'static str {
    "hello"
}

#[post("/signup")]
fn signup() -> Redirect {
    Redirect::to("/landing")
}

/// A whole site: the fairing mounts the API, flushes often, sends callbacks.
async fn site(url: &str) -> Client {
    let rocket = rocket::custom(figment(url).merge(("bandits.flush_interval_ms", 20)))
        .attach(Bandits::fairing())
        .mount("/", routes![landing, signup]);
    Client::untracked(rocket).await.expect("the site ignites")
}

async fn send(client: &Client, method: &str, path: &str, body: Option<Value>) -> (Status, Value) {
    let uri = format!("{}{path}", api::BASE);
    let mut request = match method {
        "GET" => client.get(uri),
        "POST" => client.post(uri),
        "PUT" => client.put(uri),
        "PATCH" => client.patch(uri),
        "DELETE" => client.delete(uri),
        other => panic!("{other}"),
    }
    .header(Header::new("Authorization", format!("Bearer {TOKEN}")));
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

/// The fields a refusal names.
fn fields(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| error["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn new_partner(client: &Client, name: &str) -> String {
    let (status, created) = send(client, "POST", "/partners", Some(json!({ "name": name }))).await;
    assert_eq!(status, Status::Created, "{created}");
    created["uid"].as_str().expect("a uid").to_string()
}

/// A callback URL to a closed port: every try fails at once.
fn callback_url(uid: &str) -> String {
    format!("http://127.0.0.1:9/track/?visitor_id={{visitor_id}}&t={{trigger}}&p={uid}")
}

fn listed(list: &Value, uid: &str) -> Value {
    list["partners"]
        .as_array()
        .and_then(|all| all.iter().find(|partner| partner["uid"] == uid))
        .cloned()
        .unwrap_or_else(|| panic!("{uid} is not listed: {list}"))
}

#[tokio::test]
async fn without_the_token_every_partner_route_is_refused() {
    each_database(|_store: Store, url| async move {
        let client = api_client(&url).await;
        let uid = new_partner(&client, "Acme").await;
        let routes = [
            ("GET", "/partners".to_string()),
            ("POST", "/partners".to_string()),
            ("GET", format!("/partners/{uid}")),
            ("PUT", format!("/partners/{uid}")),
            ("PATCH", format!("/partners/{uid}")),
            ("DELETE", format!("/partners/{uid}")),
            ("POST", format!("/partners/{uid}/subscriptions")),
            ("PUT", format!("/partners/{uid}/subscriptions/1")),
            ("DELETE", format!("/partners/{uid}/subscriptions/1")),
            ("POST", format!("/partners/{uid}/deliveries/e1/retry")),
            ("GET", "/triggers".to_string()),
            ("PATCH", "/triggers/Order%20placed".to_string()),
        ];
        for (method, path) in &routes {
            for auth in [None, Some("wrong-token-0123456789")] {
                let uri = format!("{}{path}", api::BASE);
                let mut request = match *method {
                    "GET" => client.get(uri),
                    "POST" => client.post(uri),
                    "PUT" => client.put(uri),
                    "PATCH" => client.patch(uri),
                    _ => client.delete(uri),
                }
                .header(ContentType::JSON)
                .body(json!({"name": "Mallory", "active": false}).to_string());
                if let Some(token) = auth {
                    request =
                        request.header(Header::new("Authorization", format!("Bearer {token}")));
                }
                let response = request.dispatch().await;
                assert_eq!(
                    response.status(),
                    Status::Unauthorized,
                    "{method} {path} {auth:?}"
                );
            }
        }
        let (_, list) = send(&client, "GET", "/partners", None).await;
        assert_eq!(list["partners"].as_array().map(Vec::len), Some(1), "{list}");
        assert_eq!(list["partners"][0]["name"], "Acme", "nothing was changed");
        assert_eq!(list["partners"][0]["active"], true, "nothing was changed");
    })
    .await;
}

#[tokio::test]
async fn partners_and_subscriptions_are_created_edited_and_refused_by_field() {
    each_database(|store: Store, url| async move {
        let client = api_client(&url).await;

        let (status, created) = send(
            &client,
            "POST",
            "/partners",
            Some(json!({ "name": "Acme ads", "note": "10% of orders" })),
        )
        .await;
        assert_eq!(status, Status::Created, "{created}");
        let uid = created["uid"].as_str().expect("a uid").to_string();
        assert_eq!(uid.len(), 8);
        assert_eq!(created["name"], "Acme ads");
        assert_eq!(created["active"], true);
        assert_eq!(
            store.partner(&uid).await.unwrap().partner.note(),
            "10% of orders"
        );

        for (body, field) in [
            (json!({ "note": "no name" }), "name"),
            (json!({ "name": "" }), "name"),
            (json!({ "name": "x", "uid": "Ab3dE6gH" }), "uid"),
            (json!({ "name": "x", "active": "yes" }), "active"),
            (json!({ "name": "x", "note": "n".repeat(20_000) }), "note"),
        ] {
            let (status, refused) = send(&client, "POST", "/partners", Some(body.clone())).await;
            assert_eq!(status, Status::UnprocessableEntity, "{body}: {refused}");
            assert_eq!(fields(&refused), [field], "{body}: {refused}");
        }
        assert_eq!(store.partners().await.unwrap().len(), 1, "nothing was created");

        // PATCH changes the fields given; PUT replaces them all.
        let (status, patched) = send(
            &client,
            "PATCH",
            &format!("/partners/{uid}"),
            Some(json!({ "active": false })),
        )
        .await;
        assert_eq!(status, Status::Ok, "{patched}");
        assert_eq!(patched["name"], "Acme ads");
        assert_eq!(patched["active"], false);
        assert_eq!(patched["note"], "10% of orders");
        assert!(!store.partner(&uid).await.unwrap().partner.active());
        let (status, put) = send(
            &client,
            "PUT",
            &format!("/partners/{uid}"),
            Some(json!({ "name": "Acme" })),
        )
        .await;
        assert_eq!(status, Status::Ok, "{put}");
        assert_eq!(put["name"], "Acme");
        assert_eq!(put["active"], true);
        assert_eq!(put["note"], "");
        let (status, refused) = send(
            &client,
            "PATCH",
            &format!("/partners/{uid}"),
            Some(json!({ "name": " " })),
        )
        .await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert_eq!(fields(&refused), ["name"]);
        assert_eq!(store.partner(&uid).await.unwrap().partner.name(), "Acme");

        // Partners are not deleted: DELETE is refused and changes nothing.
        let (status, refused) = send(&client, "DELETE", &format!("/partners/{uid}"), None).await;
        assert_eq!(status, Status::MethodNotAllowed, "{refused}");
        assert!(store.partner(&uid).await.unwrap().partner.active());
        for method in ["GET", "PATCH", "DELETE"] {
            let body = (method == "PATCH").then(|| json!({"active": false}));
            let (status, _) = send(&client, method, "/partners/Zzzzzzz9", body).await;
            assert_eq!(status, Status::NotFound, "{method}");
        }

        // Subscriptions: the trigger must be declared, the URL callable.
        let path = format!("/partners/{uid}/subscriptions");
        let (status, subscribed) = send(
            &client,
            "POST",
            &path,
            Some(json!({ "trigger": "Order placed", "callback_url": callback_url(&uid) })),
        )
        .await;
        assert_eq!(status, Status::Created, "{subscribed}");
        assert_eq!(subscribed["trigger"], "Order placed");
        let id = subscribed["id"].as_i64().expect("an id");
        for (body, field) in [
            (
                json!({ "trigger": "Order paid", "callback_url": callback_url(&uid) }),
                "trigger",
            ),
            (
                json!({ "trigger": "Order placed", "callback_url": "ftp://x.example/{visitor_id}" }),
                "callback_url",
            ),
            (
                json!({ "trigger": "Order placed", "callback_url": "https://x.example/" }),
                "callback_url",
            ),
            (json!({ "trigger": "Order placed" }), "callback_url"),
            (
                json!({ "trigger": "Order placed", "callback_url": callback_url(&uid), "partner": uid }),
                "partner",
            ),
        ] {
            let (status, refused) = send(&client, "POST", &path, Some(body.clone())).await;
            assert_eq!(status, Status::UnprocessableEntity, "{body}: {refused}");
            assert_eq!(fields(&refused), [field], "{body}: {refused}");
        }
        let (status, _) = send(
            &client,
            "POST",
            &path,
            Some(json!({ "trigger": "Order placed", "callback_url": callback_url(&uid) })),
        )
        .await;
        assert_eq!(status, Status::Conflict, "the same subscription twice");
        let (status, _) = send(
            &client,
            "POST",
            "/partners/Zzzzzzz9/subscriptions",
            Some(json!({ "trigger": "Order placed", "callback_url": callback_url("Zzzzzzz9") })),
        )
        .await;
        assert_eq!(status, Status::NotFound);
        assert_eq!(store.subscriptions().await.unwrap().len(), 1);

        let (status, changed) = send(
            &client,
            "PUT",
            &format!("{path}/{id}"),
            Some(json!({ "trigger": "User registered", "callback_url": callback_url(&uid) })),
        )
        .await;
        assert_eq!(status, Status::Ok, "{changed}");
        assert_eq!(changed["trigger"], "User registered");
        let (status, refused) = send(
            &client,
            "PUT",
            &format!("{path}/{id}"),
            Some(json!({ "trigger": "Nope", "callback_url": callback_url(&uid) })),
        )
        .await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert_eq!(fields(&refused), ["trigger"]);
        let other = new_partner(&client, "Other").await;
        let (status, _) = send(
            &client,
            "DELETE",
            &format!("/partners/{other}/subscriptions/{id}"),
            None,
        )
        .await;
        assert_eq!(status, Status::NotFound, "another partner's subscription");

        let (_, page) = send(&client, "GET", &format!("/partners/{uid}"), None).await;
        assert_eq!(
            page["subscriptions"][0]["trigger"], "User registered",
            "{page}"
        );
        assert_eq!(page["subscriptions"].as_array().map(Vec::len), Some(1));

        let (status, _) = send(&client, "DELETE", &format!("{path}/{id}"), None).await;
        assert_eq!(status, Status::NoContent);
        assert!(store.subscriptions().await.unwrap().is_empty());
        let (status, _) = send(&client, "DELETE", &format!("{path}/{id}"), None).await;
        assert_eq!(status, Status::NotFound);

        let (status, triggers) = send(&client, "GET", "/triggers", None).await;
        assert_eq!(status, Status::Ok);
        assert_eq!(
            triggers["triggers"],
            json!([
                {"name": "User registered", "enabled": true, "enabled_in_configuration": true,
                 "admin_switch": null,
                 "requests": {"method": "POST", "path": "/signup", "status": ["2xx", "3xx"]}},
                {"name": "Order placed", "enabled": true, "enabled_in_configuration": true,
                 "admin_switch": null, "requests": null},
                {"name": "Newsletter", "enabled": false, "enabled_in_configuration": false,
                 "admin_switch": null, "requests": null},
            ])
        );
    })
    .await;
}

#[tokio::test]
async fn counts_and_the_delivery_log_with_retry_now() {
    each_database(|store: Store, url| async move {
        let client = api_client(&url).await;
        let acme = new_partner(&client, "Acme").await;
        let other = new_partner(&client, "Other").await;
        let callback = |event_id: &str, partner: &str, trigger: &str| Callback {
            event_id: event_id.to_string(),
            partner: partner.to_string(),
            trigger: trigger.to_string(),
            visitor: "v1".to_string(),
            url: "http://127.0.0.1:9/".to_string(),
        };
        let now = 1_763_700_000_000;
        store
            .enqueue_callbacks(
                &[
                    callback("e-pending", &acme, "Order placed"),
                    callback("e-delivered", &acme, "Order placed"),
                    callback("e-given-up", &acme, "User registered"),
                    callback("e-other", &other, "Order placed"),
                ],
                now,
            )
            .await
            .unwrap();
        let claimed = store
            .claim_callbacks("me", now, now + 60_000, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 4);
        for (event_id, next, status) in [
            ("e-delivered", Next::Delivered, Some(200)),
            ("e-given-up", Next::GiveUp, Some(500)),
            ("e-pending", Next::RetryAt(now + 3_600_000), None),
        ] {
            let outcome = Outcome {
                status,
                error: (next != Next::Delivered).then(|| "refused".to_string()),
                next,
            };
            assert!(store
                .record_callback(event_id, "me", &outcome, now)
                .await
                .unwrap());
        }

        let (_, list) = send(&client, "GET", "/partners", None).await;
        let counts = &listed(&list, &acme)["counts"];
        assert_eq!(
            counts["deliveries"],
            json!({"pending": 1, "delivered": 1, "given_up": 1}),
            "{list}"
        );
        assert_eq!(counts["referred"], 0);
        assert_eq!(counts["completions"], json!({}));
        assert_eq!(
            listed(&list, &other)["counts"]["deliveries"],
            json!({"pending": 1, "delivered": 0, "given_up": 0}),
            "{list}"
        );

        let (_, page) = send(&client, "GET", &format!("/partners/{acme}"), None).await;
        let deliveries = page["deliveries"].as_array().expect("a log").clone();
        assert_eq!(deliveries.len(), 3, "{page}");
        let given_up = deliveries
            .iter()
            .find(|d| d["event_id"] == "e-given-up")
            .expect("listed");
        assert_eq!(given_up["state"], "given_up");
        assert_eq!(given_up["attempts"], 1);
        assert_eq!(given_up["last_status"], 500);
        assert_eq!(given_up["last_error"], "refused");
        let pending = deliveries
            .iter()
            .find(|d| d["event_id"] == "e-pending")
            .expect("listed");
        assert_eq!(pending["state"], "pending");
        assert_eq!(pending["next_try_at"], now + 3_600_000);
        let (_, short) = send(
            &client,
            "GET",
            &format!("/partners/{acme}?deliveries=1"),
            None,
        )
        .await;
        assert_eq!(short["deliveries"].as_array().map(Vec::len), Some(1));

        let retry = |event_id: &str, partner: &str| {
            format!("/partners/{partner}/deliveries/{event_id}/retry")
        };
        let (status, retried) = send(&client, "POST", &retry("e-given-up", &acme), None).await;
        assert_eq!(status, Status::Ok, "{retried}");
        assert_eq!(retried["state"], "pending");
        let (status, retried) = send(&client, "POST", &retry("e-pending", &acme), None).await;
        assert_eq!(status, Status::Ok, "{retried}");
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64;
        let due = retried["next_try_at"]
            .as_i64()
            .expect("pending: a next try");
        assert!(
            due != now + 3_600_000 && due <= clock,
            "due at once: {retried}"
        );
        let (status, _) = send(&client, "POST", &retry("e-delivered", &acme), None).await;
        assert_eq!(status, Status::Conflict);
        let (status, _) = send(&client, "POST", &retry("e-other", &acme), None).await;
        assert_eq!(status, Status::NotFound, "another partner's callback");
        let (status, _) = send(&client, "POST", &retry("e-none", &acme), None).await;
        assert_eq!(status, Status::NotFound);
        let (_, list) = send(&client, "GET", "/partners", None).await;
        assert_eq!(
            listed(&list, &acme)["counts"]["deliveries"],
            json!({"pending": 2, "delivered": 1, "given_up": 0})
        );
    })
    .await;
}

#[tokio::test]
async fn a_subscription_made_through_the_api_writes_a_callback() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let uid = new_partner(&client, "Acme").await;
        let (status, _) = send(
            &client,
            "POST",
            &format!("/partners/{uid}/subscriptions"),
            Some(json!({ "trigger": "User registered", "callback_url": callback_url(&uid) })),
        )
        .await;
        assert_eq!(status, Status::Created);

        // Seen at once on this instance: the link captures, the signup completes.
        let mut visitor = Visitor::browser();
        let landed = visitor
            .get(&client, &format!("/landing?affiliate_id={uid}"))
            .await;
        assert!(
            landed.set_cookie.is_some(),
            "the new partner's link is known"
        );
        visitor.send(&client, "POST", "/signup").await;

        let written = eventually(|| async {
            !store
                .callback_deliveries(Some(&uid), 10)
                .await
                .unwrap()
                .is_empty()
        })
        .await;
        assert!(written, "the completion wrote a callback");
        let (_, page) = send(&client, "GET", &format!("/partners/{uid}"), None).await;
        assert_eq!(
            page["deliveries"][0]["trigger"], "User registered",
            "{page}"
        );
        assert_eq!(
            page["referrals"].as_array().map(Vec::len),
            Some(1),
            "{page}"
        );
        let (_, list) = send(&client, "GET", "/partners", None).await;
        let counts = &listed(&list, &uid)["counts"];
        assert_eq!(counts["referred"], 1, "{list}");
        assert_eq!(counts["completions"], json!({"User registered": 1}));
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn an_admin_switch_overrides_the_configuration_until_cleared() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let uid = new_partner(&client, "Acme").await;
        let (status, _) = send(
            &client,
            "POST",
            &format!("/partners/{uid}/subscriptions"),
            Some(json!({ "trigger": "User registered", "callback_url": callback_url(&uid) })),
        )
        .await;
        assert_eq!(status, Status::Created);
        let signup = "/triggers/User%20registered";

        let (status, off) = send(&client, "PATCH", signup, Some(json!({ "enabled": false }))).await;
        assert_eq!(status, Status::Ok, "{off}");
        assert_eq!(
            off,
            json!({"name": "User registered", "enabled": false, "enabled_in_configuration": true,
                   "admin_switch": false,
                   "requests": {"method": "POST", "path": "/signup", "status": ["2xx", "3xx"]}})
        );
        let (_, listed) = send(&client, "GET", "/triggers", None).await;
        assert_eq!(listed["triggers"][0]["enabled"], false, "{listed}");
        assert_eq!(listed["triggers"][0]["admin_switch"], false);

        // Seen at once on this instance: a referred visitor's signup completes nothing.
        let mut early = Visitor::browser();
        early
            .get(&client, &format!("/landing?affiliate_id={uid}"))
            .await;
        early.send(&client, "POST", "/signup").await;
        let written =
            eventually(|| async { store.referrals_of(&uid, 10).await.unwrap().len() == 1 }).await;
        assert!(written, "the referral is written");
        let early_id = store.referrals_of(&uid, 1).await.unwrap()[0]
            .visitor
            .clone();

        let (status, on) = send(
            &client,
            "PATCH",
            "/triggers/Newsletter",
            Some(json!({ "enabled": true })),
        )
        .await;
        assert_eq!(status, Status::Ok);
        assert_eq!(
            on["enabled"], true,
            "switched on, though the configuration disables it"
        );
        assert_eq!(on["enabled_in_configuration"], false);
        let (status, cleared) =
            send(&client, "PATCH", signup, Some(json!({ "enabled": null }))).await;
        assert_eq!(status, Status::Ok);
        assert_eq!(cleared["enabled"], true, "the configuration decides again");
        assert_eq!(cleared["admin_switch"], Value::Null);

        let mut late = Visitor::browser();
        late.get(&client, &format!("/landing?affiliate_id={uid}"))
            .await;
        late.send(&client, "POST", "/signup").await;
        let completed =
            eventually(|| async { !store.completions(None).await.unwrap().is_empty() }).await;
        assert!(completed, "the signup after clearing completes");
        // The early signup was fired first: had it been taken, it would be written by now.
        let completions = store.completions(None).await.unwrap();
        assert_eq!(completions.len(), 1, "{completions:?}");
        assert_ne!(
            completions[0].visitor, early_id,
            "the signup while switched off completed nothing"
        );

        for (body, field) in [
            (json!({}), "enabled"),
            (json!({ "enabled": "no" }), "enabled"),
            (json!({ "enabled": true, "trigger": "x" }), "trigger"),
        ] {
            let (status, refused) = send(&client, "PATCH", signup, Some(body.clone())).await;
            assert_eq!(status, Status::UnprocessableEntity, "{body}: {refused}");
            assert_eq!(fields(&refused), [field], "{body}: {refused}");
        }
        let (status, _) = send(
            &client,
            "PATCH",
            "/triggers/Order%20paid",
            Some(json!({ "enabled": false })),
        )
        .await;
        assert_eq!(status, Status::NotFound);
        let switches = store.trigger_switches().await.unwrap();
        assert_eq!(switches.len(), 1, "only the newsletter's: {switches:?}");
        assert_eq!(switches[0].name, "Newsletter");
        client.terminate().await;
    })
    .await;
}
