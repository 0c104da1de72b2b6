//! The tracking fairing and the `Flags` guard as a site uses them: real requests through
//! rocket::local clients, counts read back from the database after a graceful shutdown,
//! on SQLite and (with BANDITS_TEST_POSTGRES_URL) PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use bandits::engine::targeting::User;
use bandits::engine::{FlagDefinition, Policy};
use bandits::store::EventQuery;
use bandits::{Bandits, Flags};
use bandits_integration_tests::{each_database, eventually, routes};
use rocket::figment::value::Value;
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, post, routes, Build, Rocket};

use bandits_integration_tests::browser::{
    sum, totals, Visitor, BROWSER, COOKIE, SECRET_KEY, TOKEN,
};

/// Reads a flag whose source path is elsewhere: assigns without counting.
#[get("/peek/<name>")]
fn peek(flags: Flags<'_>, name: &str) -> String {
    format!(
        "{}|{}|{}",
        flags.variant(name).unwrap_or_else(|| "none".into()),
        flags.is_active(name),
        flags
            .payload(name)
            .map(|payload| payload.to_string())
            .unwrap_or_default()
    )
}

/// One member of a flag's payload.
#[get("/peek/<name>/<key>")]
fn peek_field(flags: Flags<'_>, name: &str, key: &str) -> String {
    flags
        .payload_field(name, key)
        .map_or_else(|| "none".into(), |field| field.to_string())
}

#[get("/landing")]
fn landing() -> &'static str {
    "landing"
}

#[get("/static/promo")]
fn promo() -> &'static str {
    "promo"
}

#[get("/assets/site.css")]
fn css() -> &'static str {
    "body{}"
}

#[post("/signup")]
fn signup(flags: Flags<'_>) -> String {
    flags.convert("signup").to_string()
}

#[post("/goal/<event>")]
fn goal(flags: Flags<'_>, event: &str) -> String {
    flags.convert(event).to_string()
}

/// A page answering 404 itself (not through a catcher), setting a cookie of its own.
#[get("/soft-404")]
fn soft_404(jar: &rocket::http::CookieJar<'_>) -> rocket::response::status::NotFound<&'static str> {
    jar.add(Cookie::new("site", "kept"));
    rocket::response::status::NotFound("no such product")
}

#[get("/account")]
fn account(flags: Flags<'_>) -> String {
    flags.variant("account-flag").unwrap_or_default()
}

#[get("/broken")]
fn broken() -> Status {
    Status::InternalServerError
}

fn flags() -> Vec<bandits::engine::Flag> {
    let flag = |definition: FlagDefinition| definition.validate().expect("a valid test flag");
    vec![
        // Split 50/50 so both arms show up among a few visitors.
        flag(
            FlagDefinition::new("headline")
                .with_policy(Policy::even_split(2))
                .with_paths("/", "/contact/"),
        ),
        flag(
            FlagDefinition::new("landing-flag")
                .with_arms(["a", "b"])
                .with_policy(Policy::even_split(2))
                .with_paths("/landing", "/contact")
                .with_goal_event("signup"),
        ),
        flag(FlagDefinition::new("promo-flag").with_paths("/static/promo", "/contact")),
        flag(FlagDefinition::new("css-flag").with_paths("/assets/site.css", "/contact")),
        flag(FlagDefinition::new("gone-flag").with_paths("/gone", "/contact")),
        flag(FlagDefinition::new("broken-flag").with_paths("/broken", "/contact")),
        flag(FlagDefinition::new("soft-404-flag").with_paths("/soft-404", "/contact")),
        flag(FlagDefinition {
            exclude_signed_in: true,
            ..FlagDefinition::new("account-flag")
                .with_policy(Policy::Split {
                    weights: vec![0.0, 1.0],
                })
                .with_paths("/account", "/contact")
        }),
        // Pure exploitation: new visitors get the arm with the best observed rate.
        flag(
            FlagDefinition::new("greedy-flag")
                .with_policy(Policy::EpsilonGreedy { epsilon: 0.0 })
                .with_goal_event("greedy-goal"),
        ),
        // No source path: exposed where first read.
        flag({
            let mut definition = FlagDefinition::new("payload-flag").with_goal_event("signup");
            definition.arms = vec![
                bandits::engine::Arm::new("plain"),
                bandits::engine::Arm::new("fancy").with_payload(serde_json(r#"{"title":"Fancy"}"#)),
            ];
            definition.policy = Policy::Split {
                weights: vec![0.0, 100.0],
            };
            definition
        }),
    ]
}

fn serde_json(text: &str) -> rocket::serde::json::Value {
    rocket::serde::json::from_str(text).expect("valid JSON")
}

fn site(url: &str) -> Rocket<Build> {
    site_with(url, &[])
}

/// The test site with configuration values added (or overriding the defaults).
fn site_with(url: &str, extra: &[(&str, Value)]) -> Rocket<Build> {
    let mut figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("bandits.exclude_prefixes", ["/static"]))
        .merge(("bandits.exclude_regex", r"\.css$"))
        // Long enough that only the shutdown flush writes: counts are exact or lost.
        .merge(("bandits.flush_interval_ms", 60_000))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    for (key, value) in extra {
        figment = figment.merge((*key, value.clone()));
    }
    let fairing = flags()
        .into_iter()
        .fold(Bandits::fairing(), |fairing, flag| fairing.with_flag(flag))
        .user(|request| request.headers().get_one("X-Signed-In").map(User::new));
    rocket::custom(figment).attach(fairing).mount(
        "/",
        routes![
            routes::home,
            routes::contact,
            peek,
            peek_field,
            landing,
            promo,
            css,
            signup,
            goal,
            routes::all,
            broken,
            soft_404,
            account
        ],
    )
}

async fn start(url: &str) -> Client {
    Client::untracked(site(url))
        .await
        .expect("the site ignites")
}

#[tokio::test]
async fn a_visitor_keeps_one_arm_and_counts_once() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let first = visitor.get(&client, "/").await;
        assert_eq!(first.status, Status::Ok);
        assert!(first.body == "off" || first.body == "on", "{}", first.body);
        for _ in 0..49 {
            let again = visitor.get(&client, "/").await;
            assert_eq!(again.body, first.body, "the arm changed between page views");
        }
        client.terminate().await;
        let totals = totals(&store, "headline").await;
        assert_eq!(totals[&first.body], (1, 0), "{totals:?}");
        assert_eq!(sum(&store, "headline").await, (1, 0));
    })
    .await;
}

#[tokio::test]
async fn each_visitor_is_one_view_of_the_arm_they_saw() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut seen: HashMap<String, u64> = HashMap::new();
        for _ in 0..40 {
            let mut visitor = Visitor::browser();
            let arm = visitor.get(&client, "/").await.body;
            for _ in 0..3 {
                assert_eq!(visitor.get(&client, "/").await.body, arm);
            }
            *seen.entry(arm).or_default() += 1;
        }
        assert_eq!(
            seen.len(),
            2,
            "a 50/50 split over 40 visitors shows both arms"
        );
        client.terminate().await;
        let totals = totals(&store, "headline").await;
        for (arm, visitors) in &seen {
            assert_eq!(totals[arm].0, *visitors, "views of {arm}: {totals:?}");
        }
        let log = store
            .events(&EventQuery {
                flag: Some("headline".into()),
                limit: 1_000,
                ..EventQuery::default()
            })
            .await
            .expect("the activity log reads");
        assert_eq!(
            log.len(),
            40,
            "one exposure per visitor in the activity log"
        );
    })
    .await;
}

#[tokio::test]
async fn conversions_need_an_exposure_and_count_once() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        // The goal before the page: nothing to convert.
        let early = visitor.get(&client, "/contact/").await;
        assert_eq!(early.status, Status::Ok);
        assert!(early.set_cookie.is_none(), "nothing to remember yet");
        let arm = visitor.get(&client, "/").await.body;
        for path in ["/contact/", "/contact", "/contact/"] {
            assert_eq!(visitor.get(&client, path).await.status, Status::Ok);
        }
        // A second visitor converts on the trailing-slash-less page too.
        let mut other = Visitor::browser();
        let other_arm = other.get(&client, "/").await.body;
        other.get(&client, "/contact").await;
        client.terminate().await;
        let totals = totals(&store, "headline").await;
        let mut expected: HashMap<String, (u64, u64)> = HashMap::new();
        for arm in [&arm, &other_arm] {
            let entry = expected.entry(arm.clone()).or_default();
            entry.0 += 1;
            entry.1 += 1;
        }
        for (arm, counts) in expected {
            assert_eq!(totals[&arm], counts, "{totals:?}");
        }
    })
    .await;
}

/// A crawler's User-Agent: the plugin shows it the controls and counts nothing.
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

#[tokio::test]
async fn excluded_paths_bots_404s_and_error_pages_count_nothing() {
    each_database(|store, url| async move {
        let client = start(&url).await;

        // Excluded by prefix and by regex: served, but not counted.
        let mut visitor = Visitor::browser();
        assert_eq!(visitor.get(&client, "/static/promo").await.body, "promo");
        assert_eq!(
            visitor.get(&client, "/assets/site.css").await.body,
            "body{}"
        );

        // A 404 on a flag's source path: no count, no cookie change.
        let gone = visitor.get(&client, "/gone").await;
        assert_eq!(gone.status, Status::NotFound);
        assert!(
            gone.set_cookie.is_none(),
            "a 404 must not set the visitor cookie"
        );
        let client_ref = &client;
        let soft = client_ref
            .get("/soft-404")
            .header(Header::new("User-Agent", BROWSER))
            .dispatch()
            .await;
        assert_eq!(soft.status(), Status::NotFound);
        assert!(
            soft.cookies().get(COOKIE).is_none(),
            "a 404 page must not set the visitor cookie"
        );
        assert_eq!(
            soft.cookies().get("site").map(|c| c.value()),
            Some("kept"),
            "the site's own cookie stays"
        );
        drop(soft);

        // An error page: no count.
        let broken = visitor.get(&client, "/broken").await;
        assert_eq!(broken.status, Status::InternalServerError);
        assert!(broken.set_cookie.is_none());

        // HEAD requests are not page views.
        let head = visitor.send(&client, "HEAD", "/").await;
        assert_eq!(head.status, Status::Ok);

        // Bots, and clients without a User-Agent, see the control and get no cookie.
        for agent in [Some(GOOGLEBOT), Some("curl/8.5.0"), None] {
            let mut bot = Visitor {
                cookie: None,
                user_agent: agent,
                headers: Vec::new(),
            };
            for _ in 0..5 {
                let answer = bot.get(&client, "/").await;
                assert_eq!(answer.body, "off", "{agent:?} sees the control");
                assert!(answer.set_cookie.is_none(), "{agent:?} got a cookie");
                bot.get(&client, "/contact/").await;
            }
        }
        client.terminate().await;
        for flag in [
            "promo-flag",
            "css-flag",
            "gone-flag",
            "broken-flag",
            "soft-404-flag",
            "headline",
        ] {
            assert_eq!(sum(&store, flag).await, (0, 0), "{flag} counted something");
        }
    })
    .await;
}

#[tokio::test]
async fn a_user_agent_is_read_whatever_the_case_of_its_name() {
    // HTTP/2 and hyper give header names in lower case; a client may send any case.
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut browser = Visitor {
            cookie: None,
            user_agent: None,
            headers: vec![("user-agent", BROWSER.to_string())],
        };
        let mut bot = Visitor {
            cookie: None,
            user_agent: None,
            headers: vec![("USER-AGENT", GOOGLEBOT.to_string())],
        };
        let arm = browser.get(&client, "/").await;
        assert!(
            arm.set_cookie.is_some(),
            "a browser's User-Agent under a lower-case name is a browser's"
        );
        let seen = bot.get(&client, "/").await;
        assert_eq!(
            seen.body, "off",
            "a bot's User-Agent in capitals is a bot's"
        );
        assert!(seen.set_cookie.is_none(), "the bot got a cookie");
        client.terminate().await;
        assert_eq!(totals(&store, "headline").await[&arm.body], (1, 0));
        assert_eq!(sum(&store, "headline").await, (1, 0));
    })
    .await;
}

#[tokio::test]
async fn a_404_answer_does_not_spoil_a_later_exposure() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        assert_eq!(visitor.get(&client, "/gone").await.status, Status::NotFound);
        let arm = visitor.get(&client, "/").await.body;
        visitor.get(&client, "/contact/").await;
        client.terminate().await;
        assert_eq!(totals(&store, "headline").await[&arm], (1, 1));
        assert_eq!(sum(&store, "gone-flag").await, (0, 0));
    })
    .await;
}

/// `cookie` (ASCII) with the character at `at` replaced by another.
fn one_character_changed(cookie: &str, at: usize) -> String {
    let mut bytes = cookie.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

/// A browser sending the visitor cookie `value` is answered and given a new cookie, not
/// the `genuine` one's.
async fn served_as_a_new_visitor(client: &Client, value: String, genuine: &str) {
    let mut sender = Visitor {
        cookie: Some(value.clone()),
        user_agent: Some(BROWSER),
        headers: Vec::new(),
    };
    let answer = sender.get(client, "/").await;
    assert_eq!(answer.status, Status::Ok, "{value}");
    let fresh = answer.set_cookie.expect("a new visitor gets a new cookie");
    assert_ne!(fresh.value(), genuine);
}

#[tokio::test]
async fn a_tampered_or_foreign_cookie_makes_a_new_visitor() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        visitor.get(&client, "/").await;
        let genuine = visitor.cookie.clone().expect("the visitor got a cookie");

        let flipped = one_character_changed(&genuine, genuine.len() / 2);
        let truncated = genuine[..genuine.len() - 5].to_string();
        let plain = r#"{"v":"0123456789abcdef0123456789abcdef","a":{"headline":[1,"on",1]}}"#;

        for value in [flipped, truncated, plain.to_string(), "%%%".to_string()] {
            served_as_a_new_visitor(&client, value, &genuine).await;
        }
        client.terminate().await;
        // The genuine visitor and four new ones.
        assert_eq!(sum(&store, "headline").await, (5, 0));
    })
    .await;
}

/// Each worker remembers the visitors of cookies it decrypted, by the cookie's length and
/// authentication tag: a value that differs from a remembered cookie in either is
/// decrypted again, and refused.
#[tokio::test]
async fn a_cookie_altered_after_the_site_decoded_it_makes_a_new_visitor() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let arm = visitor.get(&client, "/").await.body;
        let genuine = visitor.cookie.clone().expect("the visitor got a cookie");
        // Sent back, so decrypted and remembered.
        let again = visitor.get(&client, "/").await;
        assert_eq!(again.body, arm);
        assert!(
            again.set_cookie.is_none(),
            "nothing changed for a returning visitor"
        );

        let tag = one_character_changed(&genuine, genuine.len() - 3);
        let shorter = genuine[1..].to_string();
        let longer = format!("A{genuine}");
        for value in [tag, shorter, longer] {
            served_as_a_new_visitor(&client, value, &genuine).await;
        }
        // The genuine cookie still gives its visitor, counted once.
        let last = visitor.get(&client, "/").await;
        assert_eq!(last.body, arm);
        assert!(last.set_cookie.is_none());
        client.terminate().await;
        assert_eq!(sum(&store, "headline").await, (4, 0));
    })
    .await;
}

#[tokio::test]
async fn the_visitor_cookie_is_private_http_only_and_lax() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let cookie = visitor
            .get(&client, "/")
            .await
            .set_cookie
            .expect("a cookie is set");
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(rocket::http::SameSite::Lax));
        assert_eq!(cookie.path(), Some("/"));
        assert_ne!(cookie.secure(), Some(true), "no TLS here, so not Secure");
        assert!(cookie.max_age().is_some_and(|age| age.whole_days() >= 365));
        // Expires agrees (Rocket's own default for private cookies is one week).
        let expires = cookie.expires_datetime().expect("an expiry date");
        let left = expires - rocket::time::OffsetDateTime::now_utc();
        assert!(left.whole_days() >= 364, "expires in {left}");
        // Encrypted: neither the visitor id's JSON nor the flag name shows.
        assert!(!cookie.value().contains("headline"), "{}", cookie.value());
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn the_visitor_cookie_lasts_365_days_or_as_configured() {
    each_database(|_store, url| async move {
        for (configured, days) in [(None, 365), (Some(30), 30)] {
            let extra: Vec<(&str, Value)> = configured
                .map(|days: u32| ("bandits.cookie_max_age_days", Value::from(days)))
                .into_iter()
                .collect();
            let client = Client::untracked(site_with(&url, &extra))
                .await
                .expect("the site ignites");
            let cookie = Visitor::browser()
                .get(&client, "/")
                .await
                .set_cookie
                .expect("a cookie is set");
            assert_eq!(
                cookie.max_age(),
                Some(rocket::time::Duration::days(days)),
                "{configured:?}"
            );
            let expires = cookie.expires_datetime().expect("an expiry date");
            let left = expires - rocket::time::OffsetDateTime::now_utc();
            assert!(
                (days - 1..=days).contains(&left.whole_days()),
                "{configured:?}: expires in {left}"
            );
            client.terminate().await;
        }
        // A lifetime out of range stops ignition, naming the key.
        let wrong = [("bandits.cookie_max_age_days", Value::from(0))];
        match Client::untracked(site_with(&url, &wrong)).await {
            Ok(_) => panic!("a cookie lifetime of 0 days must be refused"),
            Err(error) => assert!(
                matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
                "{error:?}"
            ),
        }
    })
    .await;
}

#[tokio::test]
async fn guard_reads_assign_lazily_and_stick_without_counting() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let first = visitor.get(&client, "/peek/landing-flag").await.body;
        let arm = first.split('|').next().unwrap_or_default().to_string();
        assert!(arm == "a" || arm == "b", "{first}");
        assert_eq!(first, format!("{arm}|{}|", arm == "b"));
        for _ in 0..10 {
            assert_eq!(visitor.get(&client, "/peek/landing-flag").await.body, first);
        }
        // Not on its source path: nothing counted yet, and the goal does not convert.
        visitor.get(&client, "/contact").await;
        // Its source path counts the same arm, once.
        visitor.get(&client, "/landing").await;
        visitor.get(&client, "/landing").await;
        assert_eq!(visitor.get(&client, "/peek/landing-flag").await.body, first);
        client.terminate().await;
        let totals = totals(&store, "landing-flag").await;
        assert_eq!(totals[&arm], (1, 0), "{totals:?}");
        assert_eq!(sum(&store, "landing-flag").await, (1, 0));
    })
    .await;
}

#[tokio::test]
async fn a_flag_without_source_path_counts_where_first_read_and_payloads_arrive() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        for _ in 0..3 {
            let body = visitor.get(&client, "/peek/payload-flag").await.body;
            assert_eq!(body, r#"fancy|true|{"title":"Fancy"}"#);
            let field = visitor.get(&client, "/peek/payload-flag/title").await.body;
            assert_eq!(field, r#""Fancy""#, "one member of the payload");
            let missing = visitor.get(&client, "/peek/payload-flag/nope").await.body;
            assert_eq!(missing, "none");
        }
        // A new visitor whose first read is of one member is counted there too, once.
        let mut member_first = Visitor::browser();
        for _ in 0..2 {
            let field = member_first
                .get(&client, "/peek/payload-flag/title")
                .await
                .body;
            assert_eq!(field, r#""Fancy""#);
        }
        client.terminate().await;
        assert_eq!(totals(&store, "payload-flag").await["fancy"], (2, 0));
    })
    .await;
}

#[tokio::test]
async fn goal_events_from_code_convert_exposed_visitors_once() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        // Not exposed to anything: converts nothing.
        let mut stranger = Visitor::browser();
        assert_eq!(stranger.send(&client, "POST", "/signup").await.body, "0");

        let mut visitor = Visitor::browser();
        let landing_arm = {
            visitor.get(&client, "/landing").await;
            let peek = visitor.get(&client, "/peek/landing-flag").await.body;
            peek.split('|').next().unwrap_or_default().to_string()
        };
        visitor.get(&client, "/peek/payload-flag").await;
        assert_eq!(visitor.send(&client, "POST", "/signup").await.body, "2");
        assert_eq!(visitor.send(&client, "POST", "/signup").await.body, "0");
        client.terminate().await;
        assert_eq!(totals(&store, "landing-flag").await[&landing_arm], (1, 1));
        assert_eq!(totals(&store, "payload-flag").await["fancy"], (1, 1));
    })
    .await;
}

#[tokio::test]
async fn unknown_flags_are_inactive_and_logs_list_every_assignment() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let answer = visitor.get(&client, "/peek/no-such-flag").await;
        assert_eq!(answer.status, Status::Ok);
        assert_eq!(answer.body, "none|false|");

        let headline = visitor.get(&client, "/").await.body;
        let landing = visitor.get(&client, "/peek/landing-flag").await.body;
        let landing = landing.split('|').next().unwrap_or_default();
        let all = visitor.get(&client, "/all").await.body;
        assert_eq!(all, format!("headline:{headline},landing-flag:{landing}"));
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_reset_gives_visitors_fresh_assignments() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        visitor.get(&client, "/").await;
        visitor.get(&client, "/contact/").await;
        let reset = client
            .post("/bandits/api/flags/headline/reset")
            .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
            .dispatch()
            .await;
        assert_eq!(reset.status(), Status::Ok);
        drop(reset);
        // Counted afresh in the new epoch: a view, and a conversion again.
        let arm = visitor.get(&client, "/").await.body;
        visitor.get(&client, "/contact/").await;
        client.terminate().await;
        assert_eq!(totals(&store, "headline").await[&arm], (1, 1));
        assert_eq!(sum(&store, "headline").await, (1, 1));
    })
    .await;
}

/// One visitor's whole journey: the page, and the goal for every third visitor.
async fn journey(clients: &[Arc<Client>], index: usize) -> (String, bool) {
    let mut visitor = Visitor::browser();
    let converts = index % 3 == 0;
    let client = |step: usize| &clients[(index + step) % clients.len()];
    let arm = visitor.get(client(0), "/").await.body;
    // Back to the page, then the goal: on whichever instance the balancer picks.
    assert_eq!(visitor.get(client(1), "/").await.body, arm);
    if converts {
        visitor.get(client(2), "/contact/").await;
        visitor.get(client(3), "/contact/").await;
    }
    (arm, converts)
}

/// `visitors` journeys over `instances`, from 32 concurrent tasks; returns the expected
/// (views, conversions) per arm.
async fn load(clients: Vec<Arc<Client>>, visitors: usize) -> HashMap<String, (u64, u64)> {
    let tasks = 32;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let clients = clients.clone();
        handles.push(tokio::spawn(async move {
            let mut expected: HashMap<String, (u64, u64)> = HashMap::new();
            for index in (task..visitors).step_by(tasks) {
                let (arm, converted) = journey(&clients, index).await;
                let entry = expected.entry(arm).or_default();
                entry.0 += 1;
                entry.1 += u64::from(converted);
            }
            expected
        }));
    }
    let mut expected: HashMap<String, (u64, u64)> = HashMap::new();
    for handle in handles {
        for (arm, (views, conversions)) in handle.await.expect("a load task") {
            let entry = expected.entry(arm).or_default();
            entry.0 += views;
            entry.1 += conversions;
        }
    }
    expected
}

async fn shut_down(clients: Vec<Arc<Client>>) {
    for client in clients {
        let client = Arc::try_unwrap(client)
            .unwrap_or_else(|_| panic!("every task is done with the client"));
        client.terminate().await;
    }
}

#[tokio::test]
async fn a_thousand_concurrent_visitors_are_counted_exactly() {
    each_database(|store, url| async move {
        let clients = vec![Arc::new(start(&url).await)];
        let expected = load(clients.clone(), 1_000).await;
        shut_down(clients).await;
        assert_eq!(totals(&store, "headline").await, expected);
        assert_eq!(sum(&store, "headline").await, (1_000, 334));
    })
    .await;
}

#[tokio::test]
async fn two_instances_on_one_database_lose_no_counts() {
    each_database(|store, url| async move {
        let clients = vec![Arc::new(start(&url).await), Arc::new(start(&url).await)];
        let expected = load(clients.clone(), 600).await;
        shut_down(clients).await;
        assert_eq!(totals(&store, "headline").await, expected);
        assert_eq!(sum(&store, "headline").await, (600, 200));
    })
    .await;
}

#[tokio::test]
async fn the_api_is_mounted_and_closed_without_the_token() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let closed = client.get("/bandits/api/flags").dispatch().await;
        assert_eq!(closed.status(), Status::Unauthorized);
        let open = client
            .get("/bandits/api/flags/headline")
            .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
            .dispatch()
            .await;
        assert_eq!(open.status(), Status::Ok);
        drop((closed, open));
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn flags_in_code_never_overwrite_the_admins_edits() {
    each_database(|store, url| async move {
        start(&url).await.terminate().await;
        let edited = FlagDefinition {
            note: "edited in the admin".into(),
            ..FlagDefinition::new("headline").with_paths("/", "/contact/")
        }
        .validate()
        .expect("valid");
        store.update_flag(&edited, 1).await.expect("updated");
        start(&url).await.terminate().await;
        let stored = store.flag("headline").await.expect("still there");
        assert_eq!(stored.flag.note(), "edited in the admin");
    })
    .await;
}

#[tokio::test]
async fn a_wrong_configuration_value_fails_ignition_naming_its_key() {
    for (key, value) in [
        (
            "bandits.flush_interval_ms",
            rocket::figment::value::Value::from(5),
        ),
        (
            "bandits.exclude_regex",
            rocket::figment::value::Value::from("("),
        ),
        (
            "bandits.cookie_nam",
            rocket::figment::value::Value::from("x"),
        ),
    ] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("b.sqlite").display()
        );
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", url))
            .merge(("log_level", "off"))
            .merge((key, value));
        let error = match rocket::custom(figment)
            .attach(Bandits::fairing())
            .ignite()
            .await
        {
            Ok(_) => panic!("{key}: ignition should fail"),
            Err(error) => error,
        };
        let names = match error.kind() {
            rocket::error::ErrorKind::FailedFairings(failures) => failures
                .iter()
                .map(|info| info.name.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            other => panic!("{key}: unexpected error {other:?}"),
        };
        let expected_key = key.strip_prefix("bandits.").unwrap_or(key);
        assert!(names.contains(expected_key), "{key}: {names}");
    }
}

#[tokio::test]
async fn a_site_without_the_fairing_still_serves_its_pages() {
    let rocket = rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
        .mount("/", routes![routes::home, peek]);
    let client = Client::untracked(rocket).await.expect("ignites");
    let mut visitor = Visitor::browser();
    let answer = visitor.get(&client, "/peek/headline").await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.body, "none|false|");
}

#[tokio::test]
async fn flags_can_leave_signed_in_visitors_out() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut member = Visitor::browser();
        for _ in 0..3 {
            let answer = client
                .get("/account")
                .header(Header::new("User-Agent", BROWSER))
                .header(Header::new("X-Signed-In", "alice"))
                .cookie(Cookie::new(
                    COOKIE,
                    member.cookie.clone().unwrap_or_default(),
                ))
                .dispatch()
                .await;
            assert_eq!(
                answer.into_string().await.as_deref(),
                Some("off"),
                "the control"
            );
        }
        // Signed in, the same visitor still counts in flags that do not leave them out.
        let headline = client
            .get("/")
            .header(Header::new("User-Agent", BROWSER))
            .header(Header::new("X-Signed-In", "alice"))
            .dispatch()
            .await;
        let headline_cookie = headline
            .cookies()
            .get(COOKIE)
            .map(|c| c.value().to_string());
        assert!(headline_cookie.is_some());
        drop(headline);
        // Signed out, a visitor enters the experiment (weights 0:1, so "on").
        assert_eq!(member.get(&client, "/account").await.body, "on");
        member.get(&client, "/contact").await;
        client.terminate().await;
        assert_eq!(totals(&store, "account-flag").await["on"], (1, 1));
        assert_eq!(sum(&store, "account-flag").await, (1, 1));
        assert_eq!(sum(&store, "headline").await.0, 1);
    })
    .await;
}

#[tokio::test]
async fn sites_behind_a_tls_proxy_can_mark_the_cookie_secure() {
    each_database(|_store, url| async move {
        let rocket = site_with(&url, &[("bandits.secure_cookie", Value::from(true))]);
        let client = Client::untracked(rocket).await.expect("ignites");
        let cookie = Visitor::browser()
            .get(&client, "/")
            .await
            .set_cookie
            .expect("a cookie is set");
        assert_eq!(cookie.secure(), Some(true));
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn instances_see_each_others_flags_and_counts_after_a_flush() {
    each_database(|store, url| async move {
        let fast = [("bandits.flush_interval_ms", Value::from(50))];
        let a = Client::untracked(site_with(&url, &fast))
            .await
            .expect("a ignites");
        let b = Client::untracked(site_with(&url, &fast))
            .await
            .expect("b ignites");

        // A flag created through one instance's API reaches the other.
        let created = a
            .post("/bandits/api/flags")
            .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
            .header(rocket::http::ContentType::JSON)
            .body(r#"{"name": "fresh-flag"}"#)
            .dispatch()
            .await;
        assert_eq!(created.status(), Status::Created);
        drop(created);
        let on_a = Visitor::browser().get(&a, "/peek/fresh-flag").await.body;
        assert_ne!(
            on_a, "none|false|",
            "the instance that created it knows it at once"
        );
        assert!(
            eventually(|| async {
                Visitor::browser().get(&b, "/peek/fresh-flag").await.body != "none|false|"
            })
            .await,
            "the other instance never loaded the new flag"
        );

        // A conversion on A makes B's greedy policy send new visitors to that arm.
        let mut converted_on = None;
        for _ in 0..100 {
            let mut visitor = Visitor::browser();
            let arm = visitor.get(&a, "/peek/greedy-flag").await.body;
            if arm.starts_with("on|") {
                assert_eq!(
                    visitor.send(&a, "POST", "/goal/greedy-goal").await.body,
                    "1"
                );
                converted_on = Some(visitor);
                break;
            }
        }
        assert!(converted_on.is_some(), "no visitor of A got arm on");
        let streak = std::sync::atomic::AtomicU32::new(0);
        let learned = eventually(|| {
            let (b, streak) = (&b, &streak);
            async move {
                let arm = Visitor::browser().get(b, "/peek/greedy-flag").await.body;
                if arm.starts_with("on|") {
                    streak.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 >= 20
                } else {
                    streak.store(0, std::sync::atomic::Ordering::Relaxed);
                    false
                }
            }
        })
        .await;
        assert!(learned, "B's policy never saw A's conversion");
        a.terminate().await;
        b.terminate().await;
        let greedy = totals(&store, "greedy-flag").await;
        assert_eq!(greedy["on"].1, 1, "{greedy:?}");
    })
    .await;
}

#[tokio::test]
async fn a_locked_winner_is_shown_to_everyone_and_stops_counting_the_others() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        // Find a visitor on each arm of the 50/50 headline.
        let mut on_arm: HashMap<String, Visitor> = HashMap::new();
        let mut views: HashMap<String, u64> = HashMap::new();
        while on_arm.len() < 2 {
            let mut visitor = Visitor::browser();
            let arm = visitor.get(&client, "/").await.body;
            *views.entry(arm.clone()).or_default() += 1;
            on_arm.entry(arm).or_insert(visitor);
        }
        let lock = client
            .put("/bandits/api/flags/headline")
            .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
            .header(rocket::http::ContentType::JSON)
            .body(
                r#"{"policy": {"kind": "split", "weights": [1, 1]}, "winner": "on",
                    "source_path": "/", "target_path": "/contact/"}"#,
            )
            .dispatch()
            .await;
        assert_eq!(lock.status(), Status::Ok);
        drop(lock);
        for (_, visitor) in on_arm.iter_mut() {
            assert_eq!(visitor.get(&client, "/").await.body, "on");
            visitor.get(&client, "/contact/").await;
            assert_eq!(visitor.get(&client, "/").await.body, "on");
        }
        let mut newcomer = Visitor::browser();
        assert_eq!(newcomer.get(&client, "/").await.body, "on");
        client.terminate().await;
        let totals = totals(&store, "headline").await;
        // Views: one per visitor on their own arm, plus the newcomer's on the winner.
        // Conversions: only the visitor who was on "on" all along.
        assert_eq!(totals["off"], (views["off"], 0), "{totals:?}");
        assert_eq!(totals["on"], (views["on"] + 1, 1), "{totals:?}");
    })
    .await;
}

#[tokio::test]
async fn deleting_a_flag_visitors_hold_is_harmless() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let landing = visitor.get(&client, "/peek/landing-flag").await.body;
        visitor.get(&client, "/").await;
        let deleted = client
            .delete("/bandits/api/flags/landing-flag")
            .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
            .dispatch()
            .await;
        assert_eq!(deleted.status(), Status::NoContent);
        drop(deleted);
        // The page that read it still works; the flag reads as unknown.
        let after = visitor.get(&client, "/peek/landing-flag").await;
        assert_eq!(after.status, Status::Ok);
        assert_eq!(after.body, "none|false|");
        assert!(!landing.is_empty());
        let all = visitor.get(&client, "/all").await.body;
        assert!(
            all.starts_with("headline:") && !all.contains("landing-flag"),
            "{all}"
        );
        assert_eq!(visitor.get(&client, "/landing").await.status, Status::Ok);
        assert_eq!(visitor.get(&client, "/contact").await.status, Status::Ok);
        client.terminate().await;
        assert!(
            store.flag("landing-flag").await.is_err(),
            "the flag stays deleted"
        );
        assert_eq!(sum(&store, "headline").await, (1, 1));
    })
    .await;
}

async fn status(client: &Client) -> rocket::serde::json::Value {
    let response = client
        .get("/bandits/api/status")
        .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    response.into_json().await.expect("the status is JSON")
}

#[tokio::test]
async fn the_status_shows_what_waits_and_writes_follow_flushes_not_requests() {
    each_database(|store, url| async move {
        // No flush until shutdown: everything counted waits in memory.
        let client = start(&url).await;
        for _ in 0..30 {
            Visitor::browser().get(&client, "/").await;
        }
        let waiting = status(&client).await;
        assert_eq!(waiting["online"], true, "{waiting}");
        assert_eq!(waiting["flags"], flags().len(), "{waiting}");
        assert_eq!(waiting["pending"]["events"], 30, "{waiting}");
        assert_eq!(waiting["write_transactions"], 0, "{waiting}");
        client.terminate().await;
        assert_eq!(sum(&store, "headline").await, (30, 0));

        // Flushing every 20 ms under a steady stream of visitors: the writes follow the
        // flushes (at most one per interval), however many requests were counted.
        let client =
            Client::untracked(site_with(&url, &[("bandits.flush_interval_ms", 20.into())]))
                .await
                .expect("the site ignites");
        let started = std::time::Instant::now();
        let visitors = 400;
        for _ in 0..visitors {
            let mut visitor = Visitor::browser();
            visitor.get(&client, "/").await;
            visitor.get(&client, "/contact").await;
        }
        assert!(
            eventually(|| async { status(&client).await["pending"]["events"] == 0 }).await,
            "the flush loop writes what was counted"
        );
        let after = status(&client).await;
        let writes = after["write_transactions"]
            .as_u64()
            .expect("a count of writes");
        let intervals = started.elapsed().as_millis() as u64 / 20;
        assert!(writes >= 1, "nothing was written: {after}");
        assert!(
            writes <= intervals + 2,
            "{writes} write transactions in {intervals} flush intervals"
        );
        assert!(
            writes < visitors,
            "{writes} write transactions for {visitors} visitors: one per request?"
        );
        client.terminate().await;
        assert_eq!(sum(&store, "headline").await, (30 + visitors, visitors));
    })
    .await;
}

/// A browser that sends an old cookie again (two tabs racing, a replayed request) is not
/// counted again: the instance remembers what it counted lately.
#[tokio::test]
async fn an_old_cookie_sent_again_counts_nothing_more() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        visitor.get(&client, "/").await;
        let seen = visitor.clone();
        assert!(visitor.get(&client, "/contact").await.set_cookie.is_some());
        for _ in 0..5 {
            // The cookie from before the conversion, as if the update never arrived.
            let mut replay = seen.clone();
            let answer = replay.get(&client, "/contact").await;
            assert_eq!(answer.status, Status::Ok);
            // That cookie still says "not converted", so the answer updates it every time:
            // what this thread remembers of a cookie is what the cookie says, never what a
            // request made of it.
            assert!(
                answer.set_cookie.is_some(),
                "the old cookie is updated again"
            );
        }
        client.terminate().await;
        assert_eq!(sum(&store, "headline").await, (1, 1));
    })
    .await;
}

/// A cookie another site (another secret key) gave, even one this thread has just read
/// for that site, is a new visitor here: what is remembered of decoded cookies is kept
/// apart per instance.
#[tokio::test]
async fn a_cookie_of_another_site_is_a_new_visitor_here() {
    each_database(|store, url| async move {
        let other_key = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
        let other = Client::untracked(site_with(&url, &[("secret_key", other_key.into())]))
            .await
            .expect("the other site ignites");
        let here = start(&url).await;
        let mut visitor = Visitor::browser();
        visitor.get(&other, "/").await;
        for _ in 0..3 {
            // Read again there, so the other site has it decoded.
            assert!(visitor.get(&other, "/").await.set_cookie.is_none());
        }
        let foreign = visitor
            .cookie
            .clone()
            .expect("a cookie from the other site");
        let answer = visitor.get(&here, "/").await;
        let fresh = answer
            .set_cookie
            .expect("a new visitor gets a new cookie here");
        assert_ne!(fresh.value(), foreign);
        // And a returning visitor keeps being recognised from what was remembered.
        let arm = visitor.get(&here, "/").await.body;
        for _ in 0..5 {
            let again = visitor.get(&here, "/").await;
            assert_eq!(again.body, arm);
            assert!(again.set_cookie.is_none(), "nothing changed");
        }
        other.terminate().await;
        here.terminate().await;
        assert_eq!(
            sum(&store, "headline").await,
            (2, 0),
            "one view on each site"
        );
    })
    .await;
}
