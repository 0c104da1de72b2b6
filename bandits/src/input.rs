//! What a change brings, read the same way wherever it comes from: a flag's JSON
//! definition checked field by field (the API's body, the admin's form), and the status
//! that answers a change the store refused. Every problem is an engine
//! [`FieldError`], so a field is named and worded alike in the API, the admin and the
//! engine's own validation.

use rocket::http::Status;
use rocket::serde::json::Value;

use crate::engine::{FieldError, Flag, FlagDefinition, Rule};
use crate::store::StoreError;

/// Reads and validates a flag from its JSON definition, naming the field of every
/// problem. `name_from_path` is the flag being replaced, if any (flags cannot be renamed).
pub(crate) fn parse_flag(
    body: Value,
    name_from_path: Option<&str>,
) -> Result<Flag, Vec<FieldError>> {
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
    definition
        .validate()
        .map_err(|invalid| invalid.errors().to_vec())
}

/// The status of an answer to a change the store refused, for the API and the admin
/// alike. An unknown flag is 404, a name taken 409, an unknown arm 422; the rest means the
/// database is away: 503.
pub(crate) fn store_status(error: &StoreError) -> Status {
    match error {
        StoreError::NotFound(_) => Status::NotFound,
        StoreError::AlreadyExists(_) => Status::Conflict,
        StoreError::UnknownArm { .. } => Status::UnprocessableEntity,
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
}
