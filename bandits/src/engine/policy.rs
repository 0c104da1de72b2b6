//! Bandit policies: how a new visitor is assigned an arm. See [`Policy`].

use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use super::rule::Rule;
use super::stats::BetaPrior;
use super::totals::{total_views, ArmTotals};

/// How a flag assigns arms to new visitors.
///
/// Every policy is a pure function of the arms' totals and a random number generator,
/// so the site, the tests and the offline simulator run the same code. Choosing costs
/// well under a microsecond at ten arms (see `docs/benchmarks.md`) and allocates nothing.
///
/// Which one to pick:
///
/// | policy | explores | good for |
/// |---|---|---|
/// | [`Thompson`](Policy::Thompson) | in proportion to the chance an arm is best | the least regret in our simulations, when no answer is needed |
/// | [`TopTwoThompson`](Policy::TopTwoThompson) | the leader and its strongest challenger | an experiment that must end with an answer |
/// | [`EpsilonGreedy`](Policy::EpsilonGreedy) | a fixed share `epsilon`, forever | the django-bandits behaviour, simple to explain |
/// | [`EpsilonDecay`](Policy::EpsilonDecay) | with probability `1 / (1 + n / k)`, shrinking | exploring hard at first, then exploiting |
/// | [`Ucb1`](Policy::Ucb1) | arms whose upper bound is highest | deterministic optimism, django-bandits' UCB1 |
/// | [`Split`](Policy::Split) | a fixed split by weights | a classic A/B test, or waffle's percent rollout |
///
/// Serialized with a `kind` tag, for example `{"kind": "epsilon_greedy", "epsilon": 0.1}`
/// or `{"kind": "thompson"}`; missing parameters take their defaults.
///
/// # Example
///
/// ```
/// use bandits::engine::{ArmTotals, Policy};
/// use rand::{rngs::SmallRng, SeedableRng};
///
/// let mut rng = SmallRng::seed_from_u64(1);
/// // The second arm converts far better: greedy choices go to it.
/// let totals = [ArmTotals::new(1000, 10), ArmTotals::new(1000, 90)];
/// let greedy = Policy::EpsilonGreedy { epsilon: 0.0 };
/// assert_eq!(greedy.choose(&totals, &mut rng), 1);
///
/// let policy: Policy = serde_json::from_str(r#"{"kind": "ucb1"}"#).unwrap();
/// assert_eq!(policy, Policy::Ucb1 { c: 2.0 });
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Policy {
    /// With probability `epsilon` a uniformly random arm, otherwise the arm with the best
    /// observed rate (ties broken at random). `epsilon` is in [0, 1]; default 0.1.
    EpsilonGreedy {
        /// The share of visitors who get a random arm.
        #[serde(default = "default_epsilon")]
        epsilon: f64,
    },
    /// Like epsilon-greedy with `epsilon = 1 / (1 + n / k)`, where `n` is the exposures
    /// so far and `k` the number of arms: every visitor explores at first, ever fewer later.
    EpsilonDecay,
    /// The arm with the highest `rate + c * sqrt(ln(max(n, 1)) / max(views, 1))`, ties
    /// broken at random. This is django-bandits' UCB1; `c` is positive, default 2.
    Ucb1 {
        /// The weight of the exploration bonus.
        #[serde(default = "default_c")]
        c: f64,
    },
    /// Thompson sampling: draw a conversion rate for every arm from its
    /// `Beta(alpha + conversions, beta + views - conversions)` posterior and take the arm
    /// with the highest draw. `alpha` and `beta` are positive; default 1 and 1 (uniform).
    /// On a site the arm is drawn from each arm's probability of being best, computed once
    /// per counter flush: the same odds, at a cost that does not grow with the draws, and
    /// exactly the odds its log records ([`choose_given`](Policy::choose_given)).
    Thompson {
        /// Prior conversions plus one.
        #[serde(default = "one")]
        alpha: f64,
        /// Prior non-conversions plus one.
        #[serde(default = "one")]
        beta: f64,
    },
    /// Top-two Thompson sampling (Russo, 2016), made for finding the best arm rather than
    /// for the least regret: draw the leader as Thompson sampling does; show it with
    /// probability `leader`, otherwise show a challenger, drawn again from the posteriors
    /// until another arm leads. Thompson sampling starves an arm that is behind, so a
    /// test between the two top arms can take very long to conclude; this policy keeps
    /// sending the strongest challenger a share of visitors, so the winner rule gets its
    /// evidence.
    ///
    /// Russo's analysis takes `leader = 0.5`, the fastest way to an answer; but with two
    /// arms that is an even split whatever the results, which loses twice what Thompson
    /// sampling does. The default 0.8 keeps a fifth of visitors on the challenger: in our
    /// simulations every experiment still ends with the right arm locked by the sequential
    /// rule, at about 1.7 times Thompson sampling's regret (`docs/benchmarks.md`).
    ///
    /// On a site the draws are made from each arm's probability of being best, computed
    /// once per counter flush (the same arms and odds the posterior draws would give, at
    /// a cost that does not grow with the odds); [`choose`](Policy::choose), without those
    /// figures, draws from the posteriors and, with more than two arms, gives up looking
    /// for a challenger after [`MAX_CHALLENGER_DRAWS`] draws and takes the arm placed
    /// second in one more.
    TopTwoThompson {
        /// Prior conversions plus one.
        #[serde(default = "one")]
        alpha: f64,
        /// Prior non-conversions plus one.
        #[serde(default = "one")]
        beta: f64,
        /// Russo's β: the probability of showing the leader rather than a challenger.
        /// In (0, 1); default 0.8.
        #[serde(default = "default_leader")]
        leader: f64,
    },
    /// A fixed split: arm `i` with probability `weights[i] / sum(weights)`, whatever the
    /// results. One non-negative weight per arm, not all zero.
    Split {
        /// One weight per arm, in the flag's arm order.
        weights: Vec<f64>,
    },
}

fn default_epsilon() -> f64 {
    0.1
}

fn default_c() -> f64 {
    2.0
}

fn one() -> f64 {
    1.0
}

fn default_leader() -> f64 {
    0.8
}

/// Posterior draws [`Policy::choose`] makes looking for a challenger of top-two Thompson
/// sampling with more than two arms, before it takes the arm placed second.
pub const MAX_CHALLENGER_DRAWS: usize = 64;

impl Default for Policy {
    /// Epsilon-greedy with epsilon 0.1, as in django-bandits.
    fn default() -> Self {
        Policy::EpsilonGreedy {
            epsilon: default_epsilon(),
        }
    }
}

impl Policy {
    /// Epsilon-greedy with the default epsilon 0.1.
    pub fn epsilon_greedy() -> Self {
        Policy::default()
    }

    /// UCB1 with the default `c = 2`.
    pub fn ucb1() -> Self {
        Policy::Ucb1 { c: default_c() }
    }

    /// Thompson sampling with a uniform `Beta(1, 1)` prior.
    pub fn thompson() -> Self {
        Policy::Thompson {
            alpha: 1.0,
            beta: 1.0,
        }
    }

    /// Top-two Thompson sampling with a uniform prior and `leader = 0.8`.
    pub fn top_two_thompson() -> Self {
        Policy::TopTwoThompson {
            alpha: 1.0,
            beta: 1.0,
            leader: default_leader(),
        }
    }

    /// The `Beta` prior of the Thompson policies; the uniform prior for the others.
    pub fn prior(&self) -> BetaPrior {
        match self {
            Policy::Thompson { alpha, beta } | Policy::TopTwoThompson { alpha, beta, .. } => {
                BetaPrior {
                    alpha: *alpha,
                    beta: *beta,
                }
            }
            _ => BetaPrior::UNIFORM,
        }
    }

    /// Whether choosing, or knowing the odds of a choice, needs each arm's probability of
    /// being best ([`chances`](super::stats::chances)): the Thompson policies.
    pub fn reads_chances(&self) -> bool {
        matches!(
            self,
            Policy::Thompson { .. } | Policy::TopTwoThompson { .. }
        )
    }

    /// An even split over `arms` arms: the classic A/B(/C...) test.
    pub fn even_split(arms: usize) -> Self {
        Policy::Split {
            weights: vec![1.0; arms],
        }
    }

    /// Waffle's percent for a two-arm flag: `percent` of visitors get the second arm.
    ///
    /// ```
    /// use bandits::engine::Policy;
    /// assert_eq!(Policy::percent(10.0), Policy::Split { weights: vec![90.0, 10.0] });
    /// ```
    pub fn percent(percent: f64) -> Self {
        Policy::Split {
            weights: vec![100.0 - percent, percent],
        }
    }

    /// The policy's name as shown to site owners.
    pub fn label(&self) -> &'static str {
        match self {
            Policy::EpsilonGreedy { .. } => "epsilon-greedy",
            Policy::EpsilonDecay => "epsilon-decay",
            Policy::Ucb1 { .. } => "UCB1",
            Policy::Thompson { .. } => "Thompson sampling",
            Policy::TopTwoThompson { .. } => "top-two Thompson sampling",
            Policy::Split { .. } => "fixed split",
        }
    }

    /// Chooses an arm for a new visitor given every arm's totals.
    ///
    /// Returns an index into `arms`. With fewer than two arms there is nothing to choose
    /// and the answer is `0`, the control.
    pub fn choose<R: Rng + ?Sized>(&self, arms: &[ArmTotals], rng: &mut R) -> usize {
        let k = arms.len();
        if k < 2 {
            return 0;
        }
        match self {
            Policy::EpsilonGreedy { epsilon } => {
                if rng.random::<f64>() < *epsilon {
                    rng.random_range(0..k)
                } else {
                    greedy(arms, rng)
                }
            }
            Policy::EpsilonDecay => {
                let explore = 1.0 / (1.0 + total_views(arms) as f64 / k as f64);
                if rng.random::<f64>() < explore {
                    rng.random_range(0..k)
                } else {
                    greedy(arms, rng)
                }
            }
            Policy::Ucb1 { c } => {
                let log_n = (total_views(arms).max(1) as f64).ln();
                argmax(
                    arms.iter()
                        .map(|arm| arm.rate() + c * (log_n / arm.views.max(1) as f64).sqrt()),
                    rng,
                )
            }
            Policy::Thompson { alpha, beta } => thompson_draw(arms, *alpha, *beta, None, rng),
            Policy::TopTwoThompson {
                alpha,
                beta,
                leader,
            } => {
                let first = thompson_draw(arms, *alpha, *beta, None, rng);
                if rng.random::<f64>() < *leader {
                    return first;
                }
                if k == 2 {
                    // Drawing until the other arm leads ends on the other arm.
                    return 1 - first;
                }
                for _ in 0..MAX_CHALLENGER_DRAWS {
                    let challenger = thompson_draw(arms, *alpha, *beta, None, rng);
                    if challenger != first {
                        return challenger;
                    }
                }
                thompson_draw(arms, *alpha, *beta, Some(first), rng)
            }
            Policy::Split { weights } => split(weights, k, rng),
        }
    }

    /// Chooses an arm as [`choose`](Self::choose) does, given each arm's probability of
    /// being best (`best`, from [`chances`](super::stats::chances) on the same totals):
    /// the Thompson policies then draw from those figures (Thompson sampling picks arm `i`
    /// with probability `best[i]`, exactly the odds of its posterior draws; top-two
    /// Thompson its leader and challenger), in a pass over the arms, and the propensity a
    /// site logs is exactly the odds it drew with. Every other policy, and `best` of the
    /// wrong length, is [`choose`](Self::choose).
    pub fn choose_given<R: Rng + ?Sized>(
        &self,
        arms: &[ArmTotals],
        best: Option<&[f64]>,
        rng: &mut R,
    ) -> usize {
        let k = arms.len();
        match (self, best) {
            (Policy::Thompson { .. }, Some(best)) if k >= 2 && best.len() == k => {
                draw(best, None, rng).unwrap_or_else(|| self.choose(arms, rng))
            }
            (Policy::TopTwoThompson { leader, .. }, Some(best)) if k >= 2 && best.len() == k => {
                let first = draw(best, None, rng).unwrap_or(0);
                if rng.random::<f64>() < *leader {
                    return first;
                }
                draw(best, Some(first), rng).unwrap_or_else(|| runner_up(arms, first))
            }
            _ => self.choose(arms, rng),
        }
    }

    /// The probability that this policy chooses `arm` given `arms`' totals: the
    /// propensity an off-policy estimate divides by.
    ///
    /// Exact for epsilon-greedy, epsilon-decay, UCB1 (a share of its ties) and fixed
    /// splits. For the Thompson policies it is computed from `best`, each arm's
    /// probability of being best on the same totals ([`chances`](super::stats::chances)),
    /// and is `None` without it. `None` for an arm out of range.
    ///
    /// ```
    /// use bandits::engine::{ArmTotals, Policy};
    ///
    /// let arms = [ArmTotals::new(100, 5), ArmTotals::new(100, 9)];
    /// // Epsilon-greedy explores a tenth of the time, half of which lands on each arm.
    /// let greedy = Policy::epsilon_greedy();
    /// assert!((greedy.propensity(1, &arms, None).unwrap() - 0.95).abs() < 1e-12);
    /// assert!((greedy.propensity(0, &arms, None).unwrap() - 0.05).abs() < 1e-12);
    /// // Thompson sampling chooses an arm with its probability of being best.
    /// assert_eq!(Policy::thompson().propensity(1, &arms, Some(&[0.12, 0.88])), Some(0.88));
    /// assert_eq!(Policy::thompson().propensity(1, &arms, None), None);
    /// ```
    pub fn propensity(&self, arm: usize, arms: &[ArmTotals], best: Option<&[f64]>) -> Option<f64> {
        let k = arms.len();
        if arm >= k {
            return None;
        }
        if k == 1 {
            return Some(1.0);
        }
        let best = best.filter(|best| best.len() == k);
        let greedy_share = |explore: f64| {
            explore / k as f64
                + (1.0 - explore) * share_of_top(arms.iter().map(ArmTotals::rate), arm)
        };
        match self {
            Policy::EpsilonGreedy { epsilon } => Some(greedy_share(epsilon.clamp(0.0, 1.0))),
            Policy::EpsilonDecay => Some(greedy_share(
                1.0 / (1.0 + total_views(arms) as f64 / k as f64),
            )),
            Policy::Ucb1 { c } => {
                let log_n = (total_views(arms).max(1) as f64).ln();
                Some(share_of_top(
                    arms.iter()
                        .map(|a| a.rate() + c * (log_n / a.views.max(1) as f64).sqrt()),
                    arm,
                ))
            }
            Policy::Thompson { .. } => best.map(|best| best[arm]),
            Policy::TopTwoThompson { leader, .. } => {
                let best = best?;
                // Led by `arm` and shown, or led by another and `arm` is its challenger.
                let challenged: f64 = (0..k)
                    .filter(|&first| first != arm)
                    .map(|first| {
                        let others = 1.0 - best[first];
                        let share = if others > 0.0 && best[arm] > 0.0 {
                            best[arm] / others
                        } else if others > 0.0 {
                            0.0
                        } else {
                            f64::from(u8::from(runner_up(arms, first) == arm))
                        };
                        best[first] * share
                    })
                    .sum();
                Some((leader * best[arm] + (1.0 - leader) * challenged).clamp(0.0, 1.0))
            }
            Policy::Split { weights } => {
                let usable = |w: &f64| w.max(0.0);
                let total: f64 = weights.iter().take(k).map(usable).sum();
                if !(total > 0.0 && total.is_finite()) {
                    return Some(f64::from(u8::from(arm == 0)));
                }
                Some(weights.get(arm).map_or(0.0, usable) / total)
            }
        }
    }

    /// The parameter problems of this policy for a flag with `arms` arms.
    pub(crate) fn problems(&self, arms: usize) -> Vec<(&'static str, Rule)> {
        let mut problems = Vec::new();
        match self {
            Policy::EpsilonGreedy { epsilon } => {
                if !(0.0..=1.0).contains(epsilon) {
                    problems.push((
                        "epsilon",
                        Rule::Range {
                            range: "[0, 1]",
                            value: *epsilon,
                        },
                    ));
                }
            }
            Policy::EpsilonDecay => {}
            Policy::Ucb1 { c } => {
                if !(c.is_finite() && *c > 0.0) {
                    problems.push((
                        "c",
                        Rule::Range {
                            range: "(0, inf)",
                            value: *c,
                        },
                    ));
                }
            }
            Policy::Thompson { alpha, beta } | Policy::TopTwoThompson { alpha, beta, .. } => {
                for (name, value) in [("alpha", alpha), ("beta", beta)] {
                    if !(value.is_finite() && *value > 0.0) {
                        problems.push((
                            name,
                            Rule::Range {
                                range: "(0, inf)",
                                value: *value,
                            },
                        ));
                    }
                }
                if let Policy::TopTwoThompson { leader, .. } = self {
                    if !(*leader > 0.0 && *leader < 1.0) {
                        problems.push((
                            "leader",
                            Rule::Range {
                                range: "(0, 1)",
                                value: *leader,
                            },
                        ));
                    }
                }
            }
            Policy::Split { weights } => {
                if weights.len() != arms {
                    problems.push((
                        "weights",
                        Rule::PerArm {
                            arms,
                            count: weights.len(),
                        },
                    ));
                } else if let Some(bad) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
                    problems.push((
                        "weights",
                        Rule::Range {
                            range: "[0, inf)",
                            value: *bad,
                        },
                    ));
                } else if weights.iter().all(|w| *w == 0.0) {
                    problems.push(("weights", Rule::AllZero));
                }
            }
        }
        problems
    }
}

/// The arm whose posterior draw is highest (leaving out `except`), the Thompson step.
fn thompson_draw<R: Rng + ?Sized>(
    arms: &[ArmTotals],
    alpha: f64,
    beta: f64,
    except: Option<usize>,
    rng: &mut R,
) -> usize {
    // Ties between continuous draws have probability zero: the first one wins.
    let mut best = usize::from(except == Some(0));
    let mut best_draw = f64::NEG_INFINITY;
    for (i, arm) in arms.iter().enumerate() {
        if Some(i) == except {
            continue;
        }
        let a = alpha + arm.successes() as f64;
        let b = beta + (arm.views - arm.successes()) as f64;
        let draw = match Beta::new(a, b) {
            Ok(posterior) => posterior.sample(rng),
            // Only reachable with an unvalidated prior: fall back to the mean.
            Err(_) => a / (a + b),
        };
        if draw > best_draw {
            best = i;
            best_draw = draw;
        }
    }
    best
}

/// The share of choices `arm` gets when the largest of `values` is chosen and ties are
/// broken evenly: `1 / ties` if it is among the largest, else 0. One pass.
fn share_of_top(values: impl Iterator<Item = f64>, arm: usize) -> f64 {
    let (mut top, mut ties, mut mine) = (f64::NEG_INFINITY, 0u32, f64::NEG_INFINITY);
    for (i, value) in values.enumerate() {
        if i == arm {
            mine = value;
        }
        if value > top {
            top = value;
            ties = 1;
        } else if value == top {
            ties += 1;
        }
    }
    if mine == top && ties > 0 {
        1.0 / f64::from(ties)
    } else {
        0.0
    }
}

/// An index drawn with probability `weights[i] / sum` (leaving out `except`); `None`
/// when nothing is left to draw.
fn draw<R: Rng + ?Sized>(weights: &[f64], except: Option<usize>, rng: &mut R) -> Option<usize> {
    let weight = |i: usize| {
        if Some(i) == except {
            0.0
        } else {
            weights[i].max(0.0)
        }
    };
    let total: f64 = (0..weights.len()).map(weight).sum();
    if !(total > 0.0 && total.is_finite()) {
        return None;
    }
    let mut target = rng.random::<f64>() * total;
    let mut last = None;
    for i in 0..weights.len() {
        let w = weight(i);
        if w > 0.0 {
            if target < w {
                return Some(i);
            }
            target -= w;
            last = Some(i);
        }
    }
    last
}

/// The challenger when the leader's odds leave none to draw: the other arm with the best
/// observed rate (the first of equals).
fn runner_up(arms: &[ArmTotals], first: usize) -> usize {
    let mut best = usize::from(first == 0);
    for (i, arm) in arms.iter().enumerate() {
        if i != first && arm.rate() > arms[best].rate() {
            best = i;
        }
    }
    best
}

/// The arm with the best observed rate, ties broken at random.
fn greedy<R: Rng + ?Sized>(arms: &[ArmTotals], rng: &mut R) -> usize {
    argmax(arms.iter().map(ArmTotals::rate), rng)
}

/// The index of the largest value, a uniformly random one among equals.
///
/// Reservoir sampling over the ties: the `j`-th tie seen replaces the choice with
/// probability `1 / j`, so no buffer is needed and no random number is drawn without a tie.
fn argmax<R: Rng + ?Sized>(values: impl Iterator<Item = f64>, rng: &mut R) -> usize {
    let mut best = 0;
    let mut best_value = f64::NEG_INFINITY;
    let mut ties = 0u32;
    for (i, value) in values.enumerate() {
        if value > best_value {
            best = i;
            best_value = value;
            ties = 1;
        } else if value == best_value {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    best
}

/// Arm `i` with probability `weights[i] / sum`; weights past the arms are ignored and
/// missing ones count as zero. All-zero weights give the control.
fn split<R: Rng + ?Sized>(weights: &[f64], k: usize, rng: &mut R) -> usize {
    let usable = || weights.iter().take(k).map(|w| w.max(0.0));
    let total: f64 = usable().sum();
    if !(total > 0.0 && total.is_finite()) {
        return 0;
    }
    let mut target = rng.random::<f64>() * total;
    let mut last_positive = 0;
    for (i, weight) in usable().enumerate() {
        if weight > 0.0 {
            if target < weight {
                return i;
            }
            target -= weight;
            last_positive = i;
        }
    }
    // Rounding can leave a sliver of `target`; it belongs to the last arm with weight.
    last_positive
}

#[cfg(test)]
mod tests;
