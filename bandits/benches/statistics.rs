//! The cost of the statistics a report shows for a flag: tests, intervals and the
//! probability that each arm is best (the dearest, computed by numerical integration).
//!
//! Run with `cargo bench -p bandits --bench statistics`; figures in `docs/benchmarks.md`.

use std::hint::black_box;

use bandits::engine::stats::{
    beta_interval, chi_square_test, probability_best, student_t_test, wilson_interval, BetaPrior,
};
use bandits::engine::ArmTotals;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn arms(k: usize) -> Vec<ArmTotals> {
    (0..k)
        .map(|i| ArmTotals::new(2_000 + 50 * i as u64, 100 + 7 * i as u64))
        .collect()
}

fn statistics(c: &mut Criterion) {
    let mut group = c.benchmark_group("statistics");
    let two = arms(2);
    group.bench_function("student_t_test", |b| {
        b.iter(|| student_t_test(black_box(two[0]), black_box(two[1])))
    });
    group.bench_function("wilson_interval", |b| {
        b.iter(|| wilson_interval(black_box(two[0]), 0.95))
    });
    group.bench_function("beta_interval", |b| {
        b.iter(|| beta_interval(black_box(two[0]), 0.95, BetaPrior::UNIFORM))
    });
    for k in [2usize, 10] {
        let totals = arms(k);
        group.bench_with_input(BenchmarkId::new("chi_square_test", k), &totals, |b, t| {
            b.iter(|| chi_square_test(black_box(t)))
        });
        group.bench_with_input(BenchmarkId::new("probability_best", k), &totals, |b, t| {
            b.iter(|| probability_best(black_box(t), BetaPrior::UNIFORM))
        });
    }
    group.finish();
}

criterion_group!(benches, statistics);
criterion_main!(benches);
