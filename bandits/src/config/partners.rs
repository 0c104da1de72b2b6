//! The `bandits.partners` and `bandits.triggers` tables: how partners' links are read and
//! credited, and what partners are paid for.

use serde::Deserialize;

use super::{ConfigError, QUERY_PREFIX};
use crate::engine::partners::{
    Credit, ReferralRules, Trigger, TriggerDefinition, DEFAULT_WINDOW_DAYS,
};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawPartners {
    query_key: String,
    credit: Credit,
    window_days: u32,
}

impl Default for RawPartners {
    fn default() -> Self {
        RawPartners {
            query_key: DEFAULT_PARTNER_QUERY_KEY.to_string(),
            credit: Credit::First,
            window_days: DEFAULT_WINDOW_DAYS,
        }
    }
}

/// The query parameter partners' links carry, unless `partners.query_key` says otherwise
/// (django-affiliate-tracking's `AFFILIATE_QUERY_STRING_KEY`).
pub const DEFAULT_PARTNER_QUERY_KEY: &str = "affiliate_id";
/// How many days a referral may last (`bandits.partners.window_days`).
pub const REFERRAL_WINDOW_DAYS: std::ops::RangeInclusive<u32> = 1..=3_650;
/// The most triggers `bandits.triggers` may declare.
pub const MAX_TRIGGERS: usize = 100;

/// How visitors referred by partners are recognised and credited (`bandits.partners`).
#[derive(Debug, Clone)]
pub struct PartnerSettings {
    query_key: String,
    rules: ReferralRules,
}

impl PartnerSettings {
    /// The query parameter a partner's link carries its uid in.
    pub fn query_key(&self) -> &str {
        &self.query_key
    }

    /// Who keeps the credit, and how long a referral lasts.
    pub fn rules(&self) -> ReferralRules {
        self.rules
    }
}

/// The triggers of `bandits.triggers`, by name.
#[derive(Debug, Clone, Default)]
pub struct Triggers {
    all: Vec<Trigger>,
    /// Whether any trigger the configuration enables is fired by requests.
    by_requests: bool,
    /// Whether any trigger, enabled or not, is fired by requests: when none is, responses
    /// are not looked at (an admin may switch on a trigger the configuration disables).
    any_by_requests: bool,
}

impl Triggers {
    /// The trigger called `name`, enabled or not.
    pub fn get(&self, name: &str) -> Option<&Trigger> {
        self.all.iter().find(|trigger| trigger.name() == name)
    }

    /// Every trigger, in the order declared.
    pub fn iter(&self) -> impl Iterator<Item = &Trigger> {
        self.all.iter()
    }

    /// Whether any trigger the configuration enables is fired by requests.
    pub fn any_fired_by_requests(&self) -> bool {
        self.by_requests
    }

    /// Whether any trigger, enabled by the configuration or not, is fired by requests:
    /// an admin's switch may turn on one the configuration disables.
    pub fn any_described_by_requests(&self) -> bool {
        self.any_by_requests
    }

    /// The triggers, enabled or not, that describe a request with this method and path
    /// answered with `status` ([`Trigger::matches_request`]); whether each fires is
    /// then [`Trigger::enabled_with`] the admin's switch.
    pub fn described_by<'a>(
        &'a self,
        method: &'a str,
        path: &'a str,
        status: u16,
    ) -> impl Iterator<Item = &'a Trigger> {
        self.all
            .iter()
            .filter(move |trigger| trigger.matches_request(method, path, status))
    }

    /// The triggers the configuration enables that a request with this method and path,
    /// answered with `status`, fires.
    pub fn fired_by<'a>(
        &'a self,
        method: &'a str,
        path: &'a str,
        status: u16,
    ) -> impl Iterator<Item = &'a Trigger> {
        self.all
            .iter()
            .filter(move |trigger| trigger.fired_by(method, path, status))
    }
}

pub(super) fn validate_partners(raw: RawPartners) -> Result<PartnerSettings, ConfigError> {
    let key = raw.query_key.trim();
    let plain = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if key.is_empty() || key.len() > 100 || !plain || key.starts_with(QUERY_PREFIX) {
        return Err(ConfigError::new(
            "partners.query_key",
            format!(
                "must be a query parameter name of letters, digits, '_', '-' and '.' (not \
                 starting with \"{QUERY_PREFIX}\"), got {:?}",
                raw.query_key
            ),
        ));
    }
    if !REFERRAL_WINDOW_DAYS.contains(&raw.window_days) {
        return Err(ConfigError::new(
            "partners.window_days",
            format!(
                "must be between {} and {} days, got {}",
                REFERRAL_WINDOW_DAYS.start(),
                REFERRAL_WINDOW_DAYS.end(),
                raw.window_days
            ),
        ));
    }
    Ok(PartnerSettings {
        query_key: key.to_string(),
        rules: ReferralRules::new(raw.credit, raw.window_days),
    })
}

pub(super) fn validate_triggers(raw: Vec<TriggerDefinition>) -> Result<Triggers, ConfigError> {
    if raw.len() > MAX_TRIGGERS {
        return Err(ConfigError::new(
            "triggers",
            format!(
                "may declare at most {MAX_TRIGGERS} triggers, got {}",
                raw.len()
            ),
        ));
    }
    let mut all: Vec<Trigger> = Vec::with_capacity(raw.len());
    for (i, definition) in raw.into_iter().enumerate() {
        let trigger = definition.validate().map_err(|errors| {
            let first = &errors[0];
            ConfigError::new(
                &format!("triggers[{i}].{}", first.field),
                first.rule.to_string(),
            )
        })?;
        if all.iter().any(|other| other.name() == trigger.name()) {
            return Err(ConfigError::new(
                &format!("triggers[{i}].name"),
                format!("{:?} is declared twice", trigger.name()),
            ));
        }
        all.push(trigger);
    }
    let by_requests = all
        .iter()
        .any(|trigger| trigger.enabled() && trigger.fired_by_requests());
    let any_by_requests = all.iter().any(Trigger::fired_by_requests);
    Ok(Triggers {
        all,
        by_requests,
        any_by_requests,
    })
}
