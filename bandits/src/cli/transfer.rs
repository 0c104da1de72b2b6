//! `flags export` and `flags import`: experiments copied between environments as the JSON
//! the API takes, definitions only; the counts stay where they were made.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::console::Console;
use super::failure::Failure;
use super::output::print_json;
use crate::clock::now_ms;
use crate::engine::{FieldError, Flag, FlagDefinition, Rule};
use crate::input::parse_flag;
use crate::store::{Imported, Store};

/// `flags export [NAME]`: every flag's definition as an array, or flag `name`'s alone as
/// the object that `POST /bandits/api/flags` takes. [`import`] reads either.
pub(crate) async fn export(
    store: &Store,
    name: Option<&str>,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    match name {
        Some(name) => {
            let stored = store.flag(name).await?;
            print_json(console.stdout, stored.flag.definition())
        }
        None => {
            let snapshot = store.snapshot().await?;
            let definitions: Vec<&FlagDefinition> = snapshot
                .flags
                .iter()
                .map(|stored| stored.flag.definition())
                .collect();
            print_json(console.stdout, &definitions)
        }
    }
}

/// `flags import FILE`: every definition of the file read and checked first, as the API
/// checks a new flag; if one is refused, nothing is written. Then all are created or
/// updated in one transaction ([`Store::import_flags`]): counts never change, and a
/// definition that leaves out an arm of the stored flag refuses the whole import.
pub(crate) async fn import(
    store: &Store,
    file: &Path,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    let source = file.display().to_string();
    let mut text = String::new();
    let read = if source == "-" {
        console.stdin.read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|mut file| file.read_to_string(&mut text))
    };
    read.map_err(|error| Failure::Stopped(format!("cannot read {source}: {error}")))?;
    let flags = definitions(&source, &text)?;
    let done = store.import_flags(&flags, now_ms()).await?;
    for (flag, imported) in flags.iter().zip(&done) {
        let what = match imported {
            Imported::Created => "created",
            Imported::Updated => "updated",
            Imported::Unchanged => "unchanged",
        };
        writeln!(console.stdout, "{what} {}", flag.name())?;
    }
    let count = |kind: Imported| done.iter().filter(|imported| **imported == kind).count();
    writeln!(
        console.stdout,
        "imported {} flags: {} created, {} updated, {} unchanged; running sites see them \
         at their next flush",
        done.len(),
        count(Imported::Created),
        count(Imported::Updated),
        count(Imported::Unchanged)
    )?;
    Ok(())
}

/// The flags of an export's text: an array of definitions, or one. Every problem of every
/// definition is reported, each with its flag's name (or its place in the file).
fn definitions(source: &str, text: &str) -> Result<Vec<Flag>, Failure> {
    let json: Value = serde_json::from_str(text).map_err(|error| {
        Failure::field(
            source,
            Rule::NotJson {
                message: error.to_string(),
            },
        )
    })?;
    let values = match json {
        Value::Array(values) => values,
        one => vec![one],
    };
    let mut flags: Vec<Flag> = Vec::with_capacity(values.len());
    let mut refused = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let label = match value.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => format!("{source}: definition {}", i + 1),
        };
        match parse_flag(value, None) {
            Ok(flag) if flags.iter().any(|other| other.name() == flag.name()) => {
                refused.push(Failure::of_flag(
                    label,
                    vec![FieldError::new(
                        "name",
                        Rule::Unreadable {
                            message: "another definition of this file has this name".into(),
                        },
                    )],
                ));
            }
            Ok(flag) => flags.push(flag),
            Err(errors) => refused.push(Failure::of_flag(label, errors)),
        }
    }
    if refused.is_empty() {
        Ok(flags)
    } else {
        Err(Failure::Several(refused))
    }
}
