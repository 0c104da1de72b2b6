//! The pages the test sites share: `/` shows the `headline` flag's arm, `/contact` is its
//! goal.

use bandits::Flags;
use rocket::get;

/// The `headline` flag's arm (empty without the flag).
#[get("/")]
pub fn home(flags: Flags<'_>) -> String {
    flags.variant("headline").unwrap_or_default()
}

/// The goal page.
#[get("/contact")]
pub fn contact() -> &'static str {
    "contact"
}
