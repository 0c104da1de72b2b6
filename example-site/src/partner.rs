//! The example site's referral partner, and a partner's receiver the site serves itself,
//! so a callback's whole trip shows on one machine.
//!
//! At liftoff the site makes sure its database holds the partner [`PARTNER_NAME`],
//! subscribed to [`TRIGGER`] with a callback to [`RECEIVER_PREFIX`]`/callback` on the
//! site's own address. Partners' uids are generated, so the partner is found again by its
//! name; nothing else is stored. `/partner-receiver` shows the partner's link and the last
//! callbacks received.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use bandits::database::BanditsDatabase;
use bandits::engine::partners::{PartnerDefinition, SubscriptionDefinition};
use bandits::store::{Store, StoreError};
use rocket::fairing::{AdHoc, Fairing};
use rocket::request::{FromRequest, Outcome};
use rocket::response::content::RawHtml;
use rocket::{get, routes, Orbit, Request, Rocket, Route, State};
use rocket_db_pools::Database;

/// The example partner's name, by which the site finds it again at each start.
pub const PARTNER_NAME: &str = "Example partner";
/// The trigger the example partner is paid for, declared in the site's configuration.
pub const TRIGGER: &str = "User registered";
/// Where the site plays the partner: an excluded path (`bandits.exclude_prefixes`), so
/// receiving a callback counts nothing.
pub const RECEIVER_PREFIX: &str = "/partner-receiver";
/// How many callbacks the receiver page remembers.
pub const KEPT_CALLS: usize = 20;

/// A callback as the receiver got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCall {
    /// `{visitor_id}` of the callback URL.
    pub visitor: String,
    /// `{event_id}` of the callback URL.
    pub event: String,
    /// The `Idempotency-Key` header, the event id again.
    pub idempotency_key: String,
}

/// The last [`KEPT_CALLS`] callbacks received, newest last, in memory only.
#[derive(Debug, Default)]
pub struct ReceivedCalls(Mutex<VecDeque<ReceivedCall>>);

impl ReceivedCalls {
    fn push(&self, call: ReceivedCall) {
        if let Ok(mut calls) = self.0.lock() {
            if calls.len() == KEPT_CALLS {
                calls.pop_front();
            }
            calls.push_back(call);
        }
    }

    /// The callbacks kept, oldest first.
    pub fn all(&self) -> Vec<ReceivedCall> {
        self.0
            .lock()
            .map(|calls| calls.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The example partner's uid, once the liftoff fairing has found or created it.
#[derive(Debug, Default)]
pub struct PartnerUid(std::sync::OnceLock<String>);

/// The callback URL of the site at `address`: a wildcard address (`0.0.0.0`) is reached
/// on the loopback interface.
pub fn callback_url(address: IpAddr, port: u16) -> String {
    let ip = if address.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        address
    };
    let origin = SocketAddr::new(ip, port);
    format!("http://{origin}{RECEIVER_PREFIX}/callback?visitor={{visitor_id}}&event={{event_id}}")
}

/// The liftoff fairing that finds or creates the example partner and its subscription.
/// A failure is logged; the site runs on without the partner.
pub fn fairing() -> impl Fairing {
    AdHoc::on_liftoff("example partner", |rocket| {
        Box::pin(async move {
            match ensure_partner(rocket).await {
                Ok(uid) => {
                    log::info!(
                        "example-site: partner {PARTNER_NAME:?} has uid {uid}: its link is \
                         /?affiliate_id={uid}, its callbacks show on {RECEIVER_PREFIX}"
                    );
                    if let Some(slot) = rocket.state::<PartnerUid>() {
                        let _ = slot.0.set(uid);
                    }
                }
                Err(problem) => log::error!("example-site: no example partner: {problem}"),
            }
        })
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

async fn ensure_partner(rocket: &Rocket<Orbit>) -> Result<String, String> {
    let store: &Store = BanditsDatabase::fetch(rocket)
        .ok_or("the bandits database is not attached")?
        .store();
    let url = callback_url(rocket.config().address, rocket.config().port);
    let now = now_ms();
    let partners = store.partners().await.map_err(|e| e.to_string())?;
    let uid = match partners.iter().find(|p| p.partner.name() == PARTNER_NAME) {
        Some(stored) => stored.uid.clone(),
        None => {
            let partner = PartnerDefinition::new(PARTNER_NAME)
                .validate()
                .map_err(|errors| format!("{}: {}", errors[0].field, errors[0].rule))?;
            store
                .create_partner(&partner, now)
                .await
                .map_err(|e| e.to_string())?
                .uid
        }
    };
    let subscription = SubscriptionDefinition {
        partner: uid.clone(),
        trigger: TRIGGER.into(),
        callback_url: url,
    }
    .validate()
    .map_err(|errors| format!("{}: {}", errors[0].field, errors[0].rule))?;
    let existing = store.subscriptions().await.map_err(|e| e.to_string())?;
    let mine = existing.iter().find(|stored| {
        stored.subscription.partner() == uid && stored.subscription.trigger() == TRIGGER
    });
    let outcome = match mine {
        // The site moved (another port): the partner follows it.
        Some(stored) if stored.subscription != subscription => store
            .update_subscription(stored.id, &subscription, now)
            .await
            .map(drop),
        Some(_) => Ok(()),
        None => match store.subscribe(&subscription, now).await {
            // Another instance on the same database was quicker.
            Err(StoreError::SubscriptionExists { .. }) => Ok(()),
            other => other.map(drop),
        },
    };
    outcome.map_err(|e| e.to_string())?;
    Ok(uid)
}

/// The routes of the receiver, to mount under [`RECEIVER_PREFIX`].
pub fn routes() -> Vec<Route> {
    routes![receive, received]
}

/// The `Idempotency-Key` header, or empty.
struct IdempotencyKey(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IdempotencyKey {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let key = request.headers().get_one("Idempotency-Key").unwrap_or("");
        Outcome::Success(IdempotencyKey(key.to_string()))
    }
}

#[get("/callback?<visitor>&<event>")]
fn receive(
    calls: &State<ReceivedCalls>,
    key: IdempotencyKey,
    visitor: &str,
    event: &str,
) -> &'static str {
    calls.push(ReceivedCall {
        visitor: visitor.to_string(),
        event: event.to_string(),
        idempotency_key: key.0,
    });
    "ok"
}

/// `text` safe in HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[get("/")]
fn received(calls: &State<ReceivedCalls>, uid: &State<PartnerUid>) -> RawHtml<String> {
    let link = match uid.0.get() {
        Some(uid) => format!(
            "<p>{PARTNER_NAME}'s link: <a href=\"/?affiliate_id={uid}\">\
             /?affiliate_id=<code class=\"uid\">{uid}</code></a>; it is paid for \
             \"{TRIGGER}\" (<code>POST /signup</code>).</p>"
        ),
        None => format!("<p>{PARTNER_NAME} could not be set up: see the site's log.</p>"),
    };
    let calls = calls.all();
    let list = if calls.is_empty() {
        "<p>No callback received yet.</p>".to_string()
    } else {
        let items: String = calls
            .iter()
            .map(|call| {
                format!(
                    "<li>visitor <code>{}</code>, event <code>{}</code>, \
                     Idempotency-Key <code>{}</code></li>\n",
                    escape(&call.visitor),
                    escape(&call.event),
                    escape(&call.idempotency_key)
                )
            })
            .collect();
        format!("<ol>\n{items}</ol>")
    };
    super::page(
        "Partner receiver",
        &format!("{link}<h2>Callbacks received, oldest first</h2>{list}"),
    )
}
