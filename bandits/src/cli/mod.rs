//! The `bandits` command line (feature `cli`): the site's flags from a shell or a deploy
//! script, as django-waffle's `manage.py waffle_flag` does for a Django site.
//!
//! ```text
//! cargo install --path bandits --features cli   # from a checkout of rocket-bandits
//! bandits flags list                          # a table; --json for the API's JSON
//! bandits flags show headline-flag            # definition, counts, rates, intervals, winner
//! bandits flags create headline-flag --arms base,bold --policy thompson --source / --target /contact/
//! bandits flags create new-checkout --percentage 10
//! bandits flags set new-checkout --everyone on          # or off, or unset
//! bandits flags set new-checkout --percent 25 --testing on
//! bandits flags reset headline-flag           # counts to zero, no winner
//! bandits flags delete headline-flag --yes    # asks without --yes
//! bandits flags export > flags.json           # definitions only, as the API takes them
//! bandits --database postgres://app@staging-db/app flags import flags.json
//! ```
//!
//! **Which database.** `--database URL`, else the site's own `databases.bandits.url`, read
//! as the site reads it through Rocket's configuration: `Rocket.toml` in the working
//! directory (or `ROCKET_CONFIG`), the profile of `ROCKET_PROFILE` (Rocket's default
//! otherwise: `debug` for a debug build, `release` for `cargo install`'s build), and `ROCKET_*`
//! variables such as `ROCKET_DATABASES='{bandits={url="postgres://..."}}'`; else the
//! site's default, `bandits.sqlite` in the working directory. The tables are created or
//! upgraded as the site does at start. A password in the URL is never printed.
//!
//! **When a change takes effect.** Every change raises the database's configuration
//! version, which running sites compare at each flush: they see it within one
//! `flush_interval_ms` (500 ms by default), with nothing to restart.
//!
//! **Wrong input.** A definition is read by the same code as the API's bodies and the
//! admin's forms, so it is refused in the same words, each naming its field
//! (`error: targeting.percent: must be in [0, 100], got 140`), and nothing is written.
//! Exit status: 0 done, 1 refused (invalid input, no such flag, deletion not
//! confirmed), 2 wrong usage, 3 database unreachable or failing.
//!
//! **Copying experiments.** `flags export` writes every definition (or one, with a name)
//! as the API's JSON; `flags import FILE` (or `-`) checks every definition of the file
//! first, then creates or updates them all in one transaction, or writes nothing. Counts
//! never move: an updated flag keeps its epoch and its counts, a new arm starts at zero,
//! and a definition that leaves out an arm of the stored flag (which would delete that
//! arm's counts) refuses the whole import.
//!
//! The same in code, for a tool of your own:
//!
//! ```
//! use bandits::cli::{run, Console};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let url = format!("sqlite://{}?mode=rwc", dir.path().join("bandits.sqlite").display());
//! let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
//! let mut console = Console {
//!     stdin: &mut std::io::empty(),
//!     stdout: &mut stdout,
//!     stderr: &mut stderr,
//! };
//! let args = ["bandits", "--database", url.as_str(), "flags", "create", "new-checkout", "--percentage", "140"];
//! let _status = run(args, &mut console).await;
//! let errors = String::from_utf8(stderr)?;
//! assert_eq!(errors, "error: targeting.percent: must be in [0, 100], got 140\n");
//! # Ok(())
//! # }
//! ```

mod args;
mod commands;
mod console;
mod database;
mod definition;
mod failure;
mod output;
mod transfer;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, FlagsCommand};
pub use console::Console;
use failure::Failure;
pub use failure::{DATABASE, REFUSED, USAGE};

/// Runs the command line `args` (the program's name first, as in `std::env::args_os`)
/// on `console`, and returns the exit status: 0 done, [`REFUSED`], [`USAGE`] or
/// [`DATABASE`]. Messages go to `console.stderr`, one `error: ...` line per problem.
pub async fn run<I, T>(args: I, console: &mut Console<'_>) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are "errors" that go to the standard output.
            let out = if error.use_stderr() {
                &mut console.stderr
            } else {
                &mut console.stdout
            };
            let _ = write!(out, "{}", error.render());
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(USAGE));
        }
    };
    match execute(cli, console).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            for line in failure::messages(&failure) {
                let _ = writeln!(console.stderr, "{line}");
            }
            ExitCode::from(&failure)
        }
    }
}

async fn execute(cli: Cli, console: &mut Console<'_>) -> Result<(), Failure> {
    let url = database::database_url(cli.database, &rocket::Config::figment())?;
    let store = database::open(&url).await?;
    let Command::Flags(command) = cli.command;
    let done = flags(command, &store, &url, console).await;
    // Waits for the connections to end cleanly (SQLite writes its journal back).
    store.pool().close().await;
    done
}

async fn flags(
    command: FlagsCommand,
    store: &crate::store::Store,
    url: &str,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    match command {
        FlagsCommand::List { json } => {
            let shown = crate::database::redacted(url);
            commands::list(store, &shown, json, console).await
        }
        FlagsCommand::Show { name, json } => commands::show(store, &name, json, console).await,
        FlagsCommand::Create(create) => commands::create(store, &create, console).await,
        FlagsCommand::Set(set) => commands::set(store, &set, console).await,
        FlagsCommand::Reset { name } => commands::reset(store, &name, console).await,
        FlagsCommand::Delete { name, yes } => commands::delete(store, &name, yes, console).await,
        FlagsCommand::Export { name } => transfer::export(store, name.as_deref(), console).await,
        FlagsCommand::Import { file } => transfer::import(store, &file, console).await,
    }
}
