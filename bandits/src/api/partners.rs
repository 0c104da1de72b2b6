//! The API's referral partners: partners with their counts, subscriptions, and the
//! delivery log of their callbacks with "retry now" (triggers have a file of their own).
//! A change is seen at once on this instance and by the others at their next flush.

use std::collections::BTreeMap;

use rocket::http::{Header, Status};
use rocket::serde::json::{Json, Value};
use rocket::{delete, get, patch, post, put, routes, Responder, Route};
use serde::Serialize;

use crate::api::answer::{failure, invalid, to_json, Failure, JsonBody};
use crate::api::declared::Declared;
use crate::auth::Admin;
use crate::database::BanditsDatabase;
use crate::input::{parse_partner, parse_subscription, store_status};
use crate::runtime::{reload, Reloader};
use crate::store::{
    Delivery, DeliveryState, PartnerTotals, StoreError, StoredPartner, StoredReferral,
    StoredSubscription,
};

/// How many referred visitors and deliveries a partner's answer shows unless asked.
const DEFAULT_RECENT: u32 = 20;
/// The most it shows however many are asked for.
const MAX_RECENT: u32 = 500;

pub(crate) fn routes() -> Vec<Route> {
    routes![
        list,
        create,
        read,
        replace,
        edit,
        remove,
        subscribe,
        update_subscription,
        unsubscribe,
        retry
    ]
}

fn store_failure(error: StoreError) -> Failure {
    failure(store_status(&error), error.to_string())
}

fn now() -> i64 {
    crate::clock::now_ms()
}

/// A partner's details.
#[derive(Serialize)]
struct PartnerAnswer<'a> {
    uid: &'a str,
    name: &'a str,
    active: bool,
    note: &'a str,
    created_at: i64,
    updated_at: i64,
}

impl<'a> From<&'a StoredPartner> for PartnerAnswer<'a> {
    fn from(stored: &'a StoredPartner) -> Self {
        PartnerAnswer {
            uid: &stored.uid,
            name: stored.partner.name(),
            active: stored.partner.active(),
            note: stored.partner.note(),
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        }
    }
}

/// What a partner has brought: referred visitors, completions per trigger, callbacks by
/// where they stand.
#[derive(Serialize)]
struct Counts {
    referred: i64,
    completions: BTreeMap<String, i64>,
    deliveries: DeliveryCounts,
}

#[derive(Serialize)]
struct DeliveryCounts {
    pending: i64,
    delivered: i64,
    given_up: i64,
}

impl From<PartnerTotals> for Counts {
    fn from(totals: PartnerTotals) -> Self {
        Counts {
            referred: totals.referred,
            completions: totals.completions,
            deliveries: DeliveryCounts {
                pending: totals.pending,
                delivered: totals.delivered,
                given_up: totals.given_up,
            },
        }
    }
}

#[derive(Serialize)]
struct ListedPartner<'a> {
    #[serde(flatten)]
    partner: PartnerAnswer<'a>,
    counts: Counts,
}

#[derive(Serialize)]
struct PartnerList<'a> {
    partners: Vec<ListedPartner<'a>>,
}

#[derive(Serialize)]
struct SubscriptionAnswer<'a> {
    id: i64,
    partner: &'a str,
    trigger: &'a str,
    callback_url: &'a str,
    created_at: i64,
    updated_at: i64,
}

impl<'a> From<&'a StoredSubscription> for SubscriptionAnswer<'a> {
    fn from(stored: &'a StoredSubscription) -> Self {
        SubscriptionAnswer {
            id: stored.id,
            partner: stored.subscription.partner(),
            trigger: stored.subscription.trigger(),
            callback_url: stored.subscription.callback_url().as_str(),
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        }
    }
}

#[derive(Serialize)]
struct ReferralAnswer<'a> {
    visitor: &'a str,
    referred_at: i64,
    entry: &'a str,
    user: Option<&'a str>,
}

impl<'a> From<&'a StoredReferral> for ReferralAnswer<'a> {
    fn from(stored: &'a StoredReferral) -> Self {
        ReferralAnswer {
            visitor: &stored.visitor,
            referred_at: stored.referral.referred_at,
            entry: &stored.entry,
            user: stored.user.as_deref(),
        }
    }
}

/// One callback of the delivery log. `next_try_at` is set while it is pending only.
#[derive(Serialize)]
struct DeliveryAnswer<'a> {
    event_id: &'a str,
    trigger: &'a str,
    visitor: &'a str,
    state: &'static str,
    attempts: i64,
    created_at: i64,
    next_try_at: Option<i64>,
    delivered_at: Option<i64>,
    gave_up_at: Option<i64>,
    last_status: Option<u16>,
    last_error: Option<&'a str>,
}

impl<'a> From<&'a Delivery> for DeliveryAnswer<'a> {
    fn from(delivery: &'a Delivery) -> Self {
        let state = match delivery.state {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::GaveUp => "given_up",
        };
        DeliveryAnswer {
            event_id: &delivery.event_id,
            trigger: &delivery.trigger,
            visitor: &delivery.visitor,
            state,
            attempts: delivery.attempts,
            created_at: delivery.created_at,
            next_try_at: (delivery.state == DeliveryState::Pending).then_some(delivery.next_try_at),
            delivered_at: delivery.delivered_at,
            gave_up_at: delivery.gave_up_at,
            last_status: delivery.last_status,
            last_error: delivery.last_error.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct PartnerPage<'a> {
    #[serde(flatten)]
    partner: PartnerAnswer<'a>,
    subscriptions: Vec<SubscriptionAnswer<'a>>,
    referrals: Vec<ReferralAnswer<'a>>,
    deliveries: Vec<DeliveryAnswer<'a>>,
}

#[get("/partners")]
async fn list(_admin: Admin, db: &BanditsDatabase) -> Result<Json<Value>, Failure> {
    let store = db.store();
    let partners = store.partners().await.map_err(store_failure)?;
    let mut totals = store.partner_totals().await.map_err(store_failure)?;
    let answer = PartnerList {
        partners: partners
            .iter()
            .map(|stored| ListedPartner {
                partner: PartnerAnswer::from(stored),
                counts: totals.remove(&stored.uid).unwrap_or_default().into(),
            })
            .collect(),
    };
    to_json(&answer)
}

#[post("/partners", data = "<body>")]
async fn create(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    body: JsonBody,
) -> Result<(Status, Json<Value>), Failure> {
    let partner = parse_partner(body.0, None).map_err(invalid)?;
    let stored = db
        .store()
        .create_partner(&partner, now())
        .await
        .map_err(store_failure)?;
    reload(live).await;
    Ok((Status::Created, to_json(&PartnerAnswer::from(&stored))?))
}

#[get("/partners/<uid>?<referrals>&<deliveries>")]
async fn read(
    _admin: Admin,
    db: &BanditsDatabase,
    uid: &str,
    referrals: Option<u32>,
    deliveries: Option<u32>,
) -> Result<Json<Value>, Failure> {
    let store = db.store();
    let stored = store.partner(uid).await.map_err(store_failure)?;
    let subscriptions: Vec<StoredSubscription> = store
        .subscriptions()
        .await
        .map_err(store_failure)?
        .into_iter()
        .filter(|subscription| subscription.subscription.partner() == uid)
        .collect();
    let limit = |asked: Option<u32>| asked.unwrap_or(DEFAULT_RECENT).min(MAX_RECENT);
    let recent = store
        .referrals_of(uid, limit(referrals))
        .await
        .map_err(store_failure)?;
    let log = store
        .callback_deliveries(Some(uid), limit(deliveries))
        .await
        .map_err(store_failure)?;
    let page = PartnerPage {
        partner: PartnerAnswer::from(&stored),
        subscriptions: subscriptions.iter().map(SubscriptionAnswer::from).collect(),
        referrals: recent.iter().map(ReferralAnswer::from).collect(),
        deliveries: log.iter().map(DeliveryAnswer::from).collect(),
    };
    to_json(&page)
}

/// `PUT` replaces the partner's fields (a field left out takes its default); `PATCH`
/// changes only those given.
async fn change(
    db: &BanditsDatabase,
    live: Reloader,
    uid: &str,
    body: JsonBody,
    keep_the_rest: bool,
) -> Result<Json<Value>, Failure> {
    let store = db.store();
    let before = store.partner(uid).await.map_err(store_failure)?;
    let partner =
        parse_partner(body.0, keep_the_rest.then_some(&before.partner)).map_err(invalid)?;
    let stored = store
        .update_partner(uid, &partner, now())
        .await
        .map_err(store_failure)?;
    reload(live).await;
    to_json(&PartnerAnswer::from(&stored))
}

#[put("/partners/<uid>", data = "<body>")]
async fn replace(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    uid: &str,
    body: JsonBody,
) -> Result<Json<Value>, Failure> {
    change(db, live, uid, body, false).await
}

#[patch("/partners/<uid>", data = "<body>")]
async fn edit(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    uid: &str,
    body: JsonBody,
) -> Result<Json<Value>, Failure> {
    change(db, live, uid, body, true).await
}

/// The answer to `DELETE` on a partner: partners are never deleted.
#[derive(Responder)]
#[response(status = 405)]
struct NotDeleted {
    body: Json<Value>,
    allow: Header<'static>,
}

/// Refused (405): a partner's referrals, completions and delivery log name it, and its
/// links are out in the world. `PATCH` with `{"active": false}` switches it off instead.
#[delete("/partners/<uid>")]
async fn remove(_admin: Admin, db: &BanditsDatabase, uid: &str) -> Result<NotDeleted, Failure> {
    db.store().partner(uid).await.map_err(store_failure)?;
    let (_, body) = failure(
        Status::MethodNotAllowed,
        "partners are not deleted (their referrals, completions and callbacks name them): \
         deactivate with PATCH {\"active\": false}",
    );
    Ok(NotDeleted {
        body,
        allow: Header::new("Allow", "GET, PUT, PATCH"),
    })
}

/// Subscription `id` of partner `uid`, or 404 when the partner has no such subscription.
async fn subscription_of(
    db: &BanditsDatabase,
    uid: &str,
    id: i64,
) -> Result<StoredSubscription, Failure> {
    let store = db.store();
    store.partner(uid).await.map_err(store_failure)?;
    store
        .subscriptions()
        .await
        .map_err(store_failure)?
        .into_iter()
        .find(|stored| stored.id == id && stored.subscription.partner() == uid)
        .ok_or_else(|| store_failure(StoreError::NoSubscription(id)))
}

#[post("/partners/<uid>/subscriptions", data = "<body>")]
async fn subscribe(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    declared: Declared,
    uid: &str,
    body: JsonBody,
) -> Result<(Status, Json<Value>), Failure> {
    let store = db.store();
    store.partner(uid).await.map_err(store_failure)?;
    let subscription = parse_subscription(body.0, uid, &declared.0).map_err(invalid)?;
    let stored = store
        .subscribe(&subscription, now())
        .await
        .map_err(store_failure)?;
    reload(live).await;
    Ok((
        Status::Created,
        to_json(&SubscriptionAnswer::from(&stored))?,
    ))
}

#[put("/partners/<uid>/subscriptions/<id>", data = "<body>")]
async fn update_subscription(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    declared: Declared,
    uid: &str,
    id: i64,
    body: JsonBody,
) -> Result<Json<Value>, Failure> {
    subscription_of(db, uid, id).await?;
    let subscription = parse_subscription(body.0, uid, &declared.0).map_err(invalid)?;
    let stored = db
        .store()
        .update_subscription(id, &subscription, now())
        .await
        .map_err(store_failure)?;
    reload(live).await;
    to_json(&SubscriptionAnswer::from(&stored))
}

#[delete("/partners/<uid>/subscriptions/<id>")]
async fn unsubscribe(
    _admin: Admin,
    db: &BanditsDatabase,
    live: Reloader,
    uid: &str,
    id: i64,
) -> Result<Status, Failure> {
    subscription_of(db, uid, id).await?;
    db.store().unsubscribe(id).await.map_err(store_failure)?;
    reload(live).await;
    Ok(Status::NoContent)
}

/// "Retry now": a pending or given-up callback becomes due at once (the sender takes it
/// at its next round); a delivered one is refused with 409.
#[post("/partners/<uid>/deliveries/<event_id>/retry")]
async fn retry(
    _admin: Admin,
    db: &BanditsDatabase,
    uid: &str,
    event_id: &str,
) -> Result<Json<Value>, Failure> {
    let store = db.store();
    let missing = || {
        failure(
            Status::NotFound,
            format!("partner {uid:?} has no callback {event_id:?}"),
        )
    };
    store
        .callback_delivery(event_id)
        .await
        .map_err(store_failure)?
        .filter(|delivery| delivery.partner == uid)
        .ok_or_else(missing)?;
    // The store's update skips a delivered callback, so one check covers a callback
    // delivered before the request and one delivered while it ran.
    if !store
        .retry_callback_now(event_id, now())
        .await
        .map_err(store_failure)?
    {
        return Err(failure(
            Status::Conflict,
            format!("callback {event_id:?} was delivered: there is nothing to retry"),
        ));
    }
    let after = store
        .callback_delivery(event_id)
        .await
        .map_err(store_failure)?
        .ok_or_else(missing)?;
    to_json(&DeliveryAnswer::from(&after))
}
