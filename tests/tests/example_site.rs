//! The example site starts and serves its pages.

use rocket::http::Status;
use rocket::local::blocking::Client;

fn client() -> Client {
    Client::tracked(example_site::rocket()).expect("the example site ignites")
}

#[test]
fn home_page_describes_the_headline_experiment() {
    let client = client();
    let response = client.get("/").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().unwrap_or_default();
    assert!(body.contains("<code>headline-flag</code>"), "{body}");
    assert!(body.contains("arms <code>off, on</code>"), "{body}");
    assert!(
        body.contains("shown on <code>/</code>, goal <code>/contact/</code>"),
        "{body}"
    );
    assert!(body.contains("href=\"/contact/\""), "{body}");
}

#[test]
fn contact_page_is_served_with_and_without_trailing_slash() {
    let client = client();
    for path in ["/contact", "/contact/"] {
        assert_eq!(client.get(path).dispatch().status(), Status::Ok, "{path}");
    }
    assert_eq!(client.get("/missing").dispatch().status(), Status::NotFound);
}
