//! The cost of one decision: a new visitor's arm and the odds it was chosen with, as a
//! site makes it (with the arms' chances of being best computed at the last flush, for
//! the flags that read them), for every policy, at 2 and 10 arms.
//!
//! Run with `cargo bench -p bandits --bench decision`; the figures are recorded in
//! `docs/benchmarks.md`. Target: under one microsecond for every policy at ten arms.

use std::hint::black_box;

use bandits::engine::{ArmTotals, FlagDefinition, Policy};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// Totals of a flag some way into its experiment: a few thousand visitors per arm, rates
/// between 3% and 7%, so no policy takes a shortcut.
fn totals(arms: usize) -> Vec<ArmTotals> {
    (0..arms)
        .map(|i| {
            let views = 4_000 + 137 * i as u64;
            ArmTotals::new(views, views * (30 + 4 * i as u64) / 1000)
        })
        .collect()
}

fn decisions(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    for arms in [2usize, 10] {
        let names: Vec<String> = (0..arms).map(|i| format!("arm-{i}")).collect();
        let policies = [
            ("epsilon_greedy", Policy::epsilon_greedy()),
            ("epsilon_decay", Policy::EpsilonDecay),
            ("ucb1", Policy::ucb1()),
            ("thompson", Policy::thompson()),
            ("top_two_thompson", Policy::top_two_thompson()),
            ("split", Policy::even_split(arms)),
        ];
        let totals = totals(arms);
        for (label, policy) in policies {
            let flag = FlagDefinition::new("bench")
                .with_arms(names.clone())
                .with_policy(policy)
                .validate()
                .expect("a valid flag");
            let chances = flag
                .reads_chances()
                .then(|| flag.chances(&totals))
                .flatten();
            let mut rng = SmallRng::seed_from_u64(1);
            group.bench_with_input(BenchmarkId::new(label, arms), &totals, |b, totals| {
                b.iter(|| flag.choose(black_box(totals), chances.as_ref(), &mut rng))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
