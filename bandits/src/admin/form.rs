//! The create and edit form of a flag: every field of the engine's flag, read into the
//! same JSON definition the API takes, and validated by the same code.

use rocket::form::FromForm;
use rocket::serde::json::{json, Value};
use serde_json::Map;

use super::dates::datetime_local;
use crate::engine::{FieldError, Rule};
use crate::engine::{FlagDefinition, Policy, WinnerRule};

/// One arm's row.
#[derive(Debug, Clone, Default, FromForm)]
pub(super) struct ArmRow {
    #[field(default = String::new())]
    pub(super) name: String,
    #[field(default = String::new())]
    pub(super) payload: String,
}

/// The form's fields, all as typed (text), so that every value comes back to the page as
/// the user wrote it, with the message beside it. Every field may be missing, so that a
/// forged post without the CSRF token is refused for that (403), not for its shape.
#[derive(Debug, Clone, Default, FromForm)]
pub(super) struct FlagForm {
    pub(super) csrf: Option<String>,
    #[field(default = String::new())]
    pub(super) name: String,
    #[field(default = String::new())]
    pub(super) note: String,
    #[field(default = Vec::new())]
    pub(super) arms: Vec<ArmRow>,
    #[field(default = String::new())]
    pub(super) source_path: String,
    #[field(default = String::new())]
    pub(super) target_path: String,
    #[field(default = String::new())]
    pub(super) goal_event: String,
    #[field(default = String::new())]
    pub(super) policy: String,
    #[field(default = String::new())]
    pub(super) epsilon: String,
    #[field(default = String::new())]
    pub(super) c: String,
    #[field(default = String::new())]
    pub(super) alpha: String,
    #[field(default = String::new())]
    pub(super) beta: String,
    #[field(default = String::new())]
    pub(super) leader: String,
    #[field(default = String::new())]
    pub(super) weights: String,
    #[field(default = String::new())]
    pub(super) significance_level: String,
    #[field(default = String::new())]
    pub(super) min_views: String,
    #[field(default = String::new())]
    pub(super) winner_rule: String,
    #[field(default = String::new())]
    pub(super) mixture_sd: String,
    #[field(default = String::new())]
    pub(super) probability: String,
    #[field(default = String::new())]
    pub(super) expected_loss: String,
    #[field(default = String::new())]
    pub(super) winner: String,
    pub(super) exclude_signed_in: bool,
    pub(super) client_side: bool,
    #[field(default = String::new())]
    pub(super) interval: String,
    #[field(default = String::new())]
    pub(super) everyone: String,
    #[field(default = String::new())]
    pub(super) percent: String,
    pub(super) authenticated: bool,
    pub(super) staff: bool,
    pub(super) superusers: bool,
    #[field(default = String::new())]
    pub(super) rollout_start: String,
    #[field(default = String::new())]
    pub(super) rollout_end: String,
    #[field(default = String::new())]
    pub(super) users: String,
    #[field(default = String::new())]
    pub(super) groups: String,
    #[field(default = String::new())]
    pub(super) languages: String,
    pub(super) require_all: bool,
    pub(super) testing: bool,
}

fn number(value: f64) -> String {
    value.to_string()
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

impl FlagForm {
    /// The form showing `definition`, with two empty arm rows to add arms.
    pub(super) fn from_definition(definition: &FlagDefinition) -> FlagForm {
        let mut form = FlagForm {
            name: definition.name.clone(),
            note: definition.note.clone(),
            arms: definition
                .arms
                .iter()
                .map(|arm| ArmRow {
                    name: arm.name.clone(),
                    payload: arm
                        .payload
                        .as_ref()
                        .map(Value::to_string)
                        .unwrap_or_default(),
                })
                .collect(),
            source_path: definition.source_path.clone().unwrap_or_default(),
            target_path: definition.target_path.clone().unwrap_or_default(),
            goal_event: definition.goal_event.clone().unwrap_or_default(),
            significance_level: number(definition.significance_level),
            min_views: definition.min_views.to_string(),
            winner: definition.winner.clone().unwrap_or_default(),
            exclude_signed_in: definition.exclude_signed_in,
            client_side: definition.client_side,
            interval: match definition.interval {
                crate::engine::IntervalKind::Wilson => "wilson",
                crate::engine::IntervalKind::Beta => "beta",
            }
            .to_string(),
            ..<FlagForm as Default>::default()
        };
        match &definition.policy {
            Policy::EpsilonGreedy { epsilon } => {
                form.policy = "epsilon_greedy".into();
                form.epsilon = number(*epsilon);
            }
            Policy::EpsilonDecay => form.policy = "epsilon_decay".into(),
            Policy::Ucb1 { c } => {
                form.policy = "ucb1".into();
                form.c = number(*c);
            }
            Policy::Thompson { alpha, beta } => {
                form.policy = "thompson".into();
                form.alpha = number(*alpha);
                form.beta = number(*beta);
            }
            Policy::TopTwoThompson {
                alpha,
                beta,
                leader,
            } => {
                form.policy = "top_two_thompson".into();
                form.alpha = number(*alpha);
                form.beta = number(*beta);
                form.leader = number(*leader);
            }
            Policy::Split { weights } => {
                form.policy = "split".into();
                form.weights = weights
                    .iter()
                    .map(|w| number(*w))
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
        if definition.as_percentage().is_some() {
            form.policy = "percentage".into();
        }
        match &definition.winner_rule {
            WinnerRule::TTest => form.winner_rule = "t_test".into(),
            WinnerRule::Sequential { mixture_sd } => {
                form.winner_rule = "sequential".into();
                form.mixture_sd = number(*mixture_sd);
            }
            WinnerRule::Bayesian {
                probability,
                expected_loss,
            } => {
                form.winner_rule = "bayesian".into();
                form.probability = number(*probability);
                form.expected_loss = number(*expected_loss);
            }
            WinnerRule::Manual => form.winner_rule = "manual".into(),
        }
        let targeting = &definition.targeting;
        form.everyone = match targeting.everyone {
            None => String::new(),
            Some(true) => "on".into(),
            Some(false) => "off".into(),
        };
        form.percent = targeting.percent.map(number).unwrap_or_default();
        if let Some(rollout) = targeting.rollout {
            form.rollout_start = datetime_local(rollout.start);
            form.rollout_end = datetime_local(rollout.end);
        }
        form.authenticated = targeting.authenticated;
        form.staff = targeting.staff;
        form.superusers = targeting.superusers;
        form.users = list(&targeting.users);
        form.groups = list(&targeting.groups);
        form.languages = list(&targeting.languages);
        form.require_all = targeting.require_all;
        form.testing = targeting.testing;
        form.pad_arms();
        form
    }

    /// Two empty arm rows after the last filled one, to add arms without scripts.
    pub(super) fn pad_arms(&mut self) {
        self.arms
            .retain(|arm| !arm.name.trim().is_empty() || !arm.payload.trim().is_empty());
        let rows = (self.arms.len() + 2).min(crate::engine::MAX_ARMS);
        self.arms
            .resize(rows.max(self.arms.len()), <ArmRow as Default>::default());
    }

    /// The flag's JSON definition, as the API takes it, on top of `base` (the stored
    /// definition when editing, so fields the form does not show, like a rollout, stay).
    pub(super) fn to_json(&self, base: Option<Value>) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut body = match base {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let text = |value: &str| {
            let value = value.trim();
            (!value.is_empty()).then(|| Value::String(value.to_string()))
        };
        let float = |field: &str, value: &str, errors: &mut Vec<FieldError>| -> Option<Value> {
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            match value.parse::<f64>() {
                Ok(number) => Some(json!(number)),
                Err(_) => {
                    errors.push(FieldError::new(
                        field,
                        Rule::NotANumber {
                            found: value.to_string(),
                        },
                    ));
                    None
                }
            }
        };
        let names = |value: &str| -> Vec<Value> {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect()
        };

        body.insert("name".into(), json!(self.name.trim()));
        body.insert("note".into(), json!(self.note.trim()));
        let mut arms = Vec::new();
        for (i, row) in self
            .arms
            .iter()
            .filter(|row| !row.name.trim().is_empty() || !row.payload.trim().is_empty())
            .enumerate()
        {
            let mut arm = Map::new();
            arm.insert("name".into(), json!(row.name.trim()));
            if !row.payload.trim().is_empty() {
                match serde_json::from_str::<Value>(row.payload.trim()) {
                    Ok(payload) => {
                        arm.insert("payload".into(), payload);
                    }
                    Err(error) => errors.push(FieldError::new(
                        format!("arms[{i}].payload"),
                        Rule::NotJson {
                            message: error.to_string(),
                        },
                    )),
                }
            }
            arms.push(Value::Object(arm));
        }
        body.insert("arms".into(), Value::Array(arms));
        for (key, value) in [
            ("source_path", &self.source_path),
            ("target_path", &self.target_path),
            ("goal_event", &self.goal_event),
            ("winner", &self.winner),
        ] {
            body.insert(key.into(), text(value).unwrap_or(Value::Null));
        }

        let mut policy = Map::new();
        let kind = if self.policy.is_empty() {
            "epsilon_greedy"
        } else {
            self.policy.as_str()
        };
        policy.insert("kind".into(), json!(kind));
        let params: &[(&str, &str)] = match kind {
            "epsilon_greedy" => &[("epsilon", self.epsilon.as_str())],
            "ucb1" => &[("c", self.c.as_str())],
            "thompson" => &[("alpha", self.alpha.as_str()), ("beta", self.beta.as_str())],
            "top_two_thompson" => &[
                ("alpha", self.alpha.as_str()),
                ("beta", self.beta.as_str()),
                ("leader", self.leader.as_str()),
            ],
            _ => &[],
        };
        for (key, value) in params {
            if let Some(number) = float(&format!("policy.{key}"), value, &mut errors) {
                policy.insert((*key).into(), number);
            }
        }
        if kind == "split" {
            let mut weights = Vec::new();
            for weight in self
                .weights
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
            {
                if let Some(number) = float("policy.weights", weight, &mut errors) {
                    weights.push(number);
                }
            }
            policy.insert("weights".into(), Value::Array(weights));
        }
        body.insert("policy".into(), Value::Object(policy));

        if let Some(level) = float("significance_level", &self.significance_level, &mut errors) {
            body.insert("significance_level".into(), level);
        }
        match self.min_views.trim() {
            "" => {}
            text => match text.parse::<u64>() {
                Ok(views) => {
                    body.insert("min_views".into(), json!(views));
                }
                Err(_) => errors.push(FieldError::new(
                    "min_views",
                    Rule::NotACount {
                        found: text.to_string(),
                    },
                )),
            },
        }
        let mut rule = Map::new();
        let rule_kind = if self.winner_rule.is_empty() {
            "t_test"
        } else {
            self.winner_rule.as_str()
        };
        rule.insert("kind".into(), json!(rule_kind));
        if rule_kind == "sequential" {
            if let Some(sd) = float("winner_rule.mixture_sd", &self.mixture_sd, &mut errors) {
                rule.insert("mixture_sd".into(), sd);
            }
        }
        if rule_kind == "bayesian" {
            for (key, value) in [
                ("probability", &self.probability),
                ("expected_loss", &self.expected_loss),
            ] {
                if let Some(number) = float(&format!("winner_rule.{key}"), value, &mut errors) {
                    rule.insert(key.into(), number);
                }
            }
        }
        body.insert("winner_rule".into(), Value::Object(rule));
        body.insert("exclude_signed_in".into(), json!(self.exclude_signed_in));
        body.insert("client_side".into(), json!(self.client_side));
        if !self.interval.is_empty() {
            body.insert("interval".into(), json!(self.interval));
        }

        let mut targeting = match body.remove("targeting") {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        match self.everyone.as_str() {
            "on" => targeting.insert("everyone".into(), json!(true)),
            "off" => targeting.insert("everyone".into(), json!(false)),
            _ => targeting.remove("everyone"),
        };
        match float("targeting.percent", &self.percent, &mut errors) {
            Some(percent) => targeting.insert("percent".into(), percent),
            None => targeting.remove("percent"),
        };
        match (self.rollout_start.trim(), self.rollout_end.trim()) {
            ("", "") => {
                targeting.remove("rollout");
            }
            (start, end) => {
                let start = parse_datetime("targeting.rollout.start", start, &mut errors);
                let end = parse_datetime("targeting.rollout.end", end, &mut errors);
                if let (Some(start), Some(end)) = (start, end) {
                    targeting.insert("rollout".into(), json!({ "start": start, "end": end }));
                }
            }
        }
        for (key, value) in [
            ("authenticated", self.authenticated),
            ("staff", self.staff),
            ("superusers", self.superusers),
            ("require_all", self.require_all),
            ("testing", self.testing),
        ] {
            targeting.insert(key.into(), json!(value));
        }
        for (key, value) in [
            ("users", &self.users),
            ("groups", &self.groups),
            ("languages", &self.languages),
        ] {
            targeting.insert(key.into(), Value::Array(names(value)));
        }
        if kind == "percentage" {
            // waffle's percentage flag: the API's one field decides the split, the winner
            // rule and the percent (the form's percent field holds it).
            body.remove("policy");
            body.remove("winner_rule");
            match targeting.remove("percent") {
                Some(percent) => {
                    body.insert("percentage".into(), percent);
                }
                None => errors.push(FieldError::new(
                    "targeting.percent",
                    Rule::NotANumber {
                        found: self.percent.trim().to_string(),
                    },
                )),
            }
        }
        body.insert("targeting".into(), Value::Object(targeting));

        if errors.is_empty() {
            Ok(Value::Object(body))
        } else {
            Err(errors)
        }
    }
}

/// A `datetime-local` value (`2026-11-21T09:30`, UTC) as milliseconds since the Unix epoch.
fn parse_datetime(field: &str, text: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    use rocket::time::{Date, Month, PrimitiveDateTime, Time};
    let parsed = (|| {
        let (date, time) = text.split_once(['T', ' '])?;
        let mut date = date.splitn(3, '-').map(str::parse::<i32>);
        let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
        let mut time = time.splitn(3, ':').map(str::parse::<u8>);
        let (hour, minute) = (time.next()?.ok()?, time.next()?.ok()?);
        let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
        let date = Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
        let time = Time::from_hms(hour, minute, 0).ok()?;
        Some(
            PrimitiveDateTime::new(date, time)
                .assume_utc()
                .unix_timestamp()
                * 1000,
        )
    })();
    if parsed.is_none() {
        errors.push(FieldError::new(
            field,
            Rule::NotADateTime {
                found: text.to_string(),
            },
        ));
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_round_trip_through_the_form() {
        let mut errors = Vec::new();
        let ms = parse_datetime("f", "2026-11-21T09:30", &mut errors).expect("parses");
        assert_eq!(datetime_local(ms), "2026-11-21T09:30");
        assert_eq!(ms, 1_795_253_400_000); // Python: datetime(2026, 11, 21, 9, 30, tzinfo=utc)
        for bad in [
            "",
            "2026-13-01T00:00",
            "2026-11-21",
            "tomorrow",
            "2026-02-30T10:00",
        ] {
            assert_eq!(parse_datetime("f", bad, &mut errors), None, "{bad}");
        }
        assert_eq!(errors.len(), 5);
    }
}
