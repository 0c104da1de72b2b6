//! Tera functions for rocket-bandits: `flag(name="...")`, `variant(name="...")` and
//! `payload(name="...")`.
//!
//! Not yet implemented: this crate holds the workspace's place for it. The functions are
//! specified in the project's issue on templates and macros.
