//! # rocket-bandits
//!
//! Feature flags that optimise themselves. A flag has two or more *arms* (variants); each
//! visitor is given one by a multi-armed bandit *policy*, keeps it, and is counted as a
//! *conversion* on reaching the flag's goal. The policy shifts traffic to the arm that
//! converts best, and a *winner rule* locks that arm once the evidence is in.
//!
//! The layers, each using only those above it:
//!
//! - [`engine`]: flag definitions, the policies (epsilon-greedy, epsilon-decay, UCB1,
//!   Thompson sampling, fixed split), the statistics (t-tests, z-test, chi-square,
//!   Wilson/Wald/Beta intervals, probability best), the winner rules and an offline
//!   simulator. Pure: no Rocket, no I/O.
//! - [`store`]: flags, additive counters and the activity log on SQLite or PostgreSQL.
//! - [`track`]: the request path's memory: decisions on a snapshot, batched flushes.
//! - [`config`] and [`database`]: the `bandits` and `databases.bandits` tables of Rocket's
//!   configuration.
//! - [`api`]: the JSON API under `/bandits/api`.
//! - [`fairing`] ([`Bandits`]), [`guard`] ([`Flags`], [`VisitorFlags`]) and
//!   [`flag_variant`]: what a site attaches and uses on its requests. The Tera functions
//!   are in the `bandits-tera` crate.
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
mod clock;
pub mod config;
pub mod database;
pub mod engine;
pub mod fairing;
pub mod guard;
mod runtime;
mod secret;
pub mod store;
pub mod track;
mod visit;

pub use bandits_macros::flag_variant;
pub use fairing::Bandits;
pub use guard::{Flags, VisitorFlags};
