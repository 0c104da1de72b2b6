//! What a visitor who is not an admin can do to a deployed site, and the admin's loose
//! ends: long paths, the sign-in limit, ending sessions, cross-site API requests, replayed
//! cookies, cached answers. On SQLite and (with BANDITS_TEST_POSTGRES_URL) PostgreSQL.

use std::path::PathBuf;

use bandits::api::AdminCheck;
use bandits::engine::FlagDefinition;
use bandits::store::EventQuery;
use bandits::track::{MAX_LOGGED_PATH, TRUNCATED_MARK};
use bandits::{Bandits, Flags};
use bandits_integration_tests::admin::{self, post_form, sign_in_form, signed_in, Session, ADMIN};
use bandits_integration_tests::browser::{sum, Visitor, SECRET_KEY, TOKEN};
use bandits_integration_tests::{each_database, routes};
use rocket::figment::value::Value;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::{json, Value as Json};
use rocket::{get, post, routes, Build, Rocket};

const PASSWORD: &str = "correct horse battery";

/// Reads a flag without a page of its own: the visitor is counted here, on any path.
#[get("/read/<_rest..>")]
fn read(flags: Flags<'_>, _rest: PathBuf) -> String {
    flags.variant("anywhere").unwrap_or_default()
}

#[post("/goal")]
fn goal(flags: Flags<'_>) -> String {
    flags.convert("anywhere-goal").to_string()
}

fn flags() -> Vec<bandits::engine::Flag> {
    vec![
        FlagDefinition::new("headline")
            .with_paths("/", "/contact")
            .validate()
            .expect("a valid flag"),
        FlagDefinition::new("anywhere")
            .with_goal_event("anywhere-goal")
            .validate()
            .expect("a valid flag"),
    ]
}

/// The test site, with configuration values added (or overriding these).
fn site(url: &str, extra: &[(&str, Value)]) -> Rocket<Build> {
    let mut figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("bandits.admin_password", PASSWORD))
        // Only the shutdown flush writes: what is pending stays pending meanwhile.
        .merge(("bandits.flush_interval_ms", 60_000))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    for (key, value) in extra {
        figment = figment.merge((*key, value.clone()));
    }
    let fairing = flags()
        .into_iter()
        .fold(Bandits::fairing(), |fairing, flag| fairing.with_flag(flag));
    rocket::custom(figment).attach(fairing).mount(
        "/",
        routes![routes::home, routes::contact, read, routes::peek, goal],
    )
}

async fn start(url: &str, extra: &[(&str, Value)]) -> Client {
    Client::untracked(site(url, extra))
        .await
        .expect("the site ignites")
}

async fn status(client: &Client) -> Json {
    client
        .get("/bandits/api/status")
        .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
        .dispatch()
        .await
        .into_json()
        .await
        .expect("the status as JSON")
}

#[tokio::test]
async fn paths_of_piled_up_slashes_count_for_no_page() {
    each_database(|store, url| async move {
        let client = start(&url, &[]).await;
        let slashes = format!("/{}", "/".repeat(64_000));
        let mut visitor = Visitor::browser();
        for path in [slashes.as_str(), "//", "/////"] {
            let answer = visitor.get(&client, path).await;
            // Rocket serves it as `/`; the plugin counts nothing there.
            assert_eq!(answer.status, Status::Ok, "{:.10}", path);
        }
        // A visitor counted on `/` does not convert on `/contact` piled with slashes.
        let mut counted = Visitor::browser();
        assert_eq!(counted.get(&client, "/").await.status, Status::Ok);
        let goal = format!("/contact{}", "/".repeat(64_000));
        assert_eq!(counted.get(&client, &goal).await.status, Status::Ok);
        assert_eq!(counted.get(&client, "/contact//").await.status, Status::Ok);
        client.terminate().await;
        assert_eq!(sum(&store, "headline").await, (1, 0));
        let logged = store
            .events(&EventQuery {
                flag: Some("headline".into()),
                ..EventQuery::default()
            })
            .await
            .expect("the log");
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert_eq!(logged[0].event.path, "/");
    })
    .await;
}

#[tokio::test]
async fn the_log_keeps_a_bounded_path_and_the_pending_log_bounded_bytes() {
    each_database(|store, url| async move {
        let cap = 20_000;
        let client = start(&url, &[("bandits.max_pending_event_bytes", cap.into())]).await;
        let long = format!("/read/{}", "a".repeat(64_000));
        let visitors = 100;
        for _ in 0..visitors {
            let answer = Visitor::browser().get(&client, &long).await;
            assert_eq!(answer.status, Status::Ok);
        }
        let status = status(&client).await;
        let held = status["pending"]["event_bytes"]
            .as_u64()
            .expect("bytes held");
        assert!(held > 0 && held <= cap, "{status}");
        let dropped = status["dropped_events"].as_u64().expect("dropped");
        assert!(dropped > 0, "{status}");
        let kept = status["pending"]["events"].as_u64().expect("entries held");
        assert_eq!(kept + dropped, visitors, "{status}");
        client.terminate().await;
        // Every visitor is counted; the log has what the cap kept, each path cut short.
        assert_eq!(sum(&store, "anywhere").await, (visitors, 0));
        let logged = store
            .events(&EventQuery {
                flag: Some("anywhere".into()),
                limit: 1_000,
                ..EventQuery::default()
            })
            .await
            .expect("the log");
        assert_eq!(logged.len() as u64, kept);
        for entry in &logged {
            let path = &entry.event.path;
            assert!(path.len() <= MAX_LOGGED_PATH, "{}", path.len());
            assert!(path.ends_with(TRUNCATED_MARK), "{path:.40}");
            assert!(path.starts_with("/read/aaaa"), "{path:.40}");
        }
    })
    .await;
}

/// A sign-in attempt from one connection whose `X-Real-IP` header says `real_ip`.
async fn attempt<'c>(
    client: &'c Client,
    form: &Session,
    secret: &str,
    real_ip: &str,
) -> LocalResponse<'c> {
    let header = Header::new("X-Real-IP", real_ip.to_string());
    admin::attempt(client, form, secret, "192.0.2.9:4000", Some(header)).await
}

#[tokio::test]
async fn the_sign_in_limit_keys_on_the_connection_not_on_headers_it_sends() {
    each_database(|_store, url| async move {
        let client = start(&url, &[]).await;
        let form = sign_in_form(&client).await;
        for i in 0..200u32 {
            let real_ip = format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256);
            let answer = attempt(&client, &form, "a guess", &real_ip).await;
            let expected = if i < bandits::admin::MAX_FAILED_SIGN_INS {
                Status::Unauthorized
            } else {
                Status::TooManyRequests
            };
            assert_eq!(answer.status(), expected, "attempt {i} as {real_ip}");
        }
        // Even the right secret waits out the window.
        let right = attempt(&client, &form, TOKEN, "10.9.9.9").await;
        assert_eq!(right.status(), Status::TooManyRequests);
        drop(right);
        client.terminate().await;

        // Behind a proxy the site declares, the header it sets is the client.
        let proxied = start(
            &url,
            &[("bandits.admin_client_ip_header", "X-Real-IP".into())],
        )
        .await;
        let form = sign_in_form(&proxied).await;
        for i in 0..20u32 {
            let answer = attempt(&proxied, &form, "a guess", &format!("10.0.0.{i}")).await;
            assert_eq!(answer.status(), Status::Unauthorized, "client {i}");
        }
        for _ in 0..bandits::admin::MAX_FAILED_SIGN_INS {
            let answer = attempt(&proxied, &form, "a guess", "10.0.1.1").await;
            assert_eq!(answer.status(), Status::Unauthorized);
        }
        let blocked = attempt(&proxied, &form, "a guess", "10.0.1.1").await;
        assert_eq!(blocked.status(), Status::TooManyRequests);
        drop(blocked);
        proxied.terminate().await;
    })
    .await;
}

/// Posts a reset of `flag` with `session`; the answer's status.
async fn reset_with(client: &Client, session: &Session, flag: &str) -> Status {
    let body = format!("csrf={}", session.0);
    let path = format!("/flags/{flag}/reset");
    post_form(
        client,
        "192.0.2.9:4000",
        &path,
        body,
        Some(&session.1),
        None,
    )
    .await
    .status()
}

async fn opens_admin(client: &Client, session: &Cookie<'static>) -> bool {
    let answer = client
        .get(format!("{ADMIN}/"))
        .cookie(session.clone())
        .dispatch()
        .await;
    answer.status() == Status::Ok
}

#[tokio::test]
async fn a_session_ends_at_sign_out_everywhere_and_with_the_secret_that_opened_it() {
    each_database(|store, url| async move {
        // Signed out on one instance: a saved copy of the cookie opens nothing on another.
        let first = start(&url, &[]).await;
        let session = signed_in(&first, TOKEN).await;
        let second = start(&url, &[]).await;
        assert!(opens_admin(&second, &session.1).await);
        let out = first
            .post(format!("{ADMIN}/logout"))
            .header(ContentType::Form)
            .cookie(session.1.clone())
            .body(format!("csrf={}", session.0))
            .dispatch()
            .await;
        assert_eq!(out.status(), Status::SeeOther);
        drop(out);
        assert!(!opens_admin(&first, &session.1).await, "signed out");
        assert!(
            !opens_admin(&second, &session.1).await,
            "signed out everywhere"
        );
        assert_eq!(
            reset_with(&second, &session, "headline").await,
            Status::SeeOther
        );
        assert_eq!(store.flag("headline").await.expect("kept").epoch, 0);
        second.terminate().await;

        // A session opened with the token ends when the token changes; one opened with the
        // password, when the password does.
        let by_token = signed_in(&first, TOKEN).await;
        let by_password = signed_in(&first, PASSWORD).await;
        first.terminate().await;
        let new_token = start(
            &url,
            &[(
                "bandits.admin_token",
                "a-new-admin-token-after-a-leak".into(),
            )],
        )
        .await;
        assert!(!opens_admin(&new_token, &by_token.1).await);
        assert!(opens_admin(&new_token, &by_password.1).await);
        assert_eq!(
            reset_with(&new_token, &by_token, "headline").await,
            Status::SeeOther
        );
        assert_eq!(store.flag("headline").await.expect("kept").epoch, 0);
        new_token.terminate().await;
        let new_password = start(
            &url,
            &[("bandits.admin_password", "a new admin password".into())],
        )
        .await;
        assert!(!opens_admin(&new_password, &by_password.1).await);
        new_password.terminate().await;

        // With no secret configured, no session opens the admin.
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", url.as_str()))
            .merge(("secret_key", SECRET_KEY))
            .merge(("log_level", "off"));
        let no_secret = Client::untracked(rocket::custom(figment).attach(Bandits::fairing()))
            .await
            .expect("the site ignites");
        assert!(!opens_admin(&no_secret, &by_password.1).await);
        assert_eq!(
            reset_with(&no_secret, &by_password, "headline").await,
            Status::SeeOther
        );
        assert_eq!(store.flag("headline").await.expect("kept").epoch, 0);
        no_secret.terminate().await;

        // The same session on the unchanged site still works: the checks above are what
        // refused it.
        let unchanged = start(&url, &[]).await;
        assert!(opens_admin(&unchanged, &by_password.1).await);
        assert_eq!(
            reset_with(&unchanged, &by_password, "headline").await,
            Status::SeeOther
        );
        assert_eq!(store.flag("headline").await.expect("reset").epoch, 1);
        unchanged.terminate().await;
    })
    .await;
}

/// A site whose own check lets in requests with the cookie `staff=yes`.
async fn staff_site(url: &str) -> Client {
    let rocket = site(url, &[]).manage(AdminCheck::new(|request| {
        request
            .cookies()
            .get("staff")
            .is_some_and(|cookie| cookie.value() == "yes")
    }));
    Client::untracked(rocket).await.expect("the site ignites")
}

fn new_flag(name: &str) -> String {
    json!({ "name": name, "arms": [{ "name": "off" }, { "name": "on" }] }).to_string()
}

#[tokio::test]
async fn the_api_refuses_what_another_site_could_make_a_browser_send() {
    each_database(|store, url| async move {
        let client = staff_site(&url).await;
        let staff = || Cookie::new("staff", "yes");
        let create = |kind: ContentType, headers: Vec<Header<'static>>, name: &str| {
            let mut request = client
                .post("/bandits/api/flags")
                .header(kind)
                .header(Header::new("Host", "site.example"))
                .body(new_flag(name));
            for header in headers {
                request = request.header(header);
            }
            request
        };
        // A form of another site can send text/plain: refused, with or without access.
        let plain = create(ContentType::Plain, vec![], "plain")
            .cookie(staff())
            .dispatch()
            .await;
        assert_eq!(plain.status(), Status::UnsupportedMediaType);
        let body: Json = plain.into_json().await.expect("a JSON error");
        assert!(body["error"]
            .as_str()
            .is_some_and(|e| e.contains("application/json")));
        let bearer_plain = create(
            ContentType::Plain,
            vec![Header::new("Authorization", format!("Bearer {TOKEN}"))],
            "plain",
        )
        .dispatch()
        .await;
        assert_eq!(bearer_plain.status(), Status::UnsupportedMediaType);
        drop(bearer_plain);

        // Let in by the site's cookie, from another site's page: refused.
        for headers in [
            vec![Header::new("Sec-Fetch-Site", "cross-site")],
            vec![Header::new("Sec-Fetch-Site", "same-site")],
            vec![Header::new("Origin", "https://attacker.example")],
            vec![Header::new("Origin", "null")],
        ] {
            let answer = create(ContentType::JSON, headers.clone(), "cross")
                .cookie(staff())
                .dispatch()
                .await;
            assert_eq!(answer.status(), Status::Forbidden, "{headers:?}");
        }
        let reset = client
            .post("/bandits/api/flags/headline/reset")
            .header(Header::new("Origin", "https://attacker.example"))
            .header(Header::new("Host", "site.example"))
            .cookie(staff())
            .dispatch()
            .await;
        assert_eq!(reset.status(), Status::Forbidden);
        drop(reset);
        // Reads stay open to the site's check: they change nothing.
        let read = client
            .get("/bandits/api/flags/headline")
            .header(Header::new("Sec-Fetch-Site", "cross-site"))
            .cookie(staff())
            .dispatch()
            .await;
        assert_eq!(read.status(), Status::Ok);
        drop(read);
        for name in ["plain", "cross"] {
            assert!(store.flag(name).await.is_err(), "{name} was created");
        }
        assert_eq!(store.flag("headline").await.expect("kept").epoch, 0);

        // The same site's page, or the bearer token from anywhere: accepted.
        let accepted = [
            (
                "same-origin",
                true,
                vec![
                    Header::new("Sec-Fetch-Site", "same-origin"),
                    Header::new("Origin", "https://site.example"),
                ],
            ),
            (
                "by-origin",
                true,
                vec![Header::new("Origin", "https://site.example")],
            ),
            (
                "bearer",
                false,
                vec![
                    Header::new("Sec-Fetch-Site", "cross-site"),
                    Header::new("Authorization", format!("Bearer {TOKEN}")),
                ],
            ),
        ];
        for (name, with_cookie, headers) in accepted {
            let mut request = create(ContentType::JSON, headers, name);
            if with_cookie {
                request = request.cookie(staff());
            }
            let answer = request.dispatch().await;
            assert_eq!(answer.status(), Status::Created, "{name}");
        }
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn admin_pages_and_api_answers_are_never_cached() {
    each_database(|_store, url| async move {
        let client = start(&url, &[]).await;
        let bearer = || Header::new("Authorization", format!("Bearer {TOKEN}"));
        for (path, with_token) in [
            ("/bandits/api/flags", true),
            ("/bandits/api/flags/headline/stats", true),
            ("/bandits/api/flags/missing", true),
            ("/bandits/api/flags", false),
            ("/bandits/admin/login", false),
            ("/bandits/admin/", false),
        ] {
            let mut request = client.get(path);
            if with_token {
                request = request.header(bearer());
            }
            let answer = request.dispatch().await;
            assert_eq!(
                answer.headers().get_one("Cache-Control"),
                Some("no-store"),
                "{path} ({})",
                answer.status()
            );
        }
        let session = signed_in(&client, TOKEN).await;
        let page = client
            .get(format!("{ADMIN}/flags/headline"))
            .cookie(session.1.clone())
            .dispatch()
            .await;
        assert_eq!(page.status(), Status::Ok);
        assert_eq!(page.headers().get_one("Cache-Control"), Some("no-store"));
        drop(page);
        // The site's own pages are the site's business.
        let home = Visitor::browser().get(&client, "/contact").await;
        assert_eq!(home.status, Status::Ok);
        let answer = client.get("/contact").dispatch().await;
        assert_eq!(answer.headers().get_one("Cache-Control"), None);
        drop(answer);
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn an_old_cookie_replayed_after_a_restart_counts_nothing_again() {
    each_database(|store, url| async move {
        let first = start(&url, &[]).await;
        let mut visitor = Visitor::browser();
        // Given an arm without being counted, then counted, then converted.
        let arm = visitor.get(&first, "/peek").await.body;
        let before_view = visitor.clone();
        assert_eq!(visitor.get(&first, "/").await.body, arm);
        let before_conversion = visitor.clone();
        assert_eq!(visitor.get(&first, "/contact").await.status, Status::Ok);
        // Counted on an arm-less flag, converted by an event.
        let mut other = Visitor::browser();
        other.get(&first, "/read/page").await;
        let before_event = other.clone();
        assert_eq!(other.send(&first, "POST", "/goal").await.body, "1");
        first.terminate().await;
        assert_eq!(sum(&store, "headline").await, (1, 1));
        assert_eq!(sum(&store, "anywhere").await, (1, 1));

        // Another process (or this one, restarted) has none of that in memory.
        for round in 0..2 {
            let second = start(&url, &[]).await;
            let mut replay = before_view.clone();
            assert_eq!(replay.get(&second, "/").await.body, arm, "round {round}");
            let mut replay = before_conversion.clone();
            assert_eq!(replay.get(&second, "/contact").await.status, Status::Ok);
            let mut replay = before_event.clone();
            replay.send(&second, "POST", "/goal").await;
            let status = status(&second).await;
            second.terminate().await;
            assert_eq!(
                sum(&store, "headline").await,
                (1, 1),
                "round {round}: {status}"
            );
            assert_eq!(sum(&store, "anywhere").await, (1, 1), "round {round}");
        }
        // The log shows each count once.
        let logged = store
            .events(&EventQuery {
                limit: 100,
                ..EventQuery::default()
            })
            .await
            .expect("the log");
        assert_eq!(logged.len(), 4, "{logged:?}");
        // A reset starts the count afresh: the same visitor counts again in the new epoch.
        store.reset_flag("headline", 1).await.expect("reset");
        let third = start(&url, &[]).await;
        let mut replay = before_conversion.clone();
        assert_eq!(replay.get(&third, "/").await.status, Status::Ok);
        third.terminate().await;
        assert_eq!(sum(&store, "headline").await, (1, 0));
    })
    .await;
}

#[tokio::test]
async fn a_batch_counts_each_visitor_once_and_reports_repeats() {
    each_database(|store, _url| async move {
        use bandits::store::{Batch, Event, EventKind};
        let flag = FlagDefinition::new("once")
            .validate()
            .expect("a valid flag");
        store.create_flag(&flag, 1).await.expect("created");
        let event = |kind, visitor: &str| Event {
            at: 1,
            kind,
            visitor: visitor.into(),
            flag: "once".into(),
            epoch: 0,
            arm: "on".into(),
            path: "/".into(),
            partner: None,
            propensity: None,
        };
        let batch = Batch {
            counted: vec![
                event(EventKind::Exposure, "v1"),
                event(EventKind::Exposure, "v1"),
                event(EventKind::Exposure, "v2"),
                event(EventKind::Conversion, "v1"),
            ],
            ..Batch::default()
        };
        let report = store.flush(&batch, 1).await.expect("written");
        assert_eq!((report.events, report.repeats), (3, 1));
        // The same again, as another instance would flush it: all repeats.
        let again = store.flush(&batch, 1).await.expect("written");
        assert_eq!((again.events, again.repeats), (0, 4));
        let totals = store.flag("once").await.expect("kept").totals;
        assert_eq!((totals[1].views, totals[1].conversions), (2, 1));
        let logged = store
            .events(&EventQuery {
                flag: Some("once".into()),
                ..EventQuery::default()
            })
            .await
            .expect("the log");
        assert_eq!(logged.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn rollout_times_out_of_range_are_refused_with_the_field_named() {
    each_database(|store, url| async move {
        let client = start(&url, &[]).await;
        let flag = |start: i64, end: i64| {
            json!({
                "name": "ramp",
                "targeting": { "rollout": { "start": start, "end": end } },
            })
            .to_string()
        };
        let create = |body: String| {
            client
                .post("/bandits/api/flags")
                .header(ContentType::JSON)
                .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
                .body(body)
                .dispatch()
        };
        let widest = create(flag(i64::MIN, i64::MAX)).await;
        assert_eq!(widest.status(), Status::UnprocessableEntity);
        let body: Json = widest.into_json().await.expect("a JSON error");
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|error| error["field"].as_str())
            .collect();
        assert_eq!(
            fields,
            ["targeting.rollout.start", "targeting.rollout.end"],
            "{body}"
        );
        assert!(store.flag("ramp").await.is_err(), "nothing is created");
        // A ramp over the next year is fine, and reading the flag does the arithmetic.
        let now = 1_763_700_000_000_i64;
        let year = 365 * 24 * 60 * 60 * 1000_i64;
        let fine = create(flag(now, now + year)).await;
        assert_eq!(fine.status(), Status::Created);
        drop(fine);
        client.terminate().await;
    })
    .await;
}
