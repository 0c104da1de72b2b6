//! Every statistic the engine computes, against SciPy's values.
//!
//! `tests/data/stats_vectors.json` was produced by SciPy (its `generator` field says which
//! version), and so was `tests/data/sequential_and_srm_vectors.json`: the mSPRT's evidence
//! and always-valid p-value by numerical integration of the normal mixture, and the
//! sample-ratio check's `scipy.stats.chisquare`; and `tests/data/bayes_vectors.json`
//! (`scripts/bayes_vectors.py`): each arm's probability of being best and expected loss
//! by `scipy.integrate.quad`. Each test walks every entry of one section
//! and checks every field in it; a field or a section that no test knows fails the run, so
//! a statistic added to a file cannot go unchecked.

use std::collections::BTreeSet;

use bandits::engine::stats::{
    beta_interval, chances, chi_square_test, msprt_log_likelihood_ratio, msprt_p_value,
    probability_best, sample_ratio_test, student_t_test, two_proportion_z_test, wald_interval,
    welch_t_test, wilson_interval, BetaPrior, Interval, TestResult,
};
use bandits::engine::ArmTotals;
use serde_json::Value;

/// Relative tolerance the issue sets for every statistic but probability-best.
const RELATIVE: f64 = 1e-6;
/// Relative tolerance for the sequential test and the sample-ratio check, whose formulas
/// are closed (SciPy's integration agrees with them to about 1e-14).
const SEQUENTIAL_RELATIVE: f64 = 1e-9;
/// Absolute tolerance for probability-best, which the engine integrates numerically.
const PROBABILITY_BEST: f64 = 2e-3;
/// Absolute and relative tolerance for the expected loss, integrated numerically too: a
/// rule threshold of 0.0005 is met to within 1%.
const LOSS_ABSOLUTE: f64 = 5e-6;
const LOSS_RELATIVE: f64 = 1e-3;
/// Values SciPy writes as 6.9e-18 where the exact answer is 0 (a Wilson bound at zero
/// conversions) cannot be met relatively; below this they count as zero.
const ZERO: f64 = 1e-12;

fn vectors() -> Value {
    parse(include_str!("data/stats_vectors.json"))
}

fn sequential_vectors() -> Value {
    parse(include_str!("data/sequential_and_srm_vectors.json"))
}

fn parse(text: &str) -> Value {
    // Python's json module writes IEEE infinities as bare words, which JSON lacks.
    let text = text
        .replace("-Infinity", "\"-inf\"")
        .replace("Infinity", "\"inf\"")
        .replace("NaN", "null");
    serde_json::from_str(&text).expect("the reference file parses")
}

/// A reference number: SciPy's NaN (written as null) is `None`.
fn number(entry: &Value, key: &str) -> Option<f64> {
    match &entry[key] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == "inf" => Some(f64::INFINITY),
        Value::String(s) if s == "-inf" => Some(f64::NEG_INFINITY),
        Value::Null => None,
        other => panic!("{key}: not a number: {other}"),
    }
}

fn count(entry: &Value, key: &str) -> u64 {
    entry[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is a count"))
}

/// The fields of an entry that holds two arms.
const PAIR_FIELDS: &[&str] = &["views_a", "conversions_a", "views_b", "conversions_b"];

/// The two arms of an entry.
fn pair(entry: &Value) -> (ArmTotals, ArmTotals) {
    (
        ArmTotals::new(count(entry, "views_a"), count(entry, "conversions_a")),
        ArmTotals::new(count(entry, "views_b"), count(entry, "conversions_b")),
    )
}

fn arm(entry: &Value) -> ArmTotals {
    ArmTotals::new(count(entry, "views"), count(entry, "conversions"))
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert_within(RELATIVE, ZERO, actual, expected, what);
}

/// Relative error at most `relative`, or absolute error at most `zero`.
fn assert_within(relative: f64, zero: f64, actual: f64, expected: f64, what: &str) {
    let ok = if expected.is_infinite() {
        actual == expected
    } else {
        let error = (actual - expected).abs();
        error <= relative * expected.abs() || error <= zero
    };
    assert!(
        ok,
        "{what}: got {actual:e}, SciPy says {expected:e} (relative error {:e})",
        ((actual - expected) / expected).abs()
    );
}

fn assert_test(actual: Option<TestResult>, entry: &Value, stat: &str, p: &str, what: &str) {
    match (number(entry, stat), number(entry, p)) {
        (Some(expected_stat), Some(expected_p)) => {
            let actual = actual.unwrap_or_else(|| panic!("{what}: got None, SciPy has a value"));
            assert_close(actual.statistic, expected_stat, &format!("{what} {stat}"));
            assert_close(actual.p_value, expected_p, &format!("{what} {p}"));
        }
        _ => assert_eq!(
            actual, None,
            "{what}: SciPy gives NaN, so should we give None"
        ),
    }
}

fn assert_interval(actual: Option<Interval>, entry: &Value, key: &str, what: &str) {
    let bounds = entry[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is a pair"));
    let actual = actual.unwrap_or_else(|| panic!("{what} {key}: got None"));
    let lower = bounds[0].as_f64().expect("a number");
    let upper = bounds[1].as_f64().expect("a number");
    assert_close(actual.lower, lower, &format!("{what} {key} lower"));
    assert_close(actual.upper, upper, &format!("{what} {key} upper"));
}

/// Fails if an entry holds a field the test does not check.
fn assert_all_checked(entry: &Value, checked: &[&str]) {
    let known: BTreeSet<&str> = checked.iter().copied().chain(["note"]).collect();
    let fields = entry.as_object().expect("an object");
    for field in fields.keys() {
        assert!(
            known.contains(field.as_str()),
            "the reference file has {field:?}, which no test checks"
        );
    }
}

fn section(name: &str) -> Vec<Value> {
    section_of(&vectors(), name)
}

fn section_of(all: &Value, name: &str) -> Vec<Value> {
    let entries = all[name]
        .as_array()
        .unwrap_or_else(|| panic!("section {name}"));
    assert!(!entries.is_empty(), "section {name} is empty");
    entries.clone()
}

/// The names of a reference file's sections.
fn sections(all: &Value) -> BTreeSet<String> {
    all.as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn the_files_have_no_section_we_do_not_test() {
    let tested = |names: &[&str]| names.iter().map(|name| name.to_string()).collect();
    assert_eq!(
        sections(&vectors()),
        tested(&["generator", "two_sample", "intervals", "k_arm", "beta_best"])
    );
    assert_eq!(
        sections(&sequential_vectors()),
        tested(&["generator", "msprt", "sample_ratio"])
    );
}

#[test]
fn the_sequential_test_matches_numerical_integration() {
    for entry in section_of(&sequential_vectors(), "msprt") {
        let (a, b) = pair(&entry);
        let width = number(&entry, "mixture_sd").expect("a mixture width");
        let what = format!("{a:?} vs {b:?}, mixture_sd {width}");
        let evidence = msprt_log_likelihood_ratio(a, b, width)
            .unwrap_or_else(|| panic!("{what}: no log likelihood ratio"));
        let expected = number(&entry, "log_likelihood_ratio").expect("a number");
        assert_within(
            SEQUENTIAL_RELATIVE,
            0.0,
            evidence,
            expected,
            &format!("{what} log_likelihood_ratio"),
        );
        let p = msprt_p_value(a, b, width).unwrap_or_else(|| panic!("{what}: no p-value"));
        let expected = number(&entry, "p_value").expect("a number");
        assert_within(
            SEQUENTIAL_RELATIVE,
            0.0,
            p,
            expected,
            &format!("{what} p_value"),
        );
        assert_all_checked(
            &entry,
            &[
                PAIR_FIELDS,
                &["mixture_sd", "log_likelihood_ratio", "p_value"],
            ]
            .concat(),
        );
    }
}

#[test]
fn the_sample_ratio_check_matches_scipy() {
    for entry in section_of(&sequential_vectors(), "sample_ratio") {
        let views: Vec<u64> = entry["views"]
            .as_array()
            .expect("a list of views")
            .iter()
            .map(|v| v.as_u64().expect("a count"))
            .collect();
        let weights: Vec<f64> = entry["weights"]
            .as_array()
            .expect("a list of weights")
            .iter()
            .map(|v| v.as_f64().expect("a weight"))
            .collect();
        let what = format!("{views:?} against {weights:?}");
        let result =
            sample_ratio_test(&views, &weights).unwrap_or_else(|| panic!("{what}: got None"));
        for (field, actual) in [("statistic", result.statistic), ("p_value", result.p_value)] {
            let expected = number(&entry, field).expect("a number");
            assert_within(
                SEQUENTIAL_RELATIVE,
                0.0,
                actual,
                expected,
                &format!("{what} {field}"),
            );
        }
        assert_eq!(result.dof, views.len() as u64 - 1, "{what} dof");
        assert_all_checked(&entry, &["views", "weights", "statistic", "p_value"]);
    }
}

#[test]
fn two_sample_tests_match_scipy() {
    for entry in section("two_sample") {
        let (a, b) = pair(&entry);
        let what = format!("{a:?} vs {b:?}");
        assert_test(
            student_t_test(a, b),
            &entry,
            "student_t",
            "student_p",
            &what,
        );
        assert_test(welch_t_test(a, b), &entry, "welch_t", "welch_p", &what);
        assert_test(
            two_proportion_z_test(a, b),
            &entry,
            "pooled_z",
            "pooled_z_p",
            &what,
        );
        assert_all_checked(
            &entry,
            &[
                PAIR_FIELDS,
                &[
                    "student_t",
                    "student_p",
                    "welch_t",
                    "welch_p",
                    "pooled_z",
                    "pooled_z_p",
                ],
            ]
            .concat(),
        );
    }
}

#[test]
fn intervals_match_scipy() {
    for entry in section("intervals") {
        let totals = arm(&entry);
        let confidence = number(&entry, "confidence").expect("a confidence");
        let what = format!("{totals:?} at {confidence}");
        assert_interval(wald_interval(totals, confidence), &entry, "wald", &what);
        assert_interval(wilson_interval(totals, confidence), &entry, "wilson", &what);
        assert_interval(
            beta_interval(totals, confidence, BetaPrior::UNIFORM),
            &entry,
            "beta_uniform_prior",
            &what,
        );
        assert_all_checked(
            &entry,
            &[
                "views",
                "conversions",
                "confidence",
                "wald",
                "wilson",
                "beta_uniform_prior",
            ],
        );
    }
}

fn arms(entry: &Value) -> Vec<ArmTotals> {
    entry["arms"]
        .as_array()
        .expect("a list of arms")
        .iter()
        .map(arm)
        .collect()
}

#[test]
fn chi_square_matches_scipy() {
    for entry in section("k_arm") {
        let arms = arms(&entry);
        let what = format!("{arms:?}");
        let result = chi_square_test(&arms).unwrap_or_else(|| panic!("{what}: got None"));
        assert_close(
            result.statistic,
            number(&entry, "chi2").expect("chi2"),
            &format!("{what} chi2"),
        );
        assert_close(
            result.p_value,
            number(&entry, "p").expect("p"),
            &format!("{what} p"),
        );
        assert_eq!(result.dof, count(&entry, "dof"), "{what} dof");
        assert_all_checked(&entry, &["arms", "chi2", "p", "dof"]);
    }
}

#[test]
fn chances_match_scipy_quadrature() {
    let file = parse(include_str!("data/bayes_vectors.json"));
    assert_eq!(
        sections(&file),
        ["generator", "chances"].map(String::from).into()
    );
    let entries = file["chances"].as_array().expect("a list").clone();
    assert!(!entries.is_empty());
    let list = |entry: &Value, key: &str| -> Vec<f64> {
        entry[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(|v| v.as_f64().expect("a number"))
            .collect()
    };
    for entry in entries {
        let arms = arms(&entry);
        let prior = BetaPrior {
            alpha: number(&entry["prior"], "alpha").expect("alpha"),
            beta: number(&entry["prior"], "beta").expect("beta"),
        };
        let odds = chances(&arms, prior).expect("a result");
        let (best, loss) = (
            list(&entry, "probability_best"),
            list(&entry, "expected_loss"),
        );
        assert_eq!((odds.best.len(), odds.loss.len()), (best.len(), loss.len()));
        for i in 0..best.len() {
            let what = format!("{arms:?} with {prior:?}, arm {i}");
            assert!(
                (odds.best[i] - best[i]).abs() <= PROBABILITY_BEST,
                "{what}: probability best {}, SciPy says {}",
                odds.best[i],
                best[i]
            );
            assert!(
                (odds.loss[i] - loss[i]).abs() <= LOSS_ABSOLUTE + LOSS_RELATIVE * loss[i],
                "{what}: expected loss {}, SciPy says {}",
                odds.loss[i],
                loss[i]
            );
        }
        assert_all_checked(
            &entry,
            &["arms", "prior", "probability_best", "expected_loss"],
        );
    }
}

#[test]
fn probability_best_matches_scipy() {
    for entry in section("beta_best") {
        let arms = arms(&entry);
        let expected: Vec<f64> = entry["probability_best"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|v| v.as_f64().expect("a number"))
            .collect();
        let actual = probability_best(&arms, BetaPrior::UNIFORM).expect("a result");
        assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert!(
                (a - e).abs() <= PROBABILITY_BEST,
                "{arms:?} arm {i}: got {a}, SciPy says {e}"
            );
        }
        assert_all_checked(&entry, &["arms", "probability_best"]);
    }
}
