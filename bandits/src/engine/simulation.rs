//! The offline simulator: a flag's own decision code against arms with known rates.
//!
//! Each simulated visitor is assigned an arm by [`Flag::choose_arm`], converts with that
//! arm's probability, and is counted; the winner rule is consulted by
//! [`Flag::find_winner`], exactly as on a site. What it measures:
//!
//! - **regret**: the conversions lost against always showing the best arm, in
//!   expectation (`Σ_t (μ* - μ_{arm_t})`), the usual yardstick of a bandit policy;
//! - **locks**: when the winner rule locks an arm, and whether it was a wrong one (an arm
//!   with a lower rate than the best; with equal arms, any lock is a false one).
//!
//! The `simulate` example is its command line: `cargo run --release -p bandits --example
//! simulate -- --help`.
//!
//! ```
//! use bandits::engine::simulation::Simulation;
//! use bandits::engine::{FlagDefinition, Policy, WinnerRule};
//!
//! let flag = FlagDefinition::new("sim")
//!     .with_policy(Policy::thompson())
//!     .with_winner_rule(WinnerRule::Manual)
//!     .validate()?;
//! let summary = Simulation::new(&flag, vec![0.04, 0.05], 2_000).run_many(20, 7, 1);
//! assert_eq!(summary.replications, 20);
//! // Showing only the worse arm would lose 20 conversions by visitor 2,000.
//! assert!(summary.checkpoints[0].mean_regret < 20.0);
//! # Ok::<(), bandits::engine::InvalidFlag>(())
//! ```

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::flag::Flag;
use super::totals::ArmTotals;

/// How often the winner rule is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAfter {
    /// After every conversion, as django-bandits does.
    Conversion,
    /// After every visitor: the most frequent peeking possible.
    Visitor,
    /// After every `n` visitors, as a site checks after each counter flush (a site that
    /// counts 200 new visitors a second and flushes every 500 ms checks every 100).
    Every(u64),
    /// Never: the policy runs alone.
    Never,
}

/// One simulated experiment set-up.
#[derive(Debug, Clone)]
pub struct Simulation<'a> {
    /// The flag whose policy and winner rule are simulated.
    pub flag: &'a Flag,
    /// Each arm's true conversion rate, in the flag's arm order.
    pub rates: Vec<f64>,
    /// Visitors per experiment.
    pub horizon: u64,
    /// Visitor counts at which regret and locks are reported (the horizon is always one).
    pub checkpoints: Vec<u64>,
    /// When the winner rule is consulted.
    pub check_after: CheckAfter,
}

/// What one simulated experiment did.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Expected regret accumulated by each checkpoint.
    pub regret: Vec<f64>,
    /// The arm locked and the visitor (counting from 1) after which it was locked.
    pub lock: Option<(usize, u64)>,
}

/// Averages over many simulated experiments, at one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Visitors so far.
    pub visitors: u64,
    /// Mean expected regret.
    pub mean_regret: f64,
    /// Standard error of that mean.
    pub regret_se: f64,
    /// Share of experiments that had locked any arm by now.
    pub locked: f64,
    /// Share of experiments that had locked an arm worse than the best by now (with equal
    /// arms, no lock is wrong by this measure: read `locked`).
    pub locked_wrong: f64,
}

/// The result of [`Simulation::run_many`].
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Experiments simulated.
    pub replications: u64,
    /// The median number of visitors after which the rule locked an arm, counting the
    /// experiments that never locked as locking after the horizon: `None` when half of
    /// them or more did not lock by then.
    pub median_lock: Option<u64>,
    /// One entry per checkpoint, in increasing order.
    pub checkpoints: Vec<Checkpoint>,
}

impl<'a> Simulation<'a> {
    /// A simulation of `flag` against `rates` over `horizon` visitors, reporting at the
    /// horizon only and checking the winner rule after every conversion.
    pub fn new(flag: &'a Flag, rates: Vec<f64>, horizon: u64) -> Self {
        Simulation {
            flag,
            rates,
            horizon,
            checkpoints: vec![horizon],
            check_after: CheckAfter::Conversion,
        }
    }

    /// Reports at these visitor counts too (counts past the horizon are dropped).
    pub fn with_checkpoints(mut self, checkpoints: impl IntoIterator<Item = u64>) -> Self {
        let horizon = self.horizon;
        self.checkpoints = checkpoints
            .into_iter()
            .filter(|&c| c > 0 && c <= horizon)
            .chain([horizon])
            .collect();
        self.checkpoints.sort_unstable();
        self.checkpoints.dedup();
        self
    }

    /// Consults the winner rule as `check_after` says.
    pub fn with_check_after(mut self, check_after: CheckAfter) -> Self {
        self.check_after = check_after;
        self
    }

    /// Simulates one experiment with `rng`.
    pub fn run<R: Rng + ?Sized>(&self, rng: &mut R) -> Run {
        let k = self.flag.arms().len();
        let rates: Vec<f64> = (0..k)
            .map(|i| self.rates.get(i).copied().unwrap_or(0.0).clamp(0.0, 1.0))
            .collect();
        let best_rate = rates.iter().copied().fold(0.0, f64::max);
        let gaps: Vec<f64> = rates.iter().map(|rate| best_rate - rate).collect();

        let mut flag = std::borrow::Cow::Borrowed(self.flag);
        let mut totals = vec![ArmTotals::default(); k];
        let mut lock = self.flag.winner().map(|arm| (arm, 0));
        let mut regret = 0.0;
        let mut reported = Vec::with_capacity(self.checkpoints.len());
        let mut next_checkpoint = self.checkpoints.iter().peekable();

        for visitor in 1..=self.horizon {
            let arm = flag.choose_arm(&totals, rng);
            let converted = rng.random::<f64>() < rates[arm];
            totals[arm].record(converted);
            regret += gaps[arm];

            let check = match self.check_after {
                CheckAfter::Conversion => converted,
                CheckAfter::Visitor => true,
                CheckAfter::Every(n) => visitor % n.max(1) == 0,
                CheckAfter::Never => false,
            };
            if check && lock.is_none() {
                if let Some(winner) = flag.find_winner(&totals) {
                    if let Some(locked) = flag.as_ref().clone().lock_winner(winner) {
                        flag = std::borrow::Cow::Owned(locked);
                        lock = Some((winner, visitor));
                    }
                }
            }
            while next_checkpoint.next_if(|&&c| c == visitor).is_some() {
                reported.push(regret);
            }
        }
        Run {
            regret: reported,
            lock,
        }
    }

    /// Simulates `replications` experiments on `threads` threads and averages them.
    ///
    /// Experiment `i` draws from its own generator seeded from `(seed, i)`, so the result
    /// depends on the seed only, never on the number of threads.
    pub fn run_many(&self, replications: u64, seed: u64, threads: usize) -> Summary {
        let threads = threads.clamp(1, replications.max(1) as usize);
        let runs: Vec<Run> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (t as u64..replications)
                            .step_by(threads)
                            .map(|i| (i, self.run(&mut replication_rng(seed, i))))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut runs: Vec<(u64, Run)> = handles
                .into_iter()
                .flat_map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect();
            runs.sort_by_key(|(i, _)| *i);
            runs.into_iter().map(|(_, run)| run).collect()
        });
        self.summarize(&runs)
    }

    fn summarize(&self, runs: &[Run]) -> Summary {
        let n = runs.len() as f64;
        let best_rate = self.rates.iter().copied().fold(0.0, f64::max);
        let checkpoints = self
            .checkpoints
            .iter()
            .enumerate()
            .map(|(c, &visitors)| {
                let values: Vec<f64> = runs.iter().map(|run| run.regret[c]).collect();
                let mean = values.iter().sum::<f64>() / n;
                let variance = if values.len() > 1 {
                    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
                } else {
                    0.0
                };
                let locked_by = |wrong_only: bool| {
                    runs.iter()
                        .filter(|run| match run.lock {
                            Some((arm, at)) => {
                                at <= visitors
                                    && (!wrong_only
                                        || self.rates.get(arm).copied().unwrap_or(0.0) < best_rate)
                            }
                            None => false,
                        })
                        .count() as f64
                        / n
                };
                Checkpoint {
                    visitors,
                    mean_regret: mean,
                    regret_se: (variance / n).sqrt(),
                    locked: locked_by(false),
                    locked_wrong: locked_by(true),
                }
            })
            .collect();
        let mut locks: Vec<u64> = runs
            .iter()
            .map(|run| run.lock.map_or(u64::MAX, |(_, at)| at))
            .collect();
        locks.sort_unstable();
        let median_lock = locks
            .get(locks.len() / 2)
            .copied()
            .filter(|&at| at != u64::MAX && !locks.is_empty());
        Summary {
            replications: runs.len() as u64,
            median_lock,
            checkpoints,
        }
    }
}

fn replication_rng(seed: u64, replication: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ replication.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One counted view in a simulated activity log: what a site's log records of it
/// (the arm and the odds it was chosen with) and whether the visitor converted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Logged {
    /// The arm shown.
    pub arm: usize,
    /// The probability with which the policy chose it ([`Choice::propensity`](super::Choice::propensity)).
    pub propensity: f64,
    /// Whether the visitor converted.
    pub converted: bool,
}

/// Simulates `visitors` visitors of `flag` against arms converting at `rates` the way a
/// site serves them, and returns its log: every decision reads the totals and the
/// [`Chances`](super::stats::Chances) of the last flush, one flush every `flush_every`
/// visitors, and each view records the odds its arm was chosen with. The winner rule is
/// not consulted. A policy whose propensity cannot be known logs nothing.
///
/// ```
/// use bandits::engine::simulation::{inverse_propensity, logged_run};
/// use bandits::engine::{FlagDefinition, Policy};
/// use rand::{rngs::SmallRng, SeedableRng};
///
/// let flag = FlagDefinition::new("sim").with_policy(Policy::percent(20.0)).validate()?;
/// let log = logged_run(&flag, &[0.1, 0.3], 5_000, 100, &mut SmallRng::seed_from_u64(1));
/// assert!(log.iter().all(|view| view.propensity == [0.8, 0.2][view.arm]));
/// let estimates = inverse_propensity(&log, 2);
/// assert!((estimates[1].rate - 0.3).abs() < 4.0 * estimates[1].standard_error);
/// # Ok::<(), bandits::engine::InvalidFlag>(())
/// ```
pub fn logged_run<R: Rng + ?Sized>(
    flag: &Flag,
    rates: &[f64],
    visitors: u64,
    flush_every: u64,
    rng: &mut R,
) -> Vec<Logged> {
    let k = flag.arms().len();
    let mut totals = vec![ArmTotals::default(); k];
    let mut flushed = totals.clone();
    let mut chances = flag
        .reads_chances()
        .then(|| flag.chances(&flushed))
        .flatten();
    let mut log = Vec::with_capacity(visitors as usize);
    for visitor in 0..visitors {
        if visitor > 0 && visitor % flush_every.max(1) == 0 {
            flushed.clone_from(&totals);
            chances = flag
                .reads_chances()
                .then(|| flag.chances(&flushed))
                .flatten();
        }
        let choice = flag.choose(&flushed, chances.as_ref(), rng);
        let Some(propensity) = choice.propensity else {
            continue;
        };
        let rate = rates
            .get(choice.arm)
            .copied()
            .unwrap_or(0.0)
            .clamp(0.0, 1.0);
        let converted = rng.random::<f64>() < rate;
        totals[choice.arm].record(converted);
        log.push(Logged {
            arm: choice.arm,
            propensity,
            converted,
        });
    }
    log
}

/// An estimate of an arm's conversion rate, with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The estimated rate.
    pub rate: f64,
    /// Its standard error.
    pub standard_error: f64,
}

/// The inverse-propensity estimate of each of `arms` arms' conversion rate from a log:
/// the mean over all views of `converted / propensity` where the view went to the arm
/// and 0 elsewhere, which is unbiased for the rate the arm would have had had everyone
/// seen it, whatever policy chose the arms, provided each arm's propensity was above
/// zero (UCB1, which chooses with certainty, and a locked winner fail that). The
/// standard error is that of a mean of the per-view terms.
pub fn inverse_propensity(log: &[Logged], arms: usize) -> Vec<Estimate> {
    let n = log.len() as f64;
    (0..arms)
        .map(|arm| {
            let term = |view: &Logged| {
                if view.arm == arm && view.converted && view.propensity > 0.0 {
                    1.0 / view.propensity
                } else {
                    0.0
                }
            };
            if log.is_empty() {
                return Estimate {
                    rate: 0.0,
                    standard_error: f64::INFINITY,
                };
            }
            let mean = log.iter().map(term).sum::<f64>() / n;
            let variance = if log.len() > 1 {
                log.iter().map(|v| (term(v) - mean).powi(2)).sum::<f64>() / (n - 1.0)
            } else {
                f64::INFINITY
            };
            Estimate {
                rate: mean,
                standard_error: (variance / n).sqrt(),
            }
        })
        .collect()
}

/// The Lai–Robbins asymptotic lower bound on expected regret after `horizon` visitors:
/// `Σ_i (μ* - μ_i) / KL(μ_i, μ*) · ln(horizon)` over the arms below the best, where `KL`
/// is the Kullback–Leibler divergence between Bernoulli distributions.
///
/// No policy beats it as the horizon grows; at small horizons it is not a floor, so
/// compare how regret grows per tenfold horizon (the bound grows by `ln 10` times its
/// constant). `None` when the best rate is 0 or 1, or a rate lies outside [0, 1].
///
/// ```
/// use bandits::engine::simulation::lai_robbins_bound;
/// let bound = lai_robbins_bound(&[0.04, 0.05], 100_000).unwrap();
/// assert!((bound - 102.2).abs() < 0.1);
/// ```
pub fn lai_robbins_bound(rates: &[f64], horizon: u64) -> Option<f64> {
    if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
        return None;
    }
    let best = rates.iter().copied().fold(0.0, f64::max);
    if best <= 0.0 || best >= 1.0 {
        return None;
    }
    // A fold from +0.0: an empty `sum()` of floats is -0.0, which would print as "-0.0".
    let constant = rates
        .iter()
        .filter(|&&rate| rate < best)
        .map(|&rate| (best - rate) / bernoulli_kl(rate, best))
        .fold(0.0, |total, term| total + term);
    Some(constant * (horizon.max(1) as f64).ln())
}

/// `KL(Bernoulli(p) || Bernoulli(q))` for `q` in (0, 1).
fn bernoulli_kl(p: f64, q: f64) -> f64 {
    let term = |x: f64, y: f64| if x == 0.0 { 0.0 } else { x * (x / y).ln() };
    term(p, q) + term(1.0 - p, 1.0 - q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FlagDefinition, Policy, WinnerRule};

    fn flag(policy: Policy, rule: WinnerRule) -> Flag {
        FlagDefinition::new("sim")
            .with_policy(policy)
            .with_winner_rule(rule)
            .validate()
            .unwrap()
    }

    #[test]
    fn results_depend_on_the_seed_not_the_threads() {
        let flag = flag(Policy::thompson(), WinnerRule::TTest);
        let sim = Simulation::new(&flag, vec![0.05, 0.08], 3_000).with_checkpoints([1_000]);
        let one = sim.run_many(8, 11, 1);
        assert_eq!(one, sim.run_many(8, 11, 3));
        assert_ne!(one, sim.run_many(8, 12, 1));
    }

    #[test]
    fn a_fixed_even_split_loses_half_the_gap_per_visitor() {
        let flag = flag(Policy::even_split(2), WinnerRule::Manual);
        let summary = Simulation::new(&flag, vec![0.1, 0.2], 10_000).run_many(40, 1, 2);
        let point = &summary.checkpoints[0];
        // Expected regret: 10,000 visitors x 0.1 gap x 1/2 = 500.
        assert!((point.mean_regret - 500.0).abs() < 4.0 * point.regret_se.max(1.0));
        assert_eq!(point.locked, 0.0);
    }

    #[test]
    fn checkpoints_report_growing_regret_and_locks() {
        let flag = flag(Policy::epsilon_greedy(), WinnerRule::TTest);
        let summary = Simulation::new(&flag, vec![0.02, 0.2], 5_000)
            .with_checkpoints([100, 1_000, 9_999_999])
            .run_many(30, 5, 2);
        let visitors: Vec<u64> = summary.checkpoints.iter().map(|c| c.visitors).collect();
        assert_eq!(visitors, [100, 1_000, 5_000]);
        let regret: Vec<f64> = summary.checkpoints.iter().map(|c| c.mean_regret).collect();
        assert!(regret.windows(2).all(|w| w[0] <= w[1]), "{regret:?}");
        // A ten-fold difference is found, and the better arm is the one locked.
        let last = summary.checkpoints.last().unwrap();
        assert_eq!(last.locked, 1.0);
        assert_eq!(last.locked_wrong, 0.0);
    }

    #[test]
    fn a_locked_winner_is_served_to_everyone() {
        let locked = flag(Policy::thompson(), WinnerRule::TTest)
            .lock_winner(0)
            .unwrap();
        let run = Simulation::new(&locked, vec![0.1, 0.3], 1_000).run(&mut replication_rng(1, 0));
        // Always the worse arm: regret is exactly 0.2 per visitor.
        assert!((run.regret[0] - 200.0).abs() < 1e-9);
        assert_eq!(run.lock, Some((0, 0)));
    }

    /// Per-run estimates of each arm's rate over `runs` logged experiments.
    fn estimates(flag: &Flag, rates: &[f64], runs: u64, wrong_odds: bool) -> Vec<Vec<f64>> {
        (0..runs)
            .map(|i| {
                let mut log = logged_run(flag, rates, 500, 50, &mut replication_rng(9, i));
                if wrong_odds {
                    // What an analysis without the logged odds would assume: an even split.
                    for view in &mut log {
                        view.propensity = 1.0 / rates.len() as f64;
                    }
                }
                inverse_propensity(&log, rates.len())
                    .iter()
                    .map(|e| e.rate)
                    .collect()
            })
            .collect()
    }

    /// Mean and standard error of arm `arm`'s estimates.
    fn mean_se(estimates: &[Vec<f64>], arm: usize) -> (f64, f64) {
        let n = estimates.len() as f64;
        let mean = estimates.iter().map(|e| e[arm]).sum::<f64>() / n;
        let var = estimates
            .iter()
            .map(|e| (e[arm] - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        (mean, (var / n).sqrt())
    }

    #[test]
    fn inverse_propensity_estimates_from_logged_odds_are_unbiased() {
        let rates = [0.2, 0.3];
        for policy in [
            Policy::epsilon_greedy(),
            Policy::EpsilonDecay,
            Policy::thompson(),
            Policy::top_two_thompson(),
            Policy::percent(30.0),
        ] {
            let label = policy.label();
            let flag = flag(policy, WinnerRule::Manual);
            let estimates = estimates(&flag, &rates, 300, false);
            for (arm, rate) in rates.iter().enumerate() {
                let (mean, se) = mean_se(&estimates, arm);
                assert!(
                    (mean - rate).abs() < 4.0 * se,
                    "{label}, arm {arm}: {mean} ± {se} against {rate}"
                );
            }
        }
        // The same check fails when the odds are not the logged ones: Thompson sampling
        // sends the better arm most visitors, so assuming an even split overstates it.
        let flag = flag(Policy::thompson(), WinnerRule::Manual);
        let wrong = estimates(&flag, &rates, 300, true);
        let (mean, se) = mean_se(&wrong, 1);
        assert!((mean - rates[1]).abs() > 4.0 * se, "{mean} ± {se}");
    }

    #[test]
    fn lai_robbins_handles_edges() {
        assert_eq!(lai_robbins_bound(&[0.0, 0.0], 1000), None);
        assert_eq!(lai_robbins_bound(&[0.5, 1.0], 1000), None);
        assert_eq!(lai_robbins_bound(&[0.5, 1.5], 1000), None);
        let equal = lai_robbins_bound(&[0.05, 0.05], 1000).unwrap();
        assert!(equal == 0.0 && equal.is_sign_positive());
        assert!(lai_robbins_bound(&[0.0, 0.1], 1000).unwrap() > 0.0);
    }
}
