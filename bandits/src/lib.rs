//! # rocket-bandits
//!
//! Feature flags that optimise themselves. A flag has two or more *arms* (variants); each
//! visitor is given one by a multi-armed bandit *policy*, keeps it, and is counted as a
//! *conversion* on reaching the flag's goal. The policy shifts traffic to the arm that
//! converts best, and a *winner rule* locks that arm once the evidence is in.
//!
//! The layers, each importing only those listed before it (no file of `bandits/src` imports
//! one that imports it back):
//!
//! 1. `clock` and `secret` (private): the time, and comparing secrets.
//! 2. [`engine`]: flag definitions, the policies (epsilon-greedy, epsilon-decay, UCB1,
//!    Thompson sampling, top-two Thompson sampling, fixed split) and the odds each
//!    choice was made with, the statistics (t-tests, z-test, chi-square,
//!    Wilson/Wald/Beta intervals, probability best and expected loss), the winner rules
//!    (t-test, sequential, Bayesian, manual), an offline
//!    simulator, the visit decision ([`engine::decision`]): what a visitor sees of a
//!    flag and what is counted, and the rules of referral partners
//!    ([`engine::partners`]): who captures a visitor, when a trigger completes. Pure: no
//!    Rocket, no I/O.
//! 3. [`store`]: flags, additive counters, who was counted, admin sessions, the
//!    activity log, partners, referrals, completions and the outbox of their callbacks,
//!    on SQLite or PostgreSQL.
//! 4. [`track`]: the request path's memory: a snapshot to decide on, counts waiting for
//!    the next flush.
//! 5. [`config`] and [`database`]: the `bandits` and `databases.bandits` tables of
//!    Rocket's configuration.
//! 6. `runtime` (private): what requests share once the plugin has ignited, the flush
//!    loop's rounds, and the reload that makes a change seen at once.
//!    [`callbacks`], beside it: the sender of callbacks to referral partners.
//! 7. `visit` (private): one request's facts and visitor cookie; every way of reading a
//!    flag goes through it, and it asks the engine's decision.
//! 8. [`guard`] ([`Flags`], [`VisitorFlags`]) and [`flag_variant`]: what a route uses;
//!    [`switches`] ([`FlagsHandle`]): switches and samples for code outside a request;
//!    [`testing`]: overrides of flags, switches and samples for the site's own tests. The
//!    Tera functions are in the `bandits-tera` crate.
//! 9. `auth` and `input` (private): who may use the API and the admin
//!    ([`api::AdminCheck`], the admin token), and what a change brings (a flag's
//!    definition read field by field, the status of a change the store refused).
//! 10. [`export`] (a flag's activity log streamed as CSV or NDJSON), then [`api`] (the
//!     JSON API under `/bandits/api`) and [`admin`] (the pages under `/bandits/admin`),
//!     which both serve it.
//! 11. [`fairing`] ([`Bandits`]): what a site attaches; it mounts the API and the admin.
//! 12. `cli` (feature `cli`): the `bandits` command line for deploy scripts, on the
//!     site's database through the store, reading input as the API does.
//!
//! ```
//! use bandits::engine::{ArmTotals, FlagDefinition, Policy};
//! use bandits::engine::stats::{probability_best, wilson_interval, BetaPrior};
//! use rand::{rngs::SmallRng, SeedableRng};
//!
//! let flag = FlagDefinition::new("headline-flag")
//!     .with_arms(["base", "bold"])
//!     .with_policy(Policy::thompson())
//!     .validate()?;
//!
//! let totals = [ArmTotals::new(1000, 37), ArmTotals::new(1000, 66)];
//! let arm = flag.choose_arm(&totals, &mut SmallRng::seed_from_u64(1));
//! assert!(arm < 2);
//!
//! let interval = wilson_interval(totals[1], flag.confidence()).unwrap();
//! assert!(interval.contains(0.066));
//! let best = probability_best(&totals, BetaPrior::UNIFORM).unwrap();
//! assert!(best[1] > 0.99);
//! assert_eq!(flag.find_winner(&totals), Some(1));
//! # Ok::<(), bandits::engine::InvalidFlag>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod api;
mod auth;
pub mod browser;
pub mod callbacks;
#[cfg(feature = "cli")]
pub mod cli;
mod clock;
pub mod config;
pub mod database;
pub mod engine;
pub mod export;
pub mod fairing;
pub mod guard;
mod input;
mod runtime;
mod secret;
pub mod store;
pub mod switches;
pub mod testing;
pub mod track;
mod visit;

pub use bandits_macros::flag_variant;
pub use fairing::Bandits;
pub use guard::{Flags, VisitorFlags};
pub use switches::FlagsHandle;
