//! The engine: flags, bandit policies, statistics and winner rules.
//!
//! Pure code: no Rocket, no I/O, no clock. Every decision is a function of a flag, its
//! arms' totals and a random number generator, so the site, the tests and the offline
//! [`simulation`] all run the same code.
//!
//! ```
//! use bandits::engine::{ArmTotals, FlagDefinition, Policy, WinnerRule};
//! use rand::{rngs::SmallRng, SeedableRng};
//!
//! let flag = FlagDefinition::new("headline-flag")
//!     .with_policy(Policy::thompson())
//!     .with_winner_rule(WinnerRule::sequential())
//!     .validate()?;
//!
//! // Totals come from the store; a visitor's arm from the policy.
//! let mut totals = vec![ArmTotals::default(); flag.arms().len()];
//! let mut rng = SmallRng::seed_from_u64(1);
//! let arm = flag.choose_arm(&totals, &mut rng);
//! totals[arm].record(false);
//! assert_eq!(flag.find_winner(&totals), None);
//! # Ok::<(), bandits::engine::InvalidFlag>(())
//! ```

pub mod backoff;
pub mod by_partner;
pub mod decision;
mod flag;
pub mod partners;
pub mod pinned;
mod policy;
pub mod report;
mod rule;
pub mod simulation;
pub mod stats;
pub mod targeting;
mod totals;
pub mod visitor;
mod winner;

pub use decision::EventKind;
pub(crate) use flag::check_name;
pub use flag::{
    Arm, Choice, FieldError, Flag, FlagDefinition, IntervalKind, InvalidFlag, MAX_ARMS,
    MAX_NAME_LEN, MAX_NOTE_LEN, MAX_PATH_LEN,
};
pub use policy::Policy;
pub use rule::Rule;
pub use totals::ArmTotals;
pub use winner::WinnerRule;
