//! A flag's options on the command line turned into the JSON definition that the API
//! takes, so that [`parse_flag`](crate::input::parse_flag) checks them as it checks the
//! API's bodies and the admin's forms, and refuses them in the same words.

use serde_json::{json, Map, Value};

use super::args::{Create, Switch, Targeting};
use crate::engine::{FieldError, Rule};

/// The JSON body of `flags create`: the name and each option given, under its field.
pub(crate) fn create_body(create: &Create) -> Result<Value, Vec<FieldError>> {
    let mut body = Map::new();
    let mut errors = Vec::new();
    body.insert("name".into(), json!(create.name));
    if let Some(arms) = &create.arms {
        let arms: Vec<Value> = arms.iter().map(|arm| json!({ "name": arm })).collect();
        body.insert("arms".into(), Value::Array(arms));
    }
    let texts = [
        ("source_path", &create.source),
        ("target_path", &create.target),
        ("goal_event", &create.goal_event),
        ("note", &create.note),
    ];
    for (field, value) in texts {
        if let Some(value) = value {
            body.insert(field.into(), json!(value));
        }
    }
    let mut read = |field: &str, result: Result<Value, FieldError>| match result {
        Ok(value) => {
            body.insert(field.into(), value);
        }
        Err(error) => errors.push(error),
    };
    if let Some(policy) = &create.policy {
        read("policy", kind_with_parameters("policy", policy));
    }
    if let Some(rule) = &create.winner_rule {
        read("winner_rule", kind_with_parameters("winner_rule", rule));
    }
    if let Some(percent) = &create.percentage {
        read("percentage", number("percentage", percent).map(Value::from));
    }
    if let Some(level) = &create.significance_level {
        read(
            "significance_level",
            number("significance_level", level).map(Value::from),
        );
    }
    if let Some(views) = &create.min_views {
        let views = views.trim().parse::<u64>().map_err(|_| {
            FieldError::new(
                "min_views",
                Rule::NotACount {
                    found: views.clone(),
                },
            )
        });
        read("min_views", views.map(Value::from));
    }
    if let Some(client_side) = create.client_side {
        body.insert("client_side".into(), json!(client_side == Switch::On));
    }
    let mut targeting = Map::new();
    if let Err(error) = set_targeting(&mut targeting, &create.targeting) {
        errors.push(error);
    }
    if !targeting.is_empty() {
        body.insert("targeting".into(), Value::Object(targeting));
    }
    if errors.is_empty() {
        Ok(Value::Object(body))
    } else {
        Err(errors)
    }
}

/// Applies the options of `flags set` (or `flags create`) to a definition's `targeting`
/// object: `everyone` and `percent` set or removed, `testing` set.
pub(crate) fn set_targeting(
    targeting: &mut Map<String, Value>,
    options: &Targeting,
) -> Result<(), FieldError> {
    if let Some(everyone) = options.everyone {
        match Option::<bool>::from(everyone) {
            Some(on) => targeting.insert("everyone".into(), json!(on)),
            None => targeting.remove("everyone"),
        };
    }
    if let Some(percent) = &options.percent {
        if percent.trim() == "unset" {
            targeting.remove("percent");
        } else {
            let percent = number("targeting.percent", percent)?;
            targeting.insert("percent".into(), Value::from(percent));
        }
    }
    if let Some(testing) = options.testing {
        targeting.insert("testing".into(), json!(testing == Switch::On));
    }
    Ok(())
}

/// `text` as a number, or the error naming `field`.
fn number(field: &str, text: &str) -> Result<f64, FieldError> {
    text.trim().parse::<f64>().map_err(|_| {
        FieldError::new(
            field,
            Rule::NotANumber {
                found: text.to_string(),
            },
        )
    })
}

/// A policy or winner rule written `KIND[:NUMBER,NUMBER,...]` (`thompson`,
/// `epsilon-greedy:0.2`, `split:50,50`, `sequential:0.05`) as its JSON object: the kind
/// as the API names it (a `-` read as `_`), and the numbers as that kind's parameters.
/// An unknown kind is left for the JSON reader to refuse with the list of known ones.
fn kind_with_parameters(field: &str, text: &str) -> Result<Value, FieldError> {
    let (kind, numbers) = match text.split_once(':') {
        Some((kind, numbers)) => (kind, Some(numbers)),
        None => (text, None),
    };
    let kind = kind.trim().to_ascii_lowercase().replace('-', "_");
    let mut object = Map::new();
    object.insert("kind".into(), json!(kind));
    let Some(numbers) = numbers else {
        return Ok(Value::Object(object));
    };
    let names: &[&str] = match kind.as_str() {
        "epsilon_greedy" => &["epsilon"],
        "ucb1" => &["c"],
        "thompson" => &["alpha", "beta"],
        "top_two_thompson" => &["alpha", "beta", "leader"],
        "sequential" => &["mixture_sd"],
        "bayesian" => &["probability", "expected_loss"],
        "split" => &[],
        _ => {
            return Err(FieldError::new(
                field,
                Rule::Unreadable {
                    message: format!("{kind} takes no parameters, got {numbers:?}"),
                },
            ))
        }
    };
    let parts: Vec<&str> = numbers.split(',').collect();
    if !names.is_empty() && parts.len() > names.len() {
        let wanted = match names.len() {
            1 => "one number".to_string(),
            count => format!("{count} numbers"),
        };
        return Err(FieldError::new(
            field,
            Rule::Unreadable {
                message: format!(
                    "{kind} takes {wanted} ({}), got {}",
                    names.join(", "),
                    parts.len()
                ),
            },
        ));
    }
    let mut weights = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        match names.get(i) {
            Some(name) => {
                let value = number(&format!("{field}.{name}"), part)?;
                object.insert((*name).into(), json!(value));
            }
            None => weights.push(number(&format!("{field}.weights[{i}]"), part)?),
        }
    }
    if names.is_empty() {
        object.insert("weights".into(), json!(weights));
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_named_as_in_the_api() {
        let read = |text| kind_with_parameters("policy", text);
        assert_eq!(read("thompson").ok(), Some(json!({ "kind": "thompson" })));
        assert_eq!(
            read("epsilon-greedy:0.2").ok(),
            Some(json!({ "kind": "epsilon_greedy", "epsilon": 0.2 }))
        );
        assert_eq!(
            read("split:50,50").ok(),
            Some(json!({ "kind": "split", "weights": [50.0, 50.0] }))
        );
        assert_eq!(
            read("thompson:2,3").ok(),
            Some(json!({ "kind": "thompson", "alpha": 2.0, "beta": 3.0 }))
        );
        assert_eq!(
            read("split:50,x").err().map(|e| e.field),
            Some("policy.weights[1]".to_string())
        );
        assert_eq!(
            read("ucb1:1,2").err().map(|e| e.field),
            Some("policy".to_string())
        );
        assert_eq!(
            read("epsilon_decay:3").err().map(|e| e.field),
            Some("policy".to_string())
        );
        assert_eq!(
            read("top-two-thompson:1,1,0.75").ok(),
            Some(json!({ "kind": "top_two_thompson", "alpha": 1.0, "beta": 1.0, "leader": 0.75 }))
        );
        let rule = |text| kind_with_parameters("winner_rule", text);
        assert_eq!(
            rule("bayesian:0.99,0.001").ok(),
            Some(json!({ "kind": "bayesian", "probability": 0.99, "expected_loss": 0.001 }))
        );
    }
}
