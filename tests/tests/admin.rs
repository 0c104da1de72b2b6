//! The admin pages' access, CSRF protection, sign-in limits, escaping and flags list, on
//! SQLite and (with BANDITS_TEST_POSTGRES_URL) PostgreSQL.

use bandits::admin::SESSION_COOKIE;
use bandits::api::AdminCheck;
use bandits::engine::{ArmTotals, FlagDefinition, Policy, WinnerRule};
use bandits::store::{Batch, Increment, Store};
use bandits::Bandits;
use bandits_integration_tests::admin::{self, attempt, location, sign_in_form, ADMIN};
use bandits_integration_tests::browser::{csrf, SECRET_KEY, TOKEN};
use bandits_integration_tests::each_database;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

const PASSWORD: &str = "correct horse battery";

fn site(url: &str, site_check: bool) -> rocket::Rocket<rocket::Build> {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("bandits.admin_password", PASSWORD))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let mut rocket = rocket::custom(figment).attach(Bandits::fairing());
    if site_check {
        rocket = rocket.manage(AdminCheck::new(|request| {
            request.headers().get_one("X-Staff") == Some("yes")
        }));
    }
    rocket
}

async fn client(url: &str, site_check: bool) -> Client {
    // A tracked client is one browser: it keeps the admin's session cookie.
    Client::tracked(site(url, site_check))
        .await
        .expect("the site ignites")
}

/// The address the admin's browser connects from.
const ADDRESS: &str = "192.0.2.7:4000";

async fn post_form<'c>(client: &'c Client, path: &str, body: String) -> LocalResponse<'c> {
    admin::post_form(client, ADDRESS, path, body, None, None).await
}

async fn sign_in<'c>(client: &'c Client, secret: &str) -> LocalResponse<'c> {
    sign_in_from(client, ADDRESS, secret).await
}

/// Signs the browser in with the token; the sign-in must succeed.
async fn sign_in_ok(client: &Client) {
    let signed_in = sign_in(client, TOKEN).await;
    assert_eq!(signed_in.status(), Status::SeeOther);
}

async fn sign_in_from<'c>(client: &'c Client, address: &str, secret: &str) -> LocalResponse<'c> {
    let form = sign_in_form(client).await;
    attempt(client, &form, secret, address, None).await
}

#[tokio::test]
async fn every_admin_route_sends_a_visitor_without_access_to_sign_in() {
    each_database(|_store, url| async move {
        let client = client(&url, false).await;
        let to_login = format!("{ADMIN}/login");
        for path in [
            "/",
            "/?q=x",
            "/flags/any",
            "/flags/any/reset",
            "/flags/any/delete",
        ] {
            let response = client.get(format!("{ADMIN}{path}")).dispatch().await;
            assert_eq!(response.status(), Status::SeeOther, "GET {path}");
            assert_eq!(location(&response).as_deref(), Some(to_login.as_str()));
        }
        for path in [
            "/logout",
            "/flags/any/reset",
            "/flags/any/delete",
            "/new",
            "/flags/any/edit",
        ] {
            let response = post_form(&client, path, "csrf=x".into()).await;
            assert_eq!(response.status(), Status::SeeOther, "POST {path}");
            assert_eq!(location(&response).as_deref(), Some(to_login.as_str()));
        }
        let page = client.get(to_login.clone()).dispatch().await;
        assert_eq!(page.status(), Status::Ok);
        // A forged or damaged session cookie is no access either.
        let forged = client
            .get(format!("{ADMIN}/"))
            .cookie(rocket::http::Cookie::new(
                "bandits_admin",
                "1:99999999999999:0123456789abcdef0123456789abcdef",
            ))
            .dispatch()
            .await;
        assert_eq!(forged.status(), Status::SeeOther);
    })
    .await;
}

#[tokio::test]
async fn the_token_or_the_password_signs_in_and_sign_out_ends_it() {
    each_database(|_store, url| async move {
        let client = client(&url, false).await;
        let wrong = sign_in(&client, "not the secret").await;
        assert_eq!(wrong.status(), Status::Unauthorized);
        assert!(wrong
            .into_string()
            .await
            .unwrap_or_default()
            .contains("Wrong token or password."));

        for secret in [TOKEN, PASSWORD] {
            let signed_in = sign_in(&client, secret).await;
            assert_eq!(signed_in.status(), Status::SeeOther);
            assert_eq!(location(&signed_in).as_deref(), Some("/bandits/admin/"));
            drop(signed_in);
            let list = client.get(format!("{ADMIN}/")).dispatch().await;
            assert_eq!(list.status(), Status::Ok, "signed in with {secret}");
            let page = list.into_string().await.unwrap_or_default();
            let token = csrf(&page);
            let out = post_form(&client, "/logout", format!("csrf={token}")).await;
            assert_eq!(out.status(), Status::SeeOther);
            drop(out);
            let after = client.get(format!("{ADMIN}/")).dispatch().await;
            assert_eq!(after.status(), Status::SeeOther, "signed out");
        }
    })
    .await;
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused_with_403() {
    each_database(|_store, url| async move {
        let client = client(&url, false).await;
        // Sign-in form posted without, or with a wrong, token.
        let missing = post_form(&client, "/login", format!("secret={TOKEN}")).await;
        assert_eq!(missing.status(), Status::Forbidden);
        drop(missing);
        let wrong = post_form(
            &client,
            "/login",
            format!("secret={TOKEN}&csrf={}", "0".repeat(32)),
        )
        .await;
        assert_eq!(wrong.status(), Status::Forbidden);
        drop(wrong);

        sign_in_ok(&client).await;
        for body in [
            String::new(),
            "csrf=".into(),
            format!("csrf={}", "f".repeat(32)),
        ] {
            let out = post_form(&client, "/logout", body.clone()).await;
            assert_eq!(out.status(), Status::Forbidden, "{body:?}");
        }
        // Still signed in: nothing happened.
        let list = client.get(format!("{ADMIN}/")).dispatch().await;
        assert_eq!(list.status(), Status::Ok);
    })
    .await;
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_client_address() {
    each_database(|_store, url| async move {
        let client = client(&url, false).await;
        // The documented limit: 5 failed attempts per address (the window of 15 minutes
        // is tested with an injected clock in the admin's unit tests).
        for attempt in 0..5 {
            let wrong = sign_in(&client, "guess").await;
            assert_eq!(wrong.status(), Status::Unauthorized, "attempt {attempt}");
        }
        // Locked out, even with the right token.
        let blocked = sign_in(&client, TOKEN).await;
        assert_eq!(blocked.status(), Status::TooManyRequests);
        drop(blocked);
        let list = client.get(format!("{ADMIN}/")).dispatch().await;
        assert_eq!(list.status(), Status::SeeOther, "not signed in");
        drop(list);
        // Another address is not blocked by the first.
        let other = sign_in_from(&client, "198.51.100.9:5000", TOKEN).await;
        assert_eq!(other.status(), Status::SeeOther);
        drop(other);
        let list = client.get(format!("{ADMIN}/")).dispatch().await;
        assert_eq!(
            list.status(),
            Status::Ok,
            "signed in from the other address"
        );
    })
    .await;
}

#[tokio::test]
async fn a_session_older_than_its_lifetime_is_refused() {
    each_database(|_store, url| async move {
        let client = client(&url, false).await;
        sign_in_ok(&client).await;
        let cookie = client
            .cookies()
            .get_private(SESSION_COOKIE)
            .expect("the session cookie");
        // signed in : expires : CSRF token : session id : digest
        let parts: Vec<String> = cookie.value().splitn(5, ':').map(String::from).collect();
        assert_eq!(parts.len(), 5, "a signed-in session");
        let expires: i64 = parts[1].parse().expect("the expiry");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        // The documented lifetime: 12 hours.
        let lifetime = 12 * 60 * 60 * 1000;
        assert!(
            (now + lifetime - 60_000..=now + lifetime).contains(&expires),
            "expires {} ms from now",
            expires - now
        );

        // Another browser holding the same session (encrypted with the test secret key):
        // let in while the session is young...
        let other = Client::untracked(site(&url, false))
            .await
            .expect("the site ignites");
        let with = |expires: i64| {
            let value = format!(
                "{}:{expires}:{}:{}:{}",
                parts[0], parts[2], parts[3], parts[4]
            );
            other
                .get(format!("{ADMIN}/"))
                .private_cookie(Cookie::new(SESSION_COOKIE, value))
        };
        let young = with(expires).dispatch().await;
        assert_eq!(
            young.status(),
            Status::Ok,
            "the copied session opens the admin"
        );
        drop(young);
        // ...and refused once the cookie says it is older than its lifetime, though the
        // database still holds it open.
        let old = with(now - 1).dispatch().await;
        assert_eq!(old.status(), Status::SeeOther, "an expired session");
        assert_eq!(location(&old).as_deref(), Some("/bandits/admin/login"));
    })
    .await;
}

#[tokio::test]
async fn the_sites_own_admin_check_opens_the_admin() {
    each_database(|_store, url| async move {
        let client = client(&url, true).await;
        let staff = client
            .get(format!("{ADMIN}/"))
            .header(Header::new("X-Staff", "yes"))
            .dispatch()
            .await;
        assert_eq!(staff.status(), Status::Ok);
        drop(staff);
        let visitor = client.get(format!("{ADMIN}/")).dispatch().await;
        assert_eq!(visitor.status(), Status::SeeOther);
    })
    .await;
}

async fn store_flag(store: &Store, name: &str, note: &str, totals: [(u64, u64); 2]) {
    let flag = FlagDefinition {
        note: note.into(),
        ..FlagDefinition::new(name)
    }
    .validate()
    .expect("a valid flag");
    let stored = store.create_flag(&flag, 1).await.expect("created");
    let increments = ["off", "on"]
        .iter()
        .zip(totals)
        .map(|(arm, (views, conversions))| Increment::new(&stored, arm, views, conversions))
        .collect();
    store
        .flush(
            &Batch {
                increments,
                events: vec![],
                ..Batch::default()
            },
            1,
        )
        .await
        .expect("counted");
}

#[tokio::test]
async fn the_list_shows_each_flag_escaped_and_searchable() {
    each_database(|store, url| async move {
        store_flag(
            &store,
            "headline-flag",
            "<script>alert('x')</script>",
            [(200, 10), (180, 18)],
        )
        .await;
        store_flag(
            &store,
            "checkout",
            "Which flow sells more?",
            [(0, 0), (0, 0)],
        )
        .await;
        let client = client(&url, false).await;
        sign_in_ok(&client).await;

        let page = client.get(format!("{ADMIN}/")).dispatch().await;
        let page = page.into_string().await.unwrap_or_default();
        assert!(
            !page.contains("<script>alert"),
            "the note must be escaped: {page}"
        );
        assert!(page.contains("&lt;script&gt;alert"), "{page}");
        assert!(page.contains("headline-flag") && page.contains("checkout"));
        // Rates, visitors and the best arm of headline-flag: on converts at 10%, off at 5%.
        let expected = [(200, 10), (180, 18)].map(|(v, c)| ArmTotals::new(v, c).rate() * 100.0);
        assert!(
            page.contains(&format!("off: {:.1}%", expected[0])),
            "{page}"
        );
        assert!(page.contains(&format!("on: {:.1}%", expected[1])), "{page}");
        assert!(page.contains(">380<"), "visitors: {page}");
        assert!(page.contains("waiting for visitors"), "{page}");

        let found = client.get(format!("{ADMIN}/?q=flow")).dispatch().await;
        let found = found.into_string().await.unwrap_or_default();
        assert!(
            found.contains("checkout") && !found.contains("headline-flag"),
            "{found}"
        );
        assert!(found.contains("1 of 2 flags"), "{found}");
    })
    .await;
}

#[tokio::test]
async fn reset_and_delete_take_a_confirmation_step_and_the_csrf_token() {
    each_database(|store, url| async move {
        store_flag(&store, "headline-flag", "", [(50, 5), (50, 9)]).await;
        let client = client(&url, false).await;
        sign_in_ok(&client).await;

        // The confirmation page changes nothing.
        let confirm = client
            .get(format!("{ADMIN}/flags/headline-flag/reset"))
            .dispatch()
            .await;
        assert_eq!(confirm.status(), Status::Ok);
        let page = confirm.into_string().await.unwrap_or_default();
        assert!(page.contains("100 visitors"), "{page}");
        let token = csrf(&page);
        assert_eq!(
            store.flag("headline-flag").await.expect("kept").totals[1].views,
            50
        );

        // Without the token: refused, nothing changed.
        let forged = post_form(&client, "/flags/headline-flag/reset", String::new()).await;
        assert_eq!(forged.status(), Status::Forbidden);
        drop(forged);
        assert_eq!(store.flag("headline-flag").await.expect("kept").epoch, 0);

        let done = post_form(
            &client,
            "/flags/headline-flag/reset",
            format!("csrf={token}"),
        )
        .await;
        assert_eq!(done.status(), Status::SeeOther);
        assert_eq!(
            location(&done).as_deref(),
            Some("/bandits/admin/flags/headline-flag")
        );
        drop(done);
        let reset = store.flag("headline-flag").await.expect("kept");
        assert_eq!((reset.epoch, reset.totals[1].views), (1, 0));

        let confirm = client
            .get(format!("{ADMIN}/flags/headline-flag/delete"))
            .dispatch()
            .await;
        let token = csrf(&confirm.into_string().await.unwrap_or_default());
        let done = post_form(
            &client,
            "/flags/headline-flag/delete",
            format!("csrf={token}"),
        )
        .await;
        assert_eq!(done.status(), Status::SeeOther);
        drop(done);
        assert!(store.flag("headline-flag").await.is_err(), "deleted");
        let gone = client
            .get(format!("{ADMIN}/flags/headline-flag"))
            .dispatch()
            .await;
        assert_eq!(gone.status(), Status::NotFound);
    })
    .await;
}

/// A new user's morning: a flag is created, the site collects data, the statistics page
/// shows the counts, the rates, the intervals and the winner the rule locked.
#[tokio::test]
async fn end_to_end_the_statistics_page_shows_the_counts_and_the_winner() {
    use bandits::Flags;
    use bandits_integration_tests::browser::Visitor;
    use bandits_integration_tests::eventually;

    #[rocket::get("/")]
    fn home(flags: Flags<'_>) -> String {
        flags.variant("headline-flag").unwrap_or_default()
    }

    #[rocket::get("/contact")]
    fn contact() -> &'static str {
        "contact"
    }

    each_database(|_store, url| async move {
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", url.as_str()))
            .merge(("bandits.admin_token", TOKEN))
            .merge(("bandits.flush_interval_ms", 20))
            .merge(("secret_key", SECRET_KEY))
            .merge(("log_level", "off"));
        let rocket = rocket::custom(figment)
            .attach(Bandits::fairing())
            .mount("/", rocket::routes![home, contact]);
        let client = Client::untracked(rocket).await.expect("ignites");

        let created = client
            .post("/bandits/api/flags")
            .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
            .header(ContentType::JSON)
            .body(
                r#"{"name": "headline-flag", "policy": {"kind": "split", "weights": [1, 1]},
                    "min_views": 20, "source_path": "/", "target_path": "/contact"}"#,
            )
            .dispatch()
            .await;
        assert_eq!(created.status(), Status::Created);
        drop(created);

        // Visitors on "on" always reach the goal, on "off" never.
        let mut seen: std::collections::HashMap<String, u64> = Default::default();
        for _ in 0..40 {
            let mut visitor = Visitor::browser();
            let arm = visitor.get(&client, "/").await.body;
            if arm == "on" {
                visitor.get(&client, "/contact").await;
            }
            *seen.entry(arm).or_default() += 1;
        }
        let (off, on) = (
            seen.get("off").copied().unwrap_or(0),
            seen.get("on").copied().unwrap_or(0),
        );
        assert!(off >= 5 && on >= 5, "both arms need visitors: {seen:?}");

        // The admin signs in with the token, carrying its session cookie by hand.
        let form = client.get(format!("{ADMIN}/login")).dispatch().await;
        let mut session = form
            .cookies()
            .get("bandits_admin")
            .map(|c| c.value().to_string());
        let token = csrf(&form.into_string().await.unwrap_or_default());
        let signed_in = client
            .post(format!("{ADMIN}/login"))
            .header(ContentType::Form)
            .cookie(rocket::http::Cookie::new(
                "bandits_admin",
                session.clone().unwrap_or_default(),
            ))
            .body(format!("secret={TOKEN}&csrf={token}"))
            .dispatch()
            .await;
        assert_eq!(signed_in.status(), Status::SeeOther);
        session = signed_in
            .cookies()
            .get("bandits_admin")
            .map(|c| c.value().to_string());
        drop(signed_in);
        let session = session.expect("a session cookie");

        // Within a few flushes the counts are written and the rule locks "on".
        let page = std::sync::Mutex::new(String::new());
        let shown = eventually(|| async {
            let response = client
                .get(format!("{ADMIN}/flags/headline-flag"))
                .cookie(rocket::http::Cookie::new("bandits_admin", session.clone()))
                .dispatch()
                .await;
            let body = response.into_string().await.unwrap_or_default();
            let done = body.contains("Winner: on");
            *page.lock().unwrap_or_else(|e| e.into_inner()) = body;
            done
        })
        .await;
        let page = page.into_inner().unwrap_or_else(|e| e.into_inner());
        assert!(shown, "no winner on the page: {page}");
        let on_rate = format!("{:.2}%", 100.0);
        assert!(page.contains(&format!(">{off}<")), "off's visitors: {page}");
        assert!(page.contains(&format!(">{on}<")), "on's visitors: {page}");
        assert!(page.contains(&on_rate), "on converts at 100%: {page}");
        assert!(page.contains("95% interval"), "{page}");
        assert!(
            page.contains("locked 20"),
            "when the winner was locked: {page}"
        );
        assert!(
            page.contains("After 20 visitors"),
            "the rule in one sentence: {page}"
        );
        assert!(page.contains("Conversion rate over time"), "{page}");
        assert_eq!(
            page.matches("<polyline").count(),
            4,
            "a rate and a share line per arm: {page}"
        );

        // The activity log: every exposure and conversion, 50 to a page, newest first.
        let mut log = String::new();
        let mut next = Some(format!("{ADMIN}/activity?flag=headline-flag"));
        let mut pages = 0;
        while let Some(url) = next.take() {
            let page = client
                .get(url.replace("&amp;", "&"))
                .cookie(rocket::http::Cookie::new("bandits_admin", session.clone()))
                .dispatch()
                .await;
            assert_eq!(page.status(), Status::Ok);
            let page = page.into_string().await.unwrap_or_default();
            let rows = page.matches(">exposure<").count() + page.matches(">conversion<").count();
            assert!(rows <= 50, "{rows} rows on one page");
            next = page
                .find("href=\"/bandits/admin/activity?before=")
                .map(|start| {
                    let rest = &page[start + 6..];
                    rest[..rest.find('"').unwrap_or(0)].to_string()
                });
            log.push_str(&page);
            pages += 1;
            assert!(pages <= 5, "pagination never ends");
        }
        let entries = off + 2 * on;
        assert_eq!(
            pages as u64,
            entries.div_ceil(50),
            "{entries} entries, 50 to a page"
        );
        assert_eq!(log.matches(">exposure<").count() as u64, off + on, "{log}");
        assert_eq!(log.matches(">conversion<").count() as u64, on, "{log}");
        let marker = "/activity?visitor=";
        let start = log.find(marker).expect("a visitor link") + marker.len();
        let visitor = &log[start..start + 32];
        let one = client
            .get(format!("{ADMIN}/activity?visitor={visitor}"))
            .cookie(rocket::http::Cookie::new("bandits_admin", session.clone()))
            .dispatch()
            .await;
        let one = one.into_string().await.unwrap_or_default();
        let rows = one.matches(">exposure<").count() + one.matches(">conversion<").count();
        assert!((1..=2).contains(&rows), "one visitor's entries only: {one}");
        client.terminate().await;
    })
    .await;
}

/// A form body from (field, value) pairs, values form-encoded.
fn body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", k, rocket::http::RawStr::new(v).percent_encode()))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn flags_are_created_and_edited_with_the_form_and_validated_field_by_field() {
    each_database(|store, url| async move {
        let client = client(&url, false).await;
        sign_in_ok(&client).await;
        let page = client.get(format!("{ADMIN}/new")).dispatch().await;
        assert_eq!(page.status(), Status::Ok);
        let token = csrf(&page.into_string().await.unwrap_or_default());

        // Everything wrong at once: nothing saved, each message beside its field, the
        // values kept as typed.
        let wrong = post_form(
            &client,
            "/new",
            body(&[
                ("csrf", &token),
                ("name", "headline-flag"),
                ("note", "<script>alert(1)</script>"),
                ("arms[0].name", "same"),
                ("arms[1].name", "same"),
                ("arms[1].payload", "{not json"),
                ("policy", "epsilon_greedy"),
                ("epsilon", "3"),
                ("significance_level", "1.5"),
                ("min_views", "-1"),
                ("percent", "abc"),
            ]),
        )
        .await;
        assert_eq!(wrong.status(), Status::UnprocessableEntity);
        let page = wrong.into_string().await.unwrap_or_default();
        for message in [
            "Nothing was saved",
            "is not valid JSON",
            "must be a whole number, 0 or more",
            "must be a number, got &quot;abc&quot;",
        ] {
            assert!(page.contains(message), "{message}: {page}");
        }
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "escaped: {page}"
        );
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(store.flag("headline-flag").await.is_err(), "nothing saved");

        // The engine's own rules, beside their fields.
        let wrong = post_form(
            &client,
            "/new",
            body(&[
                ("csrf", &token),
                ("name", "headline-flag"),
                ("arms[0].name", "same"),
                ("arms[1].name", "same"),
                ("policy", "epsilon_greedy"),
                ("epsilon", "3"),
                ("significance_level", "1.5"),
            ]),
        )
        .await;
        assert_eq!(wrong.status(), Status::UnprocessableEntity);
        let page = wrong.into_string().await.unwrap_or_default();
        for message in [
            "must be in [0, 1], got 3",
            "must be in (0, 1), got 1.5",
            "is used more than once",
        ] {
            assert!(page.contains(message), "{message}: {page}");
        }
        assert!(store.flag("headline-flag").await.is_err(), "nothing saved");

        // A valid flag: saved, paths normalised, payload parsed.
        let created = post_form(
            &client,
            "/new",
            body(&[
                ("csrf", &token),
                ("name", "headline-flag"),
                ("note", "Which headline?"),
                ("arms[0].name", "off"),
                ("arms[1].name", "on"),
                ("arms[1].payload", r#"{"title": "Bold"}"#),
                ("source_path", "home"),
                ("target_path", "/contact/"),
                ("policy", "thompson"),
                ("alpha", "2"),
                ("significance_level", "0.01"),
                ("min_views", "50"),
                ("winner_rule", "sequential"),
                ("percent", "25"),
                ("staff", "true"),
            ]),
        )
        .await;
        assert_eq!(created.status(), Status::SeeOther);
        assert_eq!(
            location(&created).as_deref(),
            Some("/bandits/admin/flags/headline-flag")
        );
        drop(created);
        let stored = store.flag("headline-flag").await.expect("created");
        let flag = &stored.flag;
        assert_eq!(flag.source_path(), Some("/home"));
        assert_eq!(flag.policy().label(), "Thompson sampling");
        assert_eq!(flag.significance_level(), 0.01);
        assert_eq!(flag.min_views(), 50);
        assert_eq!(flag.winner_rule().label(), "sequential test (mSPRT)");
        assert_eq!(
            flag.arms()[1].payload,
            Some(rocket::serde::json::json!({ "title": "Bold" }))
        );
        assert_eq!(flag.targeting().percent, Some(25.0));
        assert!(flag.targeting().staff);

        // The edit form shows every field as stored, a rollout included.
        let mut definition = flag.definition().clone();
        definition.targeting.rollout = Some(bandits::engine::targeting::Rollout {
            start: 1_795_253_400_000,
            end: 1_795_339_800_000,
        });
        store
            .update_flag(&definition.validate().expect("valid"), 2)
            .await
            .expect("updated");
        let edit = client
            .get(format!("{ADMIN}/flags/headline-flag/edit"))
            .dispatch()
            .await;
        let page = edit.into_string().await.unwrap_or_default();
        assert!(page.contains("value=\"headline-flag\" readonly"), "{page}");
        assert!(
            page.contains("value=\"2026-11-21T09:30\""),
            "rollout start: {page}"
        );
        assert!(
            page.contains("value=\"2026-11-22T09:30\""),
            "rollout end: {page}"
        );
        let token = csrf(&page);
        let saved = post_form(
            &client,
            "/flags/headline-flag/edit",
            body(&[
                ("csrf", &token),
                ("note", "Edited"),
                ("arms[0].name", "off"),
                ("arms[1].name", "on"),
                ("arms[2].name", "bold"),
                ("policy", "split"),
                ("weights", "1, 1, 2"),
                ("rollout_start", "2026-12-01T00:00"),
                ("rollout_end", "2026-12-08T00:00"),
                ("client_side", "true"),
            ]),
        )
        .await;
        assert_eq!(saved.status(), Status::SeeOther);
        drop(saved);
        let edited = store.flag("headline-flag").await.expect("kept");
        assert_eq!(edited.flag.note(), "Edited");
        assert!(
            edited.flag.client_side(),
            "readable in the browser, as ticked"
        );
        let page = client
            .get(format!("{ADMIN}/flags/headline-flag/edit"))
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap_or_default();
        assert!(
            page.contains(r#"name="client_side" value="true" checked"#),
            "{page}"
        );
        assert_eq!(edited.flag.arms().len(), 3);
        let rollout = edited.flag.targeting().rollout.expect("a rollout");
        assert_eq!(rollout.end - rollout.start, 7 * 24 * 3_600_000);

        // A rollout that ends before it starts is refused beside its field.
        let wrong = post_form(
            &client,
            "/flags/headline-flag/edit",
            body(&[
                ("csrf", &token),
                ("arms[0].name", "off"),
                ("arms[1].name", "on"),
                ("rollout_start", "2026-12-08T00:00"),
                ("rollout_end", "2026-12-01T00:00"),
            ]),
        )
        .await;
        assert_eq!(wrong.status(), Status::UnprocessableEntity);
        let page = wrong.into_string().await.unwrap_or_default();
        assert!(page.contains("must be after rollout.start"), "{page}");
        assert_eq!(
            store
                .flag("headline-flag")
                .await
                .expect("kept")
                .flag
                .arms()
                .len(),
            3
        );

        // Without the token: 403, nothing changed.
        let forged = post_form(
            &client,
            "/flags/headline-flag/edit",
            body(&[("note", "forged")]),
        )
        .await;
        assert_eq!(forged.status(), Status::Forbidden);
        drop(forged);
        assert_eq!(
            store.flag("headline-flag").await.expect("kept").flag.note(),
            "Edited"
        );
    })
    .await;
}

#[tokio::test]
async fn the_form_offers_top_two_thompson_and_the_bayesian_rule_with_their_parameters() {
    each_database(|store, url| async move {
        let client = client(&url, false).await;
        sign_in_ok(&client).await;
        let page = client.get(format!("{ADMIN}/new")).dispatch().await;
        let page = page.into_string().await.unwrap_or_default();
        assert!(page.contains("value=\"top_two_thompson\""), "{page}");
        assert!(page.contains("value=\"bayesian\""), "{page}");
        let token = csrf(&page);
        let fields = |leader: &'static str, probability: &'static str| {
            vec![
                ("csrf", token.clone()),
                ("name", "answer".to_string()),
                ("arms[0].name", "off".to_string()),
                ("arms[1].name", "on".to_string()),
                ("policy", "top_two_thompson".to_string()),
                ("leader", leader.to_string()),
                ("winner_rule", "bayesian".to_string()),
                ("probability", probability.to_string()),
                ("expected_loss", "0.00002".to_string()),
            ]
        };
        let encode = |fields: Vec<(&str, String)>| {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            body(&pairs)
        };
        let wrong = post_form(&client, "/new", encode(fields("1.2", "0.3"))).await;
        assert_eq!(wrong.status(), Status::UnprocessableEntity);
        let text = wrong.into_string().await.unwrap_or_default();
        for message in ["must be in (0, 1), got 1.2", "must be in [0.5, 1), got 0.3"] {
            assert!(text.contains(message), "{message}: {text}");
        }
        assert!(store.flag("answer").await.is_err(), "nothing saved");

        let created = post_form(&client, "/new", encode(fields("0.7", "0.99"))).await;
        assert_eq!(created.status(), Status::SeeOther);
        drop(created);
        let stored = store.flag("answer").await.expect("created");
        assert_eq!(
            stored.flag.policy(),
            &Policy::TopTwoThompson {
                alpha: 1.0,
                beta: 1.0,
                leader: 0.7
            }
        );
        assert_eq!(
            stored.flag.winner_rule(),
            &WinnerRule::Bayesian {
                probability: 0.99,
                expected_loss: 0.00002
            }
        );
        // The edit form shows them as stored, and the flag page the rule in words.
        let edit = client
            .get(format!("{ADMIN}/flags/answer/edit"))
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap_or_default();
        assert!(edit.contains("value=\"0.7\""), "{edit}");
        assert!(edit.contains("value=\"0.99\""), "{edit}");
        let shown = client
            .get(format!("{ADMIN}/flags/answer"))
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap_or_default();
        assert!(shown.contains("probability reaches 99%"), "{shown}");
        assert!(shown.contains("Expected loss"), "{shown}");
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_percentage_flag_is_one_choice_in_the_form() {
    each_database(|store, url| async move {
        let client = client(&url, false).await;
        sign_in_ok(&client).await;
        let page = client.get(format!("{ADMIN}/new")).dispatch().await;
        let token = csrf(&page.into_string().await.unwrap_or_default());
        let fields = |percent: &'static str| {
            body(&[
                ("csrf", &token),
                ("name", "new-checkout"),
                ("arms[0].name", "off"),
                ("arms[1].name", "on"),
                ("policy", "percentage"),
                ("percent", percent),
            ])
        };
        // The percent is what the choice needs.
        let missing = post_form(&client, "/new", fields("")).await;
        assert_eq!(missing.status(), Status::UnprocessableEntity);
        drop(missing);
        let created = post_form(&client, "/new", fields("10")).await;
        assert_eq!(created.status(), Status::SeeOther);
        drop(created);
        let stored = store.flag("new-checkout").await.expect("saved");
        assert_eq!(stored.flag.definition().as_percentage(), Some(10.0));
        // Shown as the same choice when edited.
        let edit = client
            .get(format!("{ADMIN}/flags/new-checkout/edit"))
            .dispatch()
            .await;
        let page = edit.into_string().await.unwrap_or_default();
        assert!(
            page.contains(r#"<option value="percentage" selected>"#),
            "{page}"
        );
    })
    .await;
}
