//! Defining flags: defaults, validation that names the field and the rule, JSON forms,
//! and the locked winner.

use bandits::engine::{
    Arm, ArmTotals, Flag, FlagDefinition, InvalidFlag, Policy, Rule, WinnerRule, MAX_ARMS,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::json;

fn invalid(definition: FlagDefinition) -> InvalidFlag {
    match definition.validate() {
        Ok(flag) => panic!("{} should be invalid", flag.name()),
        Err(err) => err,
    }
}

/// The single problem of an invalid definition: its field and rule.
fn problem(definition: FlagDefinition) -> (String, Rule) {
    let err = invalid(definition);
    assert_eq!(err.errors().len(), 1, "expected one problem: {err}");
    let first = &err.errors()[0];
    (first.field.clone(), first.rule.clone())
}

#[test]
fn a_new_flag_has_the_documented_defaults() {
    let flag = FlagDefinition::new("headline-flag").validate().unwrap();
    let arms: Vec<&str> = flag.arms().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(arms, ["off", "on"]);
    assert_eq!(flag.control().name, "off");
    assert_eq!(flag.policy(), &Policy::EpsilonGreedy { epsilon: 0.1 });
    assert_eq!(flag.significance_level(), 0.05);
    assert!((flag.confidence() - 0.95).abs() < 1e-12);
    assert_eq!(flag.min_views(), 100);
    assert_eq!(flag.winner_rule(), &WinnerRule::TTest);
    assert_eq!(flag.winner(), None);
    assert_eq!(flag.note(), "");
    assert_eq!(flag.source_path(), None);
    assert_eq!(flag.target_path(), None);
    assert_eq!(flag.goal_event(), None);
}

#[test]
fn pages_and_goal_events_are_checked_and_normalised() {
    let flag = FlagDefinition::new("headline-flag")
        .with_paths(" / ", "contact/")
        .with_goal_event("signup")
        .validate()
        .unwrap();
    assert_eq!(flag.source_path(), Some("/"));
    assert_eq!(flag.target_path(), Some("/contact/"));
    assert_eq!(flag.goal_event(), Some("signup"));
    // What was normalised is what is stored.
    assert_eq!(flag.definition().target_path.as_deref(), Some("/contact/"));

    for (bad, found) in [
        ("/a b", ' '),
        ("/search?q=1", '?'),
        ("/page#top", '#'),
        ("/x\ty", '\t'),
    ] {
        let definition = FlagDefinition::new("f").with_paths(bad, "/ok");
        assert_eq!(
            problem(definition),
            ("source_path".into(), Rule::PathCharacter { found }),
            "{bad:?}"
        );
    }
    let long = format!("/{}", "a".repeat(2_000));
    assert_eq!(
        problem(FlagDefinition::new("f").with_paths("/", long)).0,
        "target_path"
    );
    assert_eq!(
        problem(FlagDefinition::new("f").with_paths("/", "  ")).0,
        "target_path"
    );
    assert_eq!(
        problem(FlagDefinition::new("f").with_goal_event("Sign Up")),
        ("goal_event".into(), Rule::Characters { found: 'S' })
    );

    let from_json: Flag = serde_json::from_value(json!({
        "name": "f",
        "source_path": "pricing",
        "goal_event": "checkout-done"
    }))
    .unwrap();
    assert_eq!(from_json.source_path(), Some("/pricing"));
    assert_eq!(from_json.goal_event(), Some("checkout-done"));
    assert_eq!(from_json.target_path(), None);
}

#[test]
fn names_follow_the_flag_name_rules() {
    for good in ["a", "headline-flag", "checkout_v2", "0", &"x".repeat(100)] {
        assert!(FlagDefinition::new(good).validate().is_ok(), "{good}");
    }
    assert_eq!(
        problem(FlagDefinition::new("")),
        (
            "name".into(),
            Rule::Length {
                min: 1,
                max: 100,
                len: 0
            }
        )
    );
    assert_eq!(
        problem(FlagDefinition::new("x".repeat(101))).1,
        Rule::Length {
            min: 1,
            max: 100,
            len: 101
        }
    );
    for (bad, found) in [
        ("Headline", 'H'),
        ("head line", ' '),
        ("héadline", 'é'),
        ("a.b", '.'),
        ("<script>", '<'),
    ] {
        assert_eq!(
            problem(FlagDefinition::new(bad)),
            ("name".into(), Rule::Characters { found }),
            "{bad}"
        );
    }
    let err = invalid(FlagDefinition::new("Headline"));
    assert_eq!(
        err.to_string(),
        "name: may hold only lowercase letters, digits, '-' and '_', found 'H'"
    );
}

#[test]
fn arms_need_two_to_thirty_two_unique_valid_names() {
    let one = FlagDefinition::new("f").with_arms(["only"]);
    assert_eq!(
        problem(one),
        (
            "arms".into(),
            Rule::ArmCount {
                min: 2,
                max: MAX_ARMS,
                count: 1
            }
        )
    );
    let many = FlagDefinition::new("f").with_arms((0..=MAX_ARMS).map(|i| format!("a{i}")));
    assert_eq!(problem(many).0, "arms");
    let most = FlagDefinition::new("f").with_arms((0..MAX_ARMS).map(|i| format!("a{i}")));
    assert!(most.validate().is_ok());

    assert_eq!(
        problem(FlagDefinition::new("f").with_arms(["a", "b", "a"])),
        ("arms[2].name".into(), Rule::Duplicate { name: "a".into() })
    );
    assert_eq!(
        problem(FlagDefinition::new("f").with_arms(["ok", "Not OK"])),
        ("arms[1].name".into(), Rule::Characters { found: 'N' })
    );
    assert_eq!(
        problem(FlagDefinition::new("f").with_arms(["", "b"])).0,
        "arms[0].name"
    );
}

#[test]
fn policy_parameters_are_checked_with_their_field() {
    let with = |policy: Policy| FlagDefinition::new("f").with_policy(policy);
    for epsilon in [0.0, 0.5, 1.0] {
        assert!(with(Policy::EpsilonGreedy { epsilon }).validate().is_ok());
    }
    for epsilon in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
        let (field, rule) = problem(with(Policy::EpsilonGreedy { epsilon }));
        assert_eq!(field, "policy.epsilon");
        assert!(
            matches!(
                rule,
                Rule::Range {
                    range: "[0, 1]",
                    ..
                }
            ),
            "{rule:?}"
        );
    }
    for c in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(problem(with(Policy::Ucb1 { c })).0, "policy.c");
    }
    assert_eq!(
        problem(with(Policy::Thompson {
            alpha: 0.0,
            beta: 1.0
        }))
        .0,
        "policy.alpha"
    );
    assert_eq!(
        problem(with(Policy::Thompson {
            alpha: 1.0,
            beta: f64::INFINITY
        }))
        .0,
        "policy.beta"
    );
    assert_eq!(
        problem(with(Policy::Split {
            weights: vec![1.0, 1.0, 1.0]
        })),
        ("policy.weights".into(), Rule::PerArm { arms: 2, count: 3 })
    );
    assert_eq!(
        problem(with(Policy::Split {
            weights: vec![1.0, -1.0]
        }))
        .0,
        "policy.weights"
    );
    assert_eq!(
        problem(with(Policy::Split {
            weights: vec![0.0, 0.0]
        })),
        ("policy.weights".into(), Rule::AllZero)
    );
    assert!(with(Policy::percent(10.0)).validate().is_ok());
}

#[test]
fn significance_rule_and_winner_are_checked() {
    for significance_level in [0.0, 1.0, -0.5, f64::NAN] {
        let definition = FlagDefinition {
            significance_level,
            ..FlagDefinition::new("f")
        };
        let (field, rule) = problem(definition);
        assert_eq!(field, "significance_level");
        assert!(matches!(
            rule,
            Rule::Range {
                range: "(0, 1)",
                ..
            }
        ));
    }
    let rule = WinnerRule::Sequential { mixture_sd: 0.0 };
    assert_eq!(
        problem(FlagDefinition::new("f").with_winner_rule(rule)).0,
        "winner_rule.mixture_sd"
    );
    let unknown = FlagDefinition {
        winner: Some("maybe".into()),
        ..FlagDefinition::new("f")
    };
    assert_eq!(
        problem(unknown),
        (
            "winner".into(),
            Rule::UnknownArm {
                name: "maybe".into()
            }
        )
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let definition = FlagDefinition {
        name: "Bad Name".into(),
        note: "n".repeat(10_001),
        arms: vec![Arm::new("same"), Arm::new("same")],
        policy: Policy::EpsilonGreedy { epsilon: 2.0 },
        significance_level: 1.5,
        min_views: 0,
        winner_rule: WinnerRule::Sequential { mixture_sd: -1.0 },
        winner: Some("other".into()),
        source_path: Some("/a page".into()),
        target_path: Some(String::new()),
        goal_event: Some("Sign Up".into()),
        exclude_signed_in: true,
        client_side: true,
        interval: Default::default(),
        targeting: bandits::engine::targeting::Targeting {
            percent: Some(101.0),
            ..Default::default()
        },
    };
    let err = invalid(definition);
    let fields: Vec<&str> = err.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "note",
            "arms[1].name",
            "policy.epsilon",
            "significance_level",
            "winner_rule.mixture_sd",
            "winner",
            "source_path",
            "target_path",
            "goal_event",
            "targeting.percent"
        ]
    );
    assert!(err.field("policy.epsilon").is_some());
    assert!(err.field("min_views").is_none());
}

#[test]
fn flags_read_and_write_json_with_defaults_for_missing_fields() {
    let flag: Flag = serde_json::from_value(json!({
        "name": "headline-flag",
        "arms": [
            {"name": "base"},
            {"name": "bold", "payload": {"headline": "Big news", "size": 2}}
        ],
        "policy": {"kind": "thompson"},
        "winner_rule": {"kind": "sequential"}
    }))
    .unwrap();
    assert_eq!(flag.policy(), &Policy::thompson());
    assert_eq!(flag.winner_rule(), &WinnerRule::sequential());
    assert_eq!(flag.min_views(), 100);
    assert_eq!(
        flag.arms()[1].payload,
        Some(json!({"headline": "Big news", "size": 2}))
    );
    assert_eq!(flag.arms()[0].payload, None);

    let text = serde_json::to_string(&flag).unwrap();
    let again: Flag = serde_json::from_str(&text).unwrap();
    assert_eq!(again, flag);

    let policies = [
        (json!({"kind": "epsilon_greedy"}), Policy::epsilon_greedy()),
        (json!({"kind": "epsilon_decay"}), Policy::EpsilonDecay),
        (json!({"kind": "ucb1", "c": 0.5}), Policy::Ucb1 { c: 0.5 }),
        (
            json!({"kind": "thompson", "alpha": 2, "beta": 30}),
            Policy::Thompson {
                alpha: 2.0,
                beta: 30.0,
            },
        ),
        (
            json!({"kind": "split", "weights": [90, 10]}),
            Policy::percent(10.0),
        ),
    ];
    for (value, expected) in policies {
        let policy: Policy = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(policy, expected, "{value}");
        assert_eq!(
            serde_json::to_value(&policy).unwrap()["kind"],
            value["kind"]
        );
    }
}

#[test]
fn invalid_json_is_refused_with_the_field_named() {
    let err = serde_json::from_value::<Flag>(json!({
        "name": "f",
        "policy": {"kind": "epsilon_greedy", "epsilon": 3}
    }))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("policy.epsilon: must be in [0, 1], got 3"),
        "{err}"
    );
    let unknown_field = serde_json::from_value::<Flag>(json!({"name": "f", "colour": "red"}));
    assert!(unknown_field.unwrap_err().to_string().contains("colour"));
    let unknown_policy =
        serde_json::from_value::<Flag>(json!({"name": "f", "policy": {"kind": "greedy"}}));
    assert!(unknown_policy.unwrap_err().to_string().contains("greedy"));
    let negative = serde_json::from_value::<Flag>(json!({"name": "f", "min_views": -1}));
    assert!(negative.is_err());
}

#[test]
fn a_locked_winner_overrides_every_policy() {
    let mut rng = SmallRng::seed_from_u64(5);
    // The totals favour arm 2; the lock says arm 1.
    let totals = [
        ArmTotals::new(1000, 10),
        ArmTotals::new(1000, 10),
        ArmTotals::new(1000, 500),
    ];
    for policy in [
        Policy::epsilon_greedy(),
        Policy::EpsilonDecay,
        Policy::ucb1(),
        Policy::thompson(),
        Policy::even_split(3),
    ] {
        let flag = FlagDefinition::new("f")
            .with_arms(["a", "b", "c"])
            .with_policy(policy.clone())
            .validate()
            .unwrap()
            .lock_winner(1)
            .unwrap();
        assert_eq!(flag.winner(), Some(1));
        assert_eq!(flag.definition().winner.as_deref(), Some("b"));
        for _ in 0..200 {
            assert_eq!(flag.choose_arm(&totals, &mut rng), 1, "{policy:?}");
        }
    }
    let locked_by_name = FlagDefinition {
        winner: Some("on".into()),
        ..FlagDefinition::new("f")
    }
    .validate()
    .unwrap();
    assert_eq!(locked_by_name.winner(), Some(1));
    assert!(FlagDefinition::new("f")
        .validate()
        .unwrap()
        .lock_winner(2)
        .is_none());
}

#[test]
fn stale_totals_never_produce_an_invalid_arm() {
    // A snapshot taken before an arm was added or removed.
    let flag = FlagDefinition::new("f")
        .with_arms(["a", "b", "c"])
        .with_policy(Policy::thompson())
        .validate()
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(9);
    for totals in [
        vec![],
        vec![ArmTotals::new(10, 1)],
        vec![ArmTotals::new(10, 1); 5],
    ] {
        for _ in 0..100 {
            assert!(flag.choose_arm(&totals, &mut rng) < 3);
        }
        assert_eq!(flag.find_winner(&totals), None);
    }
    assert_eq!(flag.arm_index("c"), Some(2));
    assert_eq!(flag.arm_index("d"), None);
}
