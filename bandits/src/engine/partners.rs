//! Referral partners (django-affiliate-tracking's model): who sent a visitor, and when a
//! trigger that visitor fires pays the partner.
//!
//! - A [`Partner`] is a site's deal with someone who sends it traffic, known by a `uid` of
//!   [`UID_LEN`] random letters and digits that their links carry
//!   (`?affiliate_id=Ab3dE6gH`).
//! - A [`Trigger`] is a named event the site pays for ("User registered"), declared in
//!   the configuration and fired by a request the fairing sees or by code.
//! - A [`Subscription`] ties a partner to a trigger, with the [`CallbackUrl`] to call when
//!   it completes.
//! - A [`Referral`] is what the visitor cookie remembers: which partner sent the visitor,
//!   and when. [`ReferralRules`] say who keeps the credit when a second partner's link is
//!   followed ([`Credit`]) and how long a referral lasts, and decide both capture and
//!   completion.
//!
//! Pure: the fairing, the flush and the tests all ask these functions.
//!
//! ```
//! use bandits::engine::partners::{Credit, Referral, ReferralRules};
//!
//! const DAY: i64 = 24 * 60 * 60 * 1000;
//! let rules = ReferralRules::new(Credit::First, 30);
//!
//! // A first link registers the visitor; a second partner's does not take the credit.
//! let referral = rules.capture(None, "Ab3dE6gH", true, 0).expect("registered");
//! assert_eq!(rules.capture(Some(&referral), "Zz9yX8wV", true, DAY), None);
//! // An inactive partner's link registers no one.
//! assert_eq!(rules.capture(None, "Zz9yX8wV", false, 0), None);
//!
//! // A trigger completes within the window, for a subscribed, active partner only.
//! assert!(rules.completes(Some(&referral), 29 * DAY, true, true));
//! assert!(!rules.completes(Some(&referral), 30 * DAY, true, true));
//! assert!(!rules.completes(Some(&referral), DAY, false, true));
//! assert!(!rules.completes(Some(&referral), DAY, true, false));
//! assert!(!rules.completes(None, DAY, true, true));
//! ```

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{FieldError, Rule, MAX_NAME_LEN, MAX_NOTE_LEN};

mod callback;
mod trigger;

pub use callback::{CallbackUrl, Placeholders, MAX_CALLBACK_URL_LEN, PLACEHOLDERS};
pub use trigger::{StatusClasses, Trigger, TriggerDefinition};

/// Length of a partner's uid: letters and digits, as django-affiliate-tracking's.
pub const UID_LEN: usize = 8;

/// A day in milliseconds.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How many days a referral lasts unless `bandits.partners.window_days` says otherwise
/// (django-affiliate-tracking's default too).
pub const DEFAULT_WINDOW_DAYS: u32 = 30;

/// Whether `text` is a partner uid: exactly [`UID_LEN`] ASCII letters and digits. Checked
/// before anything a visitor sends is looked up or kept.
pub fn is_uid(text: &str) -> bool {
    text.len() == UID_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A fresh uid: [`UID_LEN`] random ASCII letters and digits.
///
/// ```
/// let uid = bandits::engine::partners::new_uid(&mut rand::rng());
/// assert!(bandits::engine::partners::is_uid(&uid));
/// ```
pub fn new_uid<R: Rng + ?Sized>(rng: &mut R) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..UID_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A partner as an admin enters it: read field by field, then [`validate`](Self::validate)d.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerDefinition {
    /// Who the partner is, for people: 1 to 100 characters.
    pub name: String,
    /// Whether the partner's links register visitors and its subscriptions complete.
    #[serde(default = "yes")]
    pub active: bool,
    /// Free text for the admins (the deal, a contact).
    #[serde(default)]
    pub note: String,
}

fn yes() -> bool {
    true
}

/// A valid partner's details (its uid is given when it is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partner {
    name: String,
    active: bool,
    note: String,
}

impl PartnerDefinition {
    /// An active partner called `name`, without a note.
    pub fn new(name: impl Into<String>) -> Self {
        PartnerDefinition {
            name: name.into(),
            active: true,
            note: String::new(),
        }
    }

    /// Every field checked; the errors name the fields (`name`, `note`).
    ///
    /// ```
    /// use bandits::engine::partners::PartnerDefinition;
    /// let errors = PartnerDefinition::new("").validate().unwrap_err();
    /// assert_eq!(errors[0].field, "name");
    /// ```
    pub fn validate(self) -> Result<Partner, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = self.name.trim().to_string();
        if let Err(rule) = check_label(&name, 1, MAX_NAME_LEN) {
            errors.push(FieldError::new("name", rule));
        }
        if let Err(rule) = check_length(&self.note, 0, MAX_NOTE_LEN) {
            errors.push(FieldError::new("note", rule));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Partner {
            name,
            active: self.active,
            note: self.note,
        })
    }
}

impl Partner {
    /// The partner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the partner is active.
    pub fn active(&self) -> bool {
        self.active
    }

    /// The admins' note.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// The same partner, switched on or off.
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = active;
        self
    }
}

/// A subscription as an admin enters it: partner `partner` is paid for trigger `trigger`
/// by a call to `callback_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDefinition {
    /// The partner's uid.
    pub partner: String,
    /// The trigger's name, as declared in `bandits.triggers`.
    pub trigger: String,
    /// Where to report a completion ([`CallbackUrl`]).
    pub callback_url: String,
}

/// A valid subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    partner: String,
    trigger: String,
    callback_url: CallbackUrl,
}

impl SubscriptionDefinition {
    /// Every field checked; the errors name the fields (`partner`, `trigger`,
    /// `callback_url`).
    ///
    /// ```
    /// use bandits::engine::partners::SubscriptionDefinition;
    /// let errors = SubscriptionDefinition {
    ///     partner: "Ab3dE6gH".into(),
    ///     trigger: "User registered".into(),
    ///     callback_url: "ftp://partner.example/{visitor_id}".into(),
    /// }
    /// .validate()
    /// .unwrap_err();
    /// assert_eq!(errors[0].field, "callback_url");
    /// ```
    pub fn validate(self) -> Result<Subscription, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !is_uid(&self.partner) {
            errors.push(FieldError::new(
                "partner",
                Rule::NotAUid {
                    found: self.partner.chars().take(40).collect(),
                },
            ));
        }
        if let Err(rule) = trigger::check_name(&self.trigger) {
            errors.push(FieldError::new("trigger", rule));
        }
        let callback_url = match CallbackUrl::parse(&self.callback_url) {
            Ok(url) => Some(url),
            Err(error) => {
                errors.push(error);
                None
            }
        };
        match callback_url {
            Some(callback_url) if errors.is_empty() => Ok(Subscription {
                partner: self.partner,
                trigger: self.trigger,
                callback_url,
            }),
            _ => Err(errors),
        }
    }
}

impl Subscription {
    /// The partner's uid.
    pub fn partner(&self) -> &str {
        &self.partner
    }

    /// The trigger's name.
    pub fn trigger(&self) -> &str {
        &self.trigger
    }

    /// The callback URL.
    pub fn callback_url(&self) -> &CallbackUrl {
        &self.callback_url
    }
}

/// Who keeps the credit when a visitor referred by one partner follows another partner's
/// link within the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Credit {
    /// The first partner keeps the visitor until the referral expires (the default).
    #[default]
    First,
    /// The partner whose link was followed last takes the visitor.
    Last,
}

/// A visitor's referral, as the visitor cookie carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// The partner's uid.
    pub partner: String,
    /// When the visitor followed the partner's link (milliseconds since the Unix epoch).
    pub referred_at: i64,
}

/// How referrals are captured and when they complete: the credit rule and the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferralRules {
    /// Who keeps the credit.
    pub credit: Credit,
    /// How long a referral lasts, in milliseconds.
    pub window_ms: i64,
}

impl Default for ReferralRules {
    /// The first partner keeps the credit for [`DEFAULT_WINDOW_DAYS`].
    fn default() -> Self {
        ReferralRules::new(Credit::First, DEFAULT_WINDOW_DAYS)
    }
}

impl ReferralRules {
    /// `credit`, with referrals lasting `window_days` days.
    pub fn new(credit: Credit, window_days: u32) -> Self {
        ReferralRules {
            credit,
            window_ms: i64::from(window_days) * DAY_MS,
        }
    }

    /// Whether `referral` still counts at `now`: from its time to one window later,
    /// that instant excluded.
    pub fn is_current(&self, referral: &Referral, now: i64) -> bool {
        referral.referred_at <= now && now < referral.referred_at.saturating_add(self.window_ms)
    }

    /// The partner a visitor holding `referral` counts for in a flag they are counted as
    /// a view of at `now`: the referral's partner while it is current, else none.
    pub fn credited<'a>(&self, referral: Option<&'a Referral>, now: i64) -> Option<&'a str> {
        referral
            .filter(|referral| self.is_current(referral, now))
            .map(|referral| referral.partner.as_str())
    }

    /// The referral a visitor holding `current` gets by following the link of partner
    /// `partner` (`active` or not) at `now`; `None` when nothing changes: an inactive (or
    /// unknown) partner, the same partner again, or another partner while the current
    /// referral counts and the first partner keeps the credit.
    pub fn capture(
        &self,
        current: Option<&Referral>,
        partner: &str,
        active: bool,
        now: i64,
    ) -> Option<Referral> {
        if !active || !is_uid(partner) {
            return None;
        }
        let replace = match current {
            None => true,
            Some(current) if !self.is_current(current, now) => true,
            Some(current) if current.partner == partner => false,
            Some(_) => self.credit == Credit::Last,
        };
        replace.then(|| Referral {
            partner: partner.to_string(),
            referred_at: now,
        })
    }

    /// The oldest `referred_at` a stored referral may have and still stand against a new
    /// one captured at `now`: a stored referral older than this is replaced by the new
    /// one (the flush's `ON CONFLICT ... WHERE`). With the last partner's credit, one of
    /// the same millisecond is replaced too: two links followed within a millisecond are
    /// written in the order they were followed.
    pub fn replaces_older_than(&self, now: i64) -> i64 {
        match self.credit {
            Credit::First => now.saturating_sub(self.window_ms).saturating_add(1),
            Credit::Last => now.saturating_add(1),
        }
    }

    /// django-affiliate-tracking's `complete_trigger`: whether a trigger fired at `now`
    /// completes for a visitor holding `referral`, when its partner is `active` and
    /// `subscribed` to the trigger.
    pub fn completes(
        &self,
        referral: Option<&Referral>,
        now: i64,
        active: bool,
        subscribed: bool,
    ) -> bool {
        active && subscribed && referral.is_some_and(|referral| self.is_current(referral, now))
    }
}

/// A length in characters.
fn check_length(text: &str, min: usize, max: usize) -> Result<(), Rule> {
    let len = text.chars().count();
    if len < min || len > max {
        return Err(Rule::Length { min, max, len });
    }
    Ok(())
}

/// A label for people (a partner's or a trigger's name): a length, and no control
/// character.
fn check_label(text: &str, min: usize, max: usize) -> Result<(), Rule> {
    check_length(text, min, max)?;
    if let Some(found) = text.chars().find(|c| c.is_control()) {
        return Err(Rule::ControlCharacter { found });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    const DAY: i64 = DAY_MS;
    const A: &str = "AAAAaaa1";
    const B: &str = "BBBBbbb2";

    fn at(partner: &str, referred_at: i64) -> Referral {
        Referral {
            partner: partner.into(),
            referred_at,
        }
    }

    #[test]
    fn uids_are_eight_letters_and_digits() {
        let mut rng = SmallRng::seed_from_u64(1);
        let a = new_uid(&mut rng);
        let b = new_uid(&mut rng);
        assert!(is_uid(&a) && is_uid(&b));
        assert_ne!(a, b);
        for bad in ["", "short", "ninechars", "abc-defg", "abcdéfg", "ABCDEFG "] {
            assert!(!is_uid(bad), "{bad:?}");
        }
    }

    #[test]
    fn first_credit_keeps_the_first_partner_until_the_window_ends() {
        let rules = ReferralRules::new(Credit::First, 30);
        let first = rules.capture(None, A, true, 0).unwrap();
        assert_eq!(first, at(A, 0));
        assert_eq!(rules.capture(Some(&first), B, true, 30 * DAY - 1), None);
        assert_eq!(
            rules.capture(Some(&first), B, true, 30 * DAY),
            Some(at(B, 30 * DAY)),
            "expired: the next partner's link registers the visitor afresh"
        );
        assert_eq!(rules.capture(Some(&first), A, true, DAY), None);
        assert_eq!(rules.replaces_older_than(30 * DAY), 1);
    }

    #[test]
    fn last_credit_gives_the_visitor_to_the_latest_partner() {
        let rules = ReferralRules::new(Credit::Last, 30);
        let first = rules.capture(None, A, true, 0).unwrap();
        assert_eq!(rules.capture(Some(&first), B, true, DAY), Some(at(B, DAY)));
        assert_eq!(rules.capture(Some(&first), A, true, DAY), None);
        assert_eq!(rules.replaces_older_than(DAY), DAY + 1);
    }

    #[test]
    fn inactive_unknown_or_malformed_partners_register_no_one() {
        let rules = ReferralRules::default();
        assert_eq!(rules.capture(None, A, false, 0), None);
        assert_eq!(rules.capture(None, "not a uid", true, 0), None);
    }

    #[test]
    fn completion_needs_a_current_referral_an_active_partner_and_a_subscription() {
        let rules = ReferralRules::new(Credit::First, 1);
        let referral = at(A, 1_000);
        assert!(rules.completes(Some(&referral), 1_000, true, true));
        assert!(rules.completes(Some(&referral), 1_000 + DAY - 1, true, true));
        assert!(!rules.completes(Some(&referral), 1_000 + DAY, true, true));
        assert!(
            !rules.completes(Some(&referral), 999, true, true),
            "before it"
        );
        assert!(!rules.completes(Some(&referral), 1_000, false, true));
        assert!(!rules.completes(Some(&referral), 1_000, true, false));
        assert!(!rules.completes(None, 1_000, true, true));
    }

    #[test]
    fn partner_and_subscription_fields_are_named_in_errors() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let errors = PartnerDefinition::new(long).validate().unwrap_err();
        assert_eq!(errors[0].field, "name");
        let errors = PartnerDefinition::new("bad\u{7}name")
            .validate()
            .unwrap_err();
        assert!(matches!(errors[0].rule, Rule::ControlCharacter { .. }));
        let partner = PartnerDefinition::new("  Acme ").validate().unwrap();
        assert_eq!(partner.name(), "Acme");
        let errors = SubscriptionDefinition {
            partner: "nope".into(),
            trigger: String::new(),
            callback_url: "https://partner.example/track".into(),
        }
        .validate()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["partner", "trigger", "callback_url"]);
    }
}
