//! The forms of referral partners and their subscriptions: each read into the JSON body
//! the API takes, and validated by the same code
//! ([`parse_partner`](crate::input::parse_partner),
//! [`parse_subscription`](crate::input::parse_subscription)).

use rocket::form::FromForm;
use rocket::serde::json::{json, Value};

use super::session::WithCsrf;
use crate::store::{StoredPartner, StoredSubscription};

/// A partner's fields as typed. Every field may be missing, so that a forged post
/// without the CSRF token is refused for that (403), not for its shape.
#[derive(Debug, Clone, Default, FromForm)]
pub(super) struct PartnerForm {
    pub(super) csrf: Option<String>,
    #[field(default = String::new())]
    pub(super) name: String,
    #[field(default = String::new())]
    pub(super) note: String,
    /// An unticked box sends nothing: false.
    pub(super) active: bool,
}

impl PartnerForm {
    /// An empty form for a new partner, active.
    pub(super) fn new_partner() -> PartnerForm {
        PartnerForm {
            active: true,
            ..<PartnerForm as Default>::default()
        }
    }

    /// The form showing `stored`.
    pub(super) fn from_stored(stored: &StoredPartner) -> PartnerForm {
        PartnerForm {
            csrf: None,
            name: stored.partner.name().to_string(),
            note: stored.partner.note().to_string(),
            active: stored.partner.active(),
        }
    }

    /// The body the API would take: every field, so an edit replaces them all.
    pub(super) fn to_json(&self) -> Value {
        json!({ "name": self.name, "note": self.note, "active": self.active })
    }
}

impl WithCsrf for PartnerForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// A subscription's fields as typed; its partner is the one in the path.
#[derive(Debug, Clone, Default, FromForm)]
pub(super) struct SubscriptionForm {
    pub(super) csrf: Option<String>,
    #[field(default = String::new())]
    pub(super) trigger: String,
    #[field(default = String::new())]
    pub(super) callback_url: String,
}

impl SubscriptionForm {
    /// The form showing `stored`.
    pub(super) fn from_stored(stored: &StoredSubscription) -> SubscriptionForm {
        SubscriptionForm {
            csrf: None,
            trigger: stored.subscription.trigger().to_string(),
            callback_url: stored.subscription.callback_url().as_str().to_string(),
        }
    }

    /// The body the API would take.
    pub(super) fn to_json(&self) -> Value {
        json!({ "trigger": self.trigger, "callback_url": self.callback_url })
    }
}

impl WithCsrf for SubscriptionForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}
