//! The `Flags` request guard: the visitor's arms, in a route.
//!
//! ```no_run
//! use bandits::Flags;
//! use rocket::get;
//!
//! #[get("/")]
//! fn index(flags: Flags<'_>) -> String {
//!     let headline = if flags.is_active("headline-flag") {
//!         "This is my test headline"
//!     } else {
//!         "This is my base headline"
//!     };
//!     rocket::info!("assignments: {flags}"); // "headline-flag:on,checkout:b"
//!     headline.to_string()
//! }
//!
//! #[rocket::post("/signup")]
//! fn signup(flags: Flags<'_>) -> &'static str {
//!     flags.convert("signup"); // the goal of every flag whose goal_event is "signup"
//!     "Welcome!"
//! }
//! ```

use std::fmt;
use std::sync::atomic::Ordering;

use rocket::http::CookieJar;
use rocket::request::{FromRequest, Outcome, Request};

use crate::fairing::{Seen, Shared, Visit, WARNED_UNATTACHED};

/// The current visitor's flags. Never fails: without the fairing attached every flag
/// reads as inactive (with one warning in the log).
///
/// Reading a flag gives the visitor an arm if they have none yet, by the flag's policy,
/// and remembers it in the visitor cookie: the same arm the fairing counts, on every
/// later request and in templates. Reading a flag does not count a view unless the flag
/// has no source path (then the first page that reads it is where the visitor is exposed);
/// a flag with a source path counts views there only.
pub struct Flags<'r> {
    visit: Option<&'r Visit>,
    jar: &'r CookieJar<'r>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Flags<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let visit = match request.rocket().state::<Shared>() {
            Some(Shared(runtime)) => Some(Visit::of(request, runtime)),
            None => {
                if !WARNED_UNATTACHED.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "rocket-bandits: a Flags guard was used but the fairing is not \
                         attached (or failed); every flag reads as inactive. Attach \
                         bandits::Bandits::fairing()."
                    );
                }
                None
            }
        };
        Outcome::Success(Flags {
            visit,
            jar: request.cookies(),
        })
    }
}

impl Flags<'_> {
    /// The visitor's arm in flag `name`; `None` for a flag that does not exist.
    fn seen(&self, name: &str) -> Option<(Seen, Option<serde_json::Value>)> {
        let visit = self.visit?;
        let runtime = visit.runtime();
        let live = runtime.tracker.live();
        let Some(stored) = live.flag(name) else {
            runtime.warn_unknown(name);
            return None;
        };
        let expose = stored.flag.source_path().is_none();
        let seen = visit.arm(&live, stored, expose);
        visit.persist(self.jar);
        let payload = stored
            .flag
            .arms()
            .get(seen.index)
            .and_then(|arm| arm.payload.clone());
        Some((seen, payload))
    }

    /// Whether the visitor's arm in flag `name` is not its control (the first arm).
    /// False for a flag that does not exist.
    pub fn is_active(&self, name: &str) -> bool {
        self.seen(name).is_some_and(|(seen, _)| seen.index != 0)
    }

    /// The name of the visitor's arm in flag `name`; `None` for a flag that does not exist.
    pub fn variant(&self, name: &str) -> Option<String> {
        self.seen(name).map(|(seen, _)| seen.name)
    }

    /// The JSON payload of the visitor's arm in flag `name`, if the arm has one.
    pub fn payload(&self, name: &str) -> Option<serde_json::Value> {
        self.seen(name).and_then(|(_, payload)| payload)
    }

    /// Fires the goal event `event`: counts one conversion, for this visitor, in every flag
    /// whose `goal_event` it is and which counted the visitor as a view (once per visitor
    /// and flag). Returns the number of flags that counted it.
    pub fn convert(&self, event: &str) -> usize {
        let Some(visit) = self.visit else {
            return 0;
        };
        let live = visit.runtime().tracker.live();
        let converted = visit.convert(&live, event);
        visit.persist(self.jar);
        converted
    }
}

/// Every arm the visitor holds, `flag:arm` joined by commas in flag-name order, for logs:
/// `headline-flag:on,checkout:b`.
impl fmt::Display for Flags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.visit {
            Some(visit) => f.write_str(&visit.describe(&visit.runtime().tracker.live())),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Flags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Flags").field(&self.to_string()).finish()
    }
}
