//! bandits-tera and #[flag_variant] as a site uses them: templates, the guard, split
//! handlers and the counters all agree on every visitor's arm, on SQLite and (with
//! BANDITS_TEST_POSTGRES_URL) PostgreSQL.

use std::collections::HashMap;

use bandits::engine::{Arm, Flag, FlagDefinition, Policy};
use bandits::{flag_variant, Bandits, Flags};
use bandits_integration_tests::browser::{totals, Visitor, SECRET_KEY};
use bandits_integration_tests::each_database;
use bandits_tera::FlagTemplate;
use rocket::form::Form;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::serde::json::json;
use rocket::{get, post, routes, FromForm};
use rocket_dyn_templates::{context, Template};

/// The guard reads first, then the template: both must show the same arm.
#[get("/guard-then-template")]
fn guard_then_template(flags: Flags<'_>) -> FlagTemplate {
    let guard = flags.variant("tpl").unwrap_or_default();
    FlagTemplate::render("page", context! { guard })
}

/// Only the template reads the flag.
#[get("/template-first")]
fn template_first() -> FlagTemplate {
    FlagTemplate::render("page", context! { guard: "-" })
}

/// The visitor's browser-readable flags, inline: `{{ bandits_script() }}`.
#[get("/script")]
fn script(flags: Flags<'_>) -> FlagTemplate {
    let _ = flags.variant("tpl");
    FlagTemplate::render("script", context! {})
}

/// The set-up forgotten: a plain Template.
#[get("/plain")]
fn plain() -> Template {
    Template::render("page", context! { guard: "-" })
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

/// Three arms, two split handlers and the plain sibling on one path.
#[flag_variant("three", arm = "b")]
#[get("/three")]
fn three_b() -> &'static str {
    "b"
}

#[flag_variant("three", arm = "c")]
#[get("/three")]
fn three_c() -> &'static str {
    "c"
}

#[get("/three")]
fn three_a() -> &'static str {
    "a"
}

#[derive(FromForm)]
struct Order {
    quantity: u32,
}

/// Beside a data guard and another request guard, under #[post].
#[flag_variant("checkout-flow", arm = "one-page")]
#[post("/order", data = "<order>")]
fn order_one_page(flags: Flags<'_>, order: Form<Order>) -> String {
    format!(
        "one-page:{}:{}",
        order.quantity,
        flags.variant("checkout-flow").unwrap_or_default()
    )
}

#[post("/order", data = "<order>")]
fn order_classic(order: Form<Order>) -> String {
    format!("classic:{}", order.quantity)
}

/// Everyone enters arm `on` (weights 0:1).
#[flag_variant("all-in", arm = "on")]
#[get("/all-in")]
fn all_in_on() -> &'static str {
    "on"
}

#[get("/all-in")]
fn all_in_off() -> &'static str {
    "off"
}

fn flags() -> Vec<Flag> {
    let valid = |definition: FlagDefinition| definition.validate().expect("a valid test flag");
    vec![
        valid(FlagDefinition {
            arms: vec![
                Arm::new("off").with_payload(json!({ "label": "<b>Plain</b>" })),
                Arm::new("on").with_payload(json!({ "label": "Bold" })),
            ],
            client_side: true,
            ..FlagDefinition::new("tpl").with_policy(Policy::even_split(2))
        }),
        valid(
            FlagDefinition::new("checkout-flow")
                .with_arms(["classic", "one-page"])
                .with_policy(Policy::even_split(2)),
        ),
        valid(
            FlagDefinition::new("three")
                .with_arms(["a", "b", "c"])
                .with_policy(Policy::even_split(3)),
        ),
        valid(FlagDefinition::new("all-in").with_policy(Policy::Split {
            weights: vec![0.0, 1.0],
        })),
        // Everyone sees the control, so the branch behind `flag("none")` is never taken
        // and `secret`, read only there, must stay untouched.
        valid(FlagDefinition::new("none").with_policy(Policy::Split {
            weights: vec![1.0, 0.0],
        })),
        valid(FlagDefinition::new("secret").with_policy(Policy::even_split(2))),
    ]
}

async fn start(url: &str) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.flush_interval_ms", 60_000))
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
                guard_then_template,
                template_first,
                script,
                plain,
                all,
                checkout_one_page,
                checkout_classic,
                three_b,
                three_c,
                three_a,
                order_one_page,
                order_classic,
                all_in_on,
                all_in_off
            ],
        );
    Client::untracked(rocket).await.expect("the site ignites")
}

/// The page's `key:value` fields.
fn fields(body: &str) -> HashMap<&str, &str> {
    body.trim()
        .split('|')
        .filter_map(|field| field.split_once(':'))
        .collect()
}

/// The arm of `flag` the visitor holds, per the guard's Display.
async fn held(visitor: &mut Visitor, client: &Client, flag: &str) -> Option<String> {
    let all = visitor.get(client, "/all").await.body;
    all.split(',')
        .find_map(|item| item.strip_prefix(&format!("{flag}:")).map(str::to_string))
}

#[tokio::test]
async fn template_guard_and_counters_agree_for_a_hundred_visitors() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut per_arm: HashMap<String, u64> = HashMap::new();
        for _ in 0..100 {
            let mut visitor = Visitor::browser();
            let first = visitor.get(&client, "/guard-then-template").await;
            assert_eq!(first.status, Status::Ok);
            let page = fields(&first.body);
            let arm = page["variant"].to_string();
            assert_eq!(
                page["guard"], arm,
                "guard and template differ: {}",
                first.body
            );
            let (active, block, label) = if arm == "on" {
                ("active", "<i>ON</i>", "Bold")
            } else {
                ("inactive", "<i>OFF</i>", "&lt;b&gt;Plain&lt;&#x2F;b&gt;")
            };
            // Plain Tera, waffle's tag with and without else, and the one-liner agree.
            for form in ["template", "tag", "oneliner"] {
                assert_eq!(page[form], active, "{form}: {}", first.body);
            }
            assert_eq!(page["tagonly"], block, "{}", first.body);
            assert_eq!(page["positional"], arm, "{}", first.body);
            assert_eq!(page["label"], label, "{}", first.body);
            assert_eq!(page["hidden"], "-", "{}", first.body);
            assert_eq!(
                page["ejs"], "<%= name %> <% if (user) { %>",
                "other `<%` text is shown as written"
            );
            assert_eq!(page["raw"], "{% flag \"tpl\" %}");
            assert_eq!(held(&mut visitor, &client, "secret").await, None);
            assert_eq!(
                page["payload"], label,
                "payloads are escaped: {}",
                first.body
            );
            assert_eq!(
                page["field"], label,
                "a member read with key= is the same, escaped too: {}",
                first.body
            );
            assert_eq!(
                page["nomember"], "none",
                "a missing member gives the default"
            );
            assert_eq!(page["nopayload"], "fallback", "so does an unknown flag");
            assert_eq!(page["unknown"], "false");
            // Sticky, and the same through a page that reads it in the template only.
            let again = visitor.get(&client, "/template-first").await.body;
            assert_eq!(fields(&again)["variant"], arm);
            assert_eq!(
                held(&mut visitor, &client, "tpl").await.as_deref(),
                Some(arm.as_str())
            );
            *per_arm.entry(arm).or_default() += 1;
        }
        assert_eq!(
            per_arm.len(),
            2,
            "an even split over 100 visitors shows both arms"
        );
        client.terminate().await;
        let stored = totals(&store, "tpl").await;
        for (arm, visitors) in &per_arm {
            assert_eq!(stored[arm].0, *visitors, "views of {arm}: {stored:?}");
        }
        let secret = totals(&store, "secret").await;
        assert!(
            secret.values().all(|(views, _)| *views == 0),
            "a flag read only in branches not taken is never counted: {secret:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_flag_first_read_in_a_template_is_assigned_and_sticks() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let first = visitor.get(&client, "/template-first").await;
        assert!(
            first.set_cookie.is_some(),
            "the template's read is remembered"
        );
        let arm = fields(&first.body)["variant"].to_string();
        for _ in 0..10 {
            let again = visitor.get(&client, "/template-first").await.body;
            assert_eq!(fields(&again)["variant"], arm);
        }
        assert_eq!(held(&mut visitor, &client, "tpl").await, Some(arm));
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_plain_template_reads_every_flag_as_false_without_failing() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let page = visitor.get(&client, "/plain").await;
        assert_eq!(page.status, Status::Ok, "{}", page.body);
        let page = fields(&page.body);
        assert_eq!(page["template"], "inactive");
        assert_eq!(page["tag"], "inactive");
        assert_eq!(page["tagonly"], "<i>OFF</i>");
        assert_eq!(page["payload"], "");
        assert_eq!(
            page["field"], "none",
            "the default, without the visitor's flags"
        );
        assert_eq!(page["nopayload"], "fallback");
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn each_split_handler_serves_only_its_arm_and_the_split_follows_the_policy() {
    each_database(|store, url| async move {
        let client = start(&url).await;
        let mut served: HashMap<String, u64> = HashMap::new();
        let mut three: HashMap<String, u64> = HashMap::new();
        for i in 0..100 {
            let mut visitor = Visitor::browser();
            let handler = visitor.get(&client, "/checkout").await.body;
            let arm = held(&mut visitor, &client, "checkout-flow").await;
            assert_eq!(
                arm.as_deref(),
                Some(handler.as_str()),
                "handler and arm differ"
            );
            for _ in 0..3 {
                assert_eq!(visitor.get(&client, "/checkout").await.body, handler);
            }
            let order = client
                .post("/order")
                .header(rocket::http::ContentType::Form)
                .header(rocket::http::Header::new(
                    "User-Agent",
                    bandits_integration_tests::browser::BROWSER,
                ))
                .cookie(rocket::http::Cookie::new(
                    "bandits",
                    visitor.cookie.clone().unwrap_or_default(),
                ))
                .body(format!("quantity={i}"))
                .dispatch()
                .await;
            let order = order.into_string().await.unwrap_or_default();
            let expected = if handler == "one-page" {
                format!("one-page:{i}:one-page")
            } else {
                format!("classic:{i}")
            };
            assert_eq!(order, expected);
            *served.entry(handler).or_default() += 1;

            let mut other = Visitor::browser();
            let letter = other.get(&client, "/three").await.body;
            assert_eq!(
                held(&mut other, &client, "three").await.as_deref(),
                Some(letter.as_str())
            );
            *three.entry(letter).or_default() += 1;

            assert_eq!(Visitor::browser().get(&client, "/all-in").await.body, "on");
        }
        assert_eq!(
            served.len(),
            2,
            "an even split shows both handlers: {served:?}"
        );
        assert_eq!(three.len(), 3, "three arms, three handlers: {three:?}");
        client.terminate().await;
        // The flags have no source path: the split handler's read counted each visitor.
        let stored = totals(&store, "checkout-flow").await;
        for (arm, visitors) in &served {
            assert_eq!(stored[arm].0, *visitors, "views of {arm}: {stored:?}");
        }
        assert_eq!(totals(&store, "all-in").await["on"].0, 100);
        assert_eq!(totals(&store, "all-in").await["off"].0, 0);
    })
    .await;
}

#[test]
fn misuse_is_a_compile_error_at_the_offending_token() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}

#[tokio::test]
async fn a_page_carries_its_browser_flags_inline_and_escaped() {
    each_database(|_store, url| async move {
        let client = start(&url).await;
        let mut visitor = Visitor::browser();
        let page = visitor.get(&client, "/script").await;
        assert_eq!(page.status, Status::Ok);
        let arm = held(&mut visitor, &client, "tpl").await.expect("an arm");
        let body = page.body.trim();
        assert!(
            body.starts_with("<script>") && body.ends_with("</script>"),
            "{body}"
        );
        assert_eq!(
            body.matches("</script>").count(),
            1,
            "nothing ends it early"
        );
        assert!(body.contains("window.bandits"));
        assert!(
            body.contains(&format!("\"variant\":\"{arm}\"")),
            "the arm the guard gave: {body}"
        );
        if arm == "off" {
            assert!(body.contains("\\u003cb\\u003ePlain"), "{body}");
        }
        assert!(
            !body.contains("secret"),
            "flags not opted in stay on the server"
        );
        client.terminate().await;
    })
    .await;
}
