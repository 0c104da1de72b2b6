//! The visit decision: what a visitor sees of a flag, and what is counted.
//!
//! Every way of reading a flag (the fairing on a flag's page, the `Flags` guard, the Tera
//! functions) asks the same question, and this is its one answer. It is pure: the facts
//! of the request, the visitor's cookie state and the flag in, a [`Decision`] out. The
//! caller keeps the visitor's state and the counts.
//!
//! For each flag the first rule that applies decides ([`Precedence`]):
//!
//! | # | rule | the visitor sees | counted |
//! |---|---|---|---|
//! | 0 | an arm pinned by the site's own tests ([`Facts::pinned`]) | that arm | no |
//! | 1 | a forced arm (privileged requests only) | that arm | no |
//! | 2 | a testing override (flags with `testing` only) | that arm | no |
//! | 3 | `everyone = true` / `false` | the first arm after the control / the control | no |
//! | 4 | a bot, or signed in on a flag with `exclude_signed_in` | the control | no |
//! | 5 | targeting rules set and none lets the visitor in | the control | no |
//! | 6 | otherwise: the visitor enters | their arm from the bandit (or the locked winner) | yes |
//!
//! ```
//! use bandits::engine::decision::{decide, Facts, Precedence};
//! use bandits::engine::visitor::VisitorState;
//! use bandits::engine::{ArmTotals, EventKind, FlagDefinition};
//!
//! let flag = FlagDefinition::new("headline-flag").validate()?;
//! let visitor = VisitorState::new(&mut rand::rng());
//! // A request on a counted page, with the database up.
//! let facts = Facts { counts_here: true, online: true, ..Facts::default() };
//! let totals = [ArmTotals::default(); 2];
//! let seen = decide(&facts, &visitor, &flag, 0, &totals, || None, 0, true, &mut rand::rng());
//! assert_eq!(seen.by, Precedence::Entered);
//! assert_eq!(seen.count, Some(EventKind::Exposure));
//! // Epsilon-greedy, no data yet: every arm is as likely.
//! assert_eq!(seen.propensity, Some(0.5));
//! let remembered = seen.remember.expect("a new visitor is given an arm");
//! assert!(remembered.exposed);
//! # Ok::<(), bandits::engine::InvalidFlag>(())
//! ```

use std::sync::Arc;

use rand::Rng;

use super::flag::Flag;
use super::partners::ReferralRules;
use super::pinned::Pinned;
use super::stats::Chances;
use super::targeting::{Decision as Targeted, User, Visitor as TargetedVisitor};
use super::totals::ArmTotals;
use super::visitor::{Assigned, OverrideKind, VisitorState};

/// What is counted: a view (the visitor's exposure to their arm) or a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A visitor was assigned an arm on the flag's page.
    Exposure,
    /// An exposed visitor reached the goal.
    Conversion,
}

impl EventKind {
    /// The stored name: `exposure` or `conversion`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Exposure => "exposure",
            EventKind::Conversion => "conversion",
        }
    }

    /// The kind a stored name names.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "exposure" => Some(EventKind::Exposure),
            "conversion" => Some(EventKind::Conversion),
            _ => None,
        }
    }
}

/// What a request says about its visitor, read once when the visit starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// A bot (by its User-Agent): sees the controls, is given no arm, never counted.
    pub bot: bool,
    /// The signed-in user, as the site's hook reports them.
    pub user: Option<User>,
    /// The site's hook deems the request privileged: it may force arms.
    pub privileged: bool,
    /// The preferred language of `Accept-Language`.
    pub language: Option<String>,
    /// This request may count: not an excluded path, not `HEAD`, not shutting down.
    pub counts_here: bool,
    /// The database answered at the last flush: new visitors may be given arms.
    pub online: bool,
    /// Arms the site's own tests pinned (`bandits::testing`), for this request or its
    /// whole client; `None` outside such tests.
    pub pinned: Option<Arc<Pinned>>,
    /// How long a partner's referral lasts: a visitor counted as a view while theirs is
    /// current counts for that partner in the flag ([`Assigned::partner`]).
    pub referrals: ReferralRules,
}

/// The row of the precedence table that decided what the visitor sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precedence {
    /// 0: an arm pinned by the site's own tests.
    Pinned,
    /// 1: an arm forced by a privileged request.
    Forced,
    /// 2: a testing override on a flag in testing mode.
    Testing,
    /// 3: `everyone` is set.
    Everyone,
    /// 4: a bot, or a signed-in visitor of a flag that leaves them out.
    Excluded,
    /// 5: the targeting rules leave the visitor out.
    TargetedOut,
    /// 6, without the database: a visitor without an arm sees the control, uncounted, and
    /// is given nothing to remember until the database is back.
    Offline,
    /// 6: the visitor is in the experiment.
    Entered,
}

impl Precedence {
    /// Whether a visitor decided by this row takes part in the experiment.
    pub fn enters(self) -> bool {
        self == Precedence::Entered
    }
}

/// What a visitor sees of a flag, and what changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The arm seen: an index among the flag's arms (always valid).
    pub arm: usize,
    /// The rule that decided.
    pub by: Precedence,
    /// The visitor's assignment in the flag as it must now be remembered, if it changed.
    pub remember: Option<Assigned>,
    /// `remember` gives the visitor a first arm in the flag (a cookie that has no room
    /// for it cannot take it: then the visitor sees the control, uncounted).
    pub new_arm: bool,
    /// What is counted, if anything.
    pub count: Option<EventKind>,
    /// For a counted view, the probability with which the policy chose the visitor's arm
    /// when it was chosen ([`Choice::propensity`](super::flag::Choice::propensity)), for
    /// the activity log. `None` for anything else, and when it is not known.
    pub propensity: Option<f64>,
}

impl Decision {
    fn seen(flag: &Flag, arm: usize, by: Precedence) -> Decision {
        Decision {
            arm: arm.min(flag.arms().len().saturating_sub(1)),
            by,
            remember: None,
            new_arm: false,
            count: None,
            propensity: None,
        }
    }
}

/// The arm a test pinned in `flag` (row 0), or the one the visitor asked for (rows 1 and
/// 2), where the request (forced arms need a privileged one) or the flag (testing
/// overrides need testing mode) allows it. A pinned arm the flag no longer has reads as
/// its control: still pinned, so still counting nothing.
pub fn override_of(
    facts: &Facts,
    visitor: &VisitorState,
    flag: &Flag,
) -> Option<(Precedence, usize)> {
    if let Some(arm) = facts.pinned.as_deref().and_then(|p| p.arm(flag.name())) {
        return Some((Precedence::Pinned, flag.arm_index(arm).unwrap_or(0)));
    }
    let (arm, kind) = visitor.override_for(flag.name())?;
    let (allowed, by) = match kind {
        OverrideKind::Forced => (facts.privileged, Precedence::Forced),
        OverrideKind::Testing => (flag.targeting().testing, Precedence::Testing),
    };
    flag.arm_index(arm)
        .filter(|_| allowed)
        .map(|index| (by, index))
}

/// The rule of rows 0 to 5 that keeps the visitor out of `flag`'s experiment, with the
/// arm it shows; `None` when the visitor enters. `now` (milliseconds since the Unix
/// epoch) is read only by rollouts.
pub fn kept_out(
    facts: &Facts,
    visitor: &VisitorState,
    flag: &Flag,
    now: i64,
) -> Option<(Precedence, usize)> {
    if let Some(overridden) = override_of(facts, visitor, flag) {
        return Some(overridden);
    }
    let targeting = flag.targeting();
    if let Some(everyone) = targeting.everyone {
        return Some((Precedence::Everyone, usize::from(everyone)));
    }
    if facts.bot || (facts.user.is_some() && flag.exclude_signed_in()) {
        return Some((Precedence::Excluded, 0));
    }
    let who = TargetedVisitor {
        id: visitor.id(),
        user: facts.user.as_ref(),
        language: facts.language.as_deref(),
    };
    match targeting.decide(flag.name(), &who, now) {
        Targeted::Enter => None,
        Targeted::Everyone(index) => Some((Precedence::Everyone, index)),
        Targeted::Out => Some((Precedence::TargetedOut, 0)),
    }
}

/// What `visitor` sees of `flag` (at `epoch`, with the arms' `totals` and, when the flag
/// reads them, their [`Chances`] on those totals, asked for only when a new arm is
/// chosen), and what changes.
/// `expose`: this read counts the visitor as a view of the flag if they enter and were not
/// counted yet. `now` (milliseconds since the Unix epoch) is read by rollouts and, for a
/// view, by the referral's window (the view's partner, [`Assigned::partner`]); `rng`
/// only by the policy, for a visitor without an arm.
///
/// A visitor who enters keeps the arm they hold at the flag's epoch; once a winner is
/// locked, a visitor on another arm is moved to it and stops counting (their conversions
/// would credit the wrong arm). Without the database (`facts.online` false) a visitor
/// without an arm sees the control and is given nothing.
#[allow(clippy::too_many_arguments)]
pub fn decide<'c, R: Rng + ?Sized>(
    facts: &Facts,
    visitor: &VisitorState,
    flag: &Flag,
    epoch: i64,
    totals: &[ArmTotals],
    chances: impl FnOnce() -> Option<&'c Chances>,
    now: i64,
    expose: bool,
    rng: &mut R,
) -> Decision {
    if let Some((by, arm)) = kept_out(facts, visitor, flag, now) {
        return Decision::seen(flag, arm, by);
    }
    let held = visitor
        .get(flag.name())
        .filter(|assigned| assigned.epoch == epoch)
        .and_then(|assigned| Some((flag.arm_index(&assigned.arm)?, assigned)));
    let (arm, mut remember, new_arm) = match (held, flag.winner()) {
        (Some((index, assigned)), Some(winner)) if index != winner => {
            let mut moved = Assigned::new(epoch, flag.arms()[winner].name.clone());
            moved.exposed = assigned.exposed;
            moved.converted = assigned.exposed;
            moved.partner = assigned.partner.clone();
            (winner, Some(moved), false)
        }
        (Some((index, _)), _) => (index, None, false),
        (None, _) if !facts.online => return Decision::seen(flag, 0, Precedence::Offline),
        (None, _) => {
            let choice = flag.choose(totals, chances(), rng);
            let Some(chosen) = flag.arms().get(choice.arm) else {
                // A policy answers with one of the flag's arms; were it not to, the control.
                return Decision::seen(flag, 0, Precedence::Entered);
            };
            let mut assigned = Assigned::new(epoch, chosen.name.clone());
            assigned.propensity = choice.propensity;
            (choice.arm, Some(assigned), true)
        }
    };
    let mut count = None;
    let mut propensity = None;
    if expose && facts.counts_here {
        let current = remember
            .as_ref()
            .or_else(|| held.map(|(_, assigned)| assigned));
        if let Some(current) = current.filter(|assigned| !assigned.exposed) {
            let mut exposed = current.clone();
            exposed.exposed = true;
            propensity = exposed.propensity.take();
            exposed.partner = facts
                .referrals
                .credited(visitor.referral(), now)
                .map(str::to_string);
            remember = Some(exposed);
            count = Some(EventKind::Exposure);
        }
    }
    Decision {
        arm,
        by: Precedence::Entered,
        remember,
        new_arm,
        count,
        propensity,
    }
}

/// The visitor's assignment in `flag` once they reach its goal, if that counts a
/// conversion: they are in its experiment, were counted as a view of it at `epoch`, and
/// have not converted. `None`: nothing is counted.
pub fn convert(
    facts: &Facts,
    visitor: &VisitorState,
    flag: &Flag,
    epoch: i64,
    now: i64,
) -> Option<Assigned> {
    if !facts.counts_here || kept_out(facts, visitor, flag, now).is_some() {
        return None;
    }
    let assigned = visitor
        .get(flag.name())
        .filter(|assigned| assigned.epoch == epoch && assigned.exposed && !assigned.converted)?;
    let mut converted = assigned.clone();
    converted.converted = true;
    Some(converted)
}

#[cfg(test)]
mod tests;
