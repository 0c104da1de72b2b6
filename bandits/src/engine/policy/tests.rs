use super::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn shares(policy: &Policy, arms: &[ArmTotals], draws: usize) -> Vec<f64> {
    let mut rng = SmallRng::seed_from_u64(42);
    let mut counts = vec![0usize; arms.len()];
    for _ in 0..draws {
        counts[policy.choose(arms, &mut rng)] += 1;
    }
    counts.iter().map(|&c| c as f64 / draws as f64).collect()
}

#[test]
fn argmax_breaks_ties_uniformly() {
    let arms = [ArmTotals::new(10, 1); 4];
    for share in shares(&Policy::EpsilonGreedy { epsilon: 0.0 }, &arms, 40_000) {
        assert!((share - 0.25).abs() < 0.015, "{share}");
    }
}

#[test]
fn epsilon_greedy_explores_epsilon_share() {
    let arms = [ArmTotals::new(100, 1), ArmTotals::new(100, 50)];
    let s = shares(&Policy::EpsilonGreedy { epsilon: 0.2 }, &arms, 50_000);
    // Exploring picks either arm: the worse arm gets epsilon / 2.
    assert!((s[0] - 0.1).abs() < 0.01, "{s:?}");
}

#[test]
fn epsilon_decay_explores_less_as_views_grow() {
    let arms = [ArmTotals::new(2, 0), ArmTotals::new(2, 2)];
    // n = 4, k = 2: explore with probability 1/3, half of which lands on arm 0.
    let s = shares(&Policy::EpsilonDecay, &arms, 60_000);
    assert!((s[0] - 1.0 / 6.0).abs() < 0.01, "{s:?}");
    let arms = [ArmTotals::new(998, 0), ArmTotals::new(1000, 2)];
    let s = shares(&Policy::EpsilonDecay, &arms, 60_000);
    assert!((s[0] - 0.5 / 1000.0).abs() < 0.001, "{s:?}");
}

#[test]
fn ucb1_prefers_the_less_explored_arm_at_equal_rates() {
    let arms = [ArmTotals::new(1000, 100), ArmTotals::new(10, 1)];
    let s = shares(&Policy::ucb1(), &arms, 100);
    assert_eq!(s[1], 1.0);
}

#[test]
fn ucb1_follows_django_bandits_bonus() {
    // rates 0.5 and 0.3; bonus c * sqrt(ln(200) / 100) = 0.2302 * c.
    // With c = 0.1 the better rate wins; the views are equal, so bonuses are equal.
    let arms = [ArmTotals::new(100, 50), ArmTotals::new(100, 30)];
    assert_eq!(shares(&Policy::Ucb1 { c: 0.1 }, &arms, 10)[0], 1.0);
    // Unequal views: arm 1 has rate 0.3 + 2 * sqrt(ln(110) / 10) = 1.6715,
    // arm 0 has 0.5 + 2 * sqrt(ln(110) / 100) = 0.9336.
    let arms = [ArmTotals::new(100, 50), ArmTotals::new(10, 3)];
    assert_eq!(shares(&Policy::ucb1(), &arms, 10)[1], 1.0);
}

#[test]
fn thompson_follows_the_posterior() {
    let arms = [ArmTotals::new(10_000, 500), ArmTotals::new(10_000, 600)];
    let s = shares(&Policy::thompson(), &arms, 10_000);
    assert!(s[1] > 0.99, "{s:?}");
    let arms = [ArmTotals::default(); 3];
    for share in shares(&Policy::thompson(), &arms, 30_000) {
        assert!((share - 1.0 / 3.0).abs() < 0.015, "{share}");
    }
}

/// Shares of `draws` choices made as a site makes them: with the arms' chances.
fn shares_given(policy: &Policy, arms: &[ArmTotals], draws: usize) -> Vec<f64> {
    let best = crate::engine::stats::chances(arms, policy.prior()).map(|c| c.best);
    let mut rng = SmallRng::seed_from_u64(43);
    let mut counts = vec![0usize; arms.len()];
    for _ in 0..draws {
        counts[policy.choose_given(arms, best.as_deref(), &mut rng)] += 1;
    }
    counts.iter().map(|&c| c as f64 / draws as f64).collect()
}

#[test]
fn propensities_are_the_shares_each_policy_chooses_with() {
    let arms = [
        ArmTotals::new(400, 20),
        ArmTotals::new(300, 24),
        ArmTotals::new(300, 24),
        ArmTotals::new(50, 1),
    ];
    for policy in [
        Policy::epsilon_greedy(),
        Policy::EpsilonDecay,
        Policy::Ucb1 { c: 0.01 },
        Policy::thompson(),
        Policy::top_two_thompson(),
        Policy::TopTwoThompson {
            alpha: 1.0,
            beta: 1.0,
            leader: 0.5,
        },
        Policy::Split {
            weights: vec![1.0, 2.0, 0.0, 1.0],
        },
    ] {
        let best = crate::engine::stats::chances(&arms, policy.prior()).map(|c| c.best);
        let odds: Vec<f64> = (0..arms.len())
            .map(|arm| {
                policy
                    .propensity(arm, &arms, best.as_deref())
                    .expect("known with the chances")
            })
            .collect();
        let total: f64 = odds.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{}: {odds:?}", policy.label());
        let seen = shares_given(&policy, &arms, 100_000);
        for (p, s) in odds.iter().zip(&seen) {
            assert!(
                (p - s).abs() < 0.006,
                "{}: {odds:?} vs {seen:?}",
                policy.label()
            );
        }
    }
    // Without the chances, Thompson's odds are unknown; the others need none.
    assert_eq!(Policy::thompson().propensity(0, &arms, None), None);
    assert_eq!(Policy::top_two_thompson().propensity(0, &arms, None), None);
    assert_eq!(Policy::epsilon_greedy().propensity(9, &arms, None), None);
}

#[test]
fn top_two_thompson_keeps_showing_the_challenger() {
    // Arm 1 is very probably best: Thompson sampling all but stops showing arm 0,
    // top-two Thompson keeps giving it about 1 - leader.
    let arms = [ArmTotals::new(3000, 120), ArmTotals::new(3000, 180)];
    assert!(shares(&Policy::thompson(), &arms, 20_000)[0] < 0.01);
    let russo = Policy::TopTwoThompson {
        alpha: 1.0,
        beta: 1.0,
        leader: 0.5,
    };
    let even = shares(&russo, &arms, 20_000);
    assert!((even[0] - 0.5).abs() < 0.015, "{even:?}");
    let leaning = Policy::top_two_thompson();
    let s = shares(&leaning, &arms, 20_000);
    assert!((s[0] - 0.2).abs() < 0.015, "{s:?}");
    // Draws from the posteriors and draws from the chances agree, with more arms too.
    let three = [arms[0], arms[1], ArmTotals::new(3000, 170)];
    let drawn = shares(&leaning, &three, 40_000);
    let given = shares_given(&leaning, &three, 40_000);
    for (d, g) in drawn.iter().zip(&given) {
        assert!((d - g).abs() < 0.015, "{drawn:?} vs {given:?}");
    }
    // A leader certain beyond rounding leaves the best other arm as the challenger.
    let certain = [1.0, 0.0, 0.0];
    let mut rng = SmallRng::seed_from_u64(5);
    let challengers: Vec<usize> = (0..200)
        .map(|_| leaning.choose_given(&three, Some(&certain), &mut rng))
        .filter(|&arm| arm != 0)
        .collect();
    assert!(!challengers.is_empty() && challengers.iter().all(|&arm| arm == 1));
    let odds = leaning.propensity(1, &three, Some(&certain)).unwrap();
    assert!((odds - 0.2).abs() < 1e-12, "{odds}");
}

#[test]
fn top_two_parameters_are_checked() {
    let bad = Policy::TopTwoThompson {
        alpha: 0.0,
        beta: 1.0,
        leader: 1.0,
    };
    let fields: Vec<&str> = bad.problems(2).iter().map(|(field, _)| *field).collect();
    assert_eq!(fields, ["alpha", "leader"]);
    let parsed: Policy = serde_json::from_str(r#"{"kind": "top_two_thompson"}"#).unwrap();
    assert_eq!(parsed, Policy::top_two_thompson());
}

#[test]
fn split_follows_weights() {
    let arms = [ArmTotals::default(); 3];
    let s = shares(
        &Policy::Split {
            weights: vec![1.0, 0.0, 3.0],
        },
        &arms,
        40_000,
    );
    assert_eq!(s[1], 0.0);
    assert!((s[2] - 0.75).abs() < 0.01, "{s:?}");
    let s = shares(&Policy::percent(10.0), &arms[..2], 40_000);
    assert!((s[1] - 0.10).abs() < 0.006, "{s:?}");
}

#[test]
fn degenerate_inputs_give_the_control() {
    let mut rng = SmallRng::seed_from_u64(3);
    let one = [ArmTotals::new(5, 1)];
    for policy in [
        Policy::default(),
        Policy::EpsilonDecay,
        Policy::ucb1(),
        Policy::thompson(),
        Policy::top_two_thompson(),
        Policy::even_split(2),
    ] {
        assert_eq!(policy.choose(&[], &mut rng), 0);
        assert_eq!(policy.choose(&one, &mut rng), 0);
        assert_eq!(policy.choose_given(&[], Some(&[]), &mut rng), 0);
        assert_eq!(policy.choose_given(&one, Some(&[1.0]), &mut rng), 0);
        // A lone arm is chosen for certain; no arm at all has no odds.
        assert_eq!(policy.propensity(0, &one, Some(&[1.0])), Some(1.0));
        assert_eq!(policy.propensity(0, &[], Some(&[])), None);
        // Chances of the wrong length (a snapshot from before an edit) are not used.
        let two = [ArmTotals::default(); 2];
        assert!(policy.choose_given(&two, Some(&[1.0]), &mut rng) < 2);
    }
    // Chances that are all zero (no information) fall back to drawing from the posteriors.
    let two = [ArmTotals::new(10, 1), ArmTotals::new(10, 2)];
    for policy in [Policy::thompson(), Policy::top_two_thompson()] {
        assert!(policy.choose_given(&two, Some(&[0.0, 0.0]), &mut rng) < 2);
    }
    let zero = Policy::Split {
        weights: vec![0.0, 0.0],
    };
    assert_eq!(zero.choose(&[ArmTotals::default(); 2], &mut rng), 0);
    // More conversions than views (counters flushed apart) is read as a rate of one.
    // Thompson then samples Beta(2, 1) against Beta(2, 3), and favours the first.
    let odd = [ArmTotals::new(1, 5), ArmTotals::new(3, 1)];
    assert_eq!(odd[0].rate(), 1.0);
    assert!(shares(&Policy::thompson(), &odd, 10_000)[0] > 0.7);
}
