//! A flag's statistics split by the partner who referred its visitors: per partner, and
//! for visitors of no partner, each arm's views, conversions, rate and interval.
//!
//! A visitor counts for the partner whose referral was current when they were counted as
//! a view of the flag ([`Assigned::partner`](super::visitor::Assigned::partner)); their
//! conversion counts for the same partner. The store keeps the partners' counters
//! additively beside the arms'; visitors of no partner are the arms' counters less the
//! partners', so the segments always add up to the flag's totals.
//!
//! ```
//! use std::collections::BTreeMap;
//! use bandits::engine::by_partner::split;
//! use bandits::engine::{ArmTotals, FlagDefinition};
//!
//! let flag = FlagDefinition::new("headline-flag").validate()?;
//! let totals = [ArmTotals::new(100, 10), ArmTotals::new(100, 20)];
//! let mut partners = BTreeMap::new();
//! partners.insert(
//!     "Ab3dE6gH".to_string(),
//!     BTreeMap::from([("on".to_string(), ArmTotals::new(30, 9))]),
//! );
//! let segments = split(&flag, &totals, &partners);
//! assert_eq!(segments[0].partner.as_deref(), Some("Ab3dE6gH"));
//! assert_eq!(segments[0].arms[1].views, 30);
//! assert_eq!(segments[0].arms[0].views, 0);
//! // No partner: the rest.
//! assert_eq!(segments[1].partner, None);
//! assert_eq!(segments[1].arms[1].views, 70);
//! assert_eq!(segments[1].arms[1].conversions, 11);
//! # Ok::<(), bandits::engine::InvalidFlag>(())
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::flag::Flag;
use super::stats::{wilson_interval, Interval};
use super::totals::ArmTotals;

/// One arm's numbers within a segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentArm {
    /// The arm's name.
    pub arm: String,
    /// Visitors of the segment counted on the arm.
    pub views: u64,
    /// Of them, those who converted.
    pub conversions: u64,
    /// `conversions / views` (0 without views).
    pub rate: f64,
    /// The Wilson interval at the flag's confidence; none without views.
    pub interval: Option<Interval>,
}

/// The visitors one partner referred, or (`partner` none) those no partner referred.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// The partner's uid; `None` for visitors of no partner.
    pub partner: Option<String>,
    /// Per arm, in the flag's order (the control first).
    pub arms: Vec<SegmentArm>,
}

impl Segment {
    /// Visitors of the segment, over all arms.
    pub fn views(&self) -> u64 {
        self.arms.iter().map(|arm| arm.views).sum()
    }
}

/// `flag`'s arms' `totals` (in the flag's arm order) split by partner: one segment per
/// partner of `partners` (uid → arm name → counts; arms the flag no longer has are left
/// out), in uid order, then the visitors of no partner. A partner's counts above an arm's
/// totals (which a flush between two reads could show for a moment) leave that arm's
/// no-partner counts at zero, never negative.
pub fn split(
    flag: &Flag,
    totals: &[ArmTotals],
    partners: &BTreeMap<String, BTreeMap<String, ArmTotals>>,
) -> Vec<Segment> {
    let confidence = flag.confidence();
    let arm_of = |name: &str, counts: ArmTotals| SegmentArm {
        arm: name.to_string(),
        views: counts.views,
        conversions: counts.conversions,
        rate: counts.rate(),
        interval: wilson_interval(counts, confidence),
    };
    let mut rest: Vec<ArmTotals> = flag
        .arms()
        .iter()
        .enumerate()
        .map(|(i, _)| totals.get(i).copied().unwrap_or_default())
        .collect();
    let mut segments = Vec::with_capacity(partners.len() + 1);
    for (partner, counts) in partners {
        let arms = flag
            .arms()
            .iter()
            .zip(rest.iter_mut())
            .map(|(arm, rest)| {
                let counts = counts.get(&arm.name).copied().unwrap_or_default();
                rest.views = rest.views.saturating_sub(counts.views);
                rest.conversions = rest.conversions.saturating_sub(counts.conversions);
                arm_of(&arm.name, counts)
            })
            .collect();
        segments.push(Segment {
            partner: Some(partner.clone()),
            arms,
        });
    }
    segments.push(Segment {
        partner: None,
        arms: flag
            .arms()
            .iter()
            .zip(rest)
            .map(|(arm, rest)| {
                // Conversions never outnumber views, whatever moment the reads caught.
                let rest = ArmTotals::new(rest.views, rest.conversions.min(rest.views));
                arm_of(&arm.name, rest)
            })
            .collect(),
    });
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FlagDefinition;

    fn flag() -> Flag {
        FlagDefinition::new("headline-flag")
            .validate()
            .expect("a valid flag")
    }

    #[test]
    fn without_partners_everyone_is_of_no_partner() {
        let totals = [ArmTotals::new(10, 1), ArmTotals::new(12, 3)];
        let segments = split(&flag(), &totals, &BTreeMap::new());
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].partner, None);
        assert_eq!(segments[0].arms[0].views, 10);
        assert_eq!(segments[0].arms[1].conversions, 3);
        assert_eq!(segments[0].views(), 22);
    }

    #[test]
    fn segments_add_up_to_the_totals() {
        let totals = [ArmTotals::new(50, 5), ArmTotals::new(60, 12)];
        let partners = BTreeMap::from([
            (
                "Ab3dE6gH".to_string(),
                BTreeMap::from([
                    ("off".to_string(), ArmTotals::new(10, 2)),
                    ("on".to_string(), ArmTotals::new(20, 8)),
                ]),
            ),
            (
                "Zz9yX8wV".to_string(),
                BTreeMap::from([("on".to_string(), ArmTotals::new(5, 1))]),
            ),
        ]);
        let segments = split(&flag(), &totals, &partners);
        assert_eq!(segments.len(), 3);
        for (i, arm) in totals.iter().enumerate() {
            let views: u64 = segments.iter().map(|s| s.arms[i].views).sum();
            let conversions: u64 = segments.iter().map(|s| s.arms[i].conversions).sum();
            assert_eq!((views, conversions), (arm.views, arm.conversions));
        }
        assert_eq!(segments[0].arms[1].rate, 0.4);
        assert!(
            segments[1].arms[0].interval.is_none(),
            "no views, no interval"
        );
    }

    #[test]
    fn partners_ahead_of_the_totals_leave_no_negative_rest() {
        let totals = [ArmTotals::new(3, 1), ArmTotals::new(0, 0)];
        let partners = BTreeMap::from([(
            "Ab3dE6gH".to_string(),
            BTreeMap::from([
                ("off".to_string(), ArmTotals::new(4, 2)),
                ("gone".to_string(), ArmTotals::new(9, 9)),
            ]),
        )]);
        let segments = split(&flag(), &totals, &partners);
        let rest = &segments[1];
        assert_eq!((rest.arms[0].views, rest.arms[0].conversions), (0, 0));
        assert_eq!(
            segments[0].arms.len(),
            2,
            "an arm the flag lost is left out"
        );
    }
}
