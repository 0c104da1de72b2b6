//! The `#[flag_variant]` attribute of rocket-bandits: one Rocket handler per arm of a flag.
//!
//! Not yet implemented: this crate holds the workspace's place for it. The attribute is
//! specified in the project's issue on templates and macros.
