//! Whatever the counters hold, the engine answers with a defined value or `None`: never
//! NaN, never a panic, never an arm that does not exist.
//!
//! Counters come from storage and are flushed apart, so the inputs include zero views,
//! conversions above views, and counts near the top of the range.

use bandits::engine::stats::{
    beta_interval, chi_square_test, msprt_p_value, probability_best, student_t_test,
    two_proportion_z_test, wald_interval, welch_t_test, wilson_interval, BetaPrior, TestResult,
};
use bandits::engine::{ArmTotals, FlagDefinition, Policy, WinnerRule};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..200,
        3 => 0u64..2_000_000,
        1 => Just(i64::MAX as u64),
        1 => Just(u64::MAX),
    ]
}

fn arm() -> impl Strategy<Value = ArmTotals> {
    (count(), count()).prop_map(|(views, conversions)| ArmTotals::new(views, conversions))
}

fn confidence() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.5f64..0.999,
        1 => Just(0.0),
        1 => Just(1.0),
        1 => Just(f64::NAN),
        1 => -1.0f64..2.0,
    ]
}

fn check_test(result: Option<TestResult>) -> Result<(), TestCaseError> {
    if let Some(test) = result {
        prop_assert!(!test.statistic.is_nan());
        prop_assert!((0.0..=1.0).contains(&test.p_value), "{test:?}");
        if test.statistic.is_infinite() {
            prop_assert_eq!(test.p_value, 0.0);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn two_sample_tests_are_defined_or_none(a in arm(), b in arm()) {
        check_test(student_t_test(a, b))?;
        check_test(welch_t_test(a, b))?;
        check_test(two_proportion_z_test(a, b))?;
        if let Some(p) = msprt_p_value(a, b, 0.05) {
            prop_assert!((0.0..=1.0).contains(&p));
        }
    }

    #[test]
    fn intervals_are_ordered_and_finite(a in arm(), confidence in confidence()) {
        for interval in [
            wilson_interval(a, confidence),
            wald_interval(a, confidence),
            beta_interval(a, confidence, BetaPrior::UNIFORM),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(interval.lower.is_finite() && interval.upper.is_finite(), "{interval:?}");
            prop_assert!(interval.lower <= interval.upper, "{interval:?}");
        }
        if let Some(wilson) = wilson_interval(a, confidence) {
            prop_assert!(wilson.lower >= 0.0 && wilson.upper <= 1.0);
            prop_assert!(wilson.contains(a.rate()));
        }
    }

    #[test]
    fn k_arm_statistics_are_defined_or_none(arms in prop::collection::vec(arm(), 0..6)) {
        if let Some(chi) = chi_square_test(&arms) {
            prop_assert!(chi.statistic >= 0.0 && chi.statistic.is_finite());
            prop_assert!((0.0..=1.0).contains(&chi.p_value));
            prop_assert_eq!(chi.dof, arms.len() as u64 - 1);
        }
        if let Some(best) = probability_best(&arms, BetaPrior::UNIFORM) {
            prop_assert_eq!(best.len(), arms.len());
            prop_assert!(best.iter().all(|p| (0.0..=1.0).contains(p)), "{best:?}");
            prop_assert!((best.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{best:?}");
        } else {
            prop_assert!(arms.is_empty());
        }
    }

    #[test]
    fn every_policy_and_rule_gives_a_real_arm(
        arms in prop::collection::vec(arm(), 2..6),
        seed in any::<u64>(),
    ) {
        let names: Vec<String> = (0..arms.len()).map(|i| format!("arm-{i}")).collect();
        let mut rng = SmallRng::seed_from_u64(seed);
        for policy in [
            Policy::epsilon_greedy(),
            Policy::EpsilonDecay,
            Policy::ucb1(),
            Policy::thompson(),
            Policy::even_split(arms.len()),
        ] {
            for rule in [WinnerRule::TTest, WinnerRule::sequential(), WinnerRule::Manual] {
                let flag = FlagDefinition::new("f")
                    .with_arms(names.clone())
                    .with_policy(policy.clone())
                    .with_winner_rule(rule)
                    .validate()
                    .expect("a valid flag");
                prop_assert!(flag.choose_arm(&arms, &mut rng) < arms.len());
                if let Some(winner) = flag.find_winner(&arms) {
                    prop_assert!(winner < arms.len());
                }
            }
        }
    }
}
