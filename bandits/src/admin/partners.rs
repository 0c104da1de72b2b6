//! The admin's referral partners: the list with their counts, a partner's page with its
//! subscriptions, referred visitors and delivery log ("retry now" on a callback not yet
//! delivered), and the forms that create and edit partners and subscriptions. Partners
//! are never deleted, as in the API: deactivating one is how it is removed.

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, Route};

use super::partner_form::{PartnerForm, SubscriptionForm};
use super::session::Checked;
use super::{AdminPage, CsrfOnly};
use crate::clock::now_ms;
use crate::engine::{FieldError, Rule};
use crate::input::{parse_partner, parse_subscription, store_status};
use crate::runtime::{reload, Reloader};
use crate::store::{StoreError, StoredPartner, StoredSubscription};

/// Referred visitors and callbacks a partner's page shows, newest first.
const RECENT: u32 = 50;

pub(super) fn routes() -> Vec<Route> {
    routes![
        list,
        partner_page,
        new_form,
        create,
        edit_form,
        update,
        new_subscription_form,
        subscribe,
        edit_subscription_form,
        update_subscription,
        confirm_unsubscribe,
        unsubscribe,
        retry
    ]
}

/// A page answering with `status` and one message.
type Refusal = (Status, maud::Markup);

impl AdminPage<'_> {
    /// Partner `uid` as stored; a 404 page when there is none.
    async fn partner(&self, uid: &str) -> Result<StoredPartner, Refusal> {
        self.store()
            .partner(uid)
            .await
            .map_err(|error| self.refusal(&error, "There is no such partner."))
    }

    /// Subscription `id` of partner `uid`; a 404 page when the partner has none such.
    async fn subscription(&self, uid: &str, id: i64) -> Result<StoredSubscription, Refusal> {
        self.partner(uid).await?;
        let subscriptions = self
            .store()
            .subscriptions()
            .await
            .map_err(|error| self.refusal(&error, ""))?;
        subscriptions
            .into_iter()
            .find(|stored| stored.id == id && stored.subscription.partner() == uid)
            .ok_or_else(|| self.not_found("This partner has no such subscription."))
    }

    /// A 404 page saying `text`.
    fn not_found(&self, text: &str) -> Refusal {
        (Status::NotFound, self.page("Not Found").message(text))
    }

    /// The page answering a store's refusal: `missing` for what is not there (404), the
    /// database's absence otherwise.
    fn refusal(&self, error: &StoreError, missing: &str) -> Refusal {
        let status = store_status(error);
        let text = match status {
            Status::NotFound if !missing.is_empty() => missing,
            Status::ServiceUnavailable => "The database is unreachable. Try again later.",
            _ => "Something went wrong.",
        };
        (
            status,
            self.page(status.reason().unwrap_or("Error")).message(text),
        )
    }

    /// After a change: this instance reloads, and the browser goes to partner `uid`'s
    /// page.
    async fn to_partner(&self, live: Reloader, uid: &str) -> Redirect {
        reload(live).await;
        Redirect::to(format!("{}/partners/{uid}", self.config.admin_prefix()))
    }
}

#[get("/partners")]
async fn list(admin: AdminPage<'_>) -> Result<maud::Markup, Refusal> {
    let store = admin.store();
    let partners = store
        .partners()
        .await
        .map_err(|error| admin.refusal(&error, ""))?;
    let totals = store
        .partner_totals()
        .await
        .map_err(|error| admin.refusal(&error, ""))?;
    Ok(admin
        .page("Partners")
        .partners(admin.csrf(), &partners, &totals))
}

#[get("/partners/<uid>")]
async fn partner_page(admin: AdminPage<'_>, uid: &str) -> Result<maud::Markup, Refusal> {
    let stored = admin.partner(uid).await?;
    let store = admin.store();
    let unavailable = |error: StoreError| admin.refusal(&error, "");
    let subscriptions: Vec<StoredSubscription> = store
        .subscriptions()
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|stored| stored.subscription.partner() == uid)
        .collect();
    let referrals = store.referrals_of(uid, RECENT).await.map_err(unavailable)?;
    let deliveries = store
        .callback_deliveries(Some(uid), RECENT)
        .await
        .map_err(unavailable)?;
    let page = super::pages::PartnerPage {
        stored: &stored,
        query_key: admin.config.partners().query_key(),
        subscriptions: &subscriptions,
        referrals: &referrals,
        deliveries: &deliveries,
        shown: RECENT,
    };
    Ok(admin
        .page(stored.partner.name())
        .partner(admin.csrf(), &page))
}

#[get("/partners/new")]
fn new_form(admin: AdminPage<'_>) -> maud::Markup {
    admin
        .page("New partner")
        .partner_form(admin.csrf(), &PartnerForm::new_partner(), &[], None)
}

/// Saves `form` as a new partner, or as partner `editing`; or shows it again, with each
/// problem beside its field (422) and nothing saved.
async fn save_partner(
    admin: &AdminPage<'_>,
    live: Reloader,
    form: PartnerForm,
    editing: Option<&str>,
) -> Result<Redirect, Refusal> {
    let title = if editing.is_some() {
        "Edit partner"
    } else {
        "New partner"
    };
    if let Some(uid) = editing {
        admin.partner(uid).await?;
    }
    let again = |errors: Vec<FieldError>| {
        (
            Status::UnprocessableEntity,
            admin
                .page(title)
                .partner_form(admin.csrf(), &form, &errors, editing),
        )
    };
    let partner = parse_partner(form.to_json(), None).map_err(again)?;
    let store = admin.store();
    let saved = match editing {
        Some(uid) => store.update_partner(uid, &partner, now_ms()).await,
        None => store.create_partner(&partner, now_ms()).await,
    };
    let stored = saved.map_err(|error| admin.refusal(&error, "There is no such partner."))?;
    Ok(admin.to_partner(live, &stored.uid).await)
}

#[post("/partners/new", data = "<form>")]
async fn create(
    admin: AdminPage<'_>,
    live: Reloader,
    form: Checked<PartnerForm>,
) -> Result<Redirect, Refusal> {
    save_partner(&admin, live, form.0, None).await
}

#[get("/partners/<uid>/edit")]
async fn edit_form(admin: AdminPage<'_>, uid: &str) -> Result<maud::Markup, Refusal> {
    let stored = admin.partner(uid).await?;
    Ok(admin.page("Edit partner").partner_form(
        admin.csrf(),
        &PartnerForm::from_stored(&stored),
        &[],
        Some(uid),
    ))
}

#[post("/partners/<uid>/edit", data = "<form>")]
async fn update(
    admin: AdminPage<'_>,
    live: Reloader,
    uid: &str,
    form: Checked<PartnerForm>,
) -> Result<Redirect, Refusal> {
    save_partner(&admin, live, form.0, Some(uid)).await
}

#[get("/partners/<uid>/subscriptions/new")]
async fn new_subscription_form(admin: AdminPage<'_>, uid: &str) -> Result<maud::Markup, Refusal> {
    let stored = admin.partner(uid).await?;
    let form = <SubscriptionForm as Default>::default();
    Ok(admin.page("New subscription").subscription_form(
        admin.csrf(),
        &stored,
        admin.config.triggers(),
        &form,
        &[],
        None,
    ))
}

/// Saves `form` as a new subscription of partner `uid`, or as its subscription
/// `editing`; or shows it again with each problem beside its field (422), or with the
/// store's refusal (409 for the same subscription twice), nothing saved.
async fn save_subscription(
    admin: &AdminPage<'_>,
    live: Reloader,
    uid: &str,
    form: SubscriptionForm,
    editing: Option<i64>,
) -> Result<Redirect, Refusal> {
    let title = if editing.is_some() {
        "Edit subscription"
    } else {
        "New subscription"
    };
    let partner = admin.partner(uid).await?;
    if let Some(id) = editing {
        admin.subscription(uid, id).await?;
    }
    let triggers = admin.config.triggers();
    let again = |status: Status, errors: Vec<FieldError>| {
        (
            status,
            admin.page(title).subscription_form(
                admin.csrf(),
                &partner,
                triggers,
                &form,
                &errors,
                editing,
            ),
        )
    };
    let subscription = parse_subscription(form.to_json(), uid, triggers)
        .map_err(|errors| again(Status::UnprocessableEntity, errors))?;
    let store = admin.store();
    let saved = match editing {
        Some(id) => store
            .update_subscription(id, &subscription, now_ms())
            .await
            .map(|_| ()),
        None => store.subscribe(&subscription, now_ms()).await.map(|_| ()),
    };
    match saved {
        Ok(()) => Ok(admin.to_partner(live, uid).await),
        Err(error @ StoreError::SubscriptionExists { .. }) => Err(again(
            store_status(&error),
            vec![FieldError::new(
                "body",
                Rule::NotSaved {
                    message: error.to_string(),
                },
            )],
        )),
        Err(error) => Err(admin.refusal(&error, "There is no such subscription.")),
    }
}

#[post("/partners/<uid>/subscriptions/new", data = "<form>")]
async fn subscribe(
    admin: AdminPage<'_>,
    live: Reloader,
    uid: &str,
    form: Checked<SubscriptionForm>,
) -> Result<Redirect, Refusal> {
    save_subscription(&admin, live, uid, form.0, None).await
}

#[get("/partners/<uid>/subscriptions/<id>/edit")]
async fn edit_subscription_form(
    admin: AdminPage<'_>,
    uid: &str,
    id: i64,
) -> Result<maud::Markup, Refusal> {
    let partner = admin.partner(uid).await?;
    let stored = admin.subscription(uid, id).await?;
    Ok(admin.page("Edit subscription").subscription_form(
        admin.csrf(),
        &partner,
        admin.config.triggers(),
        &SubscriptionForm::from_stored(&stored),
        &[],
        Some(id),
    ))
}

#[post("/partners/<uid>/subscriptions/<id>/edit", data = "<form>")]
async fn update_subscription(
    admin: AdminPage<'_>,
    live: Reloader,
    uid: &str,
    id: i64,
    form: Checked<SubscriptionForm>,
) -> Result<Redirect, Refusal> {
    save_subscription(&admin, live, uid, form.0, Some(id)).await
}

/// The page asking to confirm the deletion of subscription `id`.
#[get("/partners/<uid>/subscriptions/<id>/delete")]
async fn confirm_unsubscribe(
    admin: AdminPage<'_>,
    uid: &str,
    id: i64,
) -> Result<maud::Markup, Refusal> {
    let partner = admin.partner(uid).await?;
    let stored = admin.subscription(uid, id).await?;
    let text = format!(
        "Delete the subscription of {} to “{}” ({})? Its trigger completes nothing more \
         for this partner; callbacks already written are still sent.",
        partner.partner.name(),
        stored.subscription.trigger(),
        stored.subscription.callback_url().as_str(),
    );
    Ok(admin.page("Delete subscription").confirm(
        admin.csrf(),
        &text,
        &format!("/partners/{uid}/subscriptions/{id}/delete"),
        "Delete subscription",
        &format!("/partners/{uid}"),
    ))
}

#[post("/partners/<uid>/subscriptions/<id>/delete", data = "<_form>")]
async fn unsubscribe(
    admin: AdminPage<'_>,
    live: Reloader,
    uid: &str,
    id: i64,
    _form: Checked<CsrfOnly<'_>>,
) -> Result<Redirect, Refusal> {
    admin.subscription(uid, id).await?;
    admin
        .store()
        .unsubscribe(id)
        .await
        .map_err(|error| admin.refusal(&error, "There is no such subscription."))?;
    Ok(admin.to_partner(live, uid).await)
}

/// "Retry now": a pending or given-up callback of partner `uid` becomes due at once (the
/// sender takes it at its next round); a delivered one is refused with 409.
#[post("/partners/<uid>/deliveries/<event_id>/retry", data = "<_form>")]
async fn retry(
    admin: AdminPage<'_>,
    uid: &str,
    event_id: &str,
    _form: Checked<CsrfOnly<'_>>,
) -> Result<Redirect, Refusal> {
    let store = admin.store();
    let missing = "This partner has no such callback.";
    let found = store
        .callback_delivery(event_id)
        .await
        .map_err(|error| admin.refusal(&error, missing))?
        .filter(|delivery| delivery.partner == uid);
    if found.is_none() {
        return Err(admin.not_found(missing));
    }
    // The store's update skips a delivered callback, so one check covers a callback
    // delivered before the request and one delivered while it ran.
    let retried = store
        .retry_callback_now(event_id, now_ms())
        .await
        .map_err(|error| admin.refusal(&error, missing))?;
    if !retried {
        return Err((
            Status::Conflict,
            admin
                .page("Already delivered")
                .message("This callback was delivered: there is nothing to retry."),
        ));
    }
    Ok(Redirect::to(format!(
        "{}/partners/{uid}",
        admin.config.admin_prefix()
    )))
}
