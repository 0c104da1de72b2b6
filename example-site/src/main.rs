//! `cargo run -p example-site` starts the example site on http://127.0.0.1:8000.

#[rocket::main]
async fn main() -> std::process::ExitCode {
    example_site::run().await
}
