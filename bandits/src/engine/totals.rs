//! What the engine knows about an arm: how many visitors saw it and how many converted.

use serde::{Deserialize, Serialize};

/// The counters of one arm: visitors exposed to it and visitors who converted.
///
/// Both count *visitors*, not page views: a visitor is exposed to a flag once and
/// converts at most once. Every policy, test and interval in the engine reads these
/// two numbers and nothing else.
///
/// ```
/// use bandits::engine::ArmTotals;
///
/// let arm = ArmTotals::new(200, 9);
/// assert_eq!(arm.rate(), 0.045);
/// assert_eq!(ArmTotals::default().rate(), 0.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArmTotals {
    /// Visitors exposed to the arm.
    pub views: u64,
    /// Exposed visitors who reached the goal.
    pub conversions: u64,
}

impl ArmTotals {
    /// Totals with `views` exposures and `conversions` conversions.
    pub const fn new(views: u64, conversions: u64) -> Self {
        ArmTotals { views, conversions }
    }

    /// Conversions that can be counted against the views.
    ///
    /// Counters are flushed separately, so a store may briefly hold more conversions
    /// than views; the statistics never see a rate above one.
    pub fn successes(&self) -> u64 {
        self.conversions.min(self.views)
    }

    /// The observed conversion rate, `0.0` for an arm nobody has seen.
    ///
    /// This is django-bandits' reward: conversions divided by `max(views, 1)`.
    pub fn rate(&self) -> f64 {
        self.successes() as f64 / self.views.max(1) as f64
    }

    /// Adds one exposure, and one conversion if `converted`.
    pub fn record(&mut self, converted: bool) {
        self.views = self.views.saturating_add(1);
        self.conversions = self.conversions.saturating_add(u64::from(converted));
    }
}

/// The total number of exposures over all arms (saturating: counters come from storage,
/// and no sum of them may panic).
pub(crate) fn total_views(arms: &[ArmTotals]) -> u64 {
    arms.iter()
        .fold(0, |total, arm| total.saturating_add(arm.views))
}
