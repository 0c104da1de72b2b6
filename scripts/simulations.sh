#!/usr/bin/env bash
# Reproduces the simulation tables of docs/benchmarks.md (about 30 minutes on 2 cores).
# Every experiment is seeded: the same command prints the same numbers on any machine
# with the same build.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p bandits --example simulate
simulate=target/release/examples/simulate
reps=${REPLICATIONS:-1000}

echo "## Regret of every policy (no winner rule), ${reps} experiments each"
echo
first=true
for arms in 0.04,0.05 0.10,0.12 0.02,0.03,0.05,0.045,0.01; do
    $simulate --arms "$arms" --horizon 100000 --checkpoints 1000,10000 \
        --replications "$reps" --policy all --rule manual --header "$first"
    first=false
done

echo
echo "## Winner rules between two identical arms [0.05, 0.05]: any lock is a false one"
echo
$simulate --arms 0.05,0.05 --horizon 100000 --checkpoints 1000,10000 \
    --replications "$reps" --policy epsilon-greedy,thompson,split \
    --rule t-test,sequential --check-after conversion
$simulate --arms 0.05,0.05 --horizon 100000 --checkpoints 1000,10000 \
    --replications "$reps" --policy epsilon-greedy,thompson,split \
    --rule t-test,sequential --check-after visitor --header false
$simulate --arms 0.05,0.05,0.05,0.05,0.05 --horizon 100000 --checkpoints 1000,10000 \
    --replications "$reps" --policy thompson,split \
    --rule t-test,sequential --check-after visitor --header false

echo
echo "## Winner rules on unequal arms: regret with locking, and wrong locks"
echo
first=true
for arms in 0.04,0.05 0.10,0.12 0.02,0.03,0.05,0.045,0.01; do
    $simulate --arms "$arms" --horizon 100000 --checkpoints 1000,10000 \
        --replications "$reps" --policy epsilon-greedy,thompson,split \
        --rule t-test,sequential --check-after conversion --header "$first"
    first=false
done

echo
echo "## Experiments that end with an answer: top-two Thompson sampling and the Bayesian rule"
echo
# The rules are checked every 100 visitors, as a site checks once per counter flush.
answers_reps=${ANSWER_REPLICATIONS:-400}
first=true
for arms in 0.04,0.05 0.10,0.12; do
    $simulate --arms "$arms" --horizon 100000 --checkpoints 10000 \
        --replications "$answers_reps" --policy thompson,top-two-thompson,split \
        --leader 0.5,0.8 --rule sequential,bayesian \
        --check-after every --check-every 100 --header "$first"
    $simulate --arms "$arms" --horizon 100000 --checkpoints 10000 \
        --replications "$answers_reps" --policy thompson,top-two-thompson,split \
        --leader 0.5,0.8 --rule bayesian --expected-loss 0.00002 \
        --check-after every --check-every 100 --header false
    first=false
done
$simulate --arms 0.05,0.05 --horizon 100000 --checkpoints 10000 \
    --replications 400 --policy top-two-thompson,split --leader 0.8 \
    --rule sequential,bayesian --check-after every --check-every 100 --header false
