//! The example site: a small Rocket application running four experiments, one for each
//! way a site shows a variant.
//!
//! - `headline-flag` (the seed's demo): `/` shows one of two headlines through django-
//!   waffle's tag `{% flag "headline-flag" %}`; `/contact/` is the goal.
//! - `signup-cta`: the sign-up link's wording on `/` comes from the arm's JSON payload,
//!   and the goal is the event `signup`, fired from code when the form on `/signup` is sent.
//! - `checkout-flow`: `/checkout` is split into two handlers with `#[flag_variant]`; the
//!   goal is the event `purchase`.
//! - `pricing-layout`: `/pricing` is rendered in the browser from `/bandits/flags.js`
//!   (the flag is `client_side`); its "Buy" button fires the goal event `buy` with
//!   `bandits.convert("buy")`.
//!
//! - a referral partner, `Example partner` ([`partner`]): a visitor who arrives through
//!   its link (`/?affiliate_id=<uid>`, the uid in the startup log and on
//!   `/partner-receiver`) and then signs up fires the trigger "User registered", declared
//!   in the site's configuration (`POST /signup` answered 2xx or 3xx, no code in the
//!   handler); the partner's callback goes to a receiver the site serves itself under the
//!   excluded path `/partner-receiver`, whose page shows the callbacks received.
//!
//! At first start the site creates the four flags, the partner and its subscription in
//! its database (a later start finds them and creates nothing twice), an SQLite file
//! `bandits.sqlite` in the working directory, so `cargo run -p example-site` shows working
//! experiments at once. In debug builds, when no `bandits.admin_token` is configured, the
//! site uses [`EXAMPLE_ADMIN_TOKEN`] so the README's `curl` examples work as they are.

use bandits::engine::{Arm, Flag, FlagDefinition, Policy, WinnerRule};
use bandits::{flag_variant, Bandits, Flags};
use bandits_tera::FlagTemplate;
use rocket::figment::Figment;
use rocket::response::content::RawHtml;
use rocket::{get, post, routes, Build, Rocket};
use rocket_dyn_templates::context;

pub mod partner;

/// The admin token of a debug build of the example site without one configured. Never use
/// a token written in source code on a real site.
pub const EXAMPLE_ADMIN_TOKEN: &str = "example-site-admin-token";

/// The experiment of the quick start, between `off` (the control) and `on`, shown on `/`,
/// converting on `/contact/`: top-two Thompson sampling with the Bayesian winner rule, the
/// pair that in our simulations ends an experiment with an answer soonest (a median of
/// about 4,000 visitors when one headline converts at 5% and the other at 4%) while
/// losing no more conversions than Thompson sampling alone (`docs/benchmarks.md`).
pub fn headline_flag() -> Flag {
    FlagDefinition {
        note: "Which headline makes visitors open the contact page?".into(),
        ..FlagDefinition::new("headline-flag")
            .with_policy(Policy::top_two_thompson())
            .with_winner_rule(WinnerRule::bayesian())
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

/// The price table's layout, read in the browser: `/pricing` renders itself from
/// `/bandits/flags.js`, and its "Buy" button fires the goal event `buy` with
/// `bandits.convert("buy")`. Each arm's payload says how many columns and which plan to
/// highlight.
pub fn pricing_flag() -> Flag {
    let layout = |columns: u8, highlight: &str| rocket::serde::json::json!({ "columns": columns, "highlight": highlight });
    FlagDefinition {
        note: "Which price table sells more? Rendered in the browser from flags.js.".into(),
        client_side: true,
        arms: vec![
            Arm::new("table").with_payload(layout(3, "pro")),
            Arm::new("cards").with_payload(layout(1, "team")),
        ],
        source_path: Some("/pricing".into()),
        goal_event: Some("buy".into()),
        ..FlagDefinition::new("pricing-layout").with_policy(Policy::thompson())
    }
    .validate()
    .expect("the built-in flag definition is valid")
}

/// How the site is put together. The default is the site as shipped; the benchmark
/// (`scripts/bench.sh`) varies it through two environment variables read by
/// [`Setup::from_env`]:
///
/// | variable | values | default |
/// |---|---|---|
/// | `EXAMPLE_SITE_BANDITS` | `on`, or `off` for the site without the plugin (every flag reads inactive) | `on` |
/// | `EXAMPLE_SITE_FLAGS` | a number N: `headline-flag` on `/` and N - 1 more flags on other pages, instead of the four experiments | the four experiments |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Whether the `Bandits` fairing is attached.
    pub attached: bool,
    /// `Some(n)`: `headline-flag` and n - 1 generated flags instead of the four experiments.
    pub flags: Option<usize>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            attached: true,
            flags: None,
        }
    }
}

impl Setup {
    /// The setup the environment asks for, or what is wrong with it.
    pub fn from_env() -> Result<Setup, String> {
        Setup::parse(
            std::env::var("EXAMPLE_SITE_BANDITS").ok().as_deref(),
            std::env::var("EXAMPLE_SITE_FLAGS").ok().as_deref(),
        )
    }

    /// The setup of the two variables' values (`None`: unset).
    pub fn parse(bandits: Option<&str>, flags: Option<&str>) -> Result<Setup, String> {
        let attached = match bandits.map(str::trim) {
            None | Some("") | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(format!(
                    "EXAMPLE_SITE_BANDITS must be `on` or `off`, got {other:?}"
                ))
            }
        };
        let flags = match flags.map(str::trim) {
            None | Some("") => None,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => Some(n),
                _ => {
                    return Err(format!(
                    "EXAMPLE_SITE_FLAGS must be a number of flags from 1 to 100000, got {text:?}"
                ))
                }
            },
        };
        Ok(Setup { attached, flags })
    }

    /// The flags the site defines in code.
    pub fn flags(&self) -> Vec<Flag> {
        match self.flags {
            None => vec![
                headline_flag(),
                signup_flag(),
                checkout_flag(),
                pricing_flag(),
            ],
            Some(n) => std::iter::once(headline_flag())
                .chain((1..n).map(filler_flag))
                .collect(),
        }
    }
}

/// Flag number `i` of a site with many: shown on `/bench/<i>`, converting on
/// `/bench/<i>/done`; no request of the benchmark touches it.
fn filler_flag(i: usize) -> Flag {
    FlagDefinition::new(format!("bench-flag-{i}"))
        .with_policy(Policy::thompson())
        .with_paths(format!("/bench/{i}"), format!("/bench/{i}/done"))
        .validate()
        .expect("the generated flag definition is valid")
}

/// The site on Rocket's configuration (Rocket.toml, `ROCKET_*` variables) and the
/// [`Setup`] of the environment, ready to launch.
pub fn rocket() -> Result<Rocket<Build>, String> {
    Ok(assemble(rocket::Config::figment(), Setup::from_env()?))
}

/// Runs the site as `cargo run -p example-site` does, until it is shut down (Ctrl-C or
/// SIGTERM): exit code 2 for a wrong [`Setup`] in the environment, 1 when Rocket cannot
/// launch (it logs why: a wrong configuration key, a port in use).
pub async fn run() -> std::process::ExitCode {
    let rocket = match rocket() {
        Ok(rocket) => rocket,
        Err(problem) => {
            eprintln!("example-site: {problem}");
            return std::process::ExitCode::from(2);
        }
    };
    match rocket.launch().await {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("example-site: {}", error.pretty_print());
            std::process::ExitCode::FAILURE
        }
    }
}

/// The site as shipped on the configuration `figment`, for tests and embedding.
pub fn custom(figment: Figment) -> Rocket<Build> {
    assemble(figment, Setup::default())
}

/// The site on the configuration `figment`, put together as `setup` says.
pub fn assemble(mut figment: Figment, setup: Setup) -> Rocket<Build> {
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
    if !figment.contains("bandits.triggers") {
        figment = figment.merge((
            "bandits.triggers",
            rocket::serde::json::json!([{
                "name": partner::TRIGGER,
                "method": "POST",
                "path": "/signup",
                "status": ["2xx", "3xx"],
            }]),
        ));
    }
    if !figment.contains("bandits.exclude_prefixes") {
        // The site's own partner receiver: a callback received counts nothing.
        figment = figment.merge(("bandits.exclude_prefixes", [partner::RECEIVER_PREFIX]));
    }
    let mut rocket = rocket::custom(figment);
    if setup.attached {
        let bandits = setup
            .flags()
            .into_iter()
            .fold(Bandits::fairing(), |bandits, flag| bandits.with_flag(flag));
        rocket = rocket.attach(bandits).attach(partner::fairing());
    }
    rocket
        .attach(bandits_tera::fairing())
        .manage(partner::PartnerUid::default())
        .manage(partner::ReceivedCalls::default())
        .mount(partner::RECEIVER_PREFIX, partner::routes())
        .mount(
            "/",
            routes![
                index,
                contact,
                signup_form,
                signup,
                checkout_one_page,
                checkout_classic,
                purchase,
                pricing
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
    // The goal of signup-cta: counted once per visitor who saw the link on `/`. The
    // partners' trigger "User registered" needs no line here: the configuration ties it to
    // this request.
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

/// The price table, rendered in the browser: the page is the same for every visitor, and
/// its script reads the layout from `window.bandits`, which `/bandits/flags.js` defines;
/// `?page=/pricing` counts the visit there, for a page whose HTML a cache or a CDN might
/// serve.
#[get("/pricing")]
fn pricing() -> RawHtml<&'static str> {
    RawHtml(include_str!("pricing.html"))
}

#[cfg(test)]
mod tests {
    use super::Setup;

    #[test]
    fn the_environment_chooses_the_setup() {
        assert_eq!(Setup::parse(None, None), Ok(Setup::default()));
        assert_eq!(Setup::parse(Some("on"), Some("")), Ok(Setup::default()));
        let detached = Setup::parse(Some("off"), None).expect("valid");
        assert!(!detached.attached);
        let one = Setup::parse(None, Some("1")).expect("valid");
        let names: Vec<String> = one.flags().iter().map(|f| f.name().to_string()).collect();
        assert_eq!(names, ["headline-flag"]);
        let many = Setup::parse(None, Some(" 1000 ")).expect("valid");
        let flags = many.flags();
        assert_eq!(flags.len(), 1000);
        assert_eq!(
            flags
                .iter()
                .filter(|f| f.source_path() == Some("/"))
                .count(),
            1
        );
        assert_eq!(Setup::default().flags().len(), 4);
        for (bandits, flags) in [
            (Some("yes"), None),
            (None, Some("0")),
            (None, Some("many")),
            (None, Some("-1")),
            (None, Some("100001")),
        ] {
            let problem = Setup::parse(bandits, flags).expect_err("refused");
            assert!(problem.starts_with("EXAMPLE_SITE_"), "{problem}");
        }
    }
}
