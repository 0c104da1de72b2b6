//! When an experiment is over: the rules that lock a winning arm. See [`WinnerRule`].

use serde::{Deserialize, Serialize};

use super::rule::Rule;
use super::stats::{chances, msprt_log_likelihood_ratio, student_t_test, BetaPrior, Chances};
use super::totals::{total_views, ArmTotals};

/// The rule that declares an arm the winner. Serialized with a `kind` tag:
/// `{"kind": "t_test"}`, `{"kind": "sequential", "mixture_sd": 0.05}`,
/// `{"kind": "bayesian", "probability": 0.95, "expected_loss": 0.0001}`, `{"kind": "manual"}`.
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
/// - [`WinnerRule::Bayesian`] locks the arm that is probably the best (95% by default)
///   once choosing it is expected to cost almost nothing (under one conversion in 10,000
///   visitors by default) if it is not. It answers the question an owner asks ("which arm,
///   and what do I risk?") and, paired with top-two Thompson sampling, ends experiments
///   soonest in our simulations. What it does **not** promise is a false-positive rate:
///   between two equal arms it does lock one, since either is as good (the expected loss
///   is then what is at stake, and it is small by construction). Choose it when a cheap
///   mistake is acceptable and an answer is wanted; choose the sequential rule when a
///   claim "B beats A" must hold up as a significance test.
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
    /// The Bayesian rule: once the arms have `min_views` exposures, the arm most likely to
    /// be best wins when that probability is at least `probability` and the expected loss
    /// of choosing it (`E[max_j p_j - p_winner]`, in conversion rate) is below
    /// `expected_loss`. Both come from the arms' `Beta` posteriors under the policy's
    /// prior ([`chances`](super::stats::chances)), computed once per counter flush.
    Bayesian {
        /// The probability of being best the winner needs; in [0.5, 1), default 0.95.
        #[serde(default = "default_probability")]
        probability: f64,
        /// The most conversion rate choosing the winner may be expected to lose, as a
        /// fraction (0.0001 is one conversion in 10,000 visitors); in (0, 1), default 0.0001.
        #[serde(default = "default_expected_loss")]
        expected_loss: f64,
    },
    /// No automatic winner: a person decides.
    Manual,
}

fn default_mixture_sd() -> f64 {
    0.05
}

fn default_probability() -> f64 {
    0.95
}

/// One conversion in 10,000 visitors (a hundredth of a percentage point): at the 2% to
/// 10% conversion rates of most sites, 0.1% to 0.5% of the rate itself, far below what an
/// owner would act on. In our simulations (`docs/benchmarks.md`) it keeps wrong locks to
/// about one experiment in a hundred when the arms differ by a fifth.
fn default_expected_loss() -> f64 {
    0.0001
}

impl WinnerRule {
    /// The sequential rule with its default tuning.
    pub fn sequential() -> Self {
        WinnerRule::Sequential {
            mixture_sd: default_mixture_sd(),
        }
    }

    /// The Bayesian rule with its defaults: probability best 0.95, expected loss 0.0001.
    pub fn bayesian() -> Self {
        WinnerRule::Bayesian {
            probability: default_probability(),
            expected_loss: default_expected_loss(),
        }
    }

    /// Whether deciding needs each arm's probability of being best and expected loss
    /// ([`chances`](super::stats::chances)): the Bayesian rule.
    pub fn reads_chances(&self) -> bool {
        matches!(self, WinnerRule::Bayesian { .. })
    }

    /// The rule's name as shown to site owners.
    pub fn label(&self) -> &'static str {
        match self {
            WinnerRule::TTest => "t-test (django-bandits)",
            WinnerRule::Sequential { .. } => "sequential test (mSPRT)",
            WinnerRule::Bayesian { .. } => "Bayesian (probability best, expected loss)",
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
            WinnerRule::Bayesian {
                probability,
                expected_loss,
            } => format!(
                "After {min_views} visitors, the arm most likely to be the best wins when that \
                 probability reaches {}% and choosing it is expected to lose less than {} \
                 points of conversion rate; this bounds what a wrong choice costs, not how \
                 often one is made (between equal arms it locks one of them).",
                short(100.0 * probability),
                short(100.0 * expected_loss),
            ),
            WinnerRule::Manual => {
                "No arm wins automatically: a winner is locked by hand.".to_string()
            }
        }
    }

    /// The winner among `arms` under this rule, if there is one yet.
    ///
    /// `None` before the arms have `min_views` exposures in all, while the best rate is
    /// shared by two arms, and whenever a test cannot be computed. The Bayesian rule reads
    /// the arms' posteriors under the uniform prior here; [`find_winner_with`](Self::find_winner_with)
    /// takes them computed already, under the flag's prior.
    pub fn find_winner(
        &self,
        arms: &[ArmTotals],
        significance_level: f64,
        min_views: u64,
    ) -> Option<usize> {
        self.find_winner_with(arms, significance_level, min_views, None)
    }

    /// As [`find_winner`](Self::find_winner), with the arms' [`Chances`] on the same totals
    /// when the caller has them (a site computes them once per flush); the Bayesian rule
    /// computes them under the uniform prior when given `None` (or figures of the wrong
    /// length), the other rules ignore them.
    pub fn find_winner_with(
        &self,
        arms: &[ArmTotals],
        significance_level: f64,
        min_views: u64,
        given: Option<&Chances>,
    ) -> Option<usize> {
        let k = arms.len();
        if k < 2 || total_views(arms) < min_views {
            return None;
        }
        if let WinnerRule::Bayesian {
            probability,
            expected_loss,
        } = self
        {
            if arms.iter().any(|arm| arm.views == 0) {
                // The prior alone would speak for an arm never shown.
                return None;
            }
            let computed;
            let odds = match given.filter(|c| c.best.len() == k && c.loss.len() == k) {
                Some(odds) => odds,
                None => {
                    computed = chances(arms, BetaPrior::UNIFORM)?;
                    &computed
                }
            };
            let (leader, p) = odds
                .best
                .iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            return (p >= *probability && odds.loss[leader] < *expected_loss).then_some(leader);
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
            WinnerRule::Bayesian { .. } | WinnerRule::Manual => None,
        }
    }

    pub(crate) fn problems(&self) -> Vec<(&'static str, Rule)> {
        match self {
            WinnerRule::Bayesian {
                probability,
                expected_loss,
            } => {
                let mut problems = Vec::new();
                if !(*probability >= 0.5 && *probability < 1.0) {
                    problems.push((
                        "probability",
                        Rule::Range {
                            range: "[0.5, 1)",
                            value: *probability,
                        },
                    ));
                }
                if !(*expected_loss > 0.0 && *expected_loss < 1.0) {
                    problems.push((
                        "expected_loss",
                        Rule::Range {
                            range: "(0, 1)",
                            value: *expected_loss,
                        },
                    ));
                }
                problems
            }
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

/// `value` with at most six decimals and no trailing zeros: `99`, not `98.99999999999999`.
fn short(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
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
    fn bayesian_rule_needs_both_the_probability_and_a_small_expected_loss() {
        let rule = |probability, expected_loss| WinnerRule::Bayesian {
            probability,
            expected_loss,
        };
        // P(best) about 0.99 for arm 1 and a loss of about 3e-5.
        let clear = [ArmTotals::new(2000, 80), ArmTotals::new(2000, 110)];
        let odds = chances(&clear, BetaPrior::UNIFORM).unwrap();
        assert!(odds.best[1] > 0.98 && odds.loss[1] < 1e-4, "{odds:?}");
        assert_eq!(
            WinnerRule::bayesian().find_winner(&clear, 0.05, 100),
            Some(1)
        );
        // Too sure a demand, or too small a loss allowed: nothing yet.
        assert_eq!(rule(0.995, 0.0001).find_winner(&clear, 0.05, 100), None);
        assert_eq!(rule(0.95, 1e-6).find_winner(&clear, 0.05, 100), None);
        // Few visitors: probably best, but a wrong choice could still cost a lot.
        let early = [ArmTotals::new(40, 2), ArmTotals::new(40, 8)];
        let odds = chances(&early, BetaPrior::UNIFORM).unwrap();
        assert!(odds.best[1] > 0.95 && odds.loss[1] > 0.0001, "{odds:?}");
        assert_eq!(WinnerRule::bayesian().find_winner(&early, 0.05, 0), None);
        // Not before min_views; the figures given are used as they are.
        assert_eq!(WinnerRule::bayesian().find_winner(&clear, 0.05, 5000), None);
        let given = Chances {
            best: vec![0.97, 0.03],
            loss: vec![0.00005, 0.02],
        };
        assert_eq!(
            WinnerRule::bayesian().find_winner_with(&clear, 0.05, 100, Some(&given)),
            Some(0)
        );
    }

    #[test]
    fn bayesian_rule_gives_a_defined_answer_on_degenerate_inputs() {
        let rule = WinnerRule::bayesian();
        assert_eq!(rule.find_winner(&[], 0.05, 0), None);
        assert_eq!(rule.find_winner(&[ArmTotals::new(10, 1)], 0.05, 0), None);
        assert_eq!(rule.find_winner(&[ArmTotals::default(); 2], 0.05, 0), None);
        // An arm never shown: the uniform prior gives it a 95% chance against a 5% arm.
        let one_empty = [ArmTotals::default(), ArmTotals::new(10_000, 500)];
        let odds = chances(&one_empty, BetaPrior::UNIFORM).unwrap();
        assert!(odds.best[0] > 0.94, "{odds:?}");
        let lenient = WinnerRule::Bayesian {
            probability: 0.9,
            expected_loss: 0.5,
        };
        assert_eq!(lenient.find_winner(&one_empty, 0.05, 0), None);
        // Equal arms with plenty of data: one of them may be locked, at no cost.
        let equal = [ArmTotals::new(50_000, 2500), ArmTotals::new(50_000, 2500)];
        assert_eq!(
            rule.find_winner(&equal, 0.05, 0),
            None,
            "0.5 each is not 0.95"
        );
    }

    #[test]
    fn bayesian_rule_in_words() {
        assert_eq!(
            WinnerRule::bayesian().describe(0.05, 100, 2),
            "After 100 visitors, the arm most likely to be the best wins when that probability \
             reaches 95% and choosing it is expected to lose less than 0.01 points of \
             conversion rate; this bounds what a wrong choice costs, not how often one is made \
             (between equal arms it locks one of them)."
        );
        let strict = WinnerRule::Bayesian {
            probability: 0.99,
            expected_loss: 0.00002,
        };
        assert!(strict.describe(0.05, 100, 2).contains("reaches 99% and"));
        assert!(strict
            .describe(0.05, 100, 2)
            .contains("less than 0.002 points"));
    }

    #[test]
    fn bayesian_parameters_are_checked() {
        let problems = WinnerRule::Bayesian {
            probability: 0.4,
            expected_loss: 0.0,
        }
        .problems();
        let fields: Vec<&str> = problems.iter().map(|(field, _)| *field).collect();
        assert_eq!(fields, ["probability", "expected_loss"]);
        assert!(WinnerRule::bayesian().problems().is_empty());
        let parsed: WinnerRule = serde_json::from_str(r#"{"kind": "bayesian"}"#).unwrap();
        assert_eq!(parsed, WinnerRule::bayesian());
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
