//! rocket-bandits in Tera templates: `flag(name="...")`, `variant(name="...")`,
//! `payload(name="...")` and a block form.
//!
//! Two lines of set-up: attach [`fairing()`] instead of `Template::fairing()` (or call
//! [`register`] inside your own `Template::custom`), and answer with [`FlagTemplate`]
//! instead of `Template`, so the functions know whose page they render:
//!
//! ```no_run
//! use bandits_tera::FlagTemplate;
//! use rocket::get;
//! use rocket_dyn_templates::context;
//!
//! #[get("/")]
//! fn index() -> FlagTemplate {
//!     FlagTemplate::render("index", context! { title: "Home" })
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(bandits::Bandits::fairing())
//!         .attach(bandits_tera::fairing())
//!         .mount("/", rocket::routes![index])
//! }
//! ```
//!
//! In `templates/index.html.tera`:
//!
//! ```text
//! {% if flag(name="headline-flag") %}
//!   <h1>This is my test headline: flag is active</h1>
//! {% else %}
//!   <h1>This is my base headline: flag is inactive</h1>
//! {% endif %}
//!
//! {% filter flag(name="signup-cta") %}<a href="/signup">Sign up</a>{% endfilter %}
//! {% filter flag(name="signup-cta", active=false) %}<a href="/signup">Join</a>{% endfilter %}
//!
//! <p class="{{ variant(name="checkout-flow") }}">
//!   {{ payload(name="signup-cta", key="label", default="Sign up") }}
//! </p>
//! ```
//!
//! | django-waffle | Tera with bandits-tera |
//! |---|---|
//! | `{% flag "x" %}A{% else %}B{% endflag %}` | `{% if flag(name="x") %}A{% else %}B{% endif %}` |
//! | (block form) | `{% filter flag(name="x") %}A{% endfilter %}`, and `active=false` for the else part |
//! | `{% switch "x" %}`, `{% sample "x" %}` | a flag with `everyone` or `percent` targeting, then `flag(name="x")` |
//!
//! Tera takes keyword arguments only: `flag(name="x")`, never `flag("x")`.
//!
//! `flag` is true when the visitor's arm is not the control; `variant` gives the arm's name;
//! `payload` the arm's JSON payload, or null. `payload(name="x", key="label")` gives one
//! member of an object payload, and `default="..."` what to give instead of null (the arm
//! has no payload or no such member, the flag does not exist). Reading a member this way
//! copies only that member, where `{% set p = payload(name="x") %}{{ p.label }}` copies the
//! whole payload and then looks the member up by its path: prefer it on busy pages.
//!
//! A flag first read in a template gives the visitor an arm that sticks, the same one the
//! `Flags` guard and the counters see. An unknown flag is false (null for `variant` and
//! `payload`), with one warning per name. A page rendered with a plain `Template` (the
//! set-up forgotten) reads every flag as false, with one warning, never an error page.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use bandits::VisitorFlags;
use rocket::fairing::Fairing;
use rocket::response::{self, Responder};
use rocket::Request;
use rocket_dyn_templates::tera::{self, Tera, Value};
use rocket_dyn_templates::Template;
use serde::Serialize;

thread_local! {
    /// The flags of the request whose template this thread is rendering.
    static CURRENT: RefCell<Option<VisitorFlags>> = const { RefCell::new(None) };
}

static WARNED_NO_RESPONDER: AtomicBool = AtomicBool::new(false);

/// Adds the functions `flag`, `variant`, `payload` and the filter `flag` to `tera`. For
/// sites with their own `Template::custom`:
///
/// ```no_run
/// use rocket_dyn_templates::Template;
///
/// let templates = Template::custom(|engines| {
///     bandits_tera::register(&mut engines.tera);
///     // the site's own functions and filters
/// });
/// ```
pub fn register(tera: &mut Tera) {
    tera.register_function("flag", |args: &HashMap<String, Value>| {
        let name = flag_name("flag", args)?;
        Ok(Value::Bool(
            with_flags(|flags| flags.is_active(name)).unwrap_or(false),
        ))
    });
    tera.register_function("variant", |args: &HashMap<String, Value>| {
        let name = flag_name("variant", args)?;
        Ok(with_flags(|flags| flags.variant(name))
            .flatten()
            .map_or(Value::Null, Value::String))
    });
    tera.register_function("payload", |args: &HashMap<String, Value>| {
        let name = flag_name("payload", args)?;
        let key = match args.get("key") {
            None => None,
            Some(Value::String(key)) => Some(key.as_str()),
            Some(other) => {
                return Err(tera::Error::msg(format!(
                    "payload(key=...) takes the name of a member of the payload, got {other}"
                )))
            }
        };
        let payload = with_flags(|flags| match key {
            Some(key) => flags.payload_field(name, key),
            None => flags.payload(name),
        })
        .flatten();
        Ok(payload
            .or_else(|| args.get("default").cloned())
            .unwrap_or(Value::Null))
    });
    tera.register_filter("flag", FlagSection);
}

/// `Template::custom` with [`register`] applied: attach it instead of `Template::fairing()`.
pub fn fairing() -> impl Fairing {
    Template::custom(|engines| register(&mut engines.tera))
}

/// The `name` argument, as a string.
fn flag_name<'a>(function: &str, args: &'a HashMap<String, Value>) -> tera::Result<&'a str> {
    args.get("name").and_then(Value::as_str).ok_or_else(|| {
        tera::Error::msg(format!(
            "{function}() needs the flag's name: {function}(name=\"headline-flag\")"
        ))
    })
}

/// Runs `read` on the flags of the page being rendered; `None` (and one warning) when the
/// page is not rendered through [`FlagTemplate`].
fn with_flags<T>(read: impl FnOnce(&VisitorFlags) -> T) -> Option<T> {
    // Borrowed, not cloned: `read` reads the visit and never renders.
    let read = CURRENT.with(|current| current.borrow().as_ref().map(read));
    match read {
        Some(value) => Some(value),
        None => {
            if !WARNED_NO_RESPONDER.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "rocket-bandits: a template read a flag outside bandits_tera::FlagTemplate; \
                     every flag reads as false there. Answer with FlagTemplate::render(...) \
                     instead of Template::render(...)."
                );
            }
            None
        }
    }
}

/// The block form: `{% filter flag(name="x") %}...{% endfilter %}` keeps its body for
/// visitors on an active arm; with `active=false`, for the others.
struct FlagSection;

impl tera::Filter for FlagSection {
    fn filter(&self, body: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let name = flag_name("flag", args)?;
        let wanted = match args.get("active") {
            None => true,
            Some(Value::Bool(wanted)) => *wanted,
            Some(other) => {
                return Err(tera::Error::msg(format!(
                    "flag(active=...) takes true or false, got {other}"
                )))
            }
        };
        let active = with_flags(|flags| flags.is_active(name)).unwrap_or(false);
        Ok(if active == wanted {
            body.clone()
        } else {
            Value::String(String::new())
        })
    }

    /// The body was rendered (and escaped) by Tera already.
    fn is_safe(&self) -> bool {
        true
    }
}

/// A `Template` rendered with the visitor's flags in reach of `flag`, `variant` and
/// `payload`; the arms the page reads are remembered in the visitor cookie.
pub struct FlagTemplate(Template);

impl FlagTemplate {
    /// Renders template `name` with `context`, as `Template::render` does.
    pub fn render<S, C>(name: S, context: C) -> FlagTemplate
    where
        S: Into<Cow<'static, str>>,
        C: Serialize,
    {
        FlagTemplate(Template::render(name, context))
    }
}

impl From<Template> for FlagTemplate {
    fn from(template: Template) -> Self {
        FlagTemplate(template)
    }
}

/// Puts back the previous flags when the render ends, even by a panic.
struct Scope(Option<VisitorFlags>);

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

impl<'r> Responder<'r, 'static> for FlagTemplate {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let flags = VisitorFlags::of(request);
        let response = {
            let _scope = Scope(CURRENT.with(|current| current.replace(Some(flags.clone()))));
            // rocket_dyn_templates renders synchronously, on this thread, in here.
            self.0.respond_to(request)
        };
        flags.remember(request.cookies());
        response
    }
}

/// The README's examples, compiled and run as doctests here, the crate that depends on
/// everything they use, so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
