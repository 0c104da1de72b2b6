use super::*;

#[test]
fn degenerate_inputs_give_none_not_nan() {
    let none = ArmTotals::default();
    let zero = ArmTotals::new(50, 0);
    let all = ArmTotals::new(50, 50);
    assert_eq!(student_t_test(none, zero), None);
    assert_eq!(student_t_test(zero, zero), None);
    assert_eq!(student_t_test(all, all), None);
    assert_eq!(
        student_t_test(ArmTotals::new(1, 0), ArmTotals::new(1, 0)),
        None
    );
    assert_eq!(
        welch_t_test(ArmTotals::new(1, 0), ArmTotals::new(5, 2)),
        None
    );
    assert_eq!(welch_t_test(zero, zero), None);
    assert_eq!(two_proportion_z_test(zero, zero), None);
    assert_eq!(two_proportion_z_test(all, all), None);
    assert_eq!(chi_square_test(&[zero, zero, zero]), None);
    assert_eq!(chi_square_test(&[zero]), None);
    assert_eq!(chi_square_test(&[none, ArmTotals::new(5, 2)]), None);
    assert_eq!(wilson_interval(none, 0.95), None);
    assert_eq!(wald_interval(none, 0.95), None);
    assert_eq!(wilson_interval(zero, 1.0), None);
    assert_eq!(wilson_interval(zero, f64::NAN), None);
    assert_eq!(beta_interval(zero, 0.0, BetaPrior::UNIFORM), None);
    let bad_prior = BetaPrior {
        alpha: 0.0,
        beta: 1.0,
    };
    assert_eq!(beta_interval(zero, 0.95, bad_prior), None);
    assert_eq!(probability_best(&[zero, zero], bad_prior), None);
    assert_eq!(probability_best(&[], BetaPrior::UNIFORM), None);
    assert_eq!(msprt_log_likelihood_ratio(zero, zero, 0.1), None);
    assert_eq!(msprt_log_likelihood_ratio(zero, all, 0.0), None);
    assert_eq!(sample_ratio_test(&[0, 0], &[0.5, 0.5]), None);
    assert_eq!(sample_ratio_test(&[5, 5], &[1.0]), None);
    assert_eq!(sample_ratio_test(&[5, 5], &[1.0, f64::NAN]), None);
    assert_eq!(sample_ratio_test(&[5, 5], &[1.0, -1.0]), None);
    assert_eq!(sample_ratio_test(&[5, 0], &[1.0, 0.0]), None);
}

#[test]
fn an_arm_meant_to_get_nothing_counts_only_when_it_got_something() {
    let without = sample_ratio_test(&[480, 520, 0], &[1.0, 1.0, 0.0]).unwrap();
    let two_arms = sample_ratio_test(&[480, 520], &[1.0, 1.0]).unwrap();
    assert_eq!(without, two_arms);
    assert_eq!(without.dof, 1);
    let leaked = sample_ratio_test(&[480, 520, 1], &[1.0, 1.0, 0.0]).unwrap();
    assert_eq!(leaked.statistic, f64::INFINITY);
    assert_eq!(leaked.p_value, 0.0);
    // Weights are relative.
    let relative = sample_ratio_test(&[310, 690], &[3.0, 7.0]).unwrap();
    let fractions = sample_ratio_test(&[310, 690], &[0.3, 0.7]).unwrap();
    assert!((relative.statistic - fractions.statistic).abs() < 1e-12);
}

#[test]
fn spreadless_arms_with_different_rates_are_infinitely_apart() {
    let t = student_t_test(ArmTotals::new(3, 0), ArmTotals::new(4, 4)).unwrap();
    assert_eq!(t.statistic, f64::NEG_INFINITY);
    assert_eq!(t.p_value, 0.0);
}

#[test]
fn beta_interval_without_views_is_the_prior() {
    let interval = beta_interval(ArmTotals::default(), 0.9, BetaPrior::UNIFORM).unwrap();
    assert!((interval.lower - 0.05).abs() < 1e-12);
    assert!((interval.upper - 0.95).abs() < 1e-12);
}

#[test]
fn beta_interval_survives_extreme_counts() {
    // statrs's inverse_cdf never returns for these shapes.
    for arm in [
        ArmTotals::new(1_000_000_000_000, 1_000_000_000_000),
        ArmTotals::new(1_000_000_000_000, 0),
        ArmTotals::new(u64::MAX, u64::MAX / 2),
    ] {
        let interval = beta_interval(arm, 0.95, BetaPrior::UNIFORM).unwrap();
        assert!(interval.lower <= interval.upper, "{arm:?}: {interval:?}");
        assert!(
            (interval.lower - arm.rate()).abs() < 1e-6,
            "{arm:?}: {interval:?}"
        );
    }
    // A quantile deep in a skewed tail: Beta(1, 1e12) has mean 1e-12.
    let interval =
        beta_interval(ArmTotals::new(999_999_999_999, 0), 0.95, BetaPrior::UNIFORM).unwrap();
    assert!(
        interval.lower > 0.0 && interval.upper < 1e-11,
        "{interval:?}"
    );
}

#[test]
fn probability_best_handles_extremes() {
    // No data at all: every arm equally likely.
    let p = probability_best(&[ArmTotals::default(); 4], BetaPrior::UNIFORM).unwrap();
    for share in &p {
        assert!((share - 0.25).abs() < 1e-3, "{p:?}");
    }
    // A very narrow posterior far from a wide one.
    let p = probability_best(
        &[ArmTotals::new(1_000_000, 0), ArmTotals::new(2, 1)],
        BetaPrior::UNIFORM,
    )
    .unwrap();
    assert!(p[1] > 0.999, "{p:?}");
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn msprt_evidence_grows_with_the_difference() {
    let a = ArmTotals::new(5000, 250);
    let same = msprt_log_likelihood_ratio(a, a, 0.1).unwrap();
    assert!(same < 0.0, "no difference is evidence for no difference");
    let small = msprt_log_likelihood_ratio(a, ArmTotals::new(5000, 280), 0.1).unwrap();
    let large = msprt_log_likelihood_ratio(a, ArmTotals::new(5000, 350), 0.1).unwrap();
    assert!(same < small && small < large);
    let flipped = msprt_log_likelihood_ratio(ArmTotals::new(5000, 350), a, 0.1).unwrap();
    assert_eq!(large, flipped);
    assert!(msprt_p_value(a, ArmTotals::new(5000, 350), 0.1).unwrap() < 0.01);
    assert_eq!(msprt_p_value(a, a, 0.1), Some(1.0));
}
