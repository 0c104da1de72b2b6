//! Cross-crate tests of rocket-bandits: the library and the example site, driven through
//! `rocket::local` clients the way a site runs them. The tests are in `tests/tests/`.
