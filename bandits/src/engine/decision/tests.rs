use super::*;
use crate::engine::targeting::Targeting;
use crate::engine::{FlagDefinition, Policy};
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// [`decide`] with two arms and no counts yet, and no chances to read.
#[allow(clippy::too_many_arguments)]
fn decide_fresh<R: rand::Rng + ?Sized>(
    facts: &Facts,
    visitor: &VisitorState,
    flag: &crate::engine::Flag,
    epoch: i64,
    now: i64,
    expose: bool,
    rng: &mut R,
) -> Decision {
    decide(
        facts,
        visitor,
        flag,
        epoch,
        &[ArmTotals::default(); 2],
        || None,
        now,
        expose,
        rng,
    )
}

/// One request's situation: which rules of the table could apply.
#[derive(Clone, Copy, Default)]
struct Situation {
    /// The arm the site's own test pinned.
    pinned: Option<&'static str>,
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
        pinned: situation.pinned.map(|arm| {
            let mut pinned = Pinned::default();
            pinned.pin_arm("flag", arm);
            Arc::new(pinned)
        }),
        referrals: ReferralRules::default(),
    };
    let mut rng = SmallRng::seed_from_u64(2);
    decide_fresh(&facts, &visitor, &flag, 0, 0, true, &mut rng)
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
    let rows: [(&str, Situation, Expected); 9] = [
        (
            "0: an arm pinned by the site's test",
            Situation {
                pinned: Some("on"),
                ..Situation::default()
            },
            (Precedence::Pinned, "on", false),
        ),
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
    let pairs: [(&str, Situation, Expected); 7] = [
        (
            "0 over 1: a test pins the control of an arm a privileged visitor forced",
            Situation {
                pinned: Some("off"),
                asked: FORCED_ON,
                privileged: true,
                ..Situation::default()
            },
            (Precedence::Pinned, "off", false),
        ),
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
    let rng = &mut SmallRng::seed_from_u64(2);
    let kept = decide_fresh(&entered(), &visitor, &flag, 3, 0, true, rng);
    assert_eq!((kept.arm, kept.count, kept.remember), (0, None, None));
    // Another epoch: the held arm is void, the visitor is assigned and counted anew.
    let anew = decide_fresh(&entered(), &visitor, &flag, 4, 0, true, rng);
    assert_eq!((anew.arm, anew.count), (1, Some(EventKind::Exposure)));
    assert!(anew.new_arm);
    // A winner locked on the other arm: moved, and no longer counted.
    let locked = flag_with_winner(Some("on"));
    let moved = decide_fresh(&entered(), &visitor, &locked, 3, 0, true, rng);
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
    let rng = &mut SmallRng::seed_from_u64(2);
    let offline = Facts {
        online: false,
        ..entered()
    };
    let seen = decide_fresh(&offline, &visitor, &flag, 0, 0, true, rng);
    assert_eq!(
        (seen.by, seen.arm, seen.count, seen.remember),
        (Precedence::Offline, 0, None, None)
    );
    let excluded_path = Facts {
        counts_here: false,
        ..entered()
    };
    let seen = decide_fresh(&excluded_path, &visitor, &flag, 0, 0, true, rng);
    assert_eq!((seen.arm, seen.count), (1, None));
    assert!(seen.remember.is_some_and(|assigned| !assigned.exposed));
    let read_only = decide_fresh(&entered(), &visitor, &flag, 0, 0, false, rng);
    assert_eq!((read_only.arm, read_only.count), (1, None));
}

#[test]
fn a_counted_view_carries_the_odds_its_arm_was_chosen_with_even_when_chosen_earlier() {
    let flag = FlagDefinition::new("flag")
        .with_policy(Policy::percent(25.0))
        .validate()
        .expect("valid");
    let rng = &mut SmallRng::seed_from_u64(7);
    let mut visitor = VisitorState::new(rng);
    // Read where nothing counts: the arm is chosen and its odds kept, nothing logged.
    let read = decide_fresh(&entered(), &visitor, &flag, 0, 0, false, rng);
    let chosen = read.remember.expect("a new arm");
    let odds = [0.75, 0.25][read.arm];
    assert_eq!((read.count, read.propensity), (None, None));
    assert_eq!(chosen.propensity, Some(odds));
    visitor.insert("flag", chosen);
    let visitor = VisitorState::decode(&visitor.encode()).expect("the cookie keeps them");
    // Counted later on the flag's page: the view logs the odds of the earlier choice.
    let counted = decide_fresh(&entered(), &visitor, &flag, 0, 0, true, rng);
    assert_eq!(counted.count, Some(EventKind::Exposure));
    assert_eq!(counted.propensity, Some(odds));
    assert_eq!(counted.remember.and_then(|a| a.propensity), None);
    // A locked winner is chosen for certain.
    let locked = flag.clone().lock_winner(1).expect("an arm");
    let fresh = VisitorState::new(rng);
    let seen = decide_fresh(&entered(), &fresh, &locked, 0, 0, true, rng);
    assert_eq!((seen.arm, seen.propensity), (1, Some(1.0)));
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

#[test]
fn a_pinned_flag_counts_no_conversion_and_a_pinned_arm_it_lacks_is_its_control() {
    let flag = flag_with_winner(None);
    let mut visitor = VisitorState::new(&mut SmallRng::seed_from_u64(1));
    let exposed = decide_fresh(
        &entered(),
        &visitor,
        &flag,
        0,
        0,
        true,
        &mut SmallRng::seed_from_u64(2),
    );
    visitor.insert("flag", exposed.remember.expect("entered"));
    assert!(convert(&entered(), &visitor, &flag, 0, 0).is_some());
    let mut pinned = Pinned::default();
    pinned.pin_arm("flag", "no-such-arm");
    let facts = Facts {
        pinned: Some(Arc::new(pinned)),
        ..entered()
    };
    assert!(
        convert(&facts, &visitor, &flag, 0, 0).is_none(),
        "pinned: nothing counts"
    );
    let seen = decide_fresh(
        &facts,
        &visitor,
        &flag,
        0,
        0,
        true,
        &mut SmallRng::seed_from_u64(2),
    );
    assert_eq!(
        (seen.by, seen.arm, seen.count, seen.remember),
        (Precedence::Pinned, 0, None, None)
    );
}

#[test]
fn a_view_counts_for_the_partner_whose_referral_is_current_and_the_conversion_follows_it() {
    use crate::engine::partners::Referral;
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let flag = flag_with_winner(None);
    let rng = &mut SmallRng::seed_from_u64(5);
    let mut visitor = VisitorState::new(&mut SmallRng::seed_from_u64(4));
    visitor.set_referral(Some(Referral {
        partner: "Ab3dE6gH".into(),
        referred_at: 10 * DAY,
    }));
    let facts = entered();
    // Within the window (30 days by default): the view is the partner's.
    let seen = decide_fresh(&facts, &visitor, &flag, 0, 11 * DAY, true, rng);
    assert_eq!(seen.count, Some(EventKind::Exposure));
    let exposed = seen.remember.expect("exposed");
    assert_eq!(exposed.partner.as_deref(), Some("Ab3dE6gH"));
    // The conversion keeps the view's partner, even once the referral has run out.
    visitor.insert("flag", exposed);
    let converted = convert(&facts, &visitor, &flag, 0, 90 * DAY).expect("converts");
    assert_eq!(converted.partner.as_deref(), Some("Ab3dE6gH"));
    // A view after the window, or with no referral, is no partner's.
    let mut late = VisitorState::new(&mut SmallRng::seed_from_u64(6));
    late.set_referral(visitor.referral().cloned());
    let after = decide_fresh(&facts, &late, &flag, 0, 40 * DAY, true, rng);
    assert_eq!(after.count, Some(EventKind::Exposure));
    assert_eq!(after.remember.and_then(|a| a.partner), None);
    let nobody = VisitorState::new(&mut SmallRng::seed_from_u64(7));
    let direct = decide_fresh(&facts, &nobody, &flag, 0, 11 * DAY, true, rng);
    assert_eq!(direct.remember.and_then(|a| a.partner), None);
}
