//! The example site as a process of its own, for the reliability suite
//! (`tests/tests/reliability.rs`): the same as `cargo run -p example-site`, built with the
//! tests so they can start, stop and kill instances of it.

#[rocket::main]
async fn main() -> std::process::ExitCode {
    example_site::run().await
}
