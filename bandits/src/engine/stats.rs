//! Tests and intervals on conversion counts.
//!
//! Every function takes [`ArmTotals`] (visitors and conversions) and treats each visitor
//! as one 0/1 outcome. Each is checked against SciPy's values in
//! `bandits/tests/data/stats_vectors.json` (relative error at most 1e-6); the sequential
//! test and the sample-ratio check against `bandits/tests/data/sequential_and_srm_vectors.json`
//! (relative error at most 1e-9).
//!
//! Degenerate inputs never produce NaN: a statistic that is undefined (no views, or two
//! arms that both never, or both always, convert) is `None`. One case is defined as SciPy
//! defines it: two arms without any spread but with different rates (0 of 3 against 4 of
//! 4) give a t statistic of plus or minus infinity and a p-value of 0.
//!
//! ```
//! use bandits::engine::stats::{student_t_test, wilson_interval};
//! use bandits::engine::ArmTotals;
//!
//! let control = ArmTotals::new(1000, 37);
//! let variant = ArmTotals::new(1000, 66);
//! let test = student_t_test(control, variant).unwrap();
//! assert!(test.p_value < 0.01);
//!
//! let interval = wilson_interval(control, 0.95).unwrap();
//! assert!(interval.lower < 0.037 && 0.037 < interval.upper);
//! assert_eq!(wilson_interval(ArmTotals::default(), 0.95), None);
//! ```

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ChiSquared, Continuous, ContinuousCDF, Normal};
use statrs::function::beta::beta_reg;
use statrs::function::erf::erfc;

use super::totals::ArmTotals;

/// The result of a two-sample test: the statistic (first arm minus second) and its
/// two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The test statistic; positive when the first arm converts better. Infinite only for
    /// Student's and Welch's t when neither arm has any spread (see the module notes).
    pub statistic: f64,
    /// The two-sided p-value, in [0, 1].
    pub p_value: f64,
}

/// The result of a chi-square test of independence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChiSquareResult {
    /// Pearson's chi-square statistic, without continuity correction.
    pub statistic: f64,
    /// Degrees of freedom: arms minus one.
    pub dof: u64,
    /// The p-value, in [0, 1].
    pub p_value: f64,
}

/// A two-sided interval for a conversion rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The lower bound.
    pub lower: f64,
    /// The upper bound.
    pub upper: f64,
}

impl Interval {
    /// Whether `rate` lies inside the interval, bounds included.
    pub fn contains(&self, rate: f64) -> bool {
        self.lower <= rate && rate <= self.upper
    }

    /// The interval's width.
    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }
}

/// A `Beta(alpha, beta)` prior on an arm's conversion rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BetaPrior {
    /// Prior successes plus one.
    pub alpha: f64,
    /// Prior failures plus one.
    pub beta: f64,
}

impl BetaPrior {
    /// The uniform prior `Beta(1, 1)`.
    pub const UNIFORM: BetaPrior = BetaPrior {
        alpha: 1.0,
        beta: 1.0,
    };

    fn is_valid(&self) -> bool {
        self.alpha.is_finite() && self.alpha > 0.0 && self.beta.is_finite() && self.beta > 0.0
    }

    /// The posterior after `arm`'s outcomes, `None` for an invalid prior.
    fn posterior(&self, arm: ArmTotals) -> Option<Beta> {
        if !self.is_valid() {
            return None;
        }
        let successes = arm.successes() as f64;
        let failures = (arm.views - arm.successes()) as f64;
        Beta::new(self.alpha + successes, self.beta + failures).ok()
    }
}

impl Default for BetaPrior {
    fn default() -> Self {
        BetaPrior::UNIFORM
    }
}

/// Sum of squared deviations from the mean of `s` ones and `n - s` zeros: `s (n - s) / n`.
fn sum_of_squares(arm: ArmTotals) -> f64 {
    let n = arm.views as f64;
    let s = arm.successes() as f64;
    s * (n - s) / n
}

/// Two-sided p-value of a t statistic with `dof` degrees of freedom.
///
/// `P(|T| > |t|) = I_{dof / (dof + t^2)}(dof / 2, 1 / 2)`, the regularized incomplete beta
/// function, which keeps full relative precision for small p-values where `1 - cdf` would not.
fn t_two_sided_p(t: f64, dof: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    beta_reg(dof / 2.0, 0.5, dof / (dof + t * t)).clamp(0.0, 1.0)
}

/// Two-sided p-value of a standard normal statistic.
fn z_two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// A t statistic for a difference whose standard error is `se`, SciPy's way: a zero
/// standard error gives an infinite statistic if the means differ, and nothing if not.
fn t_result(difference: f64, se: f64, dof: f64) -> Option<TestResult> {
    if dof.is_nan() || dof <= 0.0 || se.is_nan() {
        return None;
    }
    if se == 0.0 {
        if difference == 0.0 {
            return None;
        }
        return Some(TestResult {
            statistic: difference.signum() * f64::INFINITY,
            p_value: 0.0,
        });
    }
    let t = difference / se;
    Some(TestResult {
        statistic: t,
        p_value: t_two_sided_p(t, dof),
    })
}

/// Student's two-sample t-test with equal variances on 0/1 outcomes.
///
/// This is `scipy.stats.ttest_ind(a, b)`, the test django-bandits runs to lock a winner.
/// `None` with fewer than one visitor per arm and two in all, or when both arms have no
/// spread and equal rates.
pub fn student_t_test(a: ArmTotals, b: ArmTotals) -> Option<TestResult> {
    if a.views == 0 || b.views == 0 {
        return None;
    }
    let (na, nb) = (a.views as f64, b.views as f64);
    let dof = na + nb - 2.0;
    let pooled_variance = (sum_of_squares(a) + sum_of_squares(b)) / dof;
    let se = (pooled_variance * (1.0 / na + 1.0 / nb)).sqrt();
    t_result(a.rate() - b.rate(), se, dof)
}

/// Welch's two-sample t-test (unequal variances) on 0/1 outcomes:
/// `scipy.stats.ttest_ind(a, b, equal_var=False)`. `None` with fewer than two visitors in
/// an arm, or when both arms have no spread and equal rates.
pub fn welch_t_test(a: ArmTotals, b: ArmTotals) -> Option<TestResult> {
    if a.views < 2 || b.views < 2 {
        return None;
    }
    let (na, nb) = (a.views as f64, b.views as f64);
    let va = sum_of_squares(a) / (na - 1.0) / na;
    let vb = sum_of_squares(b) / (nb - 1.0) / nb;
    let se = (va + vb).sqrt();
    // Welch–Satterthwaite; with no spread at all the degrees of freedom are moot.
    let dof = if va + vb > 0.0 {
        (va + vb).powi(2) / (va * va / (na - 1.0) + vb * vb / (nb - 1.0))
    } else {
        na + nb - 2.0
    };
    t_result(a.rate() - b.rate(), se, dof)
}

/// The pooled two-proportion z-test. `None` when an arm has no views or the pooled rate
/// is 0 or 1 (the arms cannot differ).
pub fn two_proportion_z_test(a: ArmTotals, b: ArmTotals) -> Option<TestResult> {
    if a.views == 0 || b.views == 0 {
        return None;
    }
    let (na, nb) = (a.views as f64, b.views as f64);
    let pooled = (a.successes() as f64 + b.successes() as f64) / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    // Zero when the pooled rate is 0 or 1; NaN never, as both counts are positive.
    if se.is_nan() || se <= 0.0 {
        return None;
    }
    let z = (a.rate() - b.rate()) / se;
    Some(TestResult {
        statistic: z,
        p_value: z_two_sided_p(z),
    })
}

/// Pearson's chi-square test that all arms share one conversion rate, on the 2 x k table
/// of conversions and non-conversions: `scipy.stats.chi2_contingency(table,
/// correction=False)`.
///
/// `None` with fewer than two arms, an arm without views, or no conversions (or nothing
/// but conversions) at all, where the expected counts have zeros.
pub fn chi_square_test(arms: &[ArmTotals]) -> Option<ChiSquareResult> {
    if arms.len() < 2 || arms.iter().any(|arm| arm.views == 0) {
        return None;
    }
    let total: f64 = arms.iter().map(|arm| arm.views as f64).sum();
    let successes: f64 = arms.iter().map(|arm| arm.successes() as f64).sum();
    let failures = total - successes;
    if successes == 0.0 || failures == 0.0 {
        return None;
    }
    let statistic: f64 = arms
        .iter()
        .map(|arm| {
            let n = arm.views as f64;
            let s = arm.successes() as f64;
            let expected_s = n * successes / total;
            let expected_f = n * failures / total;
            (s - expected_s).powi(2) / expected_s + ((n - s) - expected_f).powi(2) / expected_f
        })
        .sum();
    let dof = arms.len() as u64 - 1;
    let p_value = ChiSquared::new(dof as f64)
        .ok()?
        .sf(statistic)
        .clamp(0.0, 1.0);
    Some(ChiSquareResult {
        statistic,
        dof,
        p_value,
    })
}

/// The sample-ratio check: Pearson's chi-square goodness-of-fit test of the arms' views
/// against the split they were meant to get, `scipy.stats.chisquare(views, f_exp)` with
/// `f_exp` the total views spread by `weights`. A small p-value says the traffic did not
/// split as intended (a redirect that loses one arm's visitors, a bot wave, a bug in a
/// split handler), which biases every other figure of the flag.
///
/// `weights` need not sum to 1. An arm meant to get nothing (weight 0) is left out while it
/// has no views; one view of it makes the split impossible (statistic infinite, p-value
/// 0). `None` when the lists differ in length, a weight is negative or not finite, fewer
/// than two arms are meant to get traffic, or nothing was viewed yet.
///
/// ```
/// use bandits::engine::stats::sample_ratio_test;
///
/// let even = sample_ratio_test(&[5_000, 5_000], &[0.5, 0.5]).unwrap();
/// assert_eq!(even.p_value, 1.0);
/// let skewed = sample_ratio_test(&[5_200, 4_800], &[0.5, 0.5]).unwrap();
/// assert!(skewed.p_value < 0.001);
/// ```
pub fn sample_ratio_test(views: &[u64], weights: &[f64]) -> Option<ChiSquareResult> {
    if views.len() != weights.len() || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
        return None;
    }
    let meant = weights.iter().filter(|w| **w > 0.0).count();
    let total: f64 = views.iter().map(|v| *v as f64).sum();
    let weight_sum: f64 = weights.iter().sum();
    if meant < 2 || total == 0.0 {
        return None;
    }
    let mut statistic = 0.0;
    for (&observed, &weight) in views.iter().zip(weights) {
        if weight == 0.0 {
            if observed > 0 {
                statistic = f64::INFINITY;
            }
            continue;
        }
        let expected = total * weight / weight_sum;
        statistic += (observed as f64 - expected).powi(2) / expected;
    }
    let dof = meant as u64 - 1;
    let p_value = if statistic.is_infinite() {
        0.0
    } else {
        ChiSquared::new(dof as f64)
            .ok()?
            .sf(statistic)
            .clamp(0.0, 1.0)
    };
    Some(ChiSquareResult {
        statistic,
        dof,
        p_value,
    })
}

/// The two-sided standard normal quantile for `confidence`, `None` outside (0, 1).
fn z_for(confidence: f64) -> Option<f64> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let normal = Normal::standard();
    Some(normal.inverse_cdf(0.5 + confidence / 2.0))
}

/// The Wilson score interval at `confidence` (for example 0.95): the default interval
/// of the admin, well behaved at small counts and at rates near 0 or 1.
///
/// `None` for an arm without views or a confidence outside (0, 1).
pub fn wilson_interval(arm: ArmTotals, confidence: f64) -> Option<Interval> {
    let z = z_for(confidence)?;
    if arm.views == 0 {
        return None;
    }
    let n = arm.views as f64;
    let p = arm.rate();
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 or n conversions a bound is exactly 0 or 1; rounding would leave 0.9999999999999999
    // and an interval that excludes the observed rate.
    let s = arm.successes();
    Some(Interval {
        lower: if s == 0 {
            0.0
        } else {
            (centre - half).max(0.0)
        },
        upper: if s == arm.views {
            1.0
        } else {
            (centre + half).min(1.0)
        },
    })
}

/// The Wald interval `p ± z sqrt(p (1 - p) / n)` at `confidence`.
///
/// Kept for comparison with django-bandits (which used it, with the wrong quantile): it is
/// too narrow at small counts, collapses to a point at 0 or n conversions, and is not
/// clipped, so its lower bound can be negative. `None` for an arm without views or a
/// confidence outside (0, 1).
pub fn wald_interval(arm: ArmTotals, confidence: f64) -> Option<Interval> {
    let z = z_for(confidence)?;
    if arm.views == 0 {
        return None;
    }
    let p = arm.rate();
    let half = z * (p * (1.0 - p) / arm.views as f64).sqrt();
    Some(Interval {
        lower: p - half,
        upper: p + half,
    })
}

/// The equal-tailed credible interval of the arm's `Beta` posterior under `prior`: the
/// interval that goes with Thompson sampling.
///
/// An arm without views gets the prior's interval. `None` for an invalid prior or a
/// confidence outside (0, 1).
pub fn beta_interval(arm: ArmTotals, confidence: f64, prior: BetaPrior) -> Option<Interval> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let posterior = prior.posterior(arm)?;
    let tail = (1.0 - confidence) / 2.0;
    let lower = beta_quantile(&posterior, tail);
    let upper = beta_quantile(&posterior, 1.0 - tail);
    // Past about 1e16 visitors both bounds are rounding noise around the rate; keep them
    // in order.
    Some(Interval {
        lower: lower.min(upper),
        upper: lower.max(upper),
    })
}

/// Most steps of [`beta_quantile`]: Newton needs a handful, bisection about 60 to reach
/// double precision from the whole of [0, 1], plus the halvings to reach a tiny quantile.
const QUANTILE_STEPS: usize = 400;

/// The `q`-quantile of `beta`: Newton's method on statrs's `cdf`, kept inside a bracket
/// that shrinks at every step, with bisection whenever Newton would leave it.
///
/// statrs's own `Beta::inverse_cdf` (algorithm AS 109) can loop without end on extreme
/// shapes (it never returned for `Beta(1e12, 1)`); counters come from storage, so the
/// engine bounds the work instead.
fn beta_quantile(beta: &Beta, q: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    let mut x = beta_mean_sd(beta).0;
    for _ in 0..QUANTILE_STEPS {
        let error = beta.cdf(x) - q;
        if error == 0.0 {
            return x;
        }
        if error < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let density = beta.pdf(x);
        let newton = x - error / density;
        let next = if density.is_finite() && density > 0.0 && newton > lo && newton < hi {
            newton
        } else {
            lo + (hi - lo) / 2.0
        };
        if (next - x).abs() <= 4.0 * f64::EPSILON * x.abs() || next == lo || next == hi {
            return next;
        }
        x = next;
    }
    x
}

/// Points per posterior in the probability-best integration. The rule is the trapezoid
/// rule over each posterior's mass, which at this density is accurate to about 1e-5
/// against SciPy's values; the tolerance the tests demand is 2e-3.
const NODES_PER_ARM: usize = 400;
/// Half-width of each posterior's window, in standard deviations.
const WINDOW_SDS: f64 = 12.0;

/// Each arm's chance of being the best, and what choosing it would cost: what the
/// Bayesian winner rule decides on and what Thompson sampling's propensities are. See
/// [`chances`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chances {
    /// `P(arm i has the highest rate)`, one per arm; they sum to one.
    pub best: Vec<f64>,
    /// The expected loss of choosing arm `i`, in conversion rate:
    /// `E[max_j p_j - p_i]`, the rate given up on average if `i` is not in fact the best.
    pub loss: Vec<f64>,
}

/// The probability that each arm has the highest conversion rate, under independent
/// `Beta` posteriors with `prior`: [`chances`] without the expected losses.
///
/// ```
/// use bandits::engine::stats::{probability_best, BetaPrior};
/// use bandits::engine::ArmTotals;
///
/// let best = probability_best(
///     &[ArmTotals::new(100, 4), ArmTotals::new(100, 9)],
///     BetaPrior::UNIFORM,
/// )
/// .unwrap();
/// assert!((best[1] - 0.918).abs() < 0.002);
/// ```
pub fn probability_best(arms: &[ArmTotals], prior: BetaPrior) -> Option<Vec<f64>> {
    chances(arms, prior).map(|chances| chances.best)
}

/// Each arm's probability of having the highest conversion rate, and the expected loss
/// of choosing it, under independent `Beta` posteriors with `prior`.
///
/// Computed by numerical integration, so the answer is deterministic:
/// `P(i best) = ∫ f_i(x) ∏_{j≠i} F_j(x) dx` and `loss_i = E[max_j p_j] - E[p_i]` with
/// `E[max_j p_j] = ∫ (1 - ∏_j F_j(x)) dx`. The probabilities sum to one and equal arms get
/// equal shares. `None` for no arms or an invalid prior. Its cost grows with the square of
/// the number of arms (about a millisecond at two arms): the site computes it once per
/// counter flush, never per request.
///
/// ```
/// use bandits::engine::stats::{chances, BetaPrior};
/// use bandits::engine::ArmTotals;
///
/// let odds = chances(
///     &[ArmTotals::new(2000, 80), ArmTotals::new(2000, 110)],
///     BetaPrior::UNIFORM,
/// )
/// .unwrap();
/// assert!(odds.best[1] > 0.98);
/// // Choosing the second arm risks little; choosing the first gives up about 1.5 points.
/// assert!(odds.loss[1] < 0.0001);
/// assert!((odds.loss[0] - 0.015).abs() < 0.001);
/// ```
pub fn chances(arms: &[ArmTotals], prior: BetaPrior) -> Option<Chances> {
    let posteriors: Vec<Beta> = arms
        .iter()
        .map(|&arm| prior.posterior(arm))
        .collect::<Option<_>>()?;
    let means: Vec<f64> = posteriors.iter().map(|beta| beta_mean_sd(beta).0).collect();
    match posteriors.len() {
        0 => return None,
        1 => {
            return Some(Chances {
                best: vec![1.0],
                loss: vec![0.0],
            })
        }
        _ => {}
    }

    // One grid made of every posterior's own window, so a narrow posterior is resolved
    // even when it sits inside a wide one.
    let windows: Vec<(f64, f64)> = posteriors
        .iter()
        .map(|beta| {
            let (mean, sd) = beta_mean_sd(beta);
            (
                (mean - WINDOW_SDS * sd).max(0.0),
                (mean + WINDOW_SDS * sd).min(1.0),
            )
        })
        .collect();
    let mut grid: Vec<f64> = windows
        .iter()
        .flat_map(|&(lo, hi)| {
            let step = (hi - lo) / NODES_PER_ARM as f64;
            (0..=NODES_PER_ARM).map(move |i| lo + step * i as f64)
        })
        .collect();
    grid.sort_by(f64::total_cmp);
    grid.dedup();

    let cdfs: Vec<Vec<f64>> = posteriors
        .iter()
        .map(|beta| grid.iter().map(|&x| beta.cdf(x)).collect())
        .collect();

    let mut best: Vec<f64> = posteriors
        .iter()
        .enumerate()
        .map(|(i, beta)| {
            let (lo, hi) = windows[i];
            let mut integral = 0.0;
            let mut previous: Option<(f64, f64)> = None;
            for (g, &x) in grid.iter().enumerate() {
                if x < lo || x > hi {
                    continue;
                }
                let density = beta.pdf(x);
                let others: f64 = (0..cdfs.len())
                    .filter(|&j| j != i)
                    .map(|j| cdfs[j][g])
                    .product();
                let value = if density.is_finite() {
                    density * others
                } else {
                    0.0
                };
                if let Some((px, pv)) = previous {
                    integral += (x - px) * (value + pv) / 2.0;
                }
                previous = Some((x, value));
            }
            integral
        })
        .collect();

    // E[max] = ∫ P(max > x) dx: below the grid every posterior is (to 12 standard
    // deviations) above x, so that stretch adds its whole length; above it, nothing.
    let above = |g: usize| 1.0 - cdfs.iter().map(|cdf| cdf[g]).product::<f64>();
    let mut expected_max = grid[0];
    for g in 1..grid.len() {
        expected_max += (grid[g] - grid[g - 1]) * (above(g) + above(g - 1)) / 2.0;
    }
    let loss = means
        .iter()
        .map(|mean| (expected_max - mean).max(0.0))
        .collect();

    // The shares must sum to one; normalising also cancels most of the rule's error.
    let total: f64 = best.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Some(Chances {
            best: vec![1.0 / best.len() as f64; best.len()],
            loss,
        });
    }
    for p in &mut best {
        *p = (*p / total).clamp(0.0, 1.0);
    }
    Some(Chances { best, loss })
}

fn beta_mean_sd(beta: &Beta) -> (f64, f64) {
    let (a, b) = (beta.shape_a(), beta.shape_b());
    let mean = a / (a + b);
    let sd = (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt();
    (mean, sd)
}

/// The evidence of the mixture sequential probability ratio test (mSPRT) that two arms
/// differ: the natural log of the likelihood ratio `Λ`.
///
/// Under a normal approximation, the difference of the arms' rates `d` has standard error
/// `σ sqrt(h)` with `σ² = p̄ (1 - p̄)` (pooled rate `p̄`) and `h = 1/n_a + 1/n_b`. Mixing
/// the alternative over effects `N(0, (mixture_sd σ)²)` gives
///
/// ```text
/// Λ = sqrt(h / (h + r²)) · exp(r² z² / (2 (h + r²)))      r = mixture_sd, z = d / (σ sqrt(h))
/// ```
///
/// `Λ` is a martingale under "no difference", so by Ville's inequality the chance that it
/// *ever* reaches `1 / α` is at most `α`, however often it is looked at. That is what
/// makes [`WinnerRule::Sequential`](super::WinnerRule::Sequential) safe to check after
/// every visitor. `mixture_sd` is the effect size, in standard deviations of one visitor's
/// outcome, that the test is most sensitive to.
///
/// `None` when an arm has no views or the pooled rate is 0 or 1 (no evidence either way).
pub fn msprt_log_likelihood_ratio(a: ArmTotals, b: ArmTotals, mixture_sd: f64) -> Option<f64> {
    if a.views == 0 || b.views == 0 || !(mixture_sd.is_finite() && mixture_sd > 0.0) {
        return None;
    }
    let (na, nb) = (a.views as f64, b.views as f64);
    let pooled = (a.successes() as f64 + b.successes() as f64) / (na + nb);
    let variance = pooled * (1.0 - pooled);
    if variance.is_nan() || variance <= 0.0 {
        return None;
    }
    let h = 1.0 / na + 1.0 / nb;
    let r2 = mixture_sd * mixture_sd;
    let z2 = (a.rate() - b.rate()).powi(2) / (variance * h);
    Some(0.5 * (h / (h + r2)).ln() + r2 * z2 / (2.0 * (h + r2)))
}

/// The always-valid p-value of the mSPRT at this moment: `min(1, 1 / Λ)`.
///
/// A stored running minimum of this value over time is the textbook always-valid p-value;
/// the value at one moment is never smaller, so reading it alone errs on the safe side.
pub fn msprt_p_value(a: ArmTotals, b: ArmTotals, mixture_sd: f64) -> Option<f64> {
    msprt_log_likelihood_ratio(a, b, mixture_sd).map(|log_lr| (-log_lr).exp().min(1.0))
}

#[cfg(test)]
mod tests;
