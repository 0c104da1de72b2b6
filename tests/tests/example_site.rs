//! The example site as a newcomer meets it: `cargo run -p example-site` on a fresh
//! database shows a working headline experiment.

use bandits::store::Store;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::{Client, LocalRequest};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const ACTIVE: &str = "This is my test headline: flag is active";
const INACTIVE: &str = "This is my base headline: flag is inactive";

/// Rocket's configuration with the site's database at `url`, quiet.
fn site_figment(url: &str) -> rocket::figment::Figment {
    rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("log_level", "off"))
}

async fn client(url: &str) -> Client {
    Client::tracked(example_site::custom(site_figment(url)))
        .await
        .expect("the example site ignites")
}

/// A request from a browser (bots are not counted).
fn browser<'c>(request: LocalRequest<'c>) -> LocalRequest<'c> {
    request.header(Header::new("User-Agent", BROWSER))
}

/// A directory for the site's SQLite file, and the database URL of that file (created at
/// first start). The directory goes when dropped.
fn fresh_database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("site.sqlite").display()
    );
    (dir, url)
}

#[tokio::test]
async fn first_start_creates_the_headline_experiment_and_runs_it() {
    let (_dir, url) = fresh_database();

    // A tracked client is one browser: it keeps its cookie.
    let client = client(&url).await;
    let home = browser(client.get("/")).dispatch().await;
    assert_eq!(home.status(), Status::Ok);
    let body = home.into_string().await.unwrap_or_default();
    let shown = match (body.contains(ACTIVE), body.contains(INACTIVE)) {
        (true, false) => "on",
        (false, true) => "off",
        _ => panic!("exactly one headline expected: {body}"),
    };
    assert!(body.contains("href=\"/contact/\""), "{body}");
    for _ in 0..5 {
        let again = browser(client.get("/")).dispatch().await;
        let again = again.into_string().await.unwrap_or_default();
        assert_eq!(
            again.contains(ACTIVE),
            shown == "on",
            "the headline changed"
        );
    }
    let contact = browser(client.get("/contact/")).dispatch().await;
    assert_eq!(contact.status(), Status::Ok);
    drop(contact);
    client.terminate().await;

    let store = Store::connect(&url).await.expect("the site's database");
    let stored = store
        .flag("headline-flag")
        .await
        .expect("created at first start");
    assert_eq!(stored.flag.source_path(), Some("/"));
    assert_eq!(stored.flag.target_path(), Some("/contact/"));
    assert_eq!(stored.flag.policy().label(), "top-two Thompson sampling");
    assert_eq!(
        stored.flag.winner_rule(),
        &bandits::engine::WinnerRule::bayesian()
    );
    let arm = stored.flag.arm_index(shown).expect("the arm shown");
    assert_eq!(stored.totals[arm].views, 1, "one visitor, one view");
    assert_eq!(stored.totals[arm].conversions, 1, "and one conversion");
}

#[tokio::test]
async fn contact_page_is_served_with_and_without_trailing_slash() {
    let (_dir, url) = fresh_database();
    let client = client(&url).await;
    for path in ["/contact", "/contact/"] {
        assert_eq!(
            client.get(path).dispatch().await.status(),
            Status::Ok,
            "{path}"
        );
    }
    assert_eq!(
        client.get("/missing").dispatch().await.status(),
        Status::NotFound
    );
}

#[tokio::test]
async fn a_debug_build_opens_the_api_with_the_example_token() {
    let (_dir, url) = fresh_database();
    let client = client(&url).await;
    let listed = client
        .get("/bandits/api/flags/headline-flag/stats")
        .header(Header::new(
            "Authorization",
            format!("Bearer {}", example_site::EXAMPLE_ADMIN_TOKEN),
        ))
        .dispatch()
        .await;
    assert_eq!(listed.status(), Status::Ok);
    let closed = client.get("/bandits/api/flags").dispatch().await;
    assert_eq!(closed.status(), Status::Unauthorized);
}

#[tokio::test]
async fn the_template_the_split_checkout_and_the_signup_event_count_one_visitor() {
    let (_dir, url) = fresh_database();
    let client = client(&url).await;
    let get = |path: &'static str| browser(client.get(path));

    let home = get("/")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    let cta = match (
        home.contains(">Sign up</a>"),
        home.contains(">Start free today</a>"),
    ) {
        (true, false) => "plain",
        (false, true) => "bold",
        _ => panic!("one call to action expected: {home}"),
    };
    let note = if cta == "bold" {
        "Signing up takes one step."
    } else {
        "Free for small sites."
    };
    assert!(
        home.contains(note),
        "the {{% flag %}} tag shows the arm's note: {home}"
    );

    let checkout = get("/checkout")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    let flow = if checkout.contains("One page") {
        "one-page"
    } else {
        "classic"
    };
    for _ in 0..5 {
        let again = get("/checkout")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap_or_default();
        assert_eq!(
            again.contains("One page"),
            flow == "one-page",
            "the flow changed"
        );
    }
    for path in ["/signup", "/checkout"] {
        let posted = browser(client.post(path)).dispatch().await;
        assert_eq!(posted.status(), Status::Ok, "{path}");
    }
    client.terminate().await;

    let store = Store::connect(&url).await.expect("the site's database");
    for (flag, arm) in [("signup-cta", cta), ("checkout-flow", flow)] {
        let stored = store.flag(flag).await.expect("created at first start");
        let index = stored.flag.arm_index(arm).expect("the arm shown");
        assert_eq!(
            (stored.totals[index].views, stored.totals[index].conversions),
            (1, 1),
            "{flag}: one view and one conversion of {arm}"
        );
    }
}

/// The two ways the benchmark runs the site: without the plugin, and with many flags.
#[tokio::test]
async fn the_benchmark_setups_run_without_the_plugin_and_with_a_thousand_flags() {
    use example_site::Setup;

    let (dir, url) = fresh_database();
    let figment = || site_figment(&url);

    // Detached: the same pages, every flag inactive, no cookie, no admin, no database.
    let detached = Setup::parse(Some("off"), None).expect("a valid setup");
    let client = Client::untracked(example_site::assemble(figment(), detached))
        .await
        .expect("the site ignites without the plugin");
    for path in ["/", "/contact/"] {
        let page = browser(client.get(path)).dispatch().await;
        assert_eq!(page.status(), Status::Ok, "{path}");
        assert_eq!(page.cookies().iter().count(), 0, "{path} set a cookie");
        let body = page.into_string().await.unwrap_or_default();
        assert_eq!(path == "/", body.contains(INACTIVE), "{path}: {body}");
    }
    let admin = client.get("/bandits/api/flags").dispatch().await.status();
    assert_eq!(admin, Status::NotFound);
    client.terminate().await;
    assert!(
        !dir.path().join("site.sqlite").exists(),
        "the detached site opened the database"
    );

    // A thousand flags: headline-flag on `/` and 999 on pages of their own.
    let many = Setup::parse(None, Some("1000")).expect("a valid setup");
    let client = Client::untracked(example_site::assemble(figment(), many))
        .await
        .expect("the site ignites with a thousand flags");
    let home = browser(client.get("/")).dispatch().await;
    assert_eq!(home.status(), Status::Ok);
    assert!(home.cookies().get("bandits").is_some(), "no visitor cookie");
    drop(home);
    client.terminate().await;
    let store = Store::connect(&url).await.expect("the database opens");
    let snapshot = store.snapshot().await.expect("the flags read");
    assert_eq!(snapshot.flags.len(), 1_000);
    let headline = store
        .flag("headline-flag")
        .await
        .expect("headline-flag exists");
    let views: u64 = headline.totals.iter().map(|totals| totals.views).sum();
    assert_eq!(views, 1, "the one visit of `/` counted once");
    assert!(
        store.flag("signup-cta").await.is_err(),
        "only the flags asked for"
    );
}
