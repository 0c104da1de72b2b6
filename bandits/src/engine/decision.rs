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
//! let seen = decide(&facts, &visitor, &flag, 0, &totals, 0, true, &mut rand::rng());
//! assert_eq!(seen.by, Precedence::Entered);
//! assert_eq!(seen.count, Some(EventKind::Exposure));
//! let remembered = seen.remember.expect("a new visitor is given an arm");
//! assert!(remembered.exposed);
//! # Ok::<(), bandits::engine::InvalidFlag>(())
//! ```

use rand::Rng;

use super::flag::Flag;
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
}

/// The row of the precedence table that decided what the visitor sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precedence {
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
}

impl Decision {
    fn seen(flag: &Flag, arm: usize, by: Precedence) -> Decision {
        Decision {
            arm: arm.min(flag.arms().len().saturating_sub(1)),
            by,
            remember: None,
            new_arm: false,
            count: None,
        }
    }
}

/// The arm the visitor asked for in `flag` (rows 1 and 2), where the request (forced arms
/// need a privileged one) or the flag (testing overrides need testing mode) allows it.
pub fn override_of(
    facts: &Facts,
    visitor: &VisitorState,
    flag: &Flag,
) -> Option<(Precedence, usize)> {
    let (arm, kind) = visitor.override_for(flag.name())?;
    let (allowed, by) = match kind {
        OverrideKind::Forced => (facts.privileged, Precedence::Forced),
        OverrideKind::Testing => (flag.targeting().testing, Precedence::Testing),
    };
    flag.arm_index(arm)
        .filter(|_| allowed)
        .map(|index| (by, index))
}

/// The rule of rows 1 to 5 that keeps the visitor out of `flag`'s experiment, with the
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

/// What `visitor` sees of `flag` (at `epoch`, with the arms' `totals`), and what changes.
/// `expose`: this read counts the visitor as a view of the flag if they enter and were not
/// counted yet. `now` (milliseconds since the Unix epoch) is read only by rollouts; `rng`
/// only by the policy, for a visitor without an arm.
///
/// A visitor who enters keeps the arm they hold at the flag's epoch; once a winner is
/// locked, a visitor on another arm is moved to it and stops counting (their conversions
/// would credit the wrong arm). Without the database (`facts.online` false) a visitor
/// without an arm sees the control and is given nothing.
#[allow(clippy::too_many_arguments)]
pub fn decide<R: Rng + ?Sized>(
    facts: &Facts,
    visitor: &VisitorState,
    flag: &Flag,
    epoch: i64,
    totals: &[ArmTotals],
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
            (winner, Some(moved), false)
        }
        (Some((index, _)), _) => (index, None, false),
        (None, _) if !facts.online => return Decision::seen(flag, 0, Precedence::Offline),
        (None, _) => {
            let arm = flag.choose_arm(totals, rng);
            let Some(chosen) = flag.arms().get(arm) else {
                // A policy answers with one of the flag's arms; were it not to, the control.
                return Decision::seen(flag, 0, Precedence::Entered);
            };
            (arm, Some(Assigned::new(epoch, chosen.name.clone())), true)
        }
    };
    let mut count = None;
    if expose && facts.counts_here {
        let current = remember
            .as_ref()
            .or_else(|| held.map(|(_, assigned)| assigned));
        if let Some(current) = current.filter(|assigned| !assigned.exposed) {
            let mut exposed = current.clone();
            exposed.exposed = true;
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
mod tests {
    use super::*;
    use crate::engine::targeting::Targeting;
    use crate::engine::{FlagDefinition, Policy};
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    /// One request's situation: which rules of the table could apply.
    #[derive(Clone, Copy, Default)]
    struct Situation {
        /// An override in the visitor's cookie: the arm and how it was asked for.
        asked: Option<(&'static str, OverrideKind)>,
        privileged: bool,
        testing_flag: bool,
        everyone: Option<bool>,
        bot: bool,
        signed_in: bool,
        exclude_signed_in: bool,
        /// Targeting lists only user `"listed"`: who is not them is left out.
        listed_only: bool,
    }

    /// What the table says the visitor sees.
    type Expected = (Precedence, &'static str, bool);

    fn run(situation: Situation) -> Decision {
        let mut definition = FlagDefinition::new("flag")
            // The bandit always picks `on`: row 6 is told from the control.
            .with_policy(Policy::Split {
                weights: vec![0.0, 1.0],
            });
        definition.exclude_signed_in = situation.exclude_signed_in;
        definition.targeting = Targeting {
            everyone: situation.everyone,
            testing: situation.testing_flag,
            users: if situation.listed_only {
                vec!["listed".into()]
            } else {
                Vec::new()
            },
            ..Targeting::default()
        };
        let flag = definition.validate().expect("a valid flag");
        let mut visitor = VisitorState::new(&mut SmallRng::seed_from_u64(1));
        if let Some((arm, kind)) = situation.asked {
            visitor.set_override("flag", arm, kind);
        }
        let facts = Facts {
            bot: situation.bot,
            user: situation.signed_in.then(|| User::new("listed")),
            privileged: situation.privileged,
            language: None,
            counts_here: true,
            online: true,
        };
        let totals = [ArmTotals::default(); 2];
        let mut rng = SmallRng::seed_from_u64(2);
        decide(&facts, &visitor, &flag, 0, &totals, 0, true, &mut rng)
    }

    fn check(name: &str, situation: Situation, (by, arm, counted): Expected) {
        let seen = run(situation);
        let arm_index = usize::from(arm == "on");
        assert_eq!(
            (seen.by, seen.arm, seen.count.is_some()),
            (by, arm_index, counted),
            "{name}"
        );
        // Only a visitor who enters is given an arm to remember.
        assert_eq!(seen.remember.is_some(), by.enters(), "{name}");
    }

    const FORCED_ON: Option<(&str, OverrideKind)> = Some(("on", OverrideKind::Forced));
    const TESTING_ON: Option<(&str, OverrideKind)> = Some(("on", OverrideKind::Testing));
    const TESTING_OFF: Option<(&str, OverrideKind)> = Some(("off", OverrideKind::Testing));

    #[test]
    fn each_row_of_the_precedence_table_decides_alone() {
        let rows: [(&str, Situation, Expected); 8] = [
            (
                "1: a forced arm, privileged",
                Situation {
                    asked: FORCED_ON,
                    privileged: true,
                    ..Situation::default()
                },
                (Precedence::Forced, "on", false),
            ),
            (
                "2: a testing override on a flag in testing mode",
                Situation {
                    asked: TESTING_ON,
                    testing_flag: true,
                    ..Situation::default()
                },
                (Precedence::Testing, "on", false),
            ),
            (
                "3: everyone = true",
                Situation {
                    everyone: Some(true),
                    ..Situation::default()
                },
                (Precedence::Everyone, "on", false),
            ),
            (
                "3: everyone = false",
                Situation {
                    everyone: Some(false),
                    ..Situation::default()
                },
                (Precedence::Everyone, "off", false),
            ),
            (
                "4: a bot",
                Situation {
                    bot: true,
                    ..Situation::default()
                },
                (Precedence::Excluded, "off", false),
            ),
            (
                "4: signed in, on a flag that leaves them out",
                Situation {
                    signed_in: true,
                    exclude_signed_in: true,
                    ..Situation::default()
                },
                (Precedence::Excluded, "off", false),
            ),
            (
                "5: rules that let nobody of this request in",
                Situation {
                    listed_only: true,
                    ..Situation::default()
                },
                (Precedence::TargetedOut, "off", false),
            ),
            (
                "6: nothing else applies",
                Situation::default(),
                (Precedence::Entered, "on", true),
            ),
        ];
        for (name, situation, expected) in rows {
            check(name, situation, expected);
        }
    }

    #[test]
    fn of_two_neighbouring_rows_that_apply_the_first_decides() {
        let pairs: [(&str, Situation, Expected); 6] = [
            (
                "1 over 2: a forced arm on a flag in testing mode",
                Situation {
                    asked: FORCED_ON,
                    privileged: true,
                    testing_flag: true,
                    ..Situation::default()
                },
                (Precedence::Forced, "on", false),
            ),
            (
                "2 over 3: a testing override of a flag switched on for everyone",
                Situation {
                    asked: TESTING_OFF,
                    testing_flag: true,
                    everyone: Some(true),
                    ..Situation::default()
                },
                (Precedence::Testing, "off", false),
            ),
            (
                "3 over 4: a bot on a flag switched on for everyone",
                Situation {
                    everyone: Some(true),
                    bot: true,
                    ..Situation::default()
                },
                (Precedence::Everyone, "on", false),
            ),
            (
                "4 over 5: a bot whom the rules leave out too",
                Situation {
                    bot: true,
                    listed_only: true,
                    ..Situation::default()
                },
                (Precedence::Excluded, "off", false),
            ),
            (
                "4 over 5: signed in and excluded, though the rules list them",
                Situation {
                    signed_in: true,
                    exclude_signed_in: true,
                    listed_only: true,
                    ..Situation::default()
                },
                (Precedence::Excluded, "off", false),
            ),
            (
                "5 then 6: rules that let this visitor in",
                Situation {
                    signed_in: true,
                    listed_only: true,
                    ..Situation::default()
                },
                (Precedence::Entered, "on", true),
            ),
        ];
        for (name, situation, expected) in pairs {
            check(name, situation, expected);
        }
    }

    #[test]
    fn an_override_that_is_not_allowed_is_passed_over() {
        // Forced without privilege, or testing on a flag not in testing mode: the next
        // rule that applies decides.
        check(
            "a forced arm, not privileged",
            Situation {
                asked: FORCED_ON,
                everyone: Some(false),
                ..Situation::default()
            },
            (Precedence::Everyone, "off", false),
        );
        check(
            "a testing override, flag not in testing mode",
            Situation {
                asked: TESTING_OFF,
                ..Situation::default()
            },
            (Precedence::Entered, "on", true),
        );
    }

    fn flag_with_winner(winner: Option<&str>) -> Flag {
        FlagDefinition {
            winner: winner.map(str::to_string),
            ..FlagDefinition::new("flag").with_policy(Policy::Split {
                weights: vec![0.0, 1.0],
            })
        }
        .validate()
        .expect("a valid flag")
    }

    fn entered() -> Facts {
        Facts {
            counts_here: true,
            online: true,
            ..Facts::default()
        }
    }

    #[test]
    fn a_held_arm_is_kept_counted_once_and_moved_to_a_locked_winner() {
        let flag = flag_with_winner(None);
        let mut visitor = VisitorState::new(&mut SmallRng::seed_from_u64(1));
        let mut held = Assigned::new(3, "off");
        held.exposed = true;
        visitor.insert("flag", held.clone());
        let totals = [ArmTotals::default(); 2];
        let rng = &mut SmallRng::seed_from_u64(2);
        let kept = decide(&entered(), &visitor, &flag, 3, &totals, 0, true, rng);
        assert_eq!((kept.arm, kept.count, kept.remember), (0, None, None));
        // Another epoch: the held arm is void, the visitor is assigned and counted anew.
        let anew = decide(&entered(), &visitor, &flag, 4, &totals, 0, true, rng);
        assert_eq!((anew.arm, anew.count), (1, Some(EventKind::Exposure)));
        assert!(anew.new_arm);
        // A winner locked on the other arm: moved, and no longer counted.
        let locked = flag_with_winner(Some("on"));
        let moved = decide(&entered(), &visitor, &locked, 3, &totals, 0, true, rng);
        let remembered = moved.remember.expect("moved to the winner");
        assert_eq!((moved.arm, moved.count), (1, None));
        assert_eq!(remembered.arm, "on");
        assert!(remembered.exposed && remembered.converted);
        assert!(convert(&entered(), &visitor, &locked, 3, 0).is_some());
        let mut after = visitor.clone();
        after.insert("flag", remembered);
        assert!(convert(&entered(), &after, &locked, 3, 0).is_none());
    }

    #[test]
    fn without_the_database_or_where_nothing_counts_nothing_is_counted() {
        let flag = flag_with_winner(None);
        let visitor = VisitorState::new(&mut SmallRng::seed_from_u64(1));
        let totals = [ArmTotals::default(); 2];
        let rng = &mut SmallRng::seed_from_u64(2);
        let offline = Facts {
            online: false,
            ..entered()
        };
        let seen = decide(&offline, &visitor, &flag, 0, &totals, 0, true, rng);
        assert_eq!(
            (seen.by, seen.arm, seen.count, seen.remember),
            (Precedence::Offline, 0, None, None)
        );
        let excluded_path = Facts {
            counts_here: false,
            ..entered()
        };
        let seen = decide(&excluded_path, &visitor, &flag, 0, &totals, 0, true, rng);
        assert_eq!((seen.arm, seen.count), (1, None));
        assert!(seen.remember.is_some_and(|assigned| !assigned.exposed));
        let read_only = decide(&entered(), &visitor, &flag, 0, &totals, 0, false, rng);
        assert_eq!((read_only.arm, read_only.count), (1, None));
    }

    #[test]
    fn a_conversion_needs_an_exposed_visitor_in_the_experiment_who_has_not_converted() {
        let flag = flag_with_winner(None);
        let mut visitor = VisitorState::new(&mut SmallRng::seed_from_u64(1));
        assert!(
            convert(&entered(), &visitor, &flag, 0, 0).is_none(),
            "no arm"
        );
        visitor.insert("flag", Assigned::new(0, "on"));
        assert!(
            convert(&entered(), &visitor, &flag, 0, 0).is_none(),
            "not exposed"
        );
        let mut exposed = Assigned::new(0, "on");
        exposed.exposed = true;
        visitor.insert("flag", exposed);
        let converted = convert(&entered(), &visitor, &flag, 0, 0).expect("converts");
        assert!(converted.converted);
        assert!(
            convert(&entered(), &visitor, &flag, 1, 0).is_none(),
            "old epoch"
        );
        let bot = Facts {
            bot: true,
            ..entered()
        };
        assert!(convert(&bot, &visitor, &flag, 0, 0).is_none(), "left out");
        visitor.insert("flag", converted);
        assert!(convert(&entered(), &visitor, &flag, 0, 0).is_none(), "once");
    }
}
