//! The `flags` commands that read or change one flag, or list them: each through the
//! store's own operations, which raise the configuration version that running sites
//! compare at every flush.

use serde_json::{json, Map, Value};

use super::args::{Create, Set, Switch};
use super::console::Console;
use super::definition::{create_body, set_targeting};
use super::failure::Failure;
use super::output::{flag_text, flags_table, print_json, summary};
use crate::api::flag_json;
use crate::clock::now_ms;
use crate::input::parse_flag;
use crate::store::Store;

/// Said after every change, so a deploy log shows when it takes effect.
const SEEN_AT_NEXT_FLUSH: &str = "running sites see it at their next flush";

/// `flags list`: a table, or the API's JSON. An empty list also says, on the standard
/// error, which database was read (a wrong `--database` shows at once).
pub(crate) async fn list(
    store: &Store,
    shown_url: &str,
    json: bool,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    let snapshot = store.snapshot().await?;
    if json {
        let flags: Vec<Value> = snapshot.flags.iter().map(flag_json).collect();
        print_json(console.stdout, &json!({ "flags": flags }))?;
    } else {
        console
            .stdout
            .write_all(flags_table(&snapshot.flags).as_bytes())?;
    }
    if snapshot.flags.is_empty() {
        writeln!(console.stderr, "no flags in {shown_url}")?;
    }
    Ok(())
}

/// `flags show NAME`: its fields and its arms' numbers, or the API's JSON.
pub(crate) async fn show(
    store: &Store,
    name: &str,
    json: bool,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    let stored = store.flag(name).await?;
    if json {
        print_json(console.stdout, &flag_json(&stored))?;
    } else {
        console.stdout.write_all(flag_text(&stored).as_bytes())?;
    }
    Ok(())
}

/// `flags create NAME ...`: the options read as the API reads a new flag's body.
pub(crate) async fn create(
    store: &Store,
    create: &Create,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    let flag = parse_flag(create_body(create)?, None)?;
    let stored = store.create_flag(&flag, now_ms()).await?;
    writeln!(
        console.stdout,
        "created {}: {}; {SEEN_AT_NEXT_FLUSH}",
        stored.flag.name(),
        summary(&stored.flag)
    )?;
    Ok(())
}

/// `flags set NAME ...`: the stored definition with the options applied, checked as the
/// API checks a replacement, and saved unless nothing changed. The counts are kept.
pub(crate) async fn set(
    store: &Store,
    set: &Set,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    let before = store.flag(&set.name).await?;
    let mut body = serde_json::to_value(before.flag.definition())
        .map_err(|error| Failure::Stopped(format!("cannot read the definition: {error}")))?;
    let mut targeting = match body.get_mut("targeting").map(Value::take) {
        Some(Value::Object(targeting)) => targeting,
        _ => Map::new(),
    };
    set_targeting(&mut targeting, &set.targeting).map_err(|error| vec![error])?;
    if let Some(body) = body.as_object_mut() {
        body.insert("targeting".into(), Value::Object(targeting));
        if let Some(client_side) = set.client_side {
            body.insert("client_side".into(), Value::Bool(client_side == Switch::On));
        }
    }
    let flag = parse_flag(body, Some(&set.name))?;
    if flag.definition() == before.flag.definition() {
        writeln!(
            console.stdout,
            "{}: unchanged: {}",
            set.name,
            summary(&flag)
        )?;
        return Ok(());
    }
    let stored = store.update_flag(&flag, now_ms()).await?;
    writeln!(
        console.stdout,
        "{}: {}; {SEEN_AT_NEXT_FLUSH}",
        set.name,
        summary(&stored.flag)
    )?;
    Ok(())
}

/// `flags reset NAME`.
pub(crate) async fn reset(
    store: &Store,
    name: &str,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    let stored = store.reset_flag(name, now_ms()).await?;
    writeln!(
        console.stdout,
        "{name}: reset to epoch {}: counts at zero, no winner, every visitor assigned \
         again; {SEEN_AT_NEXT_FLUSH}",
        stored.epoch
    )?;
    Ok(())
}

/// `flags delete NAME`: asks on the standard input unless `yes`; only `y` or `yes`
/// deletes, and no answer (no terminal, an empty line) keeps the flag.
pub(crate) async fn delete(
    store: &Store,
    name: &str,
    yes: bool,
    console: &mut Console<'_>,
) -> Result<(), Failure> {
    let stored = store.flag(name).await?;
    if !yes {
        let views: u64 = stored.totals.iter().map(|totals| totals.views).sum();
        write!(
            console.stderr,
            "Delete flag {name} and its counts ({views} views)? [y/N] "
        )?;
        console.stderr.flush()?;
        let mut answer = String::new();
        // An unreadable input is no answer.
        let _ = console.stdin.read_line(&mut answer);
        let answer = answer.trim().to_ascii_lowercase();
        if answer != "y" && answer != "yes" {
            writeln!(console.stderr)?;
            return Err(Failure::Stopped(format!(
                "flag {name} not deleted: answer y, or pass --yes"
            )));
        }
    }
    store.delete_flag(name).await?;
    writeln!(
        console.stdout,
        "deleted {name} with its counts and activity log; {SEEN_AT_NEXT_FLUSH}"
    )?;
    Ok(())
}
