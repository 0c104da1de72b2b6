//! Switches and samples outside a request: django-waffle's `switch_is_active` and
//! `sample_is_active`, for code that has no visitor (a background job, a health check, a
//! scheduled task).
//!
//! A [`FlagsHandle`] is in Rocket's managed state once the site has ignited. It reads the
//! flags this instance holds in memory, never the database, so it answers at once and
//! follows a change made in the admin, the API or another instance at this instance's
//! next flush.
//!
//! ```no_run
//! use bandits::{Bandits, FlagsHandle};
//! use rocket::State;
//!
//! #[rocket::get("/healthz")]
//! fn health(flags: &State<FlagsHandle>) -> &'static str {
//!     if flags.is_active("maintenance-mode") { "maintenance" } else { "ok" }
//! }
//!
//! # async fn run() -> Result<(), rocket::Error> {
//! let rocket = rocket::build()
//!     .attach(Bandits::fairing())
//!     .mount("/", rocket::routes![health])
//!     .ignite()
//!     .await?;
//! // A clone for a background job, which outlives no request.
//! let flags = rocket.state::<FlagsHandle>().cloned().expect("the plugin ignited");
//! tokio::spawn(async move {
//!     if flags.sample("resend-receipts") {
//!         // ...this time, for the flag's percent of runs
//!     }
//! });
//! rocket.launch().await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use rand::Rng;

use crate::clock::now_ms;
use crate::engine::FlagDefinition;
use crate::runtime::Runtime;

/// This instance's flags in memory, for code outside a request. Cheap to clone, `Send` and
/// `Sync`; get it from Rocket's managed state (`&State<FlagsHandle>` in a route, or
/// `rocket.state::<FlagsHandle>()` after ignition).
#[derive(Clone)]
pub struct FlagsHandle {
    runtime: Arc<Runtime>,
}

impl FlagsHandle {
    pub(crate) fn new(runtime: Arc<Runtime>) -> FlagsHandle {
        FlagsHandle { runtime }
    }

    /// Whether switch `name` is on: its `everyone` is `true` (every visitor sees the first
    /// arm after the control). False when `everyone` is `false`, when it is unset (the flag
    /// is an experiment, decided per visitor, which needs a request), and for a flag that
    /// does not exist (logged once, as a read in a request is).
    ///
    /// In the site's own tests, a flag pinned to an arm ([`testing`](crate::testing)) is
    /// on when that arm is not its control.
    pub fn is_active(&self, name: &str) -> bool {
        let pinned = self.runtime.pinned();
        self.read(name, |definition| {
            match pinned.as_deref().and_then(|pinned| pinned.arm(name)) {
                Some(arm) => definition
                    .arms
                    .iter()
                    .position(|candidate| candidate.name == arm)
                    .is_some_and(|index| index > 0),
                None => definition.targeting.everyone == Some(true),
            }
        })
        .unwrap_or(false)
    }

    /// waffle's sample: true for the flag's share of calls (its `percent`, or its rollout's
    /// share at this moment), drawn afresh on every call, whoever calls. False for a flag
    /// without a percent or a rollout, and for a flag that does not exist.
    pub fn sample(&self, name: &str) -> bool {
        self.sample_with(name, &mut rand::rng())
    }

    /// [`sample`](Self::sample) with the random numbers of `rng` (a seeded one in tests).
    ///
    /// In the site's own tests, a sample fixed with
    /// [`Overrides::sample`](crate::testing::Overrides::sample) answers as fixed, drawing
    /// nothing.
    pub fn sample_with<R: Rng + ?Sized>(&self, name: &str, rng: &mut R) -> bool {
        let fixed = self.runtime.pinned().and_then(|pinned| pinned.sample(name));
        self.read(name, |definition| match fixed {
            Some(on) => on,
            None => match definition.targeting.share_at(now_ms()) {
                Some(share) if share > 0.0 => rng.random::<f64>() * 100.0 < share,
                _ => false,
            },
        })
        .unwrap_or(false)
    }

    /// Fires trigger `name` (declared in `bandits.triggers` and enabled, by an admin's
    /// switch or else by the configuration) for the visitor whose id is `visitor_id`
    /// ([`Flags::visitor_id`](crate::Flags::visitor_id)), from code outside a request: a
    /// payment confirmed by a webhook, say. Resolved at the next flush against the
    /// visitor's stored referral, as a trigger fired in a request is against their cookie:
    /// it completes once per visitor and trigger, if the referral is within the window
    /// when fired and its partner is active and subscribed. Returns whether it was taken
    /// (false for an unknown or disabled trigger or a malformed id).
    ///
    /// ```no_run
    /// # fn example(flags: bandits::FlagsHandle, visitor_id: &str) {
    /// flags.fire(visitor_id, "Order placed");
    /// # }
    /// ```
    pub fn fire(&self, visitor_id: &str, name: &str) -> bool {
        let config = &self.runtime.config;
        let live = self.runtime.tracker.live();
        let enabled = config
            .triggers()
            .get(name)
            .is_some_and(|trigger| live.trigger_enabled(trigger));
        if !enabled || !crate::engine::visitor::VisitorState::is_id(visitor_id) {
            return false;
        }
        self.runtime.tracker.fire(crate::store::Firing {
            visitor: visitor_id.to_string(),
            trigger: name.to_string(),
            referral: None,
            at: now_ms(),
            window_ms: config.partners().rules().window_ms,
            user: None,
        })
    }

    /// The current definition of flag `name`, as this instance holds it; `None` for a flag
    /// that does not exist.
    pub fn definition(&self, name: &str) -> Option<FlagDefinition> {
        self.read(name, FlagDefinition::clone)
    }

    fn read<T>(&self, name: &str, read: impl FnOnce(&FlagDefinition) -> T) -> Option<T> {
        let live = self.runtime.tracker.live();
        match live.flag(name) {
            Some(stored) => Some(read(stored.flag.definition())),
            None => {
                self.runtime.warn_unknown(name);
                None
            }
        }
    }
}
