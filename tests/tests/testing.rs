//! `bandits::testing` as a site's own tests use it (waffle's `override_flag`,
//! `override_switch`, `override_sample`): every reader sees the overridden arm, a
//! request's override wins for that request alone, and nothing is counted or written for
//! an overridden flag; on SQLite and (with BANDITS_TEST_POSTGRES_URL) PostgreSQL. Also
//! the in-memory SQLite database the README recommends for such tests.

use bandits::database::BanditsDatabase;
use bandits::engine::targeting::Targeting;
use bandits::engine::{Flag, FlagDefinition, Policy};
use bandits::store::EventQuery;
use bandits::testing::{OverrideError, OverrideRequest, Overrides};
use bandits::{flag_variant, Bandits, Flags, FlagsHandle};
use bandits_integration_tests::browser::{remembered, totals, BROWSER, COOKIE, SECRET_KEY};
use bandits_integration_tests::{each_database, eventually};
use bandits_tera::FlagTemplate;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rocket::http::Header;
use rocket::local::asynchronous::{Client, LocalRequest};
use rocket::{get, routes, State};
use rocket_dyn_templates::context;

/// `headline`'s arm, on its source page (and `other`'s).
#[get("/")]
fn home(flags: Flags<'_>) -> String {
    flags.variant("headline").unwrap_or_default()
}

/// `headline`'s arm, on a page that is no flag's source.
#[get("/peek")]
fn peek(flags: Flags<'_>) -> String {
    flags.variant("headline").unwrap_or_default()
}

/// The goal page of `headline` and `other`.
#[get("/contact")]
fn contact() -> &'static str {
    "contact"
}

#[get("/all")]
fn all(flags: Flags<'_>) -> String {
    flags.to_string()
}

#[flag_variant("checkout-flow", arm = "one-page")]
#[get("/checkout")]
fn checkout_one_page() -> &'static str {
    "one-page"
}

#[get("/checkout")]
fn checkout_classic() -> &'static str {
    "classic"
}

/// The template of the templates test, which reads flag `tpl`.
#[get("/tpl")]
fn template() -> FlagTemplate {
    FlagTemplate::render("page", context! { guard: "-" })
}

/// The switch as a route sees it, then as code outside a request does.
#[get("/maintenance")]
fn maintenance(flags: Flags<'_>, handle: &State<FlagsHandle>) -> String {
    format!(
        "{}|{}",
        flags.is_active("maintenance-mode"),
        handle.is_active("maintenance-mode")
    )
}

fn flags() -> Vec<Flag> {
    let valid = |definition: FlagDefinition| definition.validate().expect("a valid test flag");
    let everyone = |on| Targeting {
        everyone: Some(on),
        ..Targeting::default()
    };
    vec![
        // Every visitor gets the control unless a test says otherwise.
        valid(
            FlagDefinition::new("headline")
                .with_policy(Policy::Split {
                    weights: vec![1.0, 0.0],
                })
                .with_paths("/", "/contact"),
        ),
        // Not overridden: shown and converting on the same pages, so a test sees that
        // counting still works beside an override.
        valid(
            FlagDefinition::new("other")
                .with_policy(Policy::Split {
                    weights: vec![0.0, 1.0],
                })
                .with_paths("/", "/contact"),
        ),
        valid(
            FlagDefinition::new("checkout-flow")
                .with_arms(["classic", "one-page"])
                .with_policy(Policy::Split {
                    weights: vec![1.0, 0.0],
                }),
        ),
        valid(FlagDefinition::new("tpl").with_policy(Policy::Split {
            weights: vec![1.0, 0.0],
        })),
        valid(FlagDefinition {
            targeting: everyone(false),
            ..FlagDefinition::new("maintenance-mode")
        }),
        valid(FlagDefinition {
            targeting: everyone(true),
            ..FlagDefinition::new("launched")
        }),
        valid(FlagDefinition::percentage("resend-receipts", 50.0)),
    ]
}

async fn start(url: &str, flush_interval_ms: u64) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.flush_interval_ms", flush_interval_ms))
        .merge(("secret_key", SECRET_KEY))
        .merge((
            "template_dir",
            concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
        ))
        .merge(("log_level", "off"));
    let fairing = flags()
        .into_iter()
        .fold(Bandits::fairing(), |fairing, flag| fairing.with_flag(flag));
    let rocket = rocket::custom(figment)
        .attach(fairing)
        .attach(bandits_tera::fairing())
        .mount(
            "/",
            routes![
                home,
                peek,
                contact,
                all,
                checkout_one_page,
                checkout_classic,
                template,
                maintenance
            ],
        );
    Client::untracked(rocket).await.expect("the site ignites")
}

/// A response as a browser sees it: the body, and the visitor cookie it set.
struct Page {
    body: String,
    cookie: Option<String>,
}

/// A request as a browser sends it (with a User-Agent: bots are not counted), with the
/// visitor cookie `cookie` if it has one.
fn browser<'c>(request: LocalRequest<'c>, cookie: Option<&str>) -> LocalRequest<'c> {
    let request = request.header(Header::new("User-Agent", BROWSER));
    match cookie {
        Some(value) => request.cookie((COOKIE, value.to_string())),
        None => request,
    }
}

async fn send(request: LocalRequest<'_>) -> Page {
    let response = request.dispatch().await;
    let cookie = response
        .cookies()
        .get(COOKIE)
        .map(|cookie| cookie.value().to_string());
    Page {
        body: response.into_string().await.unwrap_or_default(),
        cookie,
    }
}

async fn body(client: &Client, path: &'static str) -> String {
    send(browser(client.get(path), None)).await.body
}

#[tokio::test]
async fn a_client_override_shows_its_arm_to_every_reader() {
    each_database(|_store, url| async move {
        let client = start(&url, 60_000).await;
        let overrides = Overrides::of(client.rocket()).expect("the plugin ignited");
        let handle = client.rocket().state::<FlagsHandle>().expect("managed");
        assert_eq!(
            body(&client, "/").await,
            "off",
            "no override: the policy's arm"
        );
        for arm in ["on", "off"] {
            overrides.flag("headline", arm).expect("a known arm");
            assert_eq!(
                body(&client, "/").await,
                arm,
                "the guard, on the source page"
            );
            assert_eq!(body(&client, "/peek").await, arm, "the guard, elsewhere");
            assert_eq!(body(&client, "/all").await, format!("headline:{arm}"));
            assert_eq!(handle.is_active("headline"), arm == "on");
        }
        for arm in ["one-page", "classic"] {
            overrides.flag("checkout-flow", arm).expect("a known arm");
            assert_eq!(body(&client, "/checkout").await, arm, "#[flag_variant]");
        }
        for (on, shown) in [
            (true, ["template:active|", "|tag:active|", "|variant:on|"]),
            (
                false,
                ["template:inactive|", "|tag:inactive|", "|variant:off|"],
            ),
        ] {
            overrides.switch("tpl", on).expect("a known flag");
            let page = body(&client, "/tpl").await;
            for field in shown {
                assert!(page.contains(field), "{field}: {page}");
            }
        }
        overrides.flag("headline", "on").expect("a known arm");
        overrides.clear("headline");
        assert_eq!(
            body(&client, "/").await,
            "off",
            "cleared: the policy's arm again"
        );
        overrides.clear_all();
        assert_eq!(body(&client, "/checkout").await, "classic");
        // A checkpoint puts back what was there when it was taken.
        overrides.flag("headline", "on").expect("a known arm");
        {
            let _back = overrides.checkpoint();
            overrides.flag("headline", "off").expect("a known arm");
            overrides
                .flag("checkout-flow", "one-page")
                .expect("a known arm");
            assert_eq!(body(&client, "/").await, "off");
        }
        assert_eq!(body(&client, "/").await, "on");
        assert_eq!(body(&client, "/checkout").await, "classic");
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_request_override_wins_over_the_client_for_that_request_only() {
    each_database(|_store, url| async move {
        let client = start(&url, 60_000).await;
        let request = |path| browser(client.get(path), None);
        let one = send(request("/").with_arm("headline", "on").expect("known")).await;
        assert_eq!(one.body, "on");
        assert_eq!(
            body(&client, "/").await,
            "off",
            "the next request is as usual"
        );
        let overrides = Overrides::of(client.rocket()).expect("the plugin ignited");
        overrides.flag("headline", "on").expect("a known arm");
        let one = send(request("/").with_arm("headline", "off").expect("known")).await;
        assert_eq!(one.body, "off", "the request's override wins");
        assert_eq!(body(&client, "/").await, "on", "the client's again");
        let split = request("/checkout")
            .with_switch("checkout-flow", true)
            .expect("known")
            .with_arm("headline", "off")
            .expect("known");
        assert_eq!(
            send(split).await.body,
            "one-page",
            "two overrides, one request"
        );
        assert_eq!(body(&client, "/checkout").await, "classic");
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_switch_turns_a_flag_on_or_off_for_routes_and_code_outside_a_request() {
    each_database(|_store, url| async move {
        let client = start(&url, 60_000).await;
        let overrides = Overrides::of(client.rocket()).expect("the plugin ignited");
        let handle = client.rocket().state::<FlagsHandle>().expect("managed");
        assert_eq!(body(&client, "/maintenance").await, "false|false");
        overrides.switch("maintenance-mode", true).expect("known");
        assert_eq!(body(&client, "/maintenance").await, "true|true");
        overrides.switch("maintenance-mode", false).expect("known");
        assert_eq!(body(&client, "/maintenance").await, "false|false");
        assert!(handle.is_active("launched"));
        overrides.switch("launched", false).expect("known");
        assert!(
            !handle.is_active("launched"),
            "a launched switch turned off"
        );
        overrides.clear_all();
        assert!(handle.is_active("launched"));
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_fixed_sample_answers_as_fixed_on_every_call() {
    each_database(|_store, url| async move {
        let client = start(&url, 60_000).await;
        let overrides = Overrides::of(client.rocket()).expect("the plugin ignited");
        let handle = client.rocket().state::<FlagsHandle>().expect("managed");
        // A seeded generator: without the override both answers come, on every run.
        let mut rng = StdRng::seed_from_u64(50);
        let draws = |rng: &mut StdRng| {
            (0..200)
                .map(|_| handle.sample_with("resend-receipts", rng))
                .collect::<Vec<bool>>()
        };
        let free = draws(&mut rng);
        assert!(
            free.contains(&true) && free.contains(&false),
            "a 50% sample"
        );
        for on in [true, false] {
            overrides.sample("resend-receipts", on).expect("known");
            assert!(
                draws(&mut rng).iter().all(|&answer| answer == on),
                "fixed {on}"
            );
            assert_eq!(handle.sample("resend-receipts"), on);
        }
        assert!(
            !handle.is_active("resend-receipts"),
            "a sample is no switch"
        );
        overrides.clear("resend-receipts");
        let free = draws(&mut rng);
        assert!(free.contains(&true) && free.contains(&false), "cleared");
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_flags_and_arms_are_errors_that_name_them() {
    each_database(|_store, url| async move {
        let not_ignited = rocket::build().attach(Bandits::fairing());
        assert!(matches!(
            Overrides::of(&not_ignited),
            Err(OverrideError::NotRunning)
        ));
        let client = start(&url, 60_000).await;
        let overrides = Overrides::of(client.rocket()).expect("the plugin ignited");
        let unknown_flag = |result: Result<&Overrides, OverrideError>| match result {
            Err(error @ OverrideError::UnknownFlag { .. }) => error.to_string(),
            _ => panic!("not refused as an unknown flag"),
        };
        for message in [
            unknown_flag(overrides.flag("headlin", "on")),
            unknown_flag(overrides.switch("headlin", true)),
            unknown_flag(overrides.sample("headlin", true)),
        ] {
            assert!(message.contains("\"headlin\""), "{message}");
        }
        let Err(wrong_arm) = overrides.flag("checkout-flow", "one-pager") else {
            panic!("an unknown arm was accepted");
        };
        assert_eq!(
            wrong_arm,
            OverrideError::UnknownArm {
                flag: "checkout-flow".into(),
                arm: "one-pager".into(),
                arms: vec!["classic".into(), "one-page".into()],
            }
        );
        assert_eq!(
            wrong_arm.to_string(),
            "flag \"checkout-flow\" has no arm \"one-pager\" (its arms: classic, one-page)"
        );
        assert!(client.get("/").with_arm("headline", "bold").is_err());
        assert!(client.get("/").with_switch("nope", true).is_err());
        // A refused override changes nothing.
        assert_eq!(body(&client, "/checkout").await, "classic");
        assert_eq!(body(&client, "/").await, "off");
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn an_overridden_flag_counts_nothing_and_leaves_no_trace() {
    each_database(|store, url| async move {
        let client = start(&url, 60_000).await;
        let overrides = Overrides::of(client.rocket()).expect("the plugin ignited");
        // A new visitor reading only an overridden flag leaves without a visitor cookie;
        // without the override the same read gives them one.
        let pinned = send(
            browser(client.get("/peek"), None)
                .with_arm("headline", "on")
                .expect("known"),
        )
        .await;
        assert_eq!(
            (pinned.body.as_str(), pinned.cookie.is_none()),
            ("on", true)
        );
        let usual = send(browser(client.get("/peek"), None)).await;
        assert!(usual.cookie.is_some(), "the test can see a cookie");
        // Three visitors see both flags' page and reach both goals: `headline` under its
        // client's override, then a request's, `other` as usual.
        overrides.flag("headline", "on").expect("a known arm");
        let mut cookies = Vec::new();
        for visitor in 0..3 {
            let request = browser(client.get("/"), None);
            let request = if visitor == 2 {
                request.with_arm("headline", "off").expect("known")
            } else {
                request
            };
            let seen = send(request).await;
            let cookie = seen.cookie.expect("`other` gives the visitor an arm");
            let goal = browser(client.get("/contact"), Some(&cookie));
            send(goal.with_switch("headline", visitor == 2).expect("known")).await;
            cookies.push(cookie);
        }
        for state in remembered(&cookies).await {
            let state = state.expect("a valid visitor cookie");
            assert!(state.get("other").is_some());
            assert!(
                state.get("headline").is_none(),
                "no arm remembered for `headline`"
            );
        }
        client.terminate().await; // the last flush
        let counted = totals(&store, "headline").await;
        assert!(
            counted.values().all(|&count| count == (0, 0)),
            "{counted:?}"
        );
        assert_eq!(
            totals(&store, "other").await["on"],
            (3, 3),
            "the rest counts"
        );
        let logged = |flag: &str| EventQuery {
            flag: Some(flag.into()),
            ..EventQuery::default()
        };
        let events = store.events(&logged("headline")).await.expect("the log");
        assert!(events.is_empty(), "{} activity-log entries", events.len());
        let events = store.events(&logged("other")).await.expect("the log");
        assert_eq!(events.len(), 6, "3 views, 3 conversions");
    })
    .await;
}

/// The README's database for tests: `sqlite::memory:` on one connection, migrated at
/// ignition, written by the flush loop, and a database of each client's own.
#[tokio::test]
async fn an_in_memory_sqlite_database_migrates_counts_and_is_the_clients_own() {
    let url = "sqlite::memory:";
    let start = || async {
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", url))
            .merge(("databases.bandits.max_connections", 1))
            .merge(("bandits.flush_interval_ms", 25))
            .merge(("secret_key", SECRET_KEY))
            .merge(("log_level", "off"));
        let fairing = flags()
            .into_iter()
            .fold(Bandits::fairing(), |fairing, flag| fairing.with_flag(flag));
        let rocket = rocket::custom(figment)
            .attach(fairing)
            .mount("/", routes![home, contact]);
        Client::untracked(rocket).await.expect("the site ignites")
    };
    let views = |client: &Client| {
        let store = client
            .rocket()
            .state::<BanditsDatabase>()
            .expect("the database")
            .store()
            .clone();
        async move {
            let stored = store.flag("other").await.expect("the flag, in memory");
            stored.totals.iter().map(|totals| totals.views).sum::<u64>()
        }
    };
    let (first, second) = (start().await, start().await);
    let seen = send(browser(first.get("/"), None)).await;
    assert_eq!(seen.body, "off");
    assert!(
        eventually(|| async { views(&first).await == 1 }).await,
        "the flush never reached the in-memory database"
    );
    assert_eq!(
        views(&second).await,
        0,
        "the second client's database is its own"
    );
    first.terminate().await;
    second.terminate().await;
}
