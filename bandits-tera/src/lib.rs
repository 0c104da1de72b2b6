//! rocket-bandits in Tera templates: waffle's `{% flag %}` tag, `flag("x")`, `variant("x")`
//! and `payload("x")`.
//!
//! Two lines of set-up: attach [`fairing()`] instead of `Template::fairing()` (or
//! [`custom`] instead of `Template::custom`), and answer with [`FlagTemplate`] instead of
//! `Template`, so the functions know whose page they render:
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
//! In `templates/index.html.tera`, as django-waffle writes it:
//!
//! ```text
//! {% flag "headline-flag" %}
//!   <h1>This is my test headline: flag is active</h1>
//! {% else %}
//!   <h1>This is my base headline: flag is inactive</h1>
//! {% endflag %}
//!
//! {% flag "signup-cta" %}<a href="/signup">Sign up</a>{% endflag %}
//!
//! <p class="{{ variant("checkout-flow") }}">
//!   {{ payload("signup-cta", "label") }}
//! </p>
//!
//! <% if flag("headline-flag") %>Bold<% else %>Plain<% endif %>
//! ```
//!
//! Every form, and what it is in plain Tera (which works too):
//!
//! | django-waffle and friends | plain Tera |
//! |---|---|
//! | `{% flag "x" %}A{% else %}B{% endflag %}` (the `{% else %}` optional) | `{% if flag(name="x") %}A{% else %}B{% endif %}` |
//! | `<% if flag("x") %>A<% else %>B<% endif %>` (also `<% elif ... %>`) | the same with `{%` and `%}` |
//! | `flag("x")`, `variant("x")`, `payload("x")` in `{{ }}` and `{% %}` | `flag(name="x")`, `variant(name="x")`, `payload(name="x")` |
//! | `payload("x", "label")` | `payload(name="x", key="label")` |
//! | `{% switch "x" %}`, `{% sample "x" %}` | a flag with `everyone` or `percent` targeting, then `{% flag "x" %}` |
//! | waffle's `wafflejs` | `{{ bandits_script() }}`: a `<script>` defining `window.bandits` with the visitor's browser-readable flags, as `/bandits/flags.js` does, inline |
//!
//! `flag` is true when the visitor's arm is not the control; `variant` gives the arm's name;
//! `payload` the arm's JSON payload, or null. `payload("x", "label")` gives one member of an
//! object payload, and `default="..."` what to give instead of null (the arm has no payload
//! or no such member, the flag does not exist). Reading a member this way copies only that
//! member, where `{% set p = payload("x") %}{{ p.label }}` copies the whole payload and
//! then looks the member up by its path: prefer it on busy pages.
//!
//! The branch not taken is never rendered, so a flag read only inside it gives the visitor
//! no arm and counts nothing.
//!
//! A flag first read in a template gives the visitor an arm that sticks, the same one the
//! `Flags` guard and the counters see. An unknown flag is false (null for `variant` and
//! `payload`), with one warning per name. A page rendered with a plain `Template` (the
//! set-up forgotten) reads every flag as false, with one warning, never an error page.
//!
//! ## How the tag works
//!
//! Tera has no way to add tags, delimiters or positional arguments, so at ignition the
//! fairing rewrites each `*.tera` file of `template_dir` into plain Tera ([`rewrite`]), in
//! a directory of its own that `rocket_dyn_templates` then loads (removed when the site
//! stops; a killed process's copy is removed at a later start). Only the forms above change: text, comments, `{% raw %}` blocks and other
//! `<%` text such as `<%= name %>` stay byte for byte, and no line moves, so a mistake
//! stops the launch with the author's file and line:
//!
//! ```text
//! rocket-bandits: template templates/index.html.tera: line 9: `{% flag %}` is never closed: end it with `{% endflag %}`
//! ```
//!
//! In a debug build an edited template is rewritten again at the next request, and
//! `rocket_dyn_templates` reloads it as usual.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use bandits::VisitorFlags;
use rocket::fairing::Fairing;
use rocket::response::{self, Responder};
use rocket::Request;
use rocket_dyn_templates::tera::{self, Tera, Value};
use rocket_dyn_templates::{Engines, Template};
use serde::Serialize;

mod fairing;
mod source;

pub use source::{rewrite, SourceError};

thread_local! {
    /// The flags of the request whose template this thread is rendering.
    static CURRENT: RefCell<Option<VisitorFlags>> = const { RefCell::new(None) };
}

static WARNED_NO_RESPONDER: AtomicBool = AtomicBool::new(false);

/// Adds the functions `flag`, `variant` and `payload` to `tera`, in their keyword form
/// (`flag(name="x")`). The tag and the positional form need the templates rewritten before
/// Tera parses them: a site with its own `Template::custom` uses [`custom`] instead, which
/// calls this and then the site's callback.
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
    tera.register_function("bandits_script", BanditsScript);
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
}

/// `bandits_script()`: a `<script>` element defining `window.bandits` with the visitor's
/// browser-readable flags, as `/bandits/flags.js` does, without another request. Its
/// output is not escaped by Tera: the flags are written so that nothing in them can end
/// the element.
struct BanditsScript;

impl tera::Function for BanditsScript {
    fn call(&self, _args: &HashMap<String, Value>) -> tera::Result<Value> {
        let flags = with_flags(VisitorFlags::browser_flags)
            .unwrap_or_else(|| VisitorFlags::default().browser_flags());
        Ok(Value::String(bandits::browser::inline_script(&flags)))
    }

    fn is_safe(&self) -> bool {
        true
    }
}

/// The templates, rewritten into plain Tera at ignition, with [`register`] applied:
/// attach it instead of `Template::fairing()`.
pub fn fairing() -> impl Fairing {
    custom(|_| {})
}

/// [`fairing()`] with the site's own customisation, for a site that would attach
/// `Template::custom(callback)`: `callback` runs after the flag functions are registered
/// (and again at each reload in a debug build).
///
/// ```no_run
/// # use rocket_dyn_templates::tera;
/// let templates = bandits_tera::custom(|engines| {
///     engines.tera.register_filter("shout", |value: &tera::Value, _: &_| {
///         Ok(tera::Value::String(value.as_str().unwrap_or_default().to_uppercase()))
///     });
/// });
/// # let _ = rocket::build().attach(templates);
/// ```
pub fn custom<F>(callback: F) -> impl Fairing
where
    F: Fn(&mut Engines) + Send + Sync + 'static,
{
    fairing::FlagTemplates {
        callback: std::sync::Arc::new(callback),
    }
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
