//! What a change brings, read the same way wherever it comes from: a flag's JSON
//! definition checked field by field (the API's body, the admin's form, the command
//! line's options and imported files), and the status
//! that answers a change the store refused. Every problem is an engine
//! [`FieldError`], so a field is named and worded alike in the API, the admin and the
//! engine's own validation.

use rocket::http::Status;
use rocket::serde::json::Value;

use crate::engine::{FieldError, Flag, FlagDefinition, Rule};
use crate::store::StoreError;

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
    let mut definition: FlagDefinition =
        serde_path_to_error::deserialize(body).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            vec![FieldError::new(
                field,
                Rule::Unreadable {
                    message: error.inner().to_string(),
                },
            )]
        })?;
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
