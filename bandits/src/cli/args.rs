//! What the command line accepts: `bandits [--database URL] flags <command> ...`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `bandits`: the site's flags from a shell or a deploy script.
#[derive(Debug, Parser)]
#[command(
    name = "bandits",
    version,
    about = "Manage rocket-bandits flags in the site's database",
    after_help = "The database is --database, else databases.bandits.url from Rocket.toml \
                  (in the working directory, or ROCKET_CONFIG) or ROCKET_DATABASES, else \
                  sqlite://bandits.sqlite?mode=rwc. Running sites see a change at their next \
                  flush.\n\nExit status: 0 done, 1 refused (invalid input, no such flag, \
                  deletion not confirmed), 2 wrong usage, 3 database unreachable or failing."
)]
pub(crate) struct Cli {
    /// The database URL (sqlite://... or postgres://...), instead of the site's.
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Flags: list, show, create, set, reset, delete, export, import.
    #[command(subcommand)]
    Flags(FlagsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum FlagsCommand {
    /// Every flag with its switch, percent, testing mode, policy and counts.
    List {
        /// The API's JSON (`GET /bandits/api/flags`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One flag: its definition, its arms' counts, rates and intervals, its winner.
    Show {
        /// The flag's name.
        name: String,
        /// The API's JSON (`GET /bandits/api/flags/NAME`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Creates a flag: an experiment, a switch or a percentage flag.
    Create(Box<Create>),
    /// Changes who sees a flag, keeping the rest of its definition and its counts.
    Set(Set),
    /// Starts a flag's experiment afresh: counts to zero, no winner, visitors assigned again.
    Reset {
        /// The flag's name.
        name: String,
    },
    /// Deletes a flag with its counts and activity log; asks first, unless --yes.
    Delete {
        /// The flag's name.
        name: String,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Writes flag definitions as JSON: every flag (an array), or one (the object that
    /// `POST /bandits/api/flags` takes).
    Export {
        /// Only this flag.
        name: Option<String>,
    },
    /// Creates or updates the flags of a file written by `flags export`, all or none;
    /// counts are never changed.
    Import {
        /// The file, or `-` for the standard input.
        file: PathBuf,
    },
}

/// `flags create NAME ...`: each option is the field of the JSON definition that the API
/// takes; what is left out takes its default.
#[derive(Debug, Args)]
pub(crate) struct Create {
    /// The flag's name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The arms, comma separated; the first is the control [default: off,on].
    #[arg(long, value_delimiter = ',', value_name = "ARM,ARM,...")]
    pub arms: Option<Vec<String>>,
    /// thompson[:ALPHA,BETA], top_two_thompson[:ALPHA,BETA,LEADER],
    /// epsilon_greedy[:EPSILON], epsilon_decay, ucb1[:C] or split:WEIGHT,WEIGHT,...
    /// [default: epsilon_greedy:0.1].
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<String>,
    /// waffle's percentage flag: this percent of visitors (0 to 100) see `on`, no bandit.
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub percentage: Option<String>,
    /// The page where the flag is shown (source path).
    #[arg(long, value_name = "PATH")]
    pub source: Option<String>,
    /// The goal page (target path).
    #[arg(long, value_name = "PATH")]
    pub target: Option<String>,
    /// The goal event fired from code.
    #[arg(long, value_name = "EVENT")]
    pub goal_event: Option<String>,
    /// t_test, sequential[:MIXTURE_SD], bayesian[:PROBABILITY,EXPECTED_LOSS] or manual
    /// [default: t_test].
    #[arg(long, value_name = "RULE")]
    pub winner_rule: Option<String>,
    /// Exposures before the winner rule is consulted [default: 100].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub min_views: Option<String>,
    /// The winner rule's significance level, in (0, 1) [default: 0.05].
    #[arg(long, value_name = "LEVEL", allow_hyphen_values = true)]
    pub significance_level: Option<String>,
    /// Free text for the team.
    #[arg(long)]
    pub note: Option<String>,
    /// Whether the browser may read the flag (flags.json, flags.js, OpenFeature) [default: off].
    #[arg(long, value_enum)]
    pub client_side: Option<Switch>,
    #[command(flatten)]
    pub targeting: Targeting,
}

/// `flags set NAME ...`: at least one of the options.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("change")
        .args(["everyone", "percent", "testing", "client_side"])
        .required(true)
        .multiple(true)
))]
pub(crate) struct Set {
    /// The flag's name.
    pub name: String,
    /// Whether the browser may read the flag (flags.json, flags.js, OpenFeature).
    #[arg(long, value_enum)]
    pub client_side: Option<Switch>,
    #[command(flatten)]
    pub targeting: Targeting,
}

/// Who sees the flag, as in the JSON definition's `targeting`.
#[derive(Debug, Args, Default)]
pub(crate) struct Targeting {
    /// A switch for every visitor, uncounted, whatever the other rules say.
    #[arg(long, value_enum)]
    pub everyone: Option<Everyone>,
    /// The share of visitors (0 to 100) who enter, or `unset`.
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub percent: Option<String>,
    /// Testing mode: `?bandits_<flag>=<arm>` picks the arm, uncounted.
    #[arg(long, value_enum)]
    pub testing: Option<Switch>,
}

/// `--everyone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Everyone {
    /// Everyone sees the first arm after the control (a launch switch).
    On,
    /// Everyone sees the control (a kill switch).
    Off,
    /// The targeting rules and the bandit decide.
    Unset,
}

/// The definition's `targeting.everyone`.
impl From<Everyone> for Option<bool> {
    fn from(everyone: Everyone) -> Option<bool> {
        match everyone {
            Everyone::On => Some(true),
            Everyone::Off => Some(false),
            Everyone::Unset => None,
        }
    }
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}
