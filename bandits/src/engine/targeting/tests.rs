use super::*;

fn visitor(id: &str) -> Visitor<'_> {
    Visitor {
        id,
        ..Visitor::default()
    }
}

#[test]
fn no_rule_lets_everyone_in_and_everyone_overrides_every_rule() {
    let open = Targeting::default();
    assert_eq!(open.decide("f", &visitor("a"), 0), Decision::Enter);
    let staff = User::new("alice").staff();
    let who = Visitor {
        id: "a",
        user: Some(&staff),
        language: None,
    };
    let launched = Targeting {
        everyone: Some(true),
        staff: true,
        ..Targeting::default()
    };
    assert_eq!(launched.decide("f", &who, 0), Decision::Everyone(1));
    let killed = Targeting {
        everyone: Some(false),
        ..launched
    };
    assert_eq!(killed.decide("f", &who, 0), Decision::Everyone(0));
}

#[test]
fn user_rules_need_a_user_who_matches() {
    let alice = User::new("alice").in_groups(["beta"]);
    let boss = User::new("boss").superuser();
    let with = |user| Visitor {
        id: "v",
        user,
        language: None,
    };
    let cases = [
        (
            Targeting {
                authenticated: true,
                ..Targeting::default()
            },
            Some(&alice),
            true,
        ),
        (
            Targeting {
                authenticated: true,
                ..Targeting::default()
            },
            None,
            false,
        ),
        (
            Targeting {
                staff: true,
                ..Targeting::default()
            },
            Some(&alice),
            false,
        ),
        (
            Targeting {
                superusers: true,
                ..Targeting::default()
            },
            Some(&boss),
            true,
        ),
        (
            Targeting {
                users: vec!["alice".into()],
                ..Targeting::default()
            },
            Some(&alice),
            true,
        ),
        (
            Targeting {
                users: vec!["alice".into()],
                ..Targeting::default()
            },
            Some(&boss),
            false,
        ),
        (
            Targeting {
                groups: vec!["beta".into()],
                ..Targeting::default()
            },
            Some(&alice),
            true,
        ),
        (
            Targeting {
                groups: vec!["beta".into()],
                ..Targeting::default()
            },
            None,
            false,
        ),
    ];
    for (i, (targeting, user, enters)) in cases.into_iter().enumerate() {
        let decision = targeting.decide("f", &with(user), 0);
        assert_eq!(
            decision == Decision::Enter,
            enters,
            "case {i}: {decision:?}"
        );
    }
}

#[test]
fn require_all_makes_the_rules_a_conjunction() {
    let staff = User::new("sam").staff();
    let ids: Vec<String> = (0..2_000).map(|i| format!("{i:032x}")).collect();
    let tenth_of_staff = Targeting {
        staff: true,
        percent: Some(10.0),
        require_all: true,
        ..Targeting::default()
    };
    let entered = |user: Option<&User>| {
        ids.iter()
            .filter(|id| {
                let who = Visitor {
                    id: id.as_str(),
                    user,
                    language: None,
                };
                tenth_of_staff.decide("f", &who, 0) == Decision::Enter
            })
            .count()
    };
    assert_eq!(entered(None), 0, "not staff: never");
    let staff_in = entered(Some(&staff));
    assert!(
        (140..=260).contains(&staff_in),
        "{staff_in} of 2,000 staff visits"
    );
    let any = Targeting {
        require_all: false,
        ..tenth_of_staff
    };
    let who = Visitor {
        id: "x",
        user: Some(&staff),
        language: None,
    };
    assert_eq!(
        any.decide("f", &who, 0),
        Decision::Enter,
        "staff alone suffices"
    );
}

#[test]
fn languages_match_by_primary_subtag() {
    let french = Targeting {
        languages: vec!["fr".into(), "de-CH".into()],
        ..Targeting::default()
    };
    for (language, enters) in [
        ("fr", true),
        ("fr-CA", true),
        ("FR-ca", true),
        ("de-CH", true),
        ("de", false),
        ("de-DE", false),
        ("frr", false),
        ("en", false),
    ] {
        let who = Visitor {
            id: "v",
            user: None,
            language: Some(language),
        };
        let decision = french.decide("f", &who, 0);
        assert_eq!(decision == Decision::Enter, enters, "{language}");
    }
}

#[test]
fn the_preferred_language_is_the_heaviest_tag() {
    assert_eq!(
        preferred_language("fr-CH, fr;q=0.9, en;q=0.8"),
        Some("fr-CH")
    );
    assert_eq!(preferred_language("en;q=0.5, de;q=0.9"), Some("de"));
    assert_eq!(preferred_language("*, es;q=0.1"), Some("es"));
    assert_eq!(preferred_language("en;q=0, *"), None);
    assert_eq!(preferred_language(""), None);
    assert_eq!(preferred_language("it;q=bogus, pt"), Some("pt"));
}

#[test]
fn rollout_ramps_the_share_linearly() {
    let ramp = Targeting {
        percent: Some(50.0),
        rollout: Some(Rollout {
            start: 1_000,
            end: 2_000,
        }),
        ..Targeting::default()
    };
    assert_eq!(ramp.share_at(0), Some(0.0));
    assert_eq!(ramp.share_at(1_500), Some(25.0));
    assert_eq!(ramp.share_at(2_000), Some(50.0));
    assert_eq!(ramp.share_at(9_000), Some(50.0));
    let to_all = Targeting {
        percent: None,
        ..ramp
    };
    assert_eq!(to_all.share_at(1_250), Some(25.0));
    assert_eq!(Targeting::default().share_at(5), None);
}

#[test]
fn buckets_are_fixed_uniform_and_independent_between_flags() {
    let ids: Vec<String> = (0..20_000).map(|i| format!("{i:032x}")).collect();
    let mut tenth_of_a = 0;
    let mut tenth_of_both = 0;
    for id in &ids {
        let a = bucket("flag-a", id);
        assert!((0.0..100.0).contains(&a));
        assert_eq!(a, bucket("flag-a", id));
        if a < 10.0 {
            tenth_of_a += 1;
            if bucket("flag-b", id) < 10.0 {
                tenth_of_both += 1;
            }
        }
    }
    // 10% of 20,000 = 2,000 (sd 42); of those, 10% in flag-b too = 200 (sd 13).
    assert!((1_850..=2_150).contains(&tenth_of_a), "{tenth_of_a}");
    assert!((140..=260).contains(&tenth_of_both), "{tenth_of_both}");
}

#[test]
fn a_rollout_over_every_time_is_refused_and_never_overflows() {
    let widest = Targeting {
        rollout: Some(Rollout {
            start: i64::MIN,
            end: i64::MAX,
        }),
        ..Targeting::default()
    };
    let fields: Vec<String> = widest.problems().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["rollout.start", "rollout.end"]);
    // Even unvalidated, the share stays a share.
    for now in [i64::MIN, -1, 0, 1_763_700_000_000, i64::MAX - 1, i64::MAX] {
        let share = widest.share_at(now).expect("a rollout gives a share");
        assert!((0.0..=100.0).contains(&share), "{now}: {share}");
    }
    let edges = Targeting {
        rollout: Some(Rollout {
            start: *TIMES_MS.start(),
            end: *TIMES_MS.end(),
        }),
        ..Targeting::default()
    };
    assert!(edges.problems().is_empty());
}

#[test]
fn invalid_rules_are_named() {
    let bad = Targeting {
        percent: Some(120.0),
        rollout: Some(Rollout { start: 5, end: 5 }),
        users: vec![" ".into()],
        ..Targeting::default()
    };
    let fields: Vec<String> = bad.problems().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["percent", "rollout.end", "users[0]"]);
}
