//! The example site: a small Rocket application running three experiments, one for each
//! way a site shows a variant.
//!
//! - `headline-flag` (the seed's demo): `/` shows one of two headlines through the Tera
//!   function `flag(name=...)`; `/contact/` is the goal.
//! - `signup-cta`: the sign-up link's wording on `/` comes from the arm's JSON payload,
//!   and the goal is the event `signup`, fired from code when the form on `/signup` is sent.
//! - `checkout-flow`: `/checkout` is split into two handlers with `#[flag_variant]`; the
//!   goal is the event `purchase`.
//!
//! At first start the site creates the three flags in its database, an SQLite file
//! `bandits.sqlite` in the working directory, so `cargo run -p example-site` shows working
//! experiments at once. In debug builds, when no `bandits.admin_token` is configured, the
//! site uses [`EXAMPLE_ADMIN_TOKEN`] so the README's `curl` examples work as they are.

use bandits::engine::{Arm, Flag, FlagDefinition, Policy};
use bandits::{flag_variant, Bandits, Flags};
use bandits_tera::FlagTemplate;
use rocket::figment::Figment;
use rocket::response::content::RawHtml;
use rocket::{get, post, routes, Build, Rocket};
use rocket_dyn_templates::context;

/// The admin token of a debug build of the example site without one configured. Never use
/// a token written in source code on a real site.
pub const EXAMPLE_ADMIN_TOKEN: &str = "example-site-admin-token";

/// The experiment of the quick start: epsilon-greedy between `off` (the control) and `on`,
/// shown on `/`, converting on `/contact/`.
pub fn headline_flag() -> Flag {
    FlagDefinition {
        note: "Which headline makes visitors open the contact page?".into(),
        ..FlagDefinition::new("headline-flag")
            .with_policy(Policy::epsilon_greedy())
            .with_paths("/", "/contact/")
    }
    .validate()
    .expect("the built-in flag definition is valid")
}

/// The sign-up link's wording, from each arm's payload; converts on the `signup` event.
pub fn signup_flag() -> Flag {
    let label = |text: &str| rocket::serde::json::json!({ "label": text });
    FlagDefinition {
        note: "Which call to action gets more sign-ups?".into(),
        arms: vec![
            Arm::new("plain").with_payload(label("Sign up")),
            Arm::new("bold").with_payload(label("Start free today")),
        ],
        source_path: Some("/".into()),
        goal_event: Some("signup".into()),
        ..FlagDefinition::new("signup-cta").with_policy(Policy::thompson())
    }
    .validate()
    .expect("the built-in flag definition is valid")
}

/// Two checkout flows, one handler each; converts on the `purchase` event.
pub fn checkout_flag() -> Flag {
    FlagDefinition {
        note: "Does a one-page checkout sell more?".into(),
        source_path: Some("/checkout".into()),
        goal_event: Some("purchase".into()),
        ..FlagDefinition::new("checkout-flow")
            .with_arms(["classic", "one-page"])
            .with_policy(Policy::thompson())
    }
    .validate()
    .expect("the built-in flag definition is valid")
}

/// The site on Rocket's configuration (Rocket.toml, `ROCKET_*` variables), ready to launch.
pub fn rocket() -> Rocket<Build> {
    custom(rocket::Config::figment())
}

/// The site on the configuration `figment`, for tests and embedding.
pub fn custom(mut figment: Figment) -> Rocket<Build> {
    if cfg!(debug_assertions) && !figment.contains("bandits.admin_token") {
        figment = figment.merge(("bandits.admin_token", EXAMPLE_ADMIN_TOKEN));
    }
    if !figment.contains("template_dir") {
        // The templates live in the crate, wherever `cargo run` is started from.
        figment = figment.merge((
            "template_dir",
            concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
        ));
    }
    let bandits = Bandits::fairing()
        .with_flag(headline_flag())
        .with_flag(signup_flag())
        .with_flag(checkout_flag());
    rocket::custom(figment)
        .attach(bandits)
        .attach(bandits_tera::fairing())
        .mount(
            "/",
            routes![
                index,
                contact,
                signup_form,
                signup,
                checkout_one_page,
                checkout_classic,
                purchase
            ],
        )
}

/// The headline each arm of `headline-flag` shows.
pub fn headline(active: bool) -> &'static str {
    if active {
        "This is my test headline: flag is active"
    } else {
        "This is my base headline: flag is inactive"
    }
}

#[get("/")]
fn index() -> FlagTemplate {
    FlagTemplate::render("index", context! {})
}

fn page(title: &str, body: &str) -> RawHtml<String> {
    RawHtml(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n<body><h1>{title}</h1>{body}\
         <p><a href=\"/\">Home</a></p></body></html>\n"
    ))
}

#[get("/contact")]
fn contact() -> RawHtml<String> {
    page(
        "Contact",
        "<p>The goal page of the headline experiment.</p>",
    )
}

#[get("/signup")]
fn signup_form() -> RawHtml<String> {
    page(
        "Sign up",
        "<form method=\"post\" action=\"/signup\"><button>Create my account</button></form>",
    )
}

#[post("/signup")]
fn signup(flags: Flags<'_>) -> RawHtml<String> {
    // The goal of signup-cta: counted once per visitor who saw the link on `/`.
    flags.convert("signup");
    page("Welcome", "<p>Your account is ready.</p>")
}

/// Visitors on the `one-page` arm of `checkout-flow`.
#[flag_variant("checkout-flow", arm = "one-page")]
#[get("/checkout")]
fn checkout_one_page() -> RawHtml<String> {
    page(
        "Checkout",
        "<p class=\"flow\">One page: address, card, done.</p>\
         <form method=\"post\" action=\"/checkout\"><button>Pay</button></form>",
    )
}

/// Everyone else: the control arm.
#[get("/checkout")]
fn checkout_classic() -> RawHtml<String> {
    page(
        "Checkout",
        "<p class=\"flow\">Step 1 of 3: your address.</p>\
         <form method=\"post\" action=\"/checkout\"><button>Continue</button></form>",
    )
}

#[post("/checkout")]
fn purchase(flags: Flags<'_>) -> RawHtml<String> {
    flags.convert("purchase");
    page("Thank you", "<p>Your order is on its way.</p>")
}
