//! The example site: a small Rocket application that will run the `headline-flag`
//! experiment of the quick start.
//!
//! Until the tracking fairing lands, `/` is a placeholder that shows the flag the site
//! will create at first start, validated by the engine, so `cargo run -p example-site`
//! already exercises the library.

use bandits::engine::{Flag, FlagDefinition, Policy};
use rocket::response::content::RawHtml;
use rocket::{get, routes, Build, Rocket};

/// The experiment of the quick start: epsilon-greedy between `off` (the control) and `on`.
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

/// The site, ready to launch.
pub fn rocket() -> Rocket<Build> {
    rocket::build().mount("/", routes![index, contact])
}

#[get("/")]
fn index() -> RawHtml<String> {
    let flag = headline_flag();
    let arms: Vec<&str> = flag.arms().iter().map(|arm| arm.name.as_str()).collect();
    RawHtml(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>rocket-bandits example site</title></head>\n<body>\
         <h1>rocket-bandits example site</h1>\
         <p>This page is a placeholder: the tracking fairing that will show \
         <code>{name}</code>'s headline here is not attached yet.</p>\
         <p>The experiment it will run: arms <code>{arms}</code> (control <code>{control}</code>), \
         policy {policy}, winner rule {rule}, shown on <code>{source}</code>, \
         goal <code>{target}</code>.</p>\
         <p><a href=\"/contact/\">Contact us</a></p>\
         </body></html>\n",
        name = flag.name(),
        arms = arms.join(", "),
        control = flag.control().name,
        policy = flag.policy().label(),
        rule = flag.winner_rule().label(),
        source = flag.source_path().unwrap_or("any page"),
        target = flag.target_path().unwrap_or("none"),
    ))
}

#[get("/contact")]
fn contact() -> RawHtml<&'static str> {
    RawHtml(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Contact</title></head>\n<body><h1>Contact</h1>\
         <p>The goal page of the headline experiment.</p>\
         <p><a href=\"/\">Home</a></p></body></html>\n",
    )
}
