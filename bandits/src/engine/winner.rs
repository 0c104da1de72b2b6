//! When an experiment is over: the rules that lock a winning arm. See [`WinnerRule`].

use serde::{Deserialize, Serialize};

use super::rule::Rule;
use super::stats::{msprt_log_likelihood_ratio, student_t_test};
use super::totals::{total_views, ArmTotals};

/// The rule that declares an arm the winner. Serialized with a `kind` tag:
/// `{"kind": "t_test"}`, `{"kind": "sequential", "mixture_sd": 0.05}`, `{"kind": "manual"}`.
///
/// Once a winner is locked, every visitor gets it and the policy is no longer asked.
///
/// # Which rule to choose
///
/// A significance test promises a false-positive rate of `α` (say 5%) **if it is run
/// once**, at a sample size fixed in advance. A winner rule is run again and again as
/// visitors arrive, and every look is another chance for noise to cross the line: this is
/// "peeking". django-bandits runs a t-test after every conversion; in our simulations
/// (`docs/benchmarks.md`) that locks a "winner" between two *identical* arms in about a
/// third of experiments by 10,000 visitors and half of them by 100,000, against the 5%
/// it appears to promise.
///
/// - [`WinnerRule::Sequential`] (mSPRT, an always-valid test) keeps the chance of ever
///   locking a winner between equal arms at or below `α` however often it is checked.
///   The price is that a real but small difference takes more visitors to confirm. Choose
///   it for any experiment left to run on its own: this is the rule we recommend.
/// - [`WinnerRule::TTest`] is django-bandits' rule, the default so that a site moving from
///   it sees the same behaviour. It is sound only if you decide the number of visitors in
///   advance (`min_views`) and look once.
/// - [`WinnerRule::Manual`] never locks by itself: a person locks the winner in the admin.
///
/// With `k` arms, a winner must beat *every* other arm. The t-test rule tests the best
/// arm against each other arm at `α / (k - 1)` (a Bonferroni correction);
/// the sequential rule tests at `α / (k (k - 1) / 2)`, one share for every pair of arms,
/// which is what keeps its overall guarantee at `α` whichever arm happens to lead.
///
/// # Example
///
/// ```
/// use bandits::engine::{ArmTotals, WinnerRule};
///
/// let totals = [ArmTotals::new(5000, 250), ArmTotals::new(5000, 340)];
/// // Both rules see this difference (p < 0.0001).
/// assert_eq!(WinnerRule::TTest.find_winner(&totals, 0.05, 100), Some(1));
/// assert_eq!(WinnerRule::sequential().find_winner(&totals, 0.05, 100), Some(1));
/// // Nothing is decided before min_views exposures.
/// assert_eq!(WinnerRule::TTest.find_winner(&totals, 0.05, 20_000), None);
/// assert_eq!(WinnerRule::Manual.find_winner(&totals, 0.05, 100), None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WinnerRule {
    /// django-bandits' rule: once the arms have `min_views` exposures in all, the arm with
    /// the best rate wins when Student's t-test against every other arm gives
    /// `p < significance_level / (k - 1)`. Not safe to check repeatedly (see above);
    /// the default only for continuity with django-bandits.
    #[default]
    TTest,
    /// The mixture sequential probability ratio test: once the arms have `min_views`
    /// exposures, the arm with the best rate wins when its evidence against every other
    /// arm reaches `k (k - 1) / (2 α)`. Valid when checked after every visitor.
    Sequential {
        /// The effect size the test is tuned to, in standard deviations of one visitor's
        /// 0/1 outcome: 0.05 is about one point of conversion rate at a 5% baseline.
        /// Positive; default 0.05.
        #[serde(default = "default_mixture_sd")]
        mixture_sd: f64,
    },
    /// No automatic winner: a person decides.
    Manual,
}

fn default_mixture_sd() -> f64 {
    0.05
}

impl WinnerRule {
    /// The sequential rule with its default tuning.
    pub fn sequential() -> Self {
        WinnerRule::Sequential {
            mixture_sd: default_mixture_sd(),
        }
    }

    /// The rule's name as shown to site owners.
    pub fn label(&self) -> &'static str {
        match self {
            WinnerRule::TTest => "t-test (django-bandits)",
            WinnerRule::Sequential { .. } => "sequential test (mSPRT)",
            WinnerRule::Manual => "manual",
        }
    }

    /// The rule in one sentence, for the admin's statistics page.
    ///
    /// ```
    /// use bandits::engine::WinnerRule;
    /// assert_eq!(
    ///     WinnerRule::TTest.describe(0.05, 100, 3),
    ///     "After 100 visitors, the arm with the best rate wins when a t-test against \
    ///      each other arm gives p < 0.025 (0.05 shared by 2 comparisons); \
    ///      checking this repeatedly raises the chance of a false winner well above 0.05."
    /// );
    /// ```
    pub fn describe(&self, significance_level: f64, min_views: u64, arms: usize) -> String {
        let comparisons = arms.saturating_sub(1).max(1);
        match self {
            WinnerRule::TTest => format!(
                "After {min_views} visitors, the arm with the best rate wins when a t-test \
                 against each other arm gives p < {} ({significance_level} shared by \
                 {comparisons} comparison{}); checking this repeatedly raises the chance of a \
                 false winner well above {significance_level}.",
                significance_level / comparisons as f64,
                if comparisons == 1 { "" } else { "s" },
            ),
            WinnerRule::Sequential { .. } => format!(
                "After {min_views} visitors, the arm with the best rate wins when a \
                 sequential test (mSPRT) shows it beats each other arm; the chance of ever \
                 declaring a winner between equal arms stays below {significance_level}, \
                 however often it is checked."
            ),
            WinnerRule::Manual => {
                "No arm wins automatically: a winner is locked by hand.".to_string()
            }
        }
    }

    /// The winner among `arms` under this rule, if there is one yet.
    ///
    /// `None` before the arms have `min_views` exposures in all, while the best rate is
    /// shared by two arms, and whenever a test cannot be computed.
    pub fn find_winner(
        &self,
        arms: &[ArmTotals],
        significance_level: f64,
        min_views: u64,
    ) -> Option<usize> {
        let k = arms.len();
        if k < 2 || total_views(arms) < min_views {
            return None;
        }
        let best = unique_best(arms)?;
        let others = || (0..k).filter(move |&j| j != best);
        match self {
            WinnerRule::TTest => {
                let threshold = significance_level / (k - 1) as f64;
                others()
                    .all(|j| {
                        student_t_test(arms[best], arms[j])
                            .is_some_and(|test| test.p_value < threshold)
                    })
                    .then_some(best)
            }
            WinnerRule::Sequential { mixture_sd } => {
                let pairs = (k * (k - 1) / 2) as f64;
                let log_threshold = (pairs / significance_level).ln();
                others()
                    .all(|j| {
                        msprt_log_likelihood_ratio(arms[best], arms[j], *mixture_sd)
                            .is_some_and(|log_lr| log_lr >= log_threshold)
                    })
                    .then_some(best)
            }
            WinnerRule::Manual => None,
        }
    }

    pub(crate) fn problems(&self) -> Vec<(&'static str, Rule)> {
        match self {
            WinnerRule::Sequential { mixture_sd }
                if !(mixture_sd.is_finite() && *mixture_sd > 0.0) =>
            {
                vec![(
                    "mixture_sd",
                    Rule::Range {
                        range: "(0, inf)",
                        value: *mixture_sd,
                    },
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// The arm with the strictly highest observed rate, `None` on a tie for first.
fn unique_best(arms: &[ArmTotals]) -> Option<usize> {
    let mut best = 0;
    let mut tied = false;
    for (i, arm) in arms.iter().enumerate().skip(1) {
        let (rate, best_rate) = (arm.rate(), arms[best].rate());
        if rate > best_rate {
            best = i;
            tied = false;
        } else if rate == best_rate {
            tied = true;
        }
    }
    (!tied).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_for_first_decide_nothing() {
        let arms = [
            ArmTotals::new(10_000, 100),
            ArmTotals::new(10_000, 900),
            ArmTotals::new(10_000, 900),
        ];
        assert_eq!(unique_best(&arms), None);
        assert_eq!(WinnerRule::TTest.find_winner(&arms, 0.05, 0), None);
        assert_eq!(WinnerRule::sequential().find_winner(&arms, 0.05, 0), None);
    }

    #[test]
    fn the_best_arm_must_beat_every_other() {
        // Arm 2 clearly beats arm 0, but not arm 1.
        let arms = [
            ArmTotals::new(5000, 250),
            ArmTotals::new(5000, 395),
            ArmTotals::new(5000, 400),
        ];
        assert_eq!(WinnerRule::TTest.find_winner(&arms, 0.05, 0), None);
        assert_eq!(WinnerRule::sequential().find_winner(&arms, 0.05, 0), None);
        let arms = [arms[0], ArmTotals::new(5000, 260), arms[2]];
        assert_eq!(WinnerRule::TTest.find_winner(&arms, 0.05, 0), Some(2));
        assert_eq!(
            WinnerRule::sequential().find_winner(&arms, 0.05, 0),
            Some(2)
        );
    }

    #[test]
    fn t_test_rule_splits_significance_between_comparisons() {
        // Arm 1 against arm 0 gives p between 0.025 and 0.05: a winner at 0.05 with two
        // arms, not with three (0.05 / 2 = 0.025).
        let two = [ArmTotals::new(1000, 37), ArmTotals::new(1000, 57)];
        let p = student_t_test(two[0], two[1]).unwrap().p_value;
        assert!(p > 0.025 && p < 0.05, "{p}");
        assert_eq!(WinnerRule::TTest.find_winner(&two, 0.05, 100), Some(1));
        let three = [two[0], two[1], ArmTotals::new(1000, 37)];
        assert_eq!(WinnerRule::TTest.find_winner(&three, 0.05, 100), None);
    }

    #[test]
    fn sequential_rule_is_more_demanding_than_one_t_test() {
        // p = 0.0033 in a single t-test, far from enough evidence for the always-valid
        // test at 2,000 visitors.
        let arms = [ArmTotals::new(1000, 37), ArmTotals::new(1000, 66)];
        assert_eq!(WinnerRule::TTest.find_winner(&arms, 0.05, 100), Some(1));
        assert_eq!(WinnerRule::sequential().find_winner(&arms, 0.05, 100), None);
    }
}
