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

/// The `headline` flag's arm, read on a page that is not its source: a probe that
/// assigns without counting.
#[get("/peek")]
pub fn peek(flags: Flags<'_>) -> String {
    flags.variant("headline").unwrap_or_default()
}

/// Every arm the visitor holds, as `flag:arm,...`.
#[get("/all")]
pub fn all(flags: Flags<'_>) -> String {
    flags.to_string()
}
