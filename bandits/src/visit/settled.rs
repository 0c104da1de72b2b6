//! The arms one request has settled, so that a page reading a flag several times decides
//! it once.

use std::sync::Arc;

use crate::track::Live;

/// Arms settled in a request, kept so that a page that reads a flag several times (the
/// fairing on its source page, then the template, often more than once) decides it once.
/// Without an allocation: the flags of one page are few; past [`SETTLED_ARMS`] the oldest
/// are decided again.
#[derive(Default)]
pub(super) struct SettledArms {
    /// The snapshot the flags are of, kept alive so that an address names one flag.
    live: Option<Arc<Live>>,
    arms: [Option<Settled>; SETTLED_ARMS],
}

/// Arms a request remembers having settled.
const SETTLED_ARMS: usize = 8;

impl SettledArms {
    /// The arm settled in flag `key` of `live`, by a read that counted a view if `expose`.
    pub(super) fn get(&self, live: &Arc<Live>, key: usize, expose: bool) -> Option<usize> {
        let at = self.live.as_ref()?;
        if !Arc::ptr_eq(at, live) {
            return None;
        }
        self.arms
            .iter()
            .flatten()
            .find(|settled| settled.flag == key && (settled.exposing || !expose))
            .map(|settled| settled.index)
    }

    pub(super) fn insert(&mut self, live: &Arc<Live>, settled: Settled) {
        if !self.live.as_ref().is_some_and(|at| Arc::ptr_eq(at, live)) {
            *self = SettledArms {
                live: Some(Arc::clone(live)),
                ..SettledArms::default()
            };
        }
        let slot = self
            .arms
            .iter()
            .position(|arm| arm.as_ref().is_none_or(|arm| arm.flag == settled.flag));
        match slot {
            Some(slot) => self.arms[slot] = Some(settled),
            None => {
                // Oldest first: the first slot goes.
                self.arms.rotate_left(1);
                self.arms[SETTLED_ARMS - 1] = Some(settled);
            }
        }
    }

    pub(super) fn clear(&mut self) {
        if self.live.is_some() {
            *self = SettledArms::default();
        }
    }
}

/// An arm a request has settled.
pub(super) struct Settled {
    /// The address of the flag's `StoredFlag` in the snapshot.
    pub(super) flag: usize,
    /// The arm seen.
    pub(super) index: usize,
    /// Settled by a read that counts a view: a read that counts one needs no other.
    pub(super) exposing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Snapshot;

    fn live() -> Arc<Live> {
        Arc::new(Live::new(Snapshot {
            config_version: 0,
            ..Snapshot::default()
        }))
    }

    fn settled(flag: usize, index: usize, exposing: bool) -> Settled {
        Settled {
            flag,
            index,
            exposing,
        }
    }

    #[test]
    fn a_settled_arm_is_found_again_in_its_snapshot_only() {
        let (live, other) = (live(), live());
        let mut arms = SettledArms::default();
        arms.insert(&live, settled(10, 1, true));
        assert_eq!(arms.get(&live, 10, false), Some(1));
        assert_eq!(arms.get(&live, 10, true), Some(1));
        assert_eq!(arms.get(&live, 11, false), None);
        // After a refresh the flags are other values: decide again.
        assert_eq!(arms.get(&other, 10, false), None);
        arms.insert(&other, settled(20, 0, false));
        assert_eq!(arms.get(&live, 10, false), None);
        assert_eq!(arms.get(&other, 20, false), Some(0));
    }

    #[test]
    fn a_read_that_counts_a_view_is_not_answered_by_one_that_did_not() {
        let live = live();
        let mut arms = SettledArms::default();
        arms.insert(&live, settled(10, 1, false));
        assert_eq!(arms.get(&live, 10, false), Some(1));
        assert_eq!(arms.get(&live, 10, true), None);
        arms.insert(&live, settled(10, 1, true));
        assert_eq!(arms.get(&live, 10, true), Some(1));
        assert_eq!(arms.iter_count(), 1, "the flag is kept once");
    }

    #[test]
    fn past_its_room_the_oldest_arms_are_decided_again_and_a_change_forgets_all() {
        let live = live();
        let mut arms = SettledArms::default();
        for flag in 0..=SETTLED_ARMS {
            arms.insert(&live, settled(flag, flag % 2, true));
        }
        assert_eq!(arms.iter_count(), SETTLED_ARMS);
        assert_eq!(arms.get(&live, SETTLED_ARMS, true), Some(SETTLED_ARMS % 2));
        let forgotten: Vec<usize> = (0..=SETTLED_ARMS)
            .filter(|&flag| arms.get(&live, flag, true).is_none())
            .collect();
        assert_eq!(forgotten, [0], "the first settled goes first");
        arms.clear();
        assert_eq!(arms.iter_count(), 0);
        assert_eq!(arms.get(&live, SETTLED_ARMS, false), None);
    }

    impl SettledArms {
        fn iter_count(&self) -> usize {
            self.arms.iter().flatten().count()
        }
    }
}
