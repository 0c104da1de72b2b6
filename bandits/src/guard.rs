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
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome, Request};

use crate::engine::Flag;
use crate::runtime::Shared;
use crate::visit::{Visit, WARNED_UNATTACHED};

/// The current visitor's flags. Never fails: without the fairing attached every flag
/// reads as inactive (with one warning in the log).
///
/// Reading a flag gives the visitor an arm if they have none yet, by the flag's policy,
/// and remembers it in the visitor cookie: the same arm the fairing counts, on every
/// later request and in templates. Reading a flag does not count a view unless the flag
/// has no source path (then the first page that reads it is where the visitor is exposed);
/// a flag with a source path counts views there only.
pub struct Flags<'r> {
    flags: VisitorFlags,
    jar: &'r CookieJar<'r>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Flags<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Flags {
            flags: VisitorFlags::of(request),
            jar: request.cookies(),
        })
    }
}

impl Flags<'_> {
    /// Whether the visitor's arm in flag `name` is not its control (the first arm).
    /// False for a flag that does not exist.
    pub fn is_active(&self, name: &str) -> bool {
        let active = self.flags.is_active(name);
        self.flags.remember(self.jar);
        active
    }

    /// The name of the visitor's arm in flag `name`; `None` for a flag that does not exist.
    pub fn variant(&self, name: &str) -> Option<String> {
        let variant = self.flags.variant(name);
        self.flags.remember(self.jar);
        variant
    }

    /// The JSON payload of the visitor's arm in flag `name`, if the arm has one.
    pub fn payload(&self, name: &str) -> Option<serde_json::Value> {
        let payload = self.flags.payload(name);
        self.flags.remember(self.jar);
        payload
    }

    /// Member `key` of the JSON payload of the visitor's arm in flag `name`, if the arm's
    /// payload is an object that has it. Copies that member only.
    pub fn payload_field(&self, name: &str, key: &str) -> Option<serde_json::Value> {
        let field = self.flags.payload_field(name, key);
        self.flags.remember(self.jar);
        field
    }

    /// Fires trigger `name` (declared in `bandits.triggers`) for this visitor: if a
    /// partner referred them within the window, is active and subscribes to it, the
    /// trigger completes at the next flush (once per visitor and trigger, however often
    /// it fires) and the partner's callbacks are queued. Recorded when the response
    /// leaves, unless it is an error. Returns whether it may complete.
    ///
    /// ```no_run
    /// #[rocket::post("/checkout")]
    /// fn checkout(flags: bandits::Flags<'_>) -> &'static str {
    ///     flags.fire("Order placed");
    ///     "Thank you!"
    /// }
    /// ```
    pub fn fire(&self, name: &str) -> bool {
        self.flags.fire(name)
    }

    /// The visitor's id, for code that fires a trigger later, outside the request
    /// ([`FlagsHandle::fire`](crate::FlagsHandle::fire)): store it with the order, say.
    /// `None` without the fairing.
    pub fn visitor_id(&self) -> Option<String> {
        self.flags.visitor_id()
    }

    /// Fires the goal event `event`: counts one conversion, for this visitor, in every flag
    /// whose `goal_event` it is and which counted the visitor as a view (once per visitor
    /// and flag). Returns the number of flags that counted it.
    pub fn convert(&self, event: &str) -> usize {
        let converted = self.flags.convert(event);
        self.flags.remember(self.jar);
        converted
    }
}

/// Every arm the visitor holds, `flag:arm` joined by commas in flag-name order, for logs:
/// `headline-flag:on,checkout:b`.
impl fmt::Display for Flags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.flags, f)
    }
}

impl fmt::Debug for Flags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Flags").field(&self.to_string()).finish()
    }
}

/// The current visitor's flags as an owned value (`'static`, cheap to clone), for code that
/// cannot hold a borrow of the request: template engines rendering inside a responder,
/// request guards of other crates. Its reads change the visitor only in memory; call
/// [`remember`](Self::remember) with the request's cookie jar before the response leaves
/// (the [`Flags`] guard does this itself after every read).
#[derive(Clone, Default)]
pub struct VisitorFlags {
    visit: Option<Arc<Visit>>,
}

impl VisitorFlags {
    /// The flags of `request`'s visitor. Without the fairing attached every flag reads as
    /// inactive, and the first call logs one warning saying so.
    pub fn of(request: &Request<'_>) -> VisitorFlags {
        let visit = match request.rocket().state::<Shared>() {
            Some(Shared(runtime)) => Some(Arc::clone(Visit::of(request, runtime))),
            None => {
                if !WARNED_UNATTACHED.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "rocket-bandits: flags were read but the fairing is not attached \
                         (or failed); every flag reads as inactive. Attach \
                         bandits::Bandits::fairing()."
                    );
                }
                None
            }
        };
        VisitorFlags { visit }
    }

    /// `read` of flag `name` and the visitor's arm in it (its index); `None` for a flag that
    /// does not exist. Nothing is copied that the caller does not ask for.
    fn seen<T>(&self, name: &str, read: impl FnOnce(&Flag, usize) -> T) -> Option<T> {
        let visit = self.visit.as_ref()?;
        let runtime = visit.runtime();
        let live = runtime.tracker.live();
        let Some(stored) = live.flag(name) else {
            runtime.warn_unknown(name);
            return None;
        };
        let expose = stored.flag.source_path().is_none();
        let seen = visit.arm(&live, stored, expose);
        Some(read(&stored.flag, seen.index))
    }

    /// Whether the visitor's arm in flag `name` is not its control. False for a flag that
    /// does not exist.
    pub fn is_active(&self, name: &str) -> bool {
        self.seen(name, |_, index| index != 0).unwrap_or(false)
    }

    /// The name of the visitor's arm in flag `name`; `None` for a flag that does not exist.
    pub fn variant(&self, name: &str) -> Option<String> {
        self.seen(name, |flag, index| flag.arms()[index].name.clone())
    }

    /// The JSON payload of the visitor's arm in flag `name`, if the arm has one.
    pub fn payload(&self, name: &str) -> Option<serde_json::Value> {
        self.seen(name, |flag, index| flag.arms()[index].payload.clone())
            .flatten()
    }

    /// Member `key` of the JSON payload of the visitor's arm in flag `name`, if the arm's
    /// payload is an object that has it. Copies that member only.
    pub fn payload_field(&self, name: &str, key: &str) -> Option<serde_json::Value> {
        self.seen(name, |flag, index| {
            flag.arms()[index]
                .payload
                .as_ref()
                .and_then(|payload| payload.get(key))
                .cloned()
        })
        .flatten()
    }

    /// The flags the browser may read (`client_side`), each with the visitor's arm,
    /// whether it is active and its payload: `{"flags": {"<name>": {"variant", "active",
    /// "payload"}}}`, as `GET /bandits/flags.json` answers. For a page that carries its
    /// flags to its script ([`browser::inline_script`](crate::browser::inline_script));
    /// call [`remember`](Self::remember) after, as after any read.
    pub fn browser_flags(&self) -> serde_json::Value {
        match &self.visit {
            Some(visit) => crate::browser::flags_of(visit),
            None => serde_json::json!({ "flags": {} }),
        }
    }

    /// Fires trigger `name`; see [`Flags::fire`].
    pub fn fire(&self, name: &str) -> bool {
        let Some(visit) = &self.visit else {
            return false;
        };
        visit.fire(&visit.runtime().tracker.live(), name)
    }

    /// The visitor's id; see [`Flags::visitor_id`].
    pub fn visitor_id(&self) -> Option<String> {
        self.visit.as_ref().map(|visit| visit.visitor_id())
    }

    /// Fires the goal event `event`; see [`Flags::convert`].
    pub fn convert(&self, event: &str) -> usize {
        let Some(visit) = &self.visit else {
            return 0;
        };
        visit.convert(&visit.runtime().tracker.live(), event)
    }

    /// Writes the visitor cookie into `jar` if a read changed the visitor. Call it before
    /// the response leaves; without it a new arm is shown but neither remembered nor
    /// counted.
    pub fn remember(&self, jar: &CookieJar<'_>) {
        if let Some(visit) = &self.visit {
            visit.persist(jar);
        }
    }
}

impl fmt::Display for VisitorFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.visit {
            Some(visit) => f.write_str(&visit.describe(&visit.runtime().tracker.live())),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for VisitorFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VisitorFlags")
            .field(&self.to_string())
            .finish()
    }
}

/// An arm of a flag, named at the type level: what `#[flag_variant]` generates for each
/// handler it splits.
pub trait ArmOf: Send + Sync + 'static {
    /// The flag's name.
    const FLAG: &'static str;
    /// The arm's name.
    const ARM: &'static str;
}

/// A request guard that succeeds when the visitor's arm of `S::FLAG` is `S::ARM` and
/// forwards otherwise, so the next route of the same path (by rank) serves the request.
/// `#[flag_variant]` adds it to the handlers it splits; it can be used by hand too.
pub struct OnArm<S: ArmOf>(PhantomData<S>);

#[rocket::async_trait]
impl<'r, S: ArmOf> FromRequest<'r> for OnArm<S> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let flags = VisitorFlags::of(request);
        let variant = flags.variant(S::FLAG);
        flags.remember(request.cookies());
        if variant.as_deref() == Some(S::ARM) {
            Outcome::Success(OnArm(PhantomData))
        } else {
            Outcome::Forward(Status::NotFound)
        }
    }
}
