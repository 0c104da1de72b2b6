//! Offline simulator: the engine's policies and winner rules against Bernoulli arms.
//!
//! ```text
//! cargo run --release -p bandits --example simulate -- \
//!     --arms 0.04,0.05 --horizon 100000 --checkpoints 1000,10000 \
//!     --policy all --replications 200
//! ```
//!
//! Prints one Markdown table row per policy, rule and checkpoint: mean cumulative regret
//! with its standard error, the Lai–Robbins bound, and the share of runs whose winner
//! rule had locked any arm, and a wrong arm, by then. `scripts/simulations.sh` runs the
//! set recorded in `docs/benchmarks.md`.

use std::time::Instant;

use bandits::engine::simulation::{lai_robbins_bound, CheckAfter, Simulation};
use bandits::engine::{Flag, FlagDefinition, Policy, WinnerRule};
use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(about = "Simulate rocket-bandits policies and winner rules on Bernoulli arms")]
struct Args {
    /// True conversion rate of each arm, comma separated; the first is the control.
    #[arg(long, value_delimiter = ',', required = true)]
    arms: Vec<f64>,
    /// Visitors per simulated experiment.
    #[arg(long, default_value_t = 100_000)]
    horizon: u64,
    /// Extra visitor counts to report at, comma separated (the horizon is always reported).
    #[arg(long, value_delimiter = ',')]
    checkpoints: Vec<u64>,
    /// Simulated experiments per policy and rule.
    #[arg(long, default_value_t = 200)]
    replications: u64,
    /// Policies to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    policy: Vec<PolicyArg>,
    /// Winner rules to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "manual")]
    rule: Vec<RuleArg>,
    /// When the winner rule is consulted.
    #[arg(long, value_enum, default_value = "conversion")]
    check_after: CheckArg,
    /// Exposures before the winner rule is consulted.
    #[arg(long, default_value_t = 100)]
    min_views: u64,
    /// Significance level of the winner rule.
    #[arg(long, default_value_t = 0.05)]
    significance: f64,
    /// Epsilon of epsilon-greedy.
    #[arg(long, default_value_t = 0.1)]
    epsilon: f64,
    /// Exploration weight of UCB1.
    #[arg(long, default_value_t = 2.0)]
    c: f64,
    /// Mixture standard deviation of the sequential rule.
    #[arg(long, default_value_t = 0.05)]
    mixture_sd: f64,
    /// Russo's β of top-two Thompson sampling, comma separated for one run per value.
    #[arg(long, value_delimiter = ',', default_value = "0.8")]
    leader: Vec<f64>,
    /// Probability best the Bayesian rule needs.
    #[arg(long, default_value_t = 0.95)]
    probability: f64,
    /// Expected loss (in conversion rate) below which the Bayesian rule locks.
    #[arg(long, default_value_t = 0.0001)]
    expected_loss: f64,
    /// Visitors between checks with `--check-after every` (a site checks once per flush).
    #[arg(long, default_value_t = 100)]
    check_every: u64,
    /// Seed of the first experiment; experiment i uses a generator derived from (seed, i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the table header.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    header: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    All,
    EpsilonGreedy,
    EpsilonDecay,
    Ucb1,
    Thompson,
    TopTwoThompson,
    Split,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum RuleArg {
    Manual,
    TTest,
    Sequential,
    Bayesian,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum CheckArg {
    Conversion,
    Visitor,
    Every,
}

fn main() {
    let args = Args::parse();
    if let Err(message) = run(&args) {
        eprintln!("simulate: {message}");
        std::process::exit(2);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let k = args.arms.len();
    let policies: Vec<Policy> = if args.policy.contains(&PolicyArg::All) {
        vec![
            Policy::EpsilonGreedy {
                epsilon: args.epsilon,
            },
            Policy::EpsilonDecay,
            Policy::Ucb1 { c: args.c },
            Policy::thompson(),
            Policy::top_two_thompson(),
            Policy::even_split(k),
        ]
    } else {
        args.policy
            .iter()
            .flat_map(|p| match p {
                PolicyArg::EpsilonGreedy | PolicyArg::All => vec![Policy::EpsilonGreedy {
                    epsilon: args.epsilon,
                }],
                PolicyArg::EpsilonDecay => vec![Policy::EpsilonDecay],
                PolicyArg::Ucb1 => vec![Policy::Ucb1 { c: args.c }],
                PolicyArg::Thompson => vec![Policy::thompson()],
                PolicyArg::TopTwoThompson => args
                    .leader
                    .iter()
                    .map(|&leader| Policy::TopTwoThompson {
                        alpha: 1.0,
                        beta: 1.0,
                        leader,
                    })
                    .collect(),
                PolicyArg::Split => vec![Policy::even_split(k)],
            })
            .collect()
    };
    let check_after = match args.check_after {
        CheckArg::Conversion => CheckAfter::Conversion,
        CheckArg::Visitor => CheckAfter::Visitor,
        CheckArg::Every => CheckAfter::Every(args.check_every),
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });

    if args.header {
        println!(
            "| arms | policy | rule | checked after | visitors | regret (mean ± SE) | Lai–Robbins | locked any | locked wrong | median visitors to lock |"
        );
        println!("|---|---|---|---|--:|--:|--:|--:|--:|--:|");
    }
    let arms_label = format!(
        "[{}]",
        args.arms
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for policy in &policies {
        for rule in &args.rule {
            let winner_rule = match rule {
                RuleArg::Manual => WinnerRule::Manual,
                RuleArg::TTest => WinnerRule::TTest,
                RuleArg::Sequential => WinnerRule::Sequential {
                    mixture_sd: args.mixture_sd,
                },
                RuleArg::Bayesian => WinnerRule::Bayesian {
                    probability: args.probability,
                    expected_loss: args.expected_loss,
                },
            };
            let flag = flag(args, policy.clone(), winner_rule.clone())?;
            let simulation = Simulation::new(&flag, args.arms.clone(), args.horizon)
                .with_checkpoints(args.checkpoints.iter().copied())
                .with_check_after(if winner_rule == WinnerRule::Manual {
                    CheckAfter::Never
                } else {
                    check_after
                });
            let started = Instant::now();
            let summary = simulation.run_many(args.replications, args.seed, threads);
            eprintln!(
                "{} / {}: {} experiments in {:.1} s",
                policy.label(),
                winner_rule.label(),
                summary.replications,
                started.elapsed().as_secs_f64()
            );
            for point in &summary.checkpoints {
                let bound = lai_robbins_bound(&args.arms, point.visitors)
                    .map(|b| format!("{b:.1}"))
                    .unwrap_or_else(|| "–".into());
                let (checked, locked, wrong, median) = if winner_rule == WinnerRule::Manual {
                    (
                        "–".to_string(),
                        "–".to_string(),
                        "–".to_string(),
                        "–".to_string(),
                    )
                } else {
                    (
                        match check_after {
                            CheckAfter::Every(n) => format!("every {n}"),
                            _ => format!("{:?}", args.check_after).to_lowercase(),
                        },
                        format!("{:.1}%", 100.0 * point.locked),
                        format!("{:.1}%", 100.0 * point.locked_wrong),
                        summary
                            .median_lock
                            .map_or_else(|| format!("> {}", args.horizon), |at| at.to_string()),
                    )
                };
                println!(
                    "| {arms_label} | {} | {} | {checked} | {} | {:.1} ± {:.1} | {bound} | {locked} | {wrong} | {median} |",
                    policy_label(policy),
                    winner_rule.label(),
                    point.visitors,
                    point.mean_regret,
                    point.regret_se,
                );
            }
        }
    }
    Ok(())
}

fn policy_label(policy: &Policy) -> String {
    match policy {
        Policy::EpsilonGreedy { epsilon } => format!("epsilon-greedy (ε = {epsilon})"),
        Policy::Ucb1 { c } => format!("UCB1 (c = {c})"),
        Policy::Split { .. } => "even split (A/B)".to_string(),
        Policy::TopTwoThompson { leader, .. } => format!("top-two Thompson (β = {leader})"),
        other => other.label().to_string(),
    }
}

fn flag(args: &Args, policy: Policy, rule: WinnerRule) -> Result<Flag, String> {
    let definition = FlagDefinition {
        significance_level: args.significance,
        min_views: args.min_views,
        ..FlagDefinition::new("simulated")
            .with_arms((0..args.arms.len()).map(|i| format!("arm-{i}")))
            .with_policy(policy)
            .with_winner_rule(rule)
    };
    definition.validate().map_err(|e| e.to_string())
}
