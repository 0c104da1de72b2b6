//! What the statistics page and the API report of a flag: per arm its rate, interval,
//! p-value against the control and probability of being best; the winner; the rule in
//! words. Pure: a flag and its totals in, [`Statistics`] out.

use serde::Serialize;

use super::flag::{Flag, IntervalKind};
use super::policy::Policy;
use super::stats::{
    beta_interval, chances, msprt_p_value, sample_ratio_test, student_t_test, wilson_interval,
    Interval,
};
use super::totals::ArmTotals;
use super::winner::WinnerRule;

/// One arm's numbers on the statistics page and in the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmStatistics {
    /// The arm's name.
    pub arm: String,
    /// Visitors counted on it.
    pub views: u64,
    /// Of them, those who converted.
    pub conversions: u64,
    /// `conversions / views` (0 without views).
    pub rate: f64,
    /// The interval the flag chose ([`Statistics::interval`]) at its confidence; none
    /// without views.
    pub interval: Option<Interval>,
    /// Two-sided p-value against the control, by the flag's winner rule (t-test, or the
    /// always-valid p-value of the sequential rule); none for the control.
    pub p_value_against_control: Option<f64>,
    /// The posterior probability that this arm is the best.
    pub probability_best: Option<f64>,
    /// The conversion rate choosing this arm is expected to lose if another is better
    /// (`E[max_j p_j - p_i]` under the posteriors): what the Bayesian rule weighs.
    pub expected_loss: Option<f64>,
}

/// The locked winner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Winner {
    /// The arm's name.
    pub arm: Option<String>,
    /// When it was locked (milliseconds since the Unix epoch), if the rule locked it.
    pub locked_at: Option<i64>,
}

/// Everything the statistics page shows about a flag: the API's
/// `GET /bandits/api/flags/<name>/stats`, and the admin's flag page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statistics {
    /// The flag's name.
    pub flag: String,
    /// The flag's epoch (raised by every reset).
    pub epoch: i64,
    /// The policy, in words.
    pub policy: &'static str,
    /// The winner rule's name.
    pub winner_rule: &'static str,
    /// The winner rule in one sentence.
    pub rule: String,
    /// The intervals' confidence: `1 - significance_level`.
    pub confidence: f64,
    /// The intervals' kind, as the flag chose it: `"wilson"` or `"beta"`.
    pub interval: IntervalKind,
    /// Per arm, in the flag's order (the control first).
    pub arms: Vec<ArmStatistics>,
    /// The locked winner, if any.
    pub winner: Option<Winner>,
    /// Whether the arms' views split as intended.
    pub sample_ratio: SampleRatio,
}

/// The p-value under which the arms' views are said not to split as intended: 0.001, as
/// the experimentation platforms alarm.
pub const SAMPLE_RATIO_ALARM: f64 = 0.001;

/// The sample-ratio check: whether the arms' views split as the flag meant them to. A
/// skewed split (a redirect that loses one arm's visitors, a bot wave, a bug in a split
/// handler) biases every other figure of the flag.
///
/// Tested only where the split is fixed in advance: a fixed-split policy with no winner
/// locked, by Pearson's chi-square goodness of fit of the views against the weights
/// ([`sample_ratio_test`]). An adaptive policy moves traffic on purpose, so there is no
/// intended split to test against; the message says so.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleRatio {
    /// The test applies to this flag.
    pub tested: bool,
    /// The test's p-value; none when untested or before two arms meant to get traffic
    /// have views.
    pub p_value: Option<f64>,
    /// `p_value` is under [`SAMPLE_RATIO_ALARM`]: the split is not the one intended.
    pub mismatch: bool,
    /// What the check found, in one or two sentences.
    pub message: String,
}

/// The sample-ratio check of `flag` with its arms' `totals`.
///
/// ```
/// use bandits::engine::report::sample_ratio;
/// use bandits::engine::{ArmTotals, FlagDefinition, Policy};
///
/// let split = FlagDefinition::new("f")
///     .with_policy(Policy::Split { weights: vec![1.0, 1.0] })
///     .validate()?;
/// let skewed = sample_ratio(&split, &[ArmTotals::new(5_200, 0), ArmTotals::new(4_800, 0)]);
/// assert!(skewed.mismatch);
/// let adaptive = FlagDefinition::new("g").validate()?;
/// assert!(!sample_ratio(&adaptive, &[ArmTotals::new(900, 0), ArmTotals::new(100, 0)]).tested);
/// # Ok::<(), bandits::engine::InvalidFlag>(())
/// ```
pub fn sample_ratio(flag: &Flag, totals: &[ArmTotals]) -> SampleRatio {
    let untested = |message: &str| SampleRatio {
        tested: false,
        p_value: None,
        mismatch: false,
        message: message.to_string(),
    };
    let Policy::Split { weights } = flag.policy() else {
        return untested(
            "This policy moves traffic to the better arm on purpose, so there is no intended \
             split to check the views against: the sample ratio is not tested.",
        );
    };
    if flag.winner().is_some() {
        return untested(
            "A winner is locked and every visitor gets it, so the split is no longer the one \
             intended: the sample ratio is not tested.",
        );
    }
    if weights.iter().filter(|weight| **weight > 0.0).count() < 2 {
        return untested(
            "Only one arm is meant to get counted visitors (a percentage flag counts those who \
             see `on`), so there is no split to check: the sample ratio is not tested.",
        );
    }
    let views: Vec<u64> = totals.iter().map(|totals| totals.views).collect();
    let Some(result) = sample_ratio_test(&views, weights) else {
        return SampleRatio {
            tested: true,
            p_value: None,
            mismatch: false,
            message: "The split is checked once two arms meant to get visitors have views."
                .to_string(),
        };
    };
    let total: f64 = weights.iter().sum();
    let intended: Vec<String> = weights
        .iter()
        .map(|weight| format!("{:.0}%", 100.0 * weight / total))
        .collect();
    let seen: Vec<String> = views.iter().map(u64::to_string).collect();
    let mismatch = result.p_value < SAMPLE_RATIO_ALARM;
    let message = if mismatch {
        format!(
            "Sample ratio mismatch: the arms' views ({}) do not split as intended ({}); a \
             chi-square test gives p = {:.1e}, under {SAMPLE_RATIO_ALARM}. Something adds or \
             loses visitors on some arms (a redirect, bots, a split handler), and every \
             figure of this flag is biased until it is found.",
            seen.join(" : "),
            intended.join(" : "),
            result.p_value
        )
    } else {
        format!(
            "The arms' views ({}) fit the intended split ({}): p = {:.3}.",
            seen.join(" : "),
            intended.join(" : "),
            result.p_value
        )
    };
    SampleRatio {
        tested: true,
        p_value: Some(result.p_value),
        mismatch,
        message,
    }
}

/// Computes the [`Statistics`] of `flag` at `epoch` from its arms' `totals` (in the flag's
/// arm order); `winner_locked_at` is when its winner was locked, if it is.
///
/// ```
/// use bandits::engine::report::statistics;
/// use bandits::engine::{ArmTotals, FlagDefinition};
///
/// let flag = FlagDefinition::new("headline-flag").validate()?;
/// let totals = [ArmTotals::new(1000, 40), ArmTotals::new(1000, 70)];
/// let report = statistics(&flag, 0, &totals, None);
/// assert_eq!(report.arms[1].rate, 0.07);
/// assert!(report.arms[1].p_value_against_control.is_some_and(|p| p < 0.01));
/// # Ok::<(), bandits::engine::InvalidFlag>(())
/// ```
pub fn statistics(
    flag: &Flag,
    epoch: i64,
    totals: &[ArmTotals],
    winner_locked_at: Option<i64>,
) -> Statistics {
    let confidence = flag.confidence();
    let prior = flag.policy().prior();
    let odds = chances(totals, prior);
    let (best, loss) = odds.map_or((Vec::new(), Vec::new()), |odds| (odds.best, odds.loss));
    let control = totals.first().copied().unwrap_or_default();
    let arms = flag
        .arms()
        .iter()
        .zip(totals)
        .enumerate()
        .map(|(i, (arm, &arm_totals))| {
            let p_value = if i == 0 {
                None
            } else {
                match flag.winner_rule() {
                    WinnerRule::Sequential { mixture_sd } => {
                        msprt_p_value(control, arm_totals, *mixture_sd)
                    }
                    _ => student_t_test(control, arm_totals).map(|t| t.p_value),
                }
            };
            ArmStatistics {
                arm: arm.name.clone(),
                views: arm_totals.views,
                conversions: arm_totals.conversions,
                rate: arm_totals.rate(),
                interval: match flag.interval() {
                    _ if arm_totals.views == 0 => None,
                    IntervalKind::Wilson => wilson_interval(arm_totals, confidence),
                    IntervalKind::Beta => beta_interval(arm_totals, confidence, prior),
                },
                p_value_against_control: p_value,
                probability_best: best.get(i).copied(),
                expected_loss: loss.get(i).copied(),
            }
        })
        .collect();
    let winner = flag.winner().map(|i| Winner {
        arm: flag.arms().get(i).map(|arm| arm.name.clone()),
        locked_at: winner_locked_at,
    });
    Statistics {
        flag: flag.name().to_string(),
        epoch,
        policy: flag.policy().label(),
        winner_rule: flag.winner_rule().label(),
        rule: flag.winner_rule().describe(
            flag.significance_level(),
            flag.min_views(),
            flag.arms().len(),
        ),
        confidence,
        interval: flag.interval(),
        arms,
        winner,
        sample_ratio: sample_ratio(flag, totals),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FlagDefinition;

    fn split(weights: Vec<f64>) -> Flag {
        let arms: Vec<String> = (0..weights.len()).map(|i| format!("a{i}")).collect();
        FlagDefinition::new("f")
            .with_arms(arms)
            .with_policy(Policy::Split { weights })
            .validate()
            .expect("a valid flag")
    }

    #[test]
    fn the_sample_ratio_check_has_an_answer_for_degenerate_flags() {
        // No views yet: tested, no p-value, no alarm.
        let none = sample_ratio(&split(vec![1.0, 1.0]), &[ArmTotals::default(); 2]);
        assert!(none.tested && none.p_value.is_none() && !none.mismatch);
        // A percentage flag: only one arm is meant to get counted visitors.
        let percentage = FlagDefinition::percentage("p", 10.0)
            .validate()
            .expect("valid");
        let one_arm = sample_ratio(&percentage, &[ArmTotals::default(), ArmTotals::new(50, 5)]);
        assert!(!one_arm.tested && one_arm.p_value.is_none() && !one_arm.mismatch);
        // Views on an arm meant to get none: the split is impossible.
        let impossible = sample_ratio(
            &split(vec![1.0, 1.0, 0.0]),
            &[
                ArmTotals::new(10, 0),
                ArmTotals::new(10, 0),
                ArmTotals::new(1, 0),
            ],
        );
        assert_eq!(impossible.p_value, Some(0.0));
        assert!(impossible.mismatch);
        // A locked winner: not tested.
        let won = FlagDefinition {
            winner: Some("on".into()),
            ..FlagDefinition::new("w").with_policy(Policy::Split {
                weights: vec![1.0, 1.0],
            })
        }
        .validate()
        .expect("valid");
        let locked = sample_ratio(&won, &[ArmTotals::new(10, 0), ArmTotals::new(900, 0)]);
        assert!(!locked.tested && !locked.mismatch);
        // Uneven weights are what is intended: 900 : 100 against 90 : 10 fits.
        let uneven = sample_ratio(
            &split(vec![9.0, 1.0]),
            &[ArmTotals::new(900, 0), ArmTotals::new(100, 0)],
        );
        assert_eq!(uneven.p_value, Some(1.0));
        assert!(uneven.message.contains("90% : 10%"), "{}", uneven.message);
    }
}

#[cfg(test)]
mod interval_tests {
    use super::*;
    use crate::engine::stats::BetaPrior;
    use crate::engine::FlagDefinition;

    #[test]
    fn each_flag_shows_the_interval_it_chose() {
        let totals = [ArmTotals::new(200, 10), ArmTotals::new(0, 0)];
        let wilson = FlagDefinition::new("w").validate().expect("valid");
        let beta = FlagDefinition {
            interval: IntervalKind::Beta,
            ..FlagDefinition::new("b").with_policy(Policy::Thompson {
                alpha: 2.0,
                beta: 8.0,
            })
        }
        .validate()
        .expect("valid");
        let shown = statistics(&wilson, 0, &totals, None);
        assert_eq!(shown.interval, IntervalKind::Wilson);
        assert_eq!(shown.arms[0].interval, wilson_interval(totals[0], 0.95));
        let shown = statistics(&beta, 0, &totals, None);
        assert_eq!(shown.interval, IntervalKind::Beta);
        let prior = BetaPrior {
            alpha: 2.0,
            beta: 8.0,
        };
        assert_eq!(
            shown.arms[0].interval,
            beta_interval(totals[0], 0.95, prior)
        );
        assert_ne!(shown.arms[0].interval, wilson_interval(totals[0], 0.95));
        // No views: no interval, whichever kind (not the prior's).
        assert_eq!(shown.arms[1].interval, None);
    }
}
