//! Fills a database with two weeks of a simulated headline experiment, to see the admin
//! with data (and to take its screenshots):
//!
//! ```sh
//! cargo run -p bandits --example seed_demo -- sqlite://demo.sqlite?mode=rwc
//! ROCKET_DATABASES='{bandits={url="sqlite://demo.sqlite?mode=rwc"}}' cargo run -p example-site
//! ```
//!
//! Visitors arrive over 14 days; each is given an arm by the flag's own policy on the
//! totals so far (the same code the site runs), converts with the arm's true rate, and is
//! written to the store with its time, as the site's flushes would.

use bandits::engine::{ArmTotals, FlagDefinition, Policy, WinnerRule};
use bandits::store::{Batch, Event, EventKind, Increment, Store};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite://demo.sqlite?mode=rwc".to_string());
    let store = Store::connect(&url).await?;
    store.migrate().await?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let start = now - 14 * DAY_MS;
    let experiments = [
        (
            FlagDefinition {
                note: "Which headline makes visitors open the contact page?".into(),
                ..FlagDefinition::new("headline-flag")
                    .with_policy(Policy::thompson())
                    .with_winner_rule(WinnerRule::sequential())
                    .with_paths("/", "/contact/")
            },
            vec![0.040, 0.052],
            6_000,
        ),
        (
            FlagDefinition::new("checkout-flow")
                .with_arms(["classic", "one-page", "express"])
                .with_policy(Policy::epsilon_greedy())
                .with_paths("/checkout", "/checkout/done"),
            vec![0.11, 0.12, 0.095],
            3_000,
        ),
    ];
    let mut rng = SmallRng::seed_from_u64(2026);
    for (definition, rates, visitors) in experiments {
        let flag = definition.validate()?;
        let name = flag.name().to_string();
        let stored = match store.create_flag(&flag, start).await {
            Ok(stored) => stored,
            Err(_) => {
                store.delete_flag(&name).await?;
                store.create_flag(&flag, start).await?
            }
        };
        let mut totals = vec![ArmTotals::default(); flag.arms().len()];
        let mut batch = Batch::default();
        for visitor in 0..visitors {
            let at = start + (14 * DAY_MS) * visitor / visitors;
            let arm = flag.choose_arm(&totals, &mut rng);
            let converted = rng.random::<f64>() < rates[arm];
            totals[arm].record(converted);
            let arm_name = flag.arms()[arm].name.clone();
            let id = format!("{:032x}", rng.random::<u128>());
            let event = |kind, at, path: &str| Event {
                at,
                kind,
                visitor: id.clone(),
                flag: name.clone(),
                epoch: stored.epoch,
                arm: arm_name.clone(),
                path: path.to_string(),
                partner: None,
                propensity: None,
            };
            batch.events.push(event(
                EventKind::Exposure,
                at,
                flag.source_path().unwrap_or("/"),
            ));
            if converted {
                batch.events.push(event(
                    EventKind::Conversion,
                    at + 60_000,
                    flag.target_path().unwrap_or("/"),
                ));
            }
            if batch.events.len() >= 2_000 {
                store.flush(&std::mem::take(&mut batch), now).await?;
            }
        }
        batch.increments = flag
            .arms()
            .iter()
            .zip(&totals)
            .map(|(arm, t)| Increment::new(&stored, &arm.name, t.views, t.conversions))
            .collect();
        store.flush(&batch, now).await?;
        println!("{name}: {visitors} visitors over 14 days");
    }
    Ok(())
}
