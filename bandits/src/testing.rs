//! Overrides for a site's own tests: django-waffle's `override_flag`, `override_switch`
//! and `override_sample`, for tests that drive the site through `rocket::local`.
//!
//! | django-waffle | here |
//! |---|---|
//! | `override_flag("x", active=True)` | `overrides.flag("x", "on")?`, any arm by name; for one request `client.get("/").with_arm("x", "on")?` |
//! | `override_switch("x", active=True)` | `overrides.switch("x", true)?` (the first arm after the control; `false`: the control) |
//! | `override_sample("x", active=True)` | `overrides.sample("x", true)?`: [`FlagsHandle::sample`](crate::FlagsHandle::sample) answers `true` |
//! | leaving the `with` block | `overrides.clear("x")`, `overrides.clear_all()`, or a [`Checkpoint`] dropped |
//!
//! [`Overrides`] belong to one Rocket instance (each `rocket::local` client ignites its
//! own), so tests running side by side do not see each other's. A request's override
//! ([`OverrideRequest`]) wins over its client's, for that request alone.
//!
//! ```
//! use bandits::engine::{FlagDefinition, Policy};
//! use bandits::testing::{OverrideRequest, Overrides};
//! use bandits::{Bandits, Flags};
//! use rocket::local::blocking::Client;
//!
//! #[rocket::get("/")]
//! fn index(flags: Flags<'_>) -> &'static str {
//!     if flags.is_active("headline-flag") { "Bold headline" } else { "Plain headline" }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let headline = FlagDefinition::new("headline-flag")
//!     .with_arms(["plain", "bold"])
//!     .with_policy(Policy::thompson())
//!     .with_paths("/", "/contact/")
//!     .validate()?;
//! let figment = rocket::Config::figment()
//!     // A database of this client's own, in memory, gone with it.
//!     .merge(("databases.bandits.url", "sqlite::memory:"))
//!     .merge(("databases.bandits.max_connections", 1));
//! let site = rocket::custom(figment)
//!     .attach(Bandits::fairing().with_flag(headline))
//!     .mount("/", rocket::routes![index]);
//! let client = Client::untracked(site)?;
//!
//! let overrides = Overrides::of(client.rocket())?;
//! overrides.flag("headline-flag", "bold")?;
//! assert_eq!(client.get("/").dispatch().into_string().as_deref(), Some("Bold headline"));
//! overrides.switch("headline-flag", false)?; // the control
//! assert_eq!(client.get("/").dispatch().into_string().as_deref(), Some("Plain headline"));
//!
//! // One request of its own; the next is the client's again.
//! let bold = client.get("/").with_arm("headline-flag", "bold")?.dispatch();
//! assert_eq!(bold.into_string().as_deref(), Some("Bold headline"));
//! assert_eq!(client.get("/").dispatch().into_string().as_deref(), Some("Plain headline"));
//!
//! // A typo fails the test loudly, naming what is wrong.
//! let typo = overrides.flag("headline-flag", "blod").unwrap_err();
//! assert_eq!(
//!     typo.to_string(),
//!     "flag \"headline-flag\" has no arm \"blod\" (its arms: plain, bold)"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # What an override does
//!
//! An overridden flag shows its arm to every reader: the [`Flags`](crate::Flags) guard,
//! [`VisitorFlags`](crate::VisitorFlags), a route split with
//! [`#[flag_variant]`](crate::flag_variant), the Tera functions of `bandits-tera`, and
//! [`FlagsHandle::is_active`](crate::FlagsHandle::is_active) (on when the arm is not the
//! control). It comes before every rule of the precedence table of
//! [`engine::decision`](crate::engine::decision) (row 0), and it counts nothing: no view,
//! no conversion, nothing in the activity log, no write to the database for that flag.
//! Nor does it give the visitor an arm or a cookie for it: a new visitor who reads only
//! overridden flags leaves with no visitor cookie. Other flags behave as usual, so a test
//! can still check what they count. A fixed sample makes
//! [`FlagsHandle::sample`](crate::FlagsHandle::sample) answer as fixed; it changes no
//! visitor's arm.
//!
//! An override names a flag that exists and, for [`Overrides::flag`], one of its arms;
//! anything else is an [`OverrideError`] that names it, so a test with a typo fails
//! instead of passing on the control.
//!
//! # Not behind a cargo feature
//!
//! Overrides are set from Rust code in the same process only: with a handle on the
//! ignited [`Rocket`] ([`Overrides::of`]) or on a `rocket::local` request
//! ([`OverrideRequest`]). No header, query parameter or cookie reaches them, and a request
//! that comes over HTTP starts with none of its own, so a site that ships this module
//! exposes nothing through it. Until a test sets one, a request pays one atomic load for
//! them.
//!
//! # A database for tests
//!
//! `databases.bandits.url = "sqlite::memory:"` with `databases.bandits.max_connections =
//! 1`: the plugin creates its tables in memory at ignition and writes its counts there,
//! and every client has a database of its own, gone when the client is dropped. Keep the
//! one connection: the pool opens `sqlite::memory:` afresh, as a new and empty database,
//! for each connection it makes.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rocket::{Phase, Request, Rocket};

use crate::engine::pinned::Pinned;
use crate::runtime::{Runtime, Shared};
use crate::visit::RequestPins;

/// Why an override was refused. Its message names the flag or the arm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// The Rocket has not ignited with the [`Bandits`](crate::Bandits) fairing.
    #[error(
        "rocket-bandits is not running on this Rocket: attach bandits::Bandits::fairing() \
         and take the overrides of an ignited one, such as a local client's rocket()"
    )]
    NotRunning,
    /// No flag has this name.
    #[error(
        "no flag named {flag:?}: create it (Bandits::with_flag, the admin or the API) \
         before overriding it"
    )]
    UnknownFlag {
        /// The name asked for.
        flag: String,
    },
    /// The flag has no arm of this name.
    #[error("flag {flag:?} has no arm {arm:?} (its arms: {})", .arms.join(", "))]
    UnknownArm {
        /// The flag.
        flag: String,
        /// The arm asked for.
        arm: String,
        /// The flag's arms.
        arms: Vec<String>,
    },
}

/// The overrides of one ignited Rocket instance: what every request it serves sees, until
/// cleared. Cheap to clone; every clone changes the same overrides.
///
/// ```
/// # use bandits::engine::FlagDefinition;
/// # use bandits::testing::Overrides;
/// # use rocket::local::blocking::Client;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let figment = rocket::Config::figment()
/// #     .merge(("databases.bandits.url", "sqlite::memory:"))
/// #     .merge(("databases.bandits.max_connections", 1));
/// # let fairing = bandits::Bandits::fairing()
/// #     .with_flag(FlagDefinition::new("maintenance-mode").validate()?)
/// #     .with_flag(FlagDefinition::percentage("resend-receipts", 10.0).validate()?);
/// # let client = Client::untracked(rocket::custom(figment).attach(fairing))?;
/// let overrides = Overrides::of(client.rocket())?;
/// let flags = client.rocket().state::<bandits::FlagsHandle>().expect("ignited");
/// overrides.switch("maintenance-mode", true)?;
/// overrides.sample("resend-receipts", false)?;
/// assert!(flags.is_active("maintenance-mode"));
/// assert!(!flags.sample("resend-receipts"));
/// overrides.clear_all();
/// assert!(!flags.is_active("maintenance-mode"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Overrides {
    runtime: Arc<Runtime>,
}

impl Overrides {
    /// The overrides of `rocket`, which has ignited with the plugin's fairing (a
    /// `rocket::local` client's [`rocket()`](rocket::local::blocking::Client::rocket)).
    pub fn of<P: Phase>(rocket: &Rocket<P>) -> Result<Overrides, OverrideError> {
        let Shared(runtime) = rocket.state::<Shared>().ok_or(OverrideError::NotRunning)?;
        Ok(Overrides {
            runtime: Arc::clone(runtime),
        })
    }

    /// Every reader of flag `flag` sees arm `arm` (by name), counting nothing.
    pub fn flag(&self, flag: &str, arm: &str) -> Result<&Self, OverrideError> {
        let arm = resolve(&self.runtime, flag, Choice::Arm(arm))?;
        self.change(|pinned| pinned.pin_arm(flag, &arm));
        Ok(self)
    }

    /// Flag `flag` is on for everyone (`true`: the first arm after the control) or off
    /// (`false`: the control), counting nothing, as a flag whose `everyone` is set.
    pub fn switch(&self, flag: &str, on: bool) -> Result<&Self, OverrideError> {
        let arm = resolve(&self.runtime, flag, Choice::Switch(on))?;
        self.change(|pinned| pinned.pin_arm(flag, &arm));
        Ok(self)
    }

    /// [`FlagsHandle::sample`](crate::FlagsHandle::sample) of flag `flag` answers `on`,
    /// whatever its percent.
    pub fn sample(&self, flag: &str, on: bool) -> Result<&Self, OverrideError> {
        known(&self.runtime, flag)?;
        self.change(|pinned| pinned.fix_sample(flag, on));
        Ok(self)
    }

    /// Flag `flag` behaves as usual again: its override and its fixed sample are gone.
    pub fn clear(&self, flag: &str) -> &Self {
        self.change(|pinned| {
            pinned.clear(flag);
        });
        self
    }

    /// Every flag behaves as usual again.
    pub fn clear_all(&self) -> &Self {
        self.runtime.pinned.store(None);
        self
    }

    /// The overrides as they are now, put back when the returned [`Checkpoint`] is
    /// dropped: waffle's `with override_flag(...):` block.
    ///
    /// ```
    /// # use bandits::engine::FlagDefinition;
    /// # use bandits::testing::Overrides;
    /// # use rocket::local::blocking::Client;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let figment = rocket::Config::figment()
    /// #     .merge(("databases.bandits.url", "sqlite::memory:"))
    /// #     .merge(("databases.bandits.max_connections", 1));
    /// # let fairing = bandits::Bandits::fairing()
    /// #     .with_flag(FlagDefinition::new("maintenance-mode").validate()?);
    /// # let client = Client::untracked(rocket::custom(figment).attach(fairing))?;
    /// let overrides = Overrides::of(client.rocket())?;
    /// let flags = client.rocket().state::<bandits::FlagsHandle>().expect("ignited");
    /// {
    ///     let _back = overrides.checkpoint();
    ///     overrides.switch("maintenance-mode", true)?;
    ///     assert!(flags.is_active("maintenance-mode"));
    /// }
    /// assert!(!flags.is_active("maintenance-mode"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            runtime: Arc::clone(&self.runtime),
            saved: self.runtime.pinned.load_full(),
        }
    }

    fn change(&self, edit: impl Fn(&mut Pinned)) {
        // Visits look for overrides once this is set, for good: a request dispatched after
        // this call returns sees them.
        self.runtime.pinning.store(true, Ordering::Release);
        self.runtime.pinned.rcu(|current| {
            let mut pinned = current.as_deref().cloned().unwrap_or_default();
            edit(&mut pinned);
            (!pinned.is_empty()).then(|| Arc::new(pinned))
        });
    }
}

/// The overrides set now: `Overrides(Some(Pinned { arms: {"headline-flag": "bold"}, .. }))`.
impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Overrides")
            .field(&self.runtime.pinned.load_full())
            .finish()
    }
}

/// Puts the overrides back as they were when [`Overrides::checkpoint`] made it, when
/// dropped.
#[must_use = "the overrides are put back when the checkpoint is dropped: keep it in a variable"]
pub struct Checkpoint {
    runtime: Arc<Runtime>,
    saved: Option<Arc<Pinned>>,
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        self.runtime.pinned.store(self.saved.take());
    }
}

/// Overrides for one `rocket::local` request, over its client's: implemented for
/// `rocket::local::blocking::LocalRequest` and `rocket::local::asynchronous::LocalRequest`.
///
/// ```
/// # use bandits::engine::FlagDefinition;
/// use bandits::testing::OverrideRequest;
/// # use rocket::local::blocking::Client;
/// # #[rocket::get("/")]
/// # fn index(flags: bandits::Flags<'_>) -> String {
/// #     flags.variant("checkout-flow").unwrap_or_default()
/// # }
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let figment = rocket::Config::figment()
/// #     .merge(("databases.bandits.url", "sqlite::memory:"))
/// #     .merge(("databases.bandits.max_connections", 1));
/// # let checkout = FlagDefinition::new("checkout-flow").with_arms(["classic", "one-page"]);
/// # let fairing = bandits::Bandits::fairing().with_flag(checkout.validate()?);
/// # let site = rocket::custom(figment).attach(fairing).mount("/", rocket::routes![index]);
/// # let client = Client::untracked(site)?;
/// let response = client.get("/").with_arm("checkout-flow", "one-page")?.dispatch();
/// assert_eq!(response.into_string().as_deref(), Some("one-page"));
/// # Ok(())
/// # }
/// ```
pub trait OverrideRequest: Sized {
    /// This request sees arm `arm` of flag `flag`; see [`Overrides::flag`].
    fn with_arm(self, flag: &str, arm: &str) -> Result<Self, OverrideError>;

    /// This request sees flag `flag` on or off; see [`Overrides::switch`].
    fn with_switch(self, flag: &str, on: bool) -> Result<Self, OverrideError>;
}

impl OverrideRequest for rocket::local::blocking::LocalRequest<'_> {
    fn with_arm(self, flag: &str, arm: &str) -> Result<Self, OverrideError> {
        pin_request(self.inner(), flag, Choice::Arm(arm))?;
        Ok(self)
    }

    fn with_switch(self, flag: &str, on: bool) -> Result<Self, OverrideError> {
        pin_request(self.inner(), flag, Choice::Switch(on))?;
        Ok(self)
    }
}

impl OverrideRequest for rocket::local::asynchronous::LocalRequest<'_> {
    fn with_arm(self, flag: &str, arm: &str) -> Result<Self, OverrideError> {
        pin_request(self.inner(), flag, Choice::Arm(arm))?;
        Ok(self)
    }

    fn with_switch(self, flag: &str, on: bool) -> Result<Self, OverrideError> {
        pin_request(self.inner(), flag, Choice::Switch(on))?;
        Ok(self)
    }
}

/// An arm as a test asks for it.
#[derive(Clone, Copy)]
enum Choice<'a> {
    Arm(&'a str),
    Switch(bool),
}

fn pin_request(request: &Request<'_>, flag: &str, choice: Choice<'_>) -> Result<(), OverrideError> {
    let Shared(runtime) = request
        .rocket()
        .state::<Shared>()
        .ok_or(OverrideError::NotRunning)?;
    let arm = resolve(runtime, flag, choice)?;
    RequestPins::pin_arm(request, runtime, flag, &arm);
    Ok(())
}

/// Fails unless flag `flag` exists.
fn known(runtime: &Runtime, flag: &str) -> Result<(), OverrideError> {
    match runtime.tracker.live().flag(flag) {
        Some(_) => Ok(()),
        None => Err(OverrideError::UnknownFlag {
            flag: flag.to_string(),
        }),
    }
}

/// The name of the arm of flag `flag` that `choice` means.
fn resolve(runtime: &Runtime, flag: &str, choice: Choice<'_>) -> Result<String, OverrideError> {
    let live = runtime.tracker.live();
    let unknown = || OverrideError::UnknownFlag {
        flag: flag.to_string(),
    };
    let stored = live.flag(flag).ok_or_else(unknown)?;
    let arms = stored.flag.arms();
    match choice {
        Choice::Arm(arm) if stored.flag.arm_index(arm).is_some() => Ok(arm.to_string()),
        Choice::Arm(arm) => Err(OverrideError::UnknownArm {
            flag: flag.to_string(),
            arm: arm.to_string(),
            arms: arms.iter().map(|arm| arm.name.clone()).collect(),
        }),
        // Every flag has two arms at least: the control, then the one a switch turns on.
        Choice::Switch(on) => arms
            .get(usize::from(on))
            .map(|arm| arm.name.clone())
            .ok_or_else(unknown),
    }
}
