//! Reading a flag that does not exist logs one warning per name, whoever reads it: the
//! `Flags` guard in a route or a template through bandits-tera. In a test binary of its
//! own, because it installs the process's logger before Rocket does.

use bandits::{Bandits, Flags};
use bandits_integration_tests::browser::{Visitor, SECRET_KEY};
use bandits_integration_tests::{each_database, log_capture};
use bandits_tera::FlagTemplate;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use rocket_dyn_templates::context;

#[get("/guard/<name>")]
fn guard(flags: Flags<'_>, name: &str) -> String {
    flags.is_active(name).to_string()
}

#[get("/template")]
fn template() -> FlagTemplate {
    FlagTemplate::render("unknown", context! {})
}

/// The warning's words, as a site owner finds them in the log.
const WARNING: &str = "no flag named";

#[tokio::test]
async fn an_unknown_flag_is_warned_about_once_per_name() {
    log_capture::install();
    each_database(|_store, url| async move {
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", url.as_str()))
            .merge((
                "template_dir",
                concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
            ))
            .merge(("secret_key", SECRET_KEY));
        // A site's own customisation, beside the flag functions.
        let templates = bandits_tera::custom(|engines| {
            engines
                .tera
                .add_raw_template(
                    "unknown",
                    "{% if flag(name='missing-in-template') %}on{% else %}off{% endif %}",
                )
                .expect("the template parses");
        });
        let rocket = rocket::custom(figment)
            .attach(Bandits::fairing())
            .attach(templates)
            .mount("/", routes![guard, template]);
        let client = Client::untracked(rocket).await.expect("the site ignites");
        log_capture::clear();
        for _ in 0..3 {
            let mut visitor = Visitor::browser();
            for path in [
                "/guard/missing-in-guard",
                "/guard/missing-in-guard",
                "/guard/also-missing",
                "/template",
                "/template",
            ] {
                let page = visitor.get(&client, path).await;
                assert_eq!(page.status, Status::Ok, "{path}");
                assert!(
                    matches!(page.body.as_str(), "false" | "off"),
                    "{path}: an unknown flag reads as inactive, got {:?}",
                    page.body
                );
            }
        }
        client.terminate().await;
        for name in ["missing-in-guard", "also-missing", "missing-in-template"] {
            let warnings: Vec<String> = log_capture::containing(&format!("{name:?}"))
                .into_iter()
                .filter(|line| line.contains(WARNING))
                .collect();
            assert_eq!(warnings.len(), 1, "{name}: {warnings:#?}");
        }
    })
    .await;
}
