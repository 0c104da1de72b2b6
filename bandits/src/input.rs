//! What a change brings, read the same way wherever it comes from: a flag's JSON
//! definition checked field by field (the API's body, the admin's form, the command
//! line's options and imported files), and the status
//! that answers a change the store refused. Every problem is an engine
//! [`FieldError`], so a field is named and worded alike in the API, the admin and the
//! engine's own validation.

use rocket::http::Status;
use rocket::serde::json::Value;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::config::Triggers;
use crate::engine::partners::{Partner, PartnerDefinition, Subscription, SubscriptionDefinition};
use crate::engine::{FieldError, Flag, FlagDefinition, Rule};
use crate::store::StoreError;

/// `body` read into `T`, or the one problem serde found, naming its field: the path to
/// it, the name of a field missing or unknown, or `body` for a body of the wrong shape.
fn read_fields<T: DeserializeOwned>(body: Value) -> Result<T, Vec<FieldError>> {
    serde_path_to_error::deserialize(body).map_err(|error| {
        let message = error.inner().to_string();
        let path = error.path().to_string();
        let field = if path != "." {
            path
        } else if let Some(named) = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|prefix| message.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next())
        {
            named.to_string()
        } else {
            "body".to_string()
        };
        vec![FieldError::new(field, Rule::Unreadable { message })]
    })
}

/// Reads and validates a partner from its JSON fields (`name`, `note`, `active`; any other
/// field is refused). With `before`, the fields left out keep their values (a `PATCH`);
/// without, `name` is required and the others take their defaults (active, no note).
pub(crate) fn parse_partner(
    body: Value,
    before: Option<&Partner>,
) -> Result<Partner, Vec<FieldError>> {
    let body = match (before, body) {
        (Some(before), Value::Object(changes)) => {
            let mut merged = serde_json::Map::new();
            merged.insert("name".into(), before.name().into());
            merged.insert("note".into(), before.note().into());
            merged.insert("active".into(), before.active().into());
            merged.extend(changes);
            Value::Object(merged)
        }
        (_, body) => body,
    };
    read_fields::<PartnerDefinition>(body)?.validate()
}

/// A subscription's fields as the API takes them: its partner is the one in the path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionFields {
    trigger: String,
    callback_url: String,
}

/// Reads and validates partner `partner`'s subscription from its JSON fields (`trigger`,
/// `callback_url`), refusing a trigger that `triggers` does not declare.
pub(crate) fn parse_subscription(
    body: Value,
    partner: &str,
    triggers: &Triggers,
) -> Result<Subscription, Vec<FieldError>> {
    let fields: SubscriptionFields = read_fields(body)?;
    let declared = triggers.get(&fields.trigger).is_some();
    let trigger = fields.trigger.clone();
    let checked = SubscriptionDefinition {
        partner: partner.to_string(),
        trigger: fields.trigger,
        callback_url: fields.callback_url,
    }
    .validate();
    let mut errors = match checked {
        Ok(subscription) if declared => return Ok(subscription),
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    };
    if !declared && !errors.iter().any(|error| error.field == "trigger") {
        errors.push(FieldError::new(
            "trigger",
            Rule::UnknownTrigger {
                name: trigger.chars().take(100).collect(),
            },
        ));
    }
    Err(errors)
}

/// An admin's switch of a trigger as the API and the admin's buttons send it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchFields {
    /// Required, and may be `null`: a field left out is a mistake, not "clear".
    #[serde(deserialize_with = "present")]
    enabled: Option<bool>,
}

fn present<'de, D: serde::Deserializer<'de>>(reader: D) -> Result<Option<bool>, D::Error> {
    Option::<bool>::deserialize(reader)
}

/// Reads an admin's switch of a trigger from `{"enabled": true | false | null}`: on, off,
/// or `None` to clear the switch (the configuration decides again). Any other body is
/// refused, naming the field.
pub(crate) fn parse_trigger_switch(body: Value) -> Result<Option<bool>, Vec<FieldError>> {
    if !body.is_object() {
        // serde would read `[true]` as the struct's one field.
        return Err(vec![FieldError::new(
            "body",
            Rule::Unreadable {
                message: "expected an object: {\"enabled\": true, false or null}".into(),
            },
        )]);
    }
    read_fields::<SwitchFields>(body).map(|fields| fields.enabled)
}

/// Reads and validates a flag from its JSON definition, naming the field of every
/// problem. `name_from_path` is the flag being replaced, if any (flags cannot be renamed).
///
/// A body with a `percentage` field is a percentage flag
/// ([`FlagDefinition::percentage`]): `{"name": "new-checkout", "percentage": 10}`; its
/// policy, winner rule and `targeting.percent` come from it and may not be given too.
pub(crate) fn parse_flag(
    mut body: Value,
    name_from_path: Option<&str>,
) -> Result<Flag, Vec<FieldError>> {
    let percentage = match body
        .as_object_mut()
        .and_then(|map| map.remove("percentage"))
    {
        None => None,
        Some(value) => Some(percentage_of(&value, &body)?),
    };
    let mut definition: FlagDefinition = read_fields(body)?;
    if let Some(name) = name_from_path {
        if definition.name.is_empty() {
            definition.name = name.to_string();
        } else if definition.name != name {
            return Err(vec![FieldError::new(
                "name",
                Rule::Renamed {
                    name: name.to_string(),
                },
            )]);
        }
    }
    if let Some(percent) = percentage {
        // What the constructor decides; the body gave the rest.
        let shape = FlagDefinition::percentage(String::new(), percent);
        definition.policy = shape.policy;
        definition.winner_rule = shape.winner_rule;
        definition.targeting.percent = shape.targeting.percent;
    }
    definition
        .validate()
        .map_err(|invalid| invalid.errors().to_vec())
}

/// The percent of a body's `percentage` field, refused when it is not a number or when the
/// body also sets what it decides (the policy, the winner rule, `targeting.percent`).
fn percentage_of(value: &Value, body: &Value) -> Result<f64, Vec<FieldError>> {
    let Some(percent) = value.as_f64() else {
        return Err(vec![FieldError::new(
            "percentage",
            Rule::NotANumber {
                found: value.to_string(),
            },
        )]);
    };
    let clashes: Vec<FieldError> = ["policy", "winner_rule"]
        .into_iter()
        .filter(|key| body.get(key).is_some())
        .map(|key| key.to_string())
        .chain(
            body.pointer("/targeting/percent")
                .map(|_| "targeting.percent".to_string()),
        )
        .map(|field| {
            FieldError::new(
                field,
                Rule::Unreadable {
                    message: "a percentage flag sets this itself: leave it out".into(),
                },
            )
        })
        .collect();
    if clashes.is_empty() {
        Ok(percent)
    } else {
        Err(clashes)
    }
}

/// The status of an answer to a change the store refused, for the API and the admin
/// alike. An unknown flag is 404, a name taken 409, an unknown arm or one left out 422;
/// the rest means the database is away: 503.
pub(crate) fn store_status(error: &StoreError) -> Status {
    match error {
        StoreError::NotFound(_) | StoreError::NoPartner(_) | StoreError::NoSubscription(_) => {
            Status::NotFound
        }
        StoreError::SubscriptionExists { .. } => Status::Conflict,
        StoreError::AlreadyExists(_) => Status::Conflict,
        StoreError::UnknownArm { .. } | StoreError::ArmLeftOut { .. } => {
            Status::UnprocessableEntity
        }
        _ => Status::ServiceUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::serde::json::json;

    #[test]
    fn every_problem_names_its_field() {
        let unreadable = parse_flag(json!({ "name": "x", "policy": 3 }), None).unwrap_err();
        assert_eq!(unreadable[0].field, "policy");
        assert!(matches!(unreadable[0].rule, Rule::Unreadable { .. }));

        let renamed = parse_flag(json!({ "name": "other" }), Some("promo")).unwrap_err();
        assert_eq!(
            renamed,
            [FieldError::new(
                "name",
                Rule::Renamed {
                    name: "promo".into()
                }
            )]
        );

        let invalid = parse_flag(
            json!({ "name": "promo", "arms": [{"name": "a"}, {"name": "a"}] }),
            None,
        )
        .unwrap_err();
        assert_eq!(invalid[0].field, "arms[1].name");

        let named_by_path = parse_flag(json!({}), Some("promo")).expect("valid");
        assert_eq!(named_by_path.name(), "promo");
    }

    #[test]
    fn a_trigger_switch_is_on_off_or_cleared_and_nothing_else() {
        assert_eq!(
            parse_trigger_switch(json!({ "enabled": true })),
            Ok(Some(true))
        );
        assert_eq!(
            parse_trigger_switch(json!({ "enabled": false })),
            Ok(Some(false))
        );
        assert_eq!(parse_trigger_switch(json!({ "enabled": null })), Ok(None));
        for (body, field) in [
            (json!({}), "enabled"),
            (json!({ "enabled": "off" }), "enabled"),
            (json!({ "enabled": 1 }), "enabled"),
            (json!({ "enabled": true, "name": "x" }), "name"),
            (json!([true]), "body"),
        ] {
            let refused = parse_trigger_switch(body.clone()).unwrap_err();
            assert_eq!(refused[0].field, field, "{body}");
        }
    }

    #[test]
    fn a_percentage_field_makes_a_percentage_flag() {
        let flag = parse_flag(
            json!({ "name": "new-checkout", "percentage": 10, "note": "kept" }),
            None,
        )
        .expect("valid");
        assert_eq!(flag.definition().as_percentage(), Some(10.0));
        assert_eq!(flag.note(), "kept");
        let built = FlagDefinition {
            note: "kept".into(),
            ..FlagDefinition::percentage("new-checkout", 10.0)
        }
        .validate()
        .expect("valid");
        assert_eq!(flag.definition(), built.definition());

        let out_of_range = parse_flag(json!({ "name": "x", "percentage": 120 }), None).unwrap_err();
        assert_eq!(out_of_range[0].field, "targeting.percent");
        let not_a_number =
            parse_flag(json!({ "name": "x", "percentage": "ten" }), None).unwrap_err();
        assert_eq!(not_a_number[0].field, "percentage");
        let clash = parse_flag(
            json!({ "name": "x", "percentage": 10, "winner_rule": {"kind": "t_test"} }),
            None,
        )
        .unwrap_err();
        assert_eq!(clash[0].field, "winner_rule");
    }
}
