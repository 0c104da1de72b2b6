//! Arms and samples a site's own tests fixed (`bandits::testing`): what a flag answers
//! whoever asks, counting nothing, and what a sample answers, whatever its percent.
//!
//! The visit decision reads the arms first of all its rules ([`Precedence::Pinned`]);
//! the `FlagsHandle` of the site reads the samples. Pure data: which flags, which arms,
//! set by Rust code of the same process and never by a request.
//!
//! ```
//! use bandits::engine::pinned::Pinned;
//!
//! let mut client = Pinned::default();
//! client.pin_arm("headline-flag", "bold");
//! client.fix_sample("resend-receipts", false);
//! let mut request = Pinned::default();
//! request.pin_arm("headline-flag", "base");
//! // One request's pins win over the client's.
//! let seen = request.over(&client);
//! assert_eq!(seen.arm("headline-flag"), Some("base"));
//! assert_eq!(seen.sample("resend-receipts"), Some(false));
//! assert_eq!(seen.arm("checkout-flow"), None);
//! ```
//!
//! [`Precedence::Pinned`]: super::decision::Precedence::Pinned

use std::collections::BTreeMap;

/// Flags whose arm, and samples whose answer, a test fixed. A flag's arm is kept by name:
/// a name the flag no longer has reads as its control (still counting nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pinned {
    arms: BTreeMap<String, String>,
    samples: BTreeMap<String, bool>,
}

impl Pinned {
    /// Every reader of flag `flag` sees arm `arm`.
    pub fn pin_arm(&mut self, flag: &str, arm: &str) {
        self.arms.insert(flag.to_string(), arm.to_string());
    }

    /// A sample of flag `flag` answers `on`.
    pub fn fix_sample(&mut self, flag: &str, on: bool) {
        self.samples.insert(flag.to_string(), on);
    }

    /// Forgets the arm and the sample fixed for `flag`; whether there was either.
    pub fn clear(&mut self, flag: &str) -> bool {
        let arm = self.arms.remove(flag).is_some();
        self.samples.remove(flag).is_some() || arm
    }

    /// The arm fixed for `flag`, by name.
    pub fn arm(&self, flag: &str) -> Option<&str> {
        self.arms.get(flag).map(String::as_str)
    }

    /// The answer fixed for samples of `flag`.
    pub fn sample(&self, flag: &str) -> Option<bool> {
        self.samples.get(flag).copied()
    }

    /// Every flag with a fixed arm, and that arm, in flag-name order.
    pub fn arms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.arms
            .iter()
            .map(|(flag, arm)| (flag.as_str(), arm.as_str()))
    }

    /// Nothing is fixed.
    pub fn is_empty(&self) -> bool {
        self.arms.is_empty() && self.samples.is_empty()
    }

    /// These pins laid over `under`: where both fix a flag, these win.
    pub fn over(&self, under: &Pinned) -> Pinned {
        let mut both = under.clone();
        both.arms
            .extend(self.arms.iter().map(|(f, a)| (f.clone(), a.clone())));
        both.samples
            .extend(self.samples.iter().map(|(f, on)| (f.clone(), *on)));
        both
    }
}

#[cfg(test)]
mod tests {
    use super::Pinned;

    #[test]
    fn clearing_a_flag_forgets_its_arm_and_its_sample() {
        let mut pinned = Pinned::default();
        assert!(pinned.is_empty());
        pinned.pin_arm("a", "on");
        pinned.fix_sample("a", true);
        pinned.fix_sample("b", false);
        assert!(pinned.clear("a"));
        assert!(!pinned.clear("a"), "nothing left to clear");
        assert_eq!((pinned.arm("a"), pinned.sample("a")), (None, None));
        assert_eq!(pinned.sample("b"), Some(false));
        assert!(!pinned.is_empty());
    }
}
