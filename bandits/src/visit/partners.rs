//! A visit's part in referral partners: registering a visitor who followed a partner's
//! link, and firing triggers for them. Both are decided here, in memory, by the engine's
//! [`ReferralRules`](crate::engine::partners::ReferralRules), and written at the next
//! flush, which resolves completions once per visitor and trigger.

use std::sync::atomic::{AtomicBool, Ordering};

use rocket::http::Status;
use rocket::{Request, Response};

use super::{Visit, VisitInner};
use crate::clock::now_ms;
use crate::engine::partners::{is_uid, Trigger};
use crate::store::{Firing, NewReferral};
use crate::track::{logged_path, Live, MAX_USER_LEN};

/// Set once code fires a trigger that `bandits.triggers` does not declare.
static WARNED_UNKNOWN_TRIGGER: AtomicBool = AtomicBool::new(false);

/// Referrals and triggers of one visit, waiting for its response.
#[derive(Default)]
pub(super) struct PartnerRows {
    pub(super) referral: Option<NewReferral>,
    /// Fired by code in the request's handler: recorded unless the response is an error.
    pub(super) fired: Vec<Firing>,
}

impl Visit {
    /// Registers the visitor as referred by partner `uid` (from the query key), if the
    /// capture rule says so: an active partner, not a bot, a path that counts, and the
    /// credit rule. `entry` is the path and query landed on.
    pub(crate) fn refer(&self, live: &Live, uid: &str, entry: &str) {
        if self.facts.bot || !self.facts.counts_here || !is_uid(uid) {
            return;
        }
        let rules = self.runtime.config.partners().rules();
        let active = live.partner(uid).is_some();
        let now = now_ms();
        let mut inner = self.lock();
        let Some(referral) = rules.capture(inner.visitor.referral(), uid, active, now) else {
            return;
        };
        let before = inner.visitor.referral().cloned();
        let visitor = inner.visitor_mut();
        visitor.set_referral(Some(referral.clone()));
        if !visitor.fits() {
            visitor.set_referral(before);
            return;
        }
        let user = self.user_id();
        inner.dirty = true;
        inner.fresh = false;
        inner.partner_rows.get_or_insert_default().referral = Some(NewReferral {
            visitor: inner.visitor.id().to_string(),
            referral,
            entry: logged_path(entry),
            user,
            replaces_older_than: rules.replaces_older_than(now),
        });
        self.partner_rows.store(true, Ordering::Release);
    }

    /// Fires trigger `name` from code for this visitor; recorded when the response
    /// leaves, unless it is an error. Returns whether it may complete: the trigger is
    /// declared and enabled (by the admin's switch, or else the configuration), and the
    /// visitor holds a current referral of an active partner subscribed to it.
    pub(crate) fn fire(&self, live: &Live, name: &str) -> bool {
        let Some(trigger) = self.runtime.config.triggers().get(name) else {
            if !WARNED_UNKNOWN_TRIGGER.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "rocket-bandits: code fired the trigger {name:?}, which bandits.triggers \
                     does not declare; it fires nothing"
                );
            }
            return false;
        };
        let mut inner = self.lock();
        let Some(firing) = self.firing(&inner, live, trigger) else {
            return false;
        };
        let rows = inner.partner_rows.get_or_insert_default();
        if !rows
            .fired
            .iter()
            .any(|fired| fired.trigger == firing.trigger)
        {
            rows.fired.push(firing);
        }
        self.partner_rows.store(true, Ordering::Release);
        true
    }

    /// A signed-in visitor who holds a referral: their user is linked to the stored
    /// referral at the next flush, if it has none (they signed in after following the
    /// partner's link). Costs nothing for a visitor who is not signed in.
    fn link_user(&self) {
        let Some(user) = self.user_id() else {
            return;
        };
        let visitor = {
            let inner = self.lock();
            if inner.visitor.referral().is_none() {
                return;
            }
            inner.visitor.id().to_string()
        };
        self.runtime.tracker.link_user(&visitor, &user);
    }

    /// The signed-in user's id, if the site's user hook knows one and it is not too long
    /// to keep.
    fn user_id(&self) -> Option<String> {
        self.facts
            .user
            .as_ref()
            .map(|user| user.id.clone())
            .filter(|id| id.len() <= MAX_USER_LEN)
    }

    /// What firing `trigger` now for this visitor writes, if it may complete.
    fn firing(&self, inner: &VisitInner, live: &Live, trigger: &Trigger) -> Option<Firing> {
        if !live.trigger_enabled(trigger) || self.facts.bot {
            return None;
        }
        let referral = inner.visitor.referral()?;
        let rules = self.runtime.config.partners().rules();
        let now = now_ms();
        let partner = live.partner(&referral.partner);
        let subscribed = partner.is_some_and(|partner| partner.subscribes_to(trigger.name()));
        if !rules.completes(Some(referral), now, partner.is_some(), subscribed) {
            return None;
        }
        Some(Firing {
            visitor: inner.visitor.id().to_string(),
            trigger: trigger.name().to_string(),
            referral: Some(referral.clone()),
            at: now,
            window_ms: rules.window_ms,
            user: self.user_id(),
        })
    }

    /// When the response leaves: the referral is written if the cookie carrying it is
    /// sent; triggers fired by code are recorded unless the response is an error (a
    /// failed signup pays no one). Costs one atomic load when there is neither.
    pub(crate) fn settle_partners(&self, response: &Response<'_>) {
        self.link_user();
        // A plain load first: the common case (nothing waits) writes nothing shared.
        if !self.partner_rows.load(Ordering::Acquire)
            || !self.partner_rows.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let Some(rows) = self.lock().partner_rows.take() else {
            return;
        };
        let tracker = &self.runtime.tracker;
        if let Some(referral) = rows.referral {
            let prefix = format!("{}=", self.runtime.config.cookie_name());
            let sent = response
                .headers()
                .get("Set-Cookie")
                .any(|value| value.starts_with(&prefix));
            if sent {
                tracker.refer(referral);
            }
        }
        if response.status().code < 400 {
            for firing in rows.fired {
                tracker.fire(firing);
            }
        }
    }
}

/// Fires the triggers that `request`, answered with `status`, fires by configuration,
/// for its visitor: those that describe the request and are enabled, by the admin's
/// switch or else by the configuration. Only called when some trigger is fired by
/// requests.
pub(crate) fn fire_by_request(
    request: &Request<'_>,
    runtime: &std::sync::Arc<crate::runtime::Runtime>,
    status: Status,
) {
    let path = request.uri().path();
    let mut described = runtime
        .config
        .triggers()
        .described_by(request.method().as_str(), path.as_str(), status.code)
        .peekable();
    if described.peek().is_none() {
        return;
    }
    let live = runtime.tracker.live();
    let mut fired = described
        .filter(|trigger| live.trigger_enabled(trigger))
        .peekable();
    if fired.peek().is_none() {
        return;
    }
    let visit = Visit::of(request, runtime);
    let inner = visit.lock();
    for trigger in fired {
        if let Some(firing) = visit.firing(&inner, &live, trigger) {
            runtime.tracker.fire(firing);
        }
    }
}
