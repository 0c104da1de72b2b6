//! The example site: a small Rocket application running the `headline-flag` experiment of
//! the quick start.
//!
//! `/` shows one of two headlines, by the visitor's arm of `headline-flag`; `/contact/` is
//! the goal. At first start the site creates the flag (epsilon-greedy between `off`, the
//! control, and `on`) in its database, an SQLite file `bandits.sqlite` in the working
//! directory, so `cargo run -p example-site` shows a working experiment at once.
//!
//! In debug builds, when no `bandits.admin_token` is configured, the site uses
//! [`EXAMPLE_ADMIN_TOKEN`] so the README's `curl` examples work as they are.

use bandits::engine::{Flag, FlagDefinition, Policy};
use bandits::{Bandits, Flags};
use rocket::figment::Figment;
use rocket::response::content::RawHtml;
use rocket::{get, routes, Build, Rocket};

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

/// The site on Rocket's configuration (Rocket.toml, `ROCKET_*` variables), ready to launch.
pub fn rocket() -> Rocket<Build> {
    custom(rocket::Config::figment())
}

/// The site on the configuration `figment`, for tests and embedding.
pub fn custom(figment: Figment) -> Rocket<Build> {
    let figment = if cfg!(debug_assertions) && !figment.contains("bandits.admin_token") {
        figment.merge(("bandits.admin_token", EXAMPLE_ADMIN_TOKEN))
    } else {
        figment
    };
    rocket::custom(figment)
        .attach(Bandits::fairing().with_flag(headline_flag()))
        .mount("/", routes![index, contact])
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
fn index(flags: Flags<'_>) -> RawHtml<String> {
    let headline = headline(flags.is_active("headline-flag"));
    RawHtml(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>rocket-bandits example site</title></head>\n<body>\
         <h1>{headline}</h1>\
         <p>Each new visitor is given an arm of <code>headline-flag</code> and keeps it. \
         Visitors who go on to the contact page count as conversions, and the bandit sends \
         more visitors to the headline that converts best.</p>\
         <p><a href=\"/contact/\">Contact us</a></p>\
         </body></html>\n"
    ))
}

#[get("/contact")]
fn contact() -> RawHtml<&'static str> {
    RawHtml(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Contact</title></head>\n<body><h1>Contact</h1>\
         <p>The goal page of the headline experiment.</p>\
         <p><a href=\"/\">Home</a></p></body></html>\n",
    )
}
