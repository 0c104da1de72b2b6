//! bandits-tera's template files as a site author meets them: a mistake stops the launch
//! with the author's file and line, and an edited template is seen without a restart in a
//! debug build. In a binary of its own: it installs the process's logger before Rocket does.

use std::path::Path;

use bandits_integration_tests::{eventually, log_capture};
use rocket::local::asynchronous::Client;
use rocket_dyn_templates::{context, Template};

#[rocket::get("/<name..>")]
fn page(name: std::path::PathBuf) -> Template {
    Template::render(name.to_string_lossy().into_owned(), context! {})
}

fn site(dir: &Path) -> rocket::Rocket<rocket::Build> {
    let figment = rocket::Config::figment()
        .merge(("template_dir", dir))
        .merge(("log_level", "normal"));
    rocket::custom(figment)
        .attach(bandits_tera::fairing())
        .mount("/", rocket::routes![page])
}

/// The error lines logged when a site with `files` in its template directory ignites.
async fn launch_errors(files: &[(&str, &str)]) -> Vec<String> {
    log_capture::install();
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("in the directory")).expect("a folder");
        std::fs::write(path, body).expect("a template");
    }
    log_capture::clear();
    let ignited = site(dir.path()).ignite().await;
    let refused = match ignited {
        Ok(_) => false,
        Err(error) => {
            let _ = error.kind();
            true
        }
    };
    assert!(refused, "the launch must stop on a broken template");
    log_capture::at_least(log::Level::Error)
}

#[tokio::test]
async fn a_mistake_stops_the_launch_with_the_authors_file_and_line() {
    let errors = launch_errors(&[
        ("good.html.tera", "{% flag \"x\" %}A{% endflag %}"),
        ("pages/broken.html.tera", "<p>\n</p>\n{% flag \"x\" %}\nA\n"),
    ])
    .await;
    let error = errors
        .iter()
        .find(|line| line.contains("broken.html.tera"))
        .unwrap_or_else(|| panic!("no error names the template: {errors:?}"));
    assert!(
        error.contains("line 3:") && error.contains("{% endflag %}"),
        "{error}"
    );

    // A Tera syntax error, on a line after rewritten ones, is at the line written.
    let errors = launch_errors(&[(
        "page.html.tera",
        "{% flag \"x\" %}\nA\n{% endflag %}\n{{ variant(\"x\") }}\n{% if %}\n",
    )])
    .await;
    let error = errors
        .iter()
        .find(|line| line.contains("page.html.tera"))
        .unwrap_or_else(|| panic!("no error names the template: {errors:?}"));
    assert!(error.contains("--> 5:"), "{error}");

    let errors = launch_errors(&[(
        "old.html.tera",
        "\n{% filter flag(name=\"x\") %}A{% endfilter %}",
    )])
    .await;
    assert!(
        errors
            .iter()
            .any(|line| line.contains("old.html.tera: line 2:") && line.contains("retired")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn templates_in_folders_and_other_files_load_as_written() {
    log_capture::install();
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir_all(dir.path().join("shop")).expect("a folder");
    std::fs::write(
        dir.path().join("base.html.tera"),
        "<% if flag(\"x\") %>on<% else %>off<% endif %>:{% block main %}{% endblock main %}",
    )
    .expect("a template");
    std::fs::write(
        dir.path().join("shop/cart.html.tera"),
        "{% extends \"base\" %}{% block main %}<%= cart %>{% flag \"x\" %}x{% endflag %}{% endblock main %}",
    )
    .expect("a template");
    let client = Client::untracked(site(dir.path()))
        .await
        .expect("the site ignites");
    let body = client
        .get("/shop/cart")
        .dispatch()
        .await
        .into_string()
        .await;
    assert_eq!(body.as_deref(), Some("off:<%= cart %>"));
}

#[cfg(debug_assertions)]
#[tokio::test]
async fn an_edited_template_is_seen_at_a_later_request() {
    log_capture::install();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("page.html.tera");
    std::fs::write(&file, "first").expect("a template");
    let client = Client::untracked(site(dir.path()))
        .await
        .expect("the site ignites");
    let read = || async {
        client
            .get("/page")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap_or_default()
    };
    assert_eq!(read().await, "first");
    std::fs::write(&file, "{% flag \"x\" %}on{% else %}second{% endflag %}").expect("an edit");
    assert!(
        eventually(|| async { read().await == "second" }).await,
        "the edit was never seen: {}",
        read().await
    );
}
