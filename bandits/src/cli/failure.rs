//! Why a command did not do what it was asked, the message it prints, and its exit status.

use std::process::ExitCode;

use crate::engine::{FieldError, Rule};
use crate::store::StoreError;

/// The exit status of refused input, an unknown flag, or a deletion not confirmed.
pub const REFUSED: u8 = 1;
/// The exit status of a command line that does not parse (clap's own).
pub const USAGE: u8 = 2;
/// The exit status when the database is unreachable or fails.
pub const DATABASE: u8 = 3;

/// Why a command stopped. Nothing was written in any case.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Input refused, every problem naming its field; `flag` says which flag of a file.
    Refused {
        flag: Option<String>,
        errors: Vec<FieldError>,
    },
    /// Something else refused: no such flag, a deletion not confirmed.
    Stopped(String),
    /// A wrong command line or configuration that clap cannot see: a `Rocket.toml` that
    /// does not parse, a database that is neither SQLite nor PostgreSQL.
    Usage(String),
    /// The database, unreachable or failing; the message never holds a password.
    Database(String),
    /// Several of the above (every refused definition of an import).
    Several(Vec<Failure>),
}

impl Failure {
    /// `field` breaks `rule`.
    pub fn field(field: impl Into<String>, rule: Rule) -> Failure {
        Failure::Refused {
            flag: None,
            errors: vec![FieldError::new(field, rule)],
        }
    }

    /// These problems, for flag `flag` of several.
    pub fn of_flag(flag: impl Into<String>, errors: Vec<FieldError>) -> Failure {
        Failure::Refused {
            flag: Some(flag.into()),
            errors,
        }
    }
}

/// The exit status of a command that stopped.
impl From<&Failure> for ExitCode {
    fn from(failure: &Failure) -> ExitCode {
        ExitCode::from(status(failure))
    }
}

fn status(failure: &Failure) -> u8 {
    match failure {
        Failure::Refused { .. } | Failure::Stopped(_) => REFUSED,
        Failure::Usage(_) => USAGE,
        Failure::Database(_) => DATABASE,
        Failure::Several(failures) => failures.iter().map(status).max().unwrap_or(REFUSED),
    }
}

/// What to print on the standard error for `failure`: one `error: ...` line per problem.
pub(crate) fn messages(failure: &Failure) -> Vec<String> {
    match failure {
        Failure::Refused { flag, errors } => errors
            .iter()
            .map(|error| match flag {
                Some(flag) => format!("error: {flag}: {error}"),
                None => format!("error: {error}"),
            })
            .collect(),
        Failure::Stopped(message) | Failure::Usage(message) | Failure::Database(message) => {
            vec![format!("error: {message}")]
        }
        Failure::Several(failures) => failures.iter().flat_map(messages).collect(),
    }
}

impl From<Vec<FieldError>> for Failure {
    fn from(errors: Vec<FieldError>) -> Failure {
        Failure::Refused { flag: None, errors }
    }
}

/// What the store refused, in the words of the API and the admin. A store error never
/// holds the database's URL, so it cannot hold its password.
impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        match error {
            StoreError::NotFound(name) => Failure::Stopped(format!("no flag named {name:?}")),
            StoreError::AlreadyExists(name) => Failure::field("name", Rule::Taken { name }),
            StoreError::UnknownArm { arm, .. } => {
                Failure::field("arm", Rule::UnknownArm { name: arm })
            }
            StoreError::ArmLeftOut { flag, arm } => Failure::of_flag(
                flag,
                vec![FieldError::new("arms", Rule::ArmLeftOut { name: arm })],
            ),
            other => Failure::Database(other.to_string()),
        }
    }
}

/// Output that could not be written (a closed pipe): the command's work is done or not
/// started, but its report is lost, so the status says so.
impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Failure {
        Failure::Stopped(format!("cannot write the output: {error}"))
    }
}
