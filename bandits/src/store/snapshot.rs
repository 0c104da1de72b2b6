//! What is stored of a flag and read into memory: a flag with its counters, every flag at
//! one configuration version, the counters alone, and the marks that tell a change.

use std::collections::HashMap;

use super::partners::{StoredPartner, StoredSubscription};
use super::triggers::TriggerSwitch;
use crate::engine::{ArmTotals, Flag};

/// A flag as stored: the engine's flag, its counters and its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlag {
    /// The flag.
    pub flag: Flag,
    /// Raised by every reset: assignments and increments from an earlier epoch are void.
    pub epoch: i64,
    /// The counters, one per arm in the flag's arm order.
    pub totals: Vec<ArmTotals>,
    /// When the winner was locked (milliseconds since the Unix epoch), if it is.
    pub winner_locked_at: Option<i64>,
    /// When the flag was created.
    pub created_at: i64,
    /// When the flag was last changed.
    pub updated_at: i64,
}

impl StoredFlag {
    /// The flag's rates, intervals, tests and winner from its stored counters, as the API
    /// and the admin show them ([`report::statistics`](crate::engine::report::statistics)).
    pub fn statistics(&self) -> crate::engine::report::Statistics {
        crate::engine::report::statistics(
            &self.flag,
            self.epoch,
            &self.totals,
            self.winner_locked_at,
        )
    }
}

/// Everything the site needs in memory, read at one configuration version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The configuration version: raised by every change to any flag, partner,
    /// subscription or trigger switch.
    pub config_version: i64,
    /// The flags, by name.
    pub flags: Vec<StoredFlag>,
    /// The referral partners, by uid.
    pub partners: Vec<StoredPartner>,
    /// Their subscriptions, by id.
    pub subscriptions: Vec<StoredSubscription>,
    /// Admins' switches of triggers, by trigger name.
    pub trigger_switches: Vec<TriggerSwitch>,
}

impl Snapshot {
    /// The flag called `name`.
    pub fn flag(&self, name: &str) -> Option<&StoredFlag> {
        self.flags.iter().find(|stored| stored.flag.name() == name)
    }

    /// Replaces every flag's totals by those of `counters` at the flag's current epoch
    /// (zero for an arm without a counter).
    pub fn set_totals(&mut self, counters: &[ArmCounter]) {
        // Grouped by flag first, so this stays linear with a thousand flags.
        let mut by_flag: HashMap<&str, Vec<&ArmCounter>> = HashMap::new();
        for counter in counters {
            by_flag
                .entry(counter.flag.as_str())
                .or_default()
                .push(counter);
        }
        for stored in &mut self.flags {
            let own = by_flag
                .get(stored.flag.name())
                .into_iter()
                .flatten()
                .copied();
            stored.totals = totals_in_arm_order(stored, own);
        }
    }
}

/// One arm's counter as stored, for the cheap re-read after each flush.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmCounter {
    /// The flag.
    pub flag: String,
    /// The arm.
    pub arm: String,
    /// The flag's epoch these counts belong to.
    pub epoch: i64,
    /// The counts.
    pub totals: ArmTotals,
}

/// What tells whether anything stored changed since an earlier read, in one small row:
/// the configuration version (raised by every change to a flag, in the change's own
/// transaction) and the sums of every arm's counters. Between two changes of flags the
/// counters only grow (a flush adds, never subtracts), so equal marks at the same version
/// mean equal counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeMarks {
    /// The configuration version.
    pub config_version: i64,
    /// All views of all arms.
    pub views: i64,
    /// All conversions of all arms.
    pub conversions: i64,
}

pub(super) fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

/// The counters of `stored`'s current epoch, one per arm in the flag's order (zero for an
/// arm without a row).
pub(super) fn totals_in_arm_order<'a>(
    stored: &StoredFlag,
    counters: impl Iterator<Item = &'a ArmCounter>,
) -> Vec<ArmTotals> {
    let mut totals = vec![ArmTotals::default(); stored.flag.arms().len()];
    for counter in counters {
        if counter.epoch == stored.epoch {
            if let Some(i) = stored.flag.arm_index(&counter.arm) {
                totals[i] = counter.totals;
            }
        }
    }
    totals
}
