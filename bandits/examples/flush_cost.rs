//! What a flush costs the database, in the two forms the store takes a batch in.
//!
//! ```text
//! cargo run --release -p bandits --example flush_cost -- --url sqlite:///tmp/f.sqlite?mode=rwc
//! cargo run --release -p bandits --example flush_cost -- --url postgres://postgres@127.0.0.1/f
//! ```
//!
//! The database must be empty (each form gets its flag; the tables are created). Each
//! round flushes the views of `--visitors` new visitors of one flag, then the conversions
//! of a tenth of them:
//!
//! - **counted**: the tracker's form. Every count carries its visitor (`Batch::counted`),
//!   so the database counts a visitor once per flag, epoch and kind: one row of
//!   `bandits_counted` per count, checked and written in the flush, and its log entry.
//! - **aggregated**: counts summed per arm (`Batch::increments`) beside the log entries
//!   (`Batch::events`), which counts a repeat again: what the tracker sent before the
//!   database checked repeats.
//!
//! The two forms take turns round by round. Prints, per form, the median and slowest time
//! of the views flushes and of the conversions flushes. `docs/benchmarks.md` records runs.

use std::time::{Duration, Instant};

use bandits::engine::FlagDefinition;
use bandits::store::{Batch, Event, EventKind, Increment, Store};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Time rocket-bandits flushes in the counted and the aggregated form")]
struct Args {
    /// The database: an empty SQLite file or PostgreSQL database.
    #[arg(long)]
    url: String,
    /// New visitors per round.
    #[arg(long, default_value_t = 5_000)]
    visitors: usize,
    /// Rounds per form.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

#[derive(Clone, Copy, Debug)]
enum Form {
    Counted,
    Aggregated,
}

fn event(kind: EventKind, flag: &str, visitor: String, arm: &str, at: i64) -> Event {
    Event {
        at,
        kind,
        visitor,
        flag: flag.to_string(),
        epoch: 0,
        arm: arm.to_string(),
        path: "/".to_string(),
        partner: None,
        propensity: None,
    }
}

/// `events` as a batch of `form`.
fn batch(form: Form, events: Vec<Event>) -> Batch {
    match form {
        Form::Counted => Batch {
            counted: events,
            ..Batch::default()
        },
        Form::Aggregated => {
            let mut increments: Vec<Increment> = Vec::new();
            for event in &events {
                let found = increments.iter_mut().find(|i| i.arm == event.arm);
                let increment = match found {
                    Some(increment) => increment,
                    None => {
                        increments.push(Increment {
                            flag: event.flag.clone(),
                            epoch: event.epoch,
                            arm: event.arm.clone(),
                            views: 0,
                            conversions: 0,
                            partner: None,
                        });
                        increments.last_mut().expect("just pushed")
                    }
                };
                match event.kind {
                    EventKind::Exposure => increment.views += 1,
                    EventKind::Conversion => increment.conversions += 1,
                }
            }
            Batch {
                increments,
                events,
                ..Batch::default()
            }
        }
    }
}

/// A round's flushes of one form: the views of `visitors` new visitors, then the
/// conversions of a tenth of them.
fn round_batches(form: Form, flag: &str, round: usize, visitors: usize) -> [Batch; 2] {
    let visitor = |i: usize| format!("{round:08x}{i:024x}");
    let arm = |i: usize| if i % 2 == 0 { "off" } else { "on" };
    let views = (0..visitors)
        .map(|i| event(EventKind::Exposure, flag, visitor(i), arm(i), 1))
        .collect();
    let conversions = (0..visitors)
        .step_by(10)
        .map(|i| event(EventKind::Conversion, flag, visitor(i), arm(i), 2))
        .collect();
    [batch(form, views), batch(form, conversions)]
}

fn milliseconds(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(times[times.len() / 2]), ms(times[times.len() - 1]))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let store = Store::connect(&args.url).await?;
    store.migrate().await?;
    let forms = [(Form::Counted, "counted"), (Form::Aggregated, "aggregated")];
    for (_, name) in forms {
        let flag = FlagDefinition::new(format!("flush-{name}")).validate()?;
        store.create_flag(&flag, 0).await?;
    }
    // Per form: the views flushes' times, the conversions flushes' times.
    let mut times = vec![(Vec::new(), Vec::new()); forms.len()];
    // The forms take turns, round by round, so both meet the tables at the same size.
    for round in 0..args.rounds.max(1) {
        for (f, (form, name)) in forms.iter().enumerate() {
            let [views, conversions] =
                round_batches(*form, &format!("flush-{name}"), round, args.visitors);
            let start = Instant::now();
            store.flush(&views, 0).await?;
            times[f].0.push(start.elapsed());
            let start = Instant::now();
            store.flush(&conversions, 0).await?;
            times[f].1.push(start.elapsed());
        }
    }
    println!(
        "| form | flush of {} views: median, slowest | flush of {} conversions: median, slowest |",
        args.visitors,
        args.visitors.div_ceil(10)
    );
    println!("|---|---|---|");
    for ((_, name), (views, conversions)) in forms.iter().zip(&mut times) {
        let (views_median, views_slowest) = milliseconds(views);
        let (conversions_median, conversions_slowest) = milliseconds(conversions);
        println!(
            "| {name} | {views_median:.1} ms, {views_slowest:.1} ms | \
             {conversions_median:.1} ms, {conversions_slowest:.1} ms |"
        );
    }
    Ok(())
}
