//! The HTML of referral partners: the list, a partner's page, and the forms of partners
//! and subscriptions.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::{encode, Page};
use crate::admin::dates::date;
use crate::admin::partner_form::{PartnerForm, SubscriptionForm};
use crate::config::Triggers;
use crate::engine::FieldError;
use crate::store::{
    Delivery, DeliveryState, PartnerTotals, StoredPartner, StoredReferral, StoredSubscription,
};

/// What a partner's page shows.
pub(in crate::admin) struct PartnerPage<'a> {
    pub(in crate::admin) stored: &'a StoredPartner,
    /// The query parameter its links carry its uid in.
    pub(in crate::admin) query_key: &'a str,
    pub(in crate::admin) subscriptions: &'a [StoredSubscription],
    /// The most recently referred first.
    pub(in crate::admin) referrals: &'a [StoredReferral],
    /// The newest first.
    pub(in crate::admin) deliveries: &'a [Delivery],
    /// How many of each the page shows at most.
    pub(in crate::admin) shown: u32,
}

/// The problems of `field`, each in a span beside it.
fn problems(errors: &[FieldError], field: &str) -> Markup {
    html! { @for e in errors { @if e.field == field { span.error role="alert" { (e.rule) } } } }
}

/// The problems of fields the form has no place for (the body, the partner).
fn general<'e>(errors: &'e [FieldError], fields: &[&str]) -> Vec<&'e FieldError> {
    errors
        .iter()
        .filter(|e| !fields.contains(&e.field.as_str()))
        .collect()
}

impl Page<'_> {
    /// The partners list, with what each has brought.
    pub(in crate::admin) fn partners(
        &self,
        csrf: &str,
        partners: &[StoredPartner],
        totals: &BTreeMap<String, PartnerTotals>,
    ) -> Markup {
        let none = PartnerTotals::default();
        self.layout(
            Some(csrf),
            html! {
                h1 { "Partners" }
                p { a href={ (self.prefix) "/partners/new" } { "New partner" } }
                @if partners.is_empty() {
                    p.muted { "No partners yet." }
                } @else {
                    table {
                        thead { tr {
                            th { "Partner" } th { "Uid" } th { "Status" } th.num { "Referred" }
                            th { "Completions" } th.num { "Pending" } th.num { "Delivered" }
                            th.num { "Given up" }
                        } }
                        tbody {
                            @for stored in partners {
                                @let counts = totals.get(&stored.uid).unwrap_or(&none);
                                tr {
                                    td data-label="Partner" {
                                        a href={ (self.prefix) "/partners/" (stored.uid) } { strong { (stored.partner.name()) } }
                                        @if !stored.partner.note().is_empty() { span.note title=(stored.partner.note()) { (stored.partner.note()) } }
                                    }
                                    td data-label="Uid" { code { (stored.uid) } }
                                    td data-label="Status" { (active_badge(stored)) }
                                    td.num data-label="Referred" { (counts.referred) }
                                    td data-label="Completions" {
                                        @if counts.completions.is_empty() { span.muted { "—" } }
                                        @for (trigger, count) in &counts.completions {
                                            div { (trigger) ": " (count) }
                                        }
                                    }
                                    td.num data-label="Pending" { (counts.pending) }
                                    td.num data-label="Delivered" { (counts.delivered) }
                                    td.num data-label="Given up" { (counts.given_up) }
                                }
                            }
                        }
                    }
                    p.muted { (partners.len()) @if partners.len() == 1 { " partner" } @else { " partners" } }
                }
            },
        )
    }

    /// A partner's page: details, link, subscriptions, referred visitors, delivery log.
    pub(in crate::admin) fn partner(&self, csrf: &str, page: &PartnerPage<'_>) -> Markup {
        let stored = page.stored;
        let uid = &stored.uid;
        let base = format!("{}/partners/{uid}", self.prefix);
        self.layout(
            Some(csrf),
            html! {
                p { a href={ (self.prefix) "/partners" } { "← All partners" } }
                h1 { (stored.partner.name()) " " (active_badge(stored)) }
                @if !stored.partner.note().is_empty() { p { (stored.partner.note()) } }
                p.muted {
                    "uid " code { (uid) } " · created " (date(stored.created_at))
                    " · changed " (date(stored.updated_at))
                }
                p {
                    "Its links carry its uid on any page of the site: "
                    code { "/?" (page.query_key) "=" (uid) }
                    @if !stored.partner.active() { " " span.muted { "(inactive: its links register no one)" } }
                }
                p.actions { a href={ (base) "/edit" } { "Edit or deactivate" } }

                h2 { "Subscriptions" }
                @if page.subscriptions.is_empty() {
                    p.muted { "None: this partner is told of nothing." }
                } @else {
                    table {
                        thead { tr { th { "Trigger" } th { "Callback URL" } th { "" } } }
                        tbody {
                            @for subscription in page.subscriptions {
                                tr {
                                    td data-label="Trigger" { (subscription.subscription.trigger()) }
                                    td data-label="Callback URL" { code { (subscription.subscription.callback_url().as_str()) } }
                                    td {
                                        a href={ (base) "/subscriptions/" (subscription.id) "/edit" } { "Edit" }
                                        " · "
                                        a href={ (base) "/subscriptions/" (subscription.id) "/delete" } { "Delete…" }
                                    }
                                }
                            }
                        }
                    }
                }
                p { a href={ (base) "/subscriptions/new" } { "Add a subscription" } }

                h2 { "Referred visitors" }
                @if page.referrals.is_empty() {
                    p.muted { "None yet." }
                } @else {
                    table {
                        thead { tr { th { "Visitor" } th { "When" } th { "Entry" } th { "User" } } }
                        tbody {
                            @for referral in page.referrals {
                                tr {
                                    td data-label="Visitor" {
                                        a href={ (self.prefix) "/activity?visitor=" (encode(&referral.visitor)) } { code { (referral.visitor) } }
                                    }
                                    td data-label="When" { (date(referral.referral.referred_at)) }
                                    td data-label="Entry" { code { (referral.entry) } }
                                    td data-label="User" {
                                        @match &referral.user { Some(user) => (user), None => span.muted { "—" } }
                                    }
                                }
                            }
                        }
                    }
                    (limit_note(page.referrals.len(), page.shown))
                }

                h2 { "Callbacks" }
                @if page.deliveries.is_empty() {
                    p.muted { "None yet." }
                } @else {
                    table {
                        thead { tr {
                            th { "Event" } th { "Trigger" } th { "Visitor" } th { "State" }
                            th.num { "Tries" } th { "Last answer" } th { "When" } th { "" }
                        } }
                        tbody {
                            @for delivery in page.deliveries { (self.delivery_row(csrf, &base, delivery)) }
                        }
                    }
                    (limit_note(page.deliveries.len(), page.shown))
                }
            },
        )
    }

    fn delivery_row(&self, csrf: &str, base: &str, delivery: &Delivery) -> Markup {
        let (state, class) = match delivery.state {
            DeliveryState::Pending => ("pending", ""),
            DeliveryState::Delivered => ("delivered", "won"),
            DeliveryState::GaveUp => ("given up", "switched"),
        };
        html! {
            tr {
                td data-label="Event" { code { (delivery.event_id) } }
                td data-label="Trigger" { (delivery.trigger) }
                td data-label="Visitor" { code { (delivery.visitor) } }
                td data-label="State" { span class={ "badge " (class) } { (state) } }
                td.num data-label="Tries" { (delivery.attempts) }
                td data-label="Last answer" {
                    @if let Some(status) = delivery.last_status { div { "status " (status) } }
                    @if let Some(error) = &delivery.last_error { div.muted { (error) } }
                    @if delivery.last_status.is_none() && delivery.last_error.is_none() { span.muted { "—" } }
                }
                td data-label="When" {
                    @match delivery.state {
                        DeliveryState::Pending => { "next try " (date(delivery.next_try_at)) }
                        DeliveryState::Delivered => { "delivered " (date(delivery.delivered_at.unwrap_or(delivery.next_try_at))) }
                        DeliveryState::GaveUp => { "gave up " (date(delivery.gave_up_at.unwrap_or(delivery.next_try_at))) }
                    }
                }
                td {
                    @if delivery.state != DeliveryState::Delivered {
                        form.inline method="post" action={ (base) "/deliveries/" (encode(&delivery.event_id)) "/retry" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Retry now" }
                        }
                    }
                }
            }
        }
    }

    /// The create or edit form of a partner (`editing` is its uid), each problem beside
    /// its field.
    pub(in crate::admin) fn partner_form(
        &self,
        csrf: &str,
        form: &PartnerForm,
        errors: &[FieldError],
        editing: Option<&str>,
    ) -> Markup {
        let action = match editing {
            Some(uid) => format!("{}/partners/{uid}/edit", self.prefix),
            None => format!("{}/partners/new", self.prefix),
        };
        let back = match editing {
            Some(uid) => format!("{}/partners/{uid}", self.prefix),
            None => format!("{}/partners", self.prefix),
        };
        self.layout(
            Some(csrf),
            html! {
                p { a href=(back) { "← Back" } }
                h1 { (self.title) }
                @if !errors.is_empty() {
                    p.error role="alert" { "Nothing was saved: " (errors.len()) " problem(s) below." }
                    @for e in general(errors, &["name", "note", "active"]) { p.error { (e) } }
                }
                form.flag method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    fieldset {
                        legend { "Partner" }
                        label { "Name" input type="text" name="name" value=(form.name) required placeholder="Acme ads"; }
                        (problems(errors, "name"))
                        label { "Note (the deal, a contact)" textarea name="note" rows="3" { (form.note) } }
                        (problems(errors, "note"))
                        div.checks {
                            label { input type="checkbox" name="active" value="true" checked[form.active]; " active: its links register visitors and its subscriptions complete" }
                        }
                        (problems(errors, "active"))
                        @if editing.is_some() {
                            p.muted { "Partners are never deleted (their referrals, completions and callbacks name them): untick “active” to remove one." }
                        }
                    }
                    button type="submit" { @if editing.is_some() { "Save changes" } @else { "Create partner" } }
                }
            },
        )
    }

    /// The add or edit form of a subscription of `partner` (`editing` is its id): the
    /// trigger chosen among those `triggers` declares, each problem beside its field.
    pub(in crate::admin) fn subscription_form(
        &self,
        csrf: &str,
        partner: &StoredPartner,
        triggers: &Triggers,
        form: &SubscriptionForm,
        errors: &[FieldError],
        editing: Option<i64>,
    ) -> Markup {
        let base = format!("{}/partners/{}", self.prefix, partner.uid);
        let action = match editing {
            Some(id) => format!("{base}/subscriptions/{id}/edit"),
            None => format!("{base}/subscriptions/new"),
        };
        let declared = triggers.get(&form.trigger).is_some();
        self.layout(
            Some(csrf),
            html! {
                p { a href=(base) { "← " (partner.partner.name()) } }
                h1 { (self.title) }
                @if !errors.is_empty() {
                    p.error role="alert" { "Nothing was saved: " (errors.len()) " problem(s) below." }
                    @for e in general(errors, &["trigger", "callback_url"]) { p.error { (e) } }
                }
                @if triggers.iter().next().is_none() {
                    p.error { "The configuration declares no trigger ([[bandits.triggers]]): a subscription needs one." }
                }
                form.flag method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    fieldset {
                        legend { "Subscription of " (partner.partner.name()) }
                        label { "Trigger" select name="trigger" required {
                            @if !declared {
                                option value=(form.trigger) selected { @if form.trigger.is_empty() { "choose a trigger" } @else { (form.trigger) " (not declared)" } }
                            }
                            @for trigger in triggers.iter() {
                                option value=(trigger.name()) selected[trigger.name() == form.trigger] {
                                    (trigger.name())
                                    @if !trigger.enabled() { " (disabled in configuration)" }
                                }
                            }
                        } }
                        (problems(errors, "trigger"))
                        label {
                            "Callback URL: http or https, with {visitor_id}; also {trigger}, {event_id}, {partner}"
                            input type="text" name="callback_url" value=(form.callback_url) required placeholder="https://partner.example/track?visitor={visitor_id}&event={event_id}";
                        }
                        (problems(errors, "callback_url"))
                    }
                    button type="submit" { @if editing.is_some() { "Save changes" } @else { "Add subscription" } }
                }
            },
        )
    }
}

/// "active" or "inactive", as a badge.
fn active_badge(stored: &StoredPartner) -> Markup {
    html! {
        @if stored.partner.active() { span.badge.won { "active" } }
        @else { span.badge.switched { "inactive" } }
    }
}

/// A note under a table cut at `shown` rows.
fn limit_note(len: usize, shown: u32) -> Markup {
    html! {
        @if len as u64 >= u64::from(shown) { p.muted { "The " (shown) " most recent." } }
    }
}
