//! `cargo run -p example-site` starts the example site on http://127.0.0.1:8000.

#[rocket::launch]
fn launch() -> _ {
    example_site::rocket()
}
