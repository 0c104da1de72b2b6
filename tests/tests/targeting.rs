//! Targeting, testing overrides and force groups as a site uses them, on SQLite and
//! (with BANDITS_TEST_POSTGRES_URL) PostgreSQL. Every flag here splits 0:1, so a visitor who
//! enters the experiment sees `on` and is counted, and one who does not sees `off` and is
//! not: the body and the counters tell who entered.

use bandits::engine::targeting::{bucket, Rollout, Targeting, User};
use bandits::engine::visitor::VisitorState;
use bandits::engine::{Flag, FlagDefinition, Policy};
use bandits::Bandits;
use bandits::Flags;
use bandits_integration_tests::browser::{holding, sum, totals, Visitor, SECRET_KEY};
use bandits_integration_tests::{each_database, eventually, routes};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rocket::local::asynchronous::Client;
use rocket::{get, routes};

/// Reads a flag (none has a source path, so the first read exposes the visitor).
#[get("/peek/<name>")]
fn peek(flags: Flags<'_>, name: &str) -> String {
    flags.variant(name).unwrap_or_else(|| "none".into())
}

fn flag(name: &str, targeting: Targeting) -> Flag {
    FlagDefinition {
        targeting,
        ..FlagDefinition::new(name)
            .with_policy(Policy::Split {
                weights: vec![0.0, 1.0],
            })
            .with_goal_event("goal")
    }
    .validate()
    .expect("a valid test flag")
}

fn flags() -> Vec<Flag> {
    let hour = 3_600_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let rules = |f: fn(&mut Targeting)| {
        let mut targeting = Targeting::default();
        f(&mut targeting);
        targeting
    };
    vec![
        flag("open", Targeting::default()),
        flag("launch", rules(|t| t.everyone = Some(true))),
        flag(
            "kill",
            rules(|t| {
                t.everyone = Some(false);
                t.staff = true;
            }),
        ),
        flag("signed-in", rules(|t| t.authenticated = true)),
        flag("staff", rules(|t| t.staff = true)),
        flag("superusers", rules(|t| t.superusers = true)),
        flag("alice", rules(|t| t.users = vec!["alice".into()])),
        flag("beta", rules(|t| t.groups = vec!["beta".into()])),
        flag("french", rules(|t| t.languages = vec!["fr".into()])),
        flag("tenth", rules(|t| t.percent = Some(10.0))),
        flag(
            "staff-or-half",
            rules(|t| {
                t.staff = true;
                t.percent = Some(50.0);
            }),
        ),
        flag(
            "ramp-done",
            Targeting {
                percent: Some(100.0),
                rollout: Some(Rollout {
                    start: now - 2 * hour,
                    end: now - hour,
                }),
                ..Targeting::default()
            },
        ),
        flag(
            "ramp-later",
            Targeting {
                rollout: Some(Rollout {
                    start: now + hour,
                    end: now + 2 * hour,
                }),
                ..Targeting::default()
            },
        ),
        flag(
            "staff-tenth",
            rules(|t| {
                t.staff = true;
                t.percent = Some(10.0);
                t.require_all = true;
            }),
        ),
        flag("qa", rules(|t| t.testing = true)),
        flag(
            "qa-launched",
            rules(|t| {
                t.testing = true;
                t.everyone = Some(true);
            }),
        ),
    ]
}

async fn start(url: &str) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.flush_interval_ms", 60_000))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let fairing = flags()
        .into_iter()
        .fold(Bandits::fairing(), |fairing, flag| fairing.with_flag(flag))
        .user(|request| {
            let headers = request.headers();
            let id = headers.get_one("X-User")?;
            let mut user = User::new(id);
            user.staff = headers.contains("X-Staff");
            user.superuser = headers.contains("X-Superuser");
            user.groups = headers
                .get_one("X-Groups")
                .map(|groups| groups.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            Some(user)
        })
        .privileged(|request| request.headers().get_one("X-QA") == Some("yes"));
    let rocket = rocket::custom(figment)
        .attach(fairing)
        .mount("/", routes![peek, routes::all]);
    Client::untracked(rocket).await.expect("the site ignites")
}

fn with(headers: &[(&'static str, &str)]) -> Visitor {
    Visitor {
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        ..Visitor::browser()
    }
}

/// What each kind of visitor sees in each flag: `on` means they entered (and were counted).
#[tokio::test]
async fn each_rule_lets_in_exactly_the_visitors_it_names() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        type Headers<'a> = &'a [(&'static str, &'static str)];
        let anonymous: Headers = &[];
        let bob: Headers = &[("X-User", "bob")];
        let staff: Headers = &[("X-User", "sam"), ("X-Staff", "1")];
        let boss: Headers = &[("X-User", "boss"), ("X-Superuser", "1")];
        let alice: Headers = &[("X-User", "alice")];
        let tester: Headers = &[("X-User", "tess"), ("X-Groups", "ops,beta")];
        // Header names in any case: HTTP/2 and hyper give them in lower case.
        let french: Headers = &[("accept-language", "fr-CA, en;q=0.8")];
        let english_first: Headers = &[("Accept-Language", "en, fr;q=0.9")];
        let cases: &[(&str, Headers, &str)] = &[
            ("open", anonymous, "on"),
            ("launch", anonymous, "on"),
            ("launch", staff, "on"),
            ("kill", staff, "off"),
            ("signed-in", anonymous, "off"),
            ("signed-in", bob, "on"),
            ("staff", bob, "off"),
            ("staff", staff, "on"),
            ("superusers", staff, "off"),
            ("superusers", boss, "on"),
            ("alice", bob, "off"),
            ("alice", alice, "on"),
            ("beta", alice, "off"),
            ("beta", tester, "on"),
            ("french", english_first, "off"),
            ("french", french, "on"),
            ("staff-or-half", staff, "on"),
            ("ramp-done", anonymous, "on"),
            ("ramp-later", anonymous, "off"),
            ("qa", anonymous, "on"),
        ];
        let mut entered: std::collections::HashMap<&str, u64> = Default::default();
        for (flag, headers, expected) in cases {
            let mut visitor = with(headers);
            for _ in 0..3 {
                let seen = visitor.get(&client, &format!("/peek/{flag}")).await.body;
                assert_eq!(seen, *expected, "{flag} for {headers:?}");
            }
            if *expected == "on" && !matches!(*flag, "launch") {
                *entered.entry(flag).or_default() += 1;
            }
        }
        client.terminate().await;
        for (flag, _, _) in cases {
            let views = sum(&store, flag).await.0;
            let expected = entered.get(flag).copied().unwrap_or(0);
            assert_eq!(
                views, expected,
                "views of {flag}: switched or excluded visitors count"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn percent_is_stable_per_visitor_and_close_to_its_target() {
    each_database(|store, url| async move {
        // Visitors with ids from a fixed seed: the share that enters is the same on every
        // run, so the bounds below cannot fail by chance.
        let mut rng = StdRng::seed_from_u64(10);
        let states: Vec<VisitorState> = (0..10_000).map(|_| VisitorState::new(&mut rng)).collect();
        let mut visitors = holding(&states).await;
        let client = start(&url).await;
        let mut inside = 0u64;
        for (i, (visitor, state)) in visitors.iter_mut().zip(&states).enumerate() {
            let first = visitor.get(&client, "/peek/tenth").await.body;
            assert_eq!(
                first == "on",
                bucket("tenth", state.id()) < 10.0,
                "visitor {i} enters exactly when their bucket is in the first 10%"
            );
            if i % 10 == 0 {
                // A sample comes back: same answer.
                assert_eq!(visitor.get(&client, "/peek/tenth").await.body, first);
            }
            inside += u64::from(first == "on");
        }
        client.terminate().await;
        let share = 100.0 * inside as f64 / visitors.len() as f64;
        assert!(
            (9.0..=11.0).contains(&share),
            "{share:.2}% entered, target 10%"
        );
        assert_eq!(totals(&store, "tenth").await["on"].0, inside);
        assert_eq!(totals(&store, "tenth").await["off"].0, 0);
    })
    .await;
}

#[tokio::test]
async fn testing_overrides_stick_only_where_testing_is_on_and_never_count() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut tester = Visitor::browser();
        assert_eq!(
            tester.get(&client, "/peek/qa?bandits_qa=off").await.body,
            "off"
        );
        // Sticky: later requests without the parameter keep it.
        for _ in 0..3 {
            assert_eq!(tester.get(&client, "/peek/qa").await.body, "off");
        }
        // Waffle's 1/0 spelling, and the override beats everyone = on.
        assert_eq!(
            tester
                .get(&client, "/peek/qa-launched?bandits_qa-launched=0")
                .await
                .body,
            "off"
        );
        assert_eq!(
            tester.get(&client, "/all").await.body,
            "qa:off,qa-launched:off"
        );
        // An empty value clears it: back to the bandit (0:1, so on) and counted.
        assert_eq!(tester.get(&client, "/peek/qa?bandits_qa=").await.body, "on");
        // Not allowed where testing is off, and unknown arms are ignored.
        let mut other = Visitor::browser();
        assert_eq!(
            other.get(&client, "/peek/open?bandits_open=off").await.body,
            "on"
        );
        assert_eq!(
            other.get(&client, "/peek/qa?bandits_qa=purple").await.body,
            "on"
        );
        client.terminate().await;
        // The tester was counted once, after clearing; the other visitor once in each.
        assert_eq!(totals(&store, "qa").await["on"], (2, 0));
        assert_eq!(totals(&store, "qa").await["off"], (0, 0));
        assert_eq!(sum(&store, "qa-launched").await, (0, 0));
        assert_eq!(sum(&store, "open").await, (1, 0));
    })
    .await;
}

#[tokio::test]
async fn force_groups_need_a_privileged_request_and_never_count() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        // Not privileged: the parameter does nothing.
        let mut visitor = Visitor::browser();
        let seen = visitor
            .get(&client, "/peek/open?bandits_force=open:off")
            .await
            .body;
        assert_eq!(seen, "on");

        let mut qa = with(&[("X-QA", "yes")]);
        let forced = qa
            .get(
                &client,
                "/peek/open?bandits_force=open:off,staff:on,nope:x,launch:off",
            )
            .await
            .body;
        assert_eq!(forced, "off");
        assert_eq!(qa.get(&client, "/peek/staff").await.body, "on");
        assert_eq!(qa.get(&client, "/peek/launch").await.body, "off");
        assert_eq!(
            qa.get(&client, "/all").await.body,
            "launch:off,open:off,staff:on"
        );

        // Without the privilege the remembered force no longer applies.
        let mut demoted = Visitor {
            headers: Vec::new(),
            ..qa.clone()
        };
        assert_eq!(demoted.get(&client, "/peek/staff").await.body, "off");

        // An empty force clears it: the QA visitor is an ordinary visitor again.
        assert_eq!(
            qa.get(&client, "/peek/open?bandits_force=").await.body,
            "on"
        );
        client.terminate().await;
        // Counted: the unprivileged visitor and the QA visitor after clearing, in "open".
        assert_eq!(totals(&store, "open").await["on"], (2, 0));
        assert_eq!(totals(&store, "open").await["off"], (0, 0));
        assert_eq!(sum(&store, "staff").await, (0, 0));
    })
    .await;
}

#[tokio::test]
async fn bots_see_switched_flags_as_everyone_does_and_the_control_elsewhere() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut bot = Visitor {
            user_agent: Some("Googlebot/2.1"),
            ..Visitor::browser()
        };
        assert_eq!(bot.get(&client, "/peek/launch").await.body, "on");
        assert_eq!(bot.get(&client, "/peek/open").await.body, "off");
        client.terminate().await;
        assert_eq!(sum(&store, "open").await, (0, 0));
    })
    .await;
}

/// The rollout of the issue: a feature for 10% of signed-in staff, nobody else.
#[tokio::test]
async fn a_feature_reaches_ten_percent_of_signed_in_staff_and_nobody_else() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut staff_in = 0u64;
        let staff_visitors = 3_000;
        for i in 0..staff_visitors {
            let mut visitor = with(&[("X-User", &format!("staff-{i}")), ("X-Staff", "1")]);
            staff_in += u64::from(visitor.get(&client, "/peek/staff-tenth").await.body == "on");
        }
        for i in 0..300 {
            let signed_in: Vec<(&'static str, String)> = vec![("X-User", format!("user-{i}"))];
            let mut visitor = Visitor {
                headers: signed_in,
                ..Visitor::browser()
            };
            assert_eq!(visitor.get(&client, "/peek/staff-tenth").await.body, "off");
            assert_eq!(
                Visitor::browser()
                    .get(&client, "/peek/staff-tenth")
                    .await
                    .body,
                "off"
            );
        }
        client.terminate().await;
        let share = 100.0 * staff_in as f64 / f64::from(staff_visitors);
        assert!(
            (8.0..=12.0).contains(&share),
            "{share:.2}% of staff entered, target 10%"
        );
        assert_eq!(sum(&store, "staff-tenth").await, (staff_in, 0));
    })
    .await;
}

/// waffle's percentage flag (`FlagDefinition::percentage`): a share of visitors see `on`,
/// each keeps it, and raising the share only adds visitors.
#[tokio::test]
async fn a_percentage_flag_shows_on_to_its_share_and_raising_it_only_adds_visitors() {
    each_database(|store, url| async move {
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", url.as_str()))
            .merge(("bandits.flush_interval_ms", 25))
            .merge(("secret_key", SECRET_KEY))
            .merge(("log_level", "off"));
        let flag = FlagDefinition::percentage("share", 10.0)
            .validate()
            .expect("a valid flag");
        let rocket = rocket::custom(figment)
            .attach(Bandits::fairing().with_flag(flag))
            .mount("/", routes![peek]);
        let client = Client::untracked(rocket).await.expect("the site ignites");
        // Visitors with ids from a fixed seed: the shares below are the same on every run.
        let mut rng = StdRng::seed_from_u64(11);
        let states: Vec<VisitorState> = (0..10_000).map(|_| VisitorState::new(&mut rng)).collect();
        let mut visitors = holding(&states).await;
        let mut on_at_ten = Vec::new();
        for (i, visitor) in visitors.iter_mut().enumerate() {
            let first = visitor.get(&client, "/peek/share").await.body;
            if i % 10 == 0 {
                assert_eq!(
                    visitor.get(&client, "/peek/share").await.body,
                    first,
                    "sticky"
                );
            }
            on_at_ten.push(first == "on");
        }
        let inside = on_at_ten.iter().filter(|on| **on).count();
        // Tolerance: within 1 point of 10% (for these 10,000 seeded visitors).
        assert!((900..=1_100).contains(&inside), "{inside} of 10,000 at 10%");

        // Raised to 20% (as the admin or the API would): everyone in stays in.
        let raised = FlagDefinition::percentage("share", 20.0)
            .validate()
            .expect("valid");
        store.update_flag(&raised, 1).await.expect("saved");
        let flags = client
            .rocket()
            .state::<bandits::FlagsHandle>()
            .cloned()
            .expect("the plugin ignited");
        let raised_seen = eventually(|| async {
            flags
                .definition("share")
                .is_some_and(|definition| definition.targeting.percent == Some(20.0))
        })
        .await;
        assert!(raised_seen, "the instance never saw the new percent");
        let mut at_twenty = 0;
        for (visitor, was_on) in visitors.iter_mut().zip(&on_at_ten) {
            let now_on = visitor.get(&client, "/peek/share").await.body == "on";
            if *was_on {
                assert!(now_on, "a visitor in at 10% is in at 20%");
            }
            at_twenty += usize::from(now_on);
        }
        assert!(
            (1_900..=2_100).contains(&at_twenty),
            "{at_twenty} of 10,000 at 20%"
        );
        client.terminate().await;
        // Each visitor who saw `on` is one view of it; the control is never counted.
        assert_eq!(totals(&store, "share").await["on"].0, at_twenty as u64);
        assert_eq!(totals(&store, "share").await["off"].0, 0);
    })
    .await;
}
