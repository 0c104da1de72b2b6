//! Targeting: who enters a flag's experiment, decided before the bandit, in django-waffle's
//! vocabulary.
//!
//! | rule | a visitor enters when |
//! |---|---|
//! | `everyone: true` | nobody enters: every visitor sees the first arm after the control (launch switch), uncounted |
//! | `everyone: false` | nobody enters: every visitor sees the control (kill switch), uncounted |
//! | `authenticated` | the site reports a signed-in user |
//! | `staff`, `superusers` | the site's user is staff, or a superuser |
//! | `users`, `groups` | the user's id, or one of their groups, is listed |
//! | `languages` | the visitor's preferred language (Accept-Language) is listed; `en` lists `en-GB` too |
//! | `percent` | the visitor's bucket (0 to 100, fixed per visitor and flag) is below it |
//! | `rollout` | as `percent`, rising linearly from 0 at `start` to `percent` (or 100) at `end` |
//!
//! With `everyone` unset, a visitor enters when **any** listed rule lets them in (or,
//! with `require_all`, when every one does); a flag with no rule at all lets everyone in. Visitors who enter get an arm from the bandit and
//! are counted; the others see the control and are not.
//!
//! ```
//! use bandits::engine::targeting::{Decision, Targeting, Visitor};
//!
//! let staff_tenth = Targeting {
//!     staff: true,
//!     percent: Some(10.0),
//!     ..Targeting::default()
//! };
//! let visitor = Visitor { id: "0123456789abcdef0123456789abcdef", ..Visitor::default() };
//! let decision = staff_tenth.decide("checkout", &visitor, 0);
//! assert!(matches!(decision, Decision::Enter | Decision::Out));
//! // The same visitor always lands in the same bucket.
//! assert_eq!(decision, staff_tenth.decide("checkout", &visitor, 0));
//! ```

use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;

use super::rule::Rule;

/// The most users, groups or languages a flag lists.
pub const MAX_LISTED: usize = 1_000;

/// A time-based ramp of `percent`: the share that enters grows linearly from 0 at `start`
/// to `percent` (100 when unset) at `end`. Times are milliseconds since the Unix epoch.
/// Buckets are fixed per visitor, so a visitor who has entered stays in as the share grows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// When the ramp starts (nobody enters before).
    pub start: i64,
    /// When the ramp reaches its full share.
    pub end: i64,
}

/// Who enters a flag's experiment. Every field is optional; the default lets everyone in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Targeting {
    /// `true`: everyone sees the first non-control arm; `false`: everyone sees the control;
    /// nobody is counted either way. Unset: the rules below decide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub everyone: Option<bool>,
    /// The share of visitors (0 to 100) who enter, by a bucket fixed per visitor and flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Ramps `percent` up over time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// Signed-in users enter.
    #[serde(skip_serializing_if = "is_false")]
    pub authenticated: bool,
    /// Staff users enter.
    #[serde(skip_serializing_if = "is_false")]
    pub staff: bool,
    /// Superusers enter.
    #[serde(skip_serializing_if = "is_false")]
    pub superusers: bool,
    /// These user ids enter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Members of these groups enter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Visitors preferring these languages enter (`fr`, `de-CH`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// `true`: a visitor enters only when **every** rule set lets them in ("10% of staff":
    /// `staff` and `percent` 10). `false` (the default, as waffle): when any rule does.
    #[serde(skip_serializing_if = "is_false")]
    pub require_all: bool,
    /// Testing mode: `?bandits_<flag>=<arm>` gives the visitor that arm, remembered, and
    /// never counted (waffle's testing mode).
    #[serde(skip_serializing_if = "is_false")]
    pub testing: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// A signed-in user as the site describes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The user's id (or username), as listed in `users`.
    pub id: String,
    /// A member of staff.
    pub staff: bool,
    /// A superuser.
    pub superuser: bool,
    /// The user's groups, as listed in `groups`.
    pub groups: Vec<String>,
}

impl User {
    /// A signed-in user with this id, not staff, in no group.
    pub fn new(id: impl Into<String>) -> Self {
        User {
            id: id.into(),
            ..User::default()
        }
    }

    /// The same user, marked as staff.
    pub fn staff(mut self) -> Self {
        self.staff = true;
        self
    }

    /// The same user, marked as a superuser.
    pub fn superuser(mut self) -> Self {
        self.superuser = true;
        self
    }

    /// The same user in these groups.
    pub fn in_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }
}

/// What targeting knows of a visitor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Visitor<'a> {
    /// The visitor's id (from the visitor cookie).
    pub id: &'a str,
    /// The signed-in user, when the site says who it is.
    pub user: Option<&'a User>,
    /// The visitor's preferred language tag (the first of Accept-Language by weight).
    pub language: Option<&'a str>,
}

/// Targeting's answer for one visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `everyone` is set: every visitor sees this arm (index), uncounted.
    Everyone(usize),
    /// The visitor enters the experiment: an arm from the bandit, counted.
    Enter,
    /// The visitor stays out: the control, uncounted.
    Out,
}

impl Targeting {
    /// Whether any rule besides `everyone` and `testing` is set.
    pub fn has_rules(&self) -> bool {
        self.percent.is_some()
            || self.rollout.is_some()
            || self.authenticated
            || self.staff
            || self.superusers
            || !self.users.is_empty()
            || !self.groups.is_empty()
            || !self.languages.is_empty()
    }

    /// The share (0 to 100) of visitors the percent rules let in at `now`; `None` when
    /// neither `percent` nor `rollout` is set.
    pub fn share_at(&self, now: i64) -> Option<f64> {
        let full = self.percent.unwrap_or(100.0);
        match self.rollout {
            None => self.percent,
            Some(Rollout { start, .. }) if now < start => Some(0.0),
            Some(Rollout { end, .. }) if now >= end => Some(full),
            Some(Rollout { start, end }) => {
                // Saturating: a `Rollout` built in code skips validation, and its times may
                // be anything.
                let done = now.saturating_sub(start) as f64 / end.saturating_sub(start) as f64;
                Some(full * done.clamp(0.0, 1.0))
            }
        }
    }

    /// Whether `visitor` enters flag `flag` at `now` (milliseconds since the Unix epoch).
    pub fn decide(&self, flag: &str, visitor: &Visitor<'_>, now: i64) -> Decision {
        if let Some(everyone) = self.everyone {
            return Decision::Everyone(usize::from(everyone));
        }
        if !self.has_rules() {
            return Decision::Enter;
        }
        let user = visitor.user;
        // Each rule that is set, and whether it lets the visitor in.
        let rules = [
            (self.authenticated, user.is_some()),
            (self.staff, user.is_some_and(|u| u.staff)),
            (self.superusers, user.is_some_and(|u| u.superuser)),
            (
                !self.users.is_empty(),
                user.is_some_and(|u| self.users.contains(&u.id)),
            ),
            (
                !self.groups.is_empty(),
                user.is_some_and(|u| u.groups.iter().any(|g| self.groups.contains(g))),
            ),
            (
                !self.languages.is_empty(),
                visitor.language.is_some_and(|language| {
                    self.languages.iter().any(|l| language_matches(l, language))
                }),
            ),
            (
                self.share_at(now).is_some(),
                self.share_at(now)
                    .is_some_and(|share| bucket(flag, visitor.id) < share),
            ),
        ];
        let mut set = rules.iter().filter(|(set, _)| *set);
        let enters = if self.require_all {
            set.all(|(_, passes)| *passes)
        } else {
            set.any(|(_, passes)| *passes)
        };
        if enters {
            Decision::Enter
        } else {
            Decision::Out
        }
    }

    /// Each field that breaks its rule.
    pub(crate) fn problems(&self) -> Vec<(String, Rule)> {
        let mut problems = Vec::new();
        if let Some(percent) = self.percent {
            if !(0.0..=100.0).contains(&percent) {
                problems.push((
                    "percent".to_string(),
                    Rule::Range {
                        range: "[0, 100]",
                        value: percent,
                    },
                ));
            }
        }
        if let Some(Rollout { start, end }) = self.rollout {
            for (field, value) in [("rollout.start", start), ("rollout.end", end)] {
                if !TIMES_MS.contains(&value) {
                    problems.push((field.to_string(), Rule::Time { value }));
                }
            }
            if end <= start {
                problems.push(("rollout.end".to_string(), Rule::RolloutOrder));
            }
        }
        for (field, list) in [
            ("users", &self.users),
            ("groups", &self.groups),
            ("languages", &self.languages),
        ] {
            if list.len() > MAX_LISTED {
                problems.push((
                    field.to_string(),
                    Rule::TooMany {
                        max: MAX_LISTED,
                        count: list.len(),
                    },
                ));
            }
            for (i, item) in list.iter().enumerate() {
                let len = item.chars().count();
                if item.trim().is_empty() || len > 200 || item.chars().any(char::is_control) {
                    problems.push((
                        format!("{field}[{i}]"),
                        Rule::Length {
                            min: 1,
                            max: 200,
                            len,
                        },
                    ));
                }
            }
        }
        problems
    }
}

/// The times a rollout may start and end at, in milliseconds since the Unix epoch: from
/// 1970-01-01 to the end of 9999-12-31.
pub const TIMES_MS: std::ops::RangeInclusive<i64> = 0..=253_402_300_799_999;

/// The visitor's bucket in flag `flag`: a number in [0, 100) fixed by the pair, spread
/// evenly over visitors, and independent between flags (a visitor in the first 10% of one
/// flag is not thereby in the first 10% of another).
pub fn bucket(flag: &str, visitor_id: &str) -> f64 {
    // SipHash-1-3 with fixed keys: the same bucket on every machine and release.
    let mut hasher = SipHasher13::new_with_keys(0x6261_6e64_6974_7331, 0x7065_7263_656e_7431);
    hasher.write(flag.as_bytes());
    hasher.write_u8(0xff);
    hasher.write(visitor_id.as_bytes());
    // The top 53 bits as a fraction, exact in an f64.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64 * 100.0
}

/// Whether the listed language `listed` covers the visitor's `preferred` one: equal
/// without case, or `listed` is its primary subtag (`en` covers `en-GB`).
fn language_matches(listed: &str, preferred: &str) -> bool {
    let listed = listed.trim();
    if listed.eq_ignore_ascii_case(preferred) {
        return true;
    }
    preferred.len() > listed.len()
        && preferred.as_bytes()[listed.len()] == b'-'
        && preferred[..listed.len()].eq_ignore_ascii_case(listed)
}

/// The visitor's preferred language from an Accept-Language header: the tag of highest
/// weight (the first among equals); `*` and tags of weight 0 are skipped.
pub fn preferred_language(header: &str) -> Option<&str> {
    let mut best: Option<(&str, f64)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        if tag.is_empty() || tag == "*" || tag.len() > 35 {
            continue;
        }
        let weight = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1.0), |q| q.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if !(weight > 0.0 && weight <= 1.0) {
            continue;
        }
        if best.is_none_or(|(_, w)| weight > w) {
            best = Some((tag, weight));
        }
    }
    best.map(|(tag, _)| tag)
}

#[cfg(test)]
mod tests;
