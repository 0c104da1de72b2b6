//! What the statistics page and the API report of a flag: per arm its rate, interval,
//! p-value against the control and probability of being best; the winner; the rule in
//! words. Pure: a flag and its totals in, [`Statistics`] out.

use serde::Serialize;

use super::flag::Flag;
use super::policy::Policy;
use super::stats::{
    msprt_p_value, probability_best, student_t_test, wilson_interval, BetaPrior, Interval,
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
    /// The Wilson interval at the flag's confidence; none without views.
    pub interval: Option<Interval>,
    /// Two-sided p-value against the control, by the flag's winner rule (t-test, or the
    /// always-valid p-value of the sequential rule); none for the control.
    pub p_value_against_control: Option<f64>,
    /// The posterior probability that this arm is the best.
    pub probability_best: Option<f64>,
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
    /// Per arm, in the flag's order (the control first).
    pub arms: Vec<ArmStatistics>,
    /// The locked winner, if any.
    pub winner: Option<Winner>,
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
    let prior = match flag.policy() {
        Policy::Thompson { alpha, beta } => BetaPrior {
            alpha: *alpha,
            beta: *beta,
        },
        _ => BetaPrior::UNIFORM,
    };
    let best = probability_best(totals, prior).unwrap_or_default();
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
                interval: wilson_interval(arm_totals, confidence),
                p_value_against_control: p_value,
                probability_best: best.get(i).copied(),
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
        arms,
        winner,
    }
}
