//! Triggers: the named events a site pays partners for, declared in the configuration
//! (`[[bandits.triggers]]`), fired by a request the fairing sees or by code.

use serde::Deserialize;

use crate::engine::{FieldError, Rule, MAX_NAME_LEN, MAX_PATH_LEN};

/// A trigger as declared: its name, whether it is on, and the requests that fire it.
///
/// ```
/// use bandits::engine::partners::TriggerDefinition;
///
/// let signup = TriggerDefinition {
///     method: Some("POST".into()),
///     path: Some("/signup".into()),
///     ..TriggerDefinition::new("User registered")
/// }
/// .validate()?;
/// assert!(signup.fired_by("POST", "/signup/", 303));
/// assert!(!signup.fired_by("POST", "/signup", 422), "a 4xx answer fires nothing");
/// assert!(!signup.fired_by("GET", "/signup", 200));
/// # Ok::<(), Vec<bandits::engine::FieldError>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDefinition {
    /// The name partners subscribe to ("User registered"): 1 to 100 characters.
    pub name: String,
    /// Off: the trigger fires nothing, from requests or from code.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The request method that fires it (`POST`); any method when left out.
    #[serde(default)]
    pub method: Option<String>,
    /// The path whose requests fire it (`/signup`, with or without one trailing slash);
    /// without one, only code fires it.
    #[serde(default)]
    pub path: Option<String>,
    /// The response's status classes that fire it (`["2xx", "3xx"]`, the default).
    #[serde(default)]
    pub status: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

/// The classes of response status (`2xx`, `3xx`, ...) that fire a trigger, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusClasses(u8);

impl StatusClasses {
    /// `2xx` and `3xx`: the request succeeded, or redirected as a form's success does.
    pub const SUCCESS: StatusClasses = StatusClasses(1 << 2 | 1 << 3);

    /// Whether `status` is in one of the classes.
    pub fn contains(self, status: u16) -> bool {
        let class = status / 100;
        (1..=5).contains(&class) && self.0 & (1 << class) != 0
    }

    /// The classes in the set, as written in the configuration: `["2xx", "3xx"]`.
    pub fn names(self) -> Vec<String> {
        (1..=5u8)
            .filter(|class| self.0 & (1 << class) != 0)
            .map(|class| format!("{class}xx"))
            .collect()
    }

    /// `"2xx"` to `"5xx"` (any case); `None` for anything else.
    fn parse_one(text: &str) -> Option<u8> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1xx" => Some(1),
            "2xx" => Some(2),
            "3xx" => Some(3),
            "4xx" => Some(4),
            "5xx" => Some(5),
            _ => None,
        }
    }
}

/// A valid trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    name: String,
    enabled: bool,
    request: Option<RequestMatch>,
}

/// The requests that fire a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RequestMatch {
    method: Option<String>,
    /// Without its trailing slash (but `/`).
    path: String,
    status: StatusClasses,
}

/// A trigger's name: 1 to 100 characters, no control character, no space at either end.
pub(super) fn check_name(name: &str) -> Result<(), Rule> {
    super::check_label(name, 1, MAX_NAME_LEN)?;
    if name.trim() != name {
        return Err(Rule::Padded);
    }
    Ok(())
}

/// `path` without one trailing slash (but the root), as flags' pages are matched.
fn page(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() && !rest.ends_with('/') => rest,
        _ => path,
    }
}

impl TriggerDefinition {
    /// An enabled trigger called `name`, fired by code only.
    pub fn new(name: impl Into<String>) -> Self {
        TriggerDefinition {
            name: name.into(),
            enabled: true,
            method: None,
            path: None,
            status: None,
        }
    }

    /// Every field checked; the errors name the fields (`name`, `method`, `path`,
    /// `status`).
    pub fn validate(self) -> Result<Trigger, Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(rule) = check_name(&self.name) {
            errors.push(FieldError::new("name", rule));
        }
        let method = self.method.map(|m| m.trim().to_ascii_uppercase());
        if let Some(method) = &method {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                errors.push(FieldError::new(
                    "method",
                    Rule::Method {
                        found: method.chars().take(20).collect(),
                    },
                ));
            }
        }
        let mut status = StatusClasses(0);
        for (i, class) in self.status.iter().flatten().enumerate() {
            match StatusClasses::parse_one(class) {
                Some(bit) => status.0 |= 1 << bit,
                None => errors.push(FieldError::new(
                    format!("status[{i}]"),
                    Rule::StatusClass {
                        found: class.chars().take(20).collect(),
                    },
                )),
            }
        }
        if self.status.is_none() {
            status = StatusClasses::SUCCESS;
        } else if status.0 == 0 && errors.is_empty() {
            errors.push(FieldError::new("status", Rule::EmptyList));
        }
        let request = match self.path {
            Some(path) => {
                if let Some(found) = path
                    .chars()
                    .find(|c| c.is_whitespace() || c.is_control() || *c == '?' || *c == '#')
                {
                    errors.push(FieldError::new("path", Rule::PathCharacter { found }));
                } else if !path.starts_with('/') || path.len() > MAX_PATH_LEN {
                    errors.push(FieldError::new(
                        "path",
                        Rule::Length {
                            min: 1,
                            max: MAX_PATH_LEN,
                            len: path.len(),
                        },
                    ));
                }
                Some(RequestMatch {
                    method,
                    path: page(&path).to_string(),
                    status,
                })
            }
            None => {
                if method.is_some() {
                    errors.push(FieldError::new("method", Rule::NeedsPath));
                }
                if self.status.is_some() {
                    errors.push(FieldError::new("status", Rule::NeedsPath));
                }
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Trigger {
            name: self.name,
            enabled: self.enabled,
            request,
        })
    }
}

impl Trigger {
    /// The trigger's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the configuration enables the trigger (`enabled`, true unless set to
    /// false). An admin's switch may override it: [`enabled_with`](Self::enabled_with).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the trigger fires, given the admin's switch for it, if one is set: the
    /// switch, when set, wins both ways; without one, the configuration decides.
    ///
    /// ```
    /// use bandits::engine::partners::TriggerDefinition;
    ///
    /// let off = TriggerDefinition { enabled: false, ..TriggerDefinition::new("Newsletter") }
    ///     .validate()?;
    /// assert!(!off.enabled_with(None), "the configuration decides");
    /// assert!(off.enabled_with(Some(true)), "switched on in the admin");
    /// # Ok::<(), Vec<bandits::engine::FieldError>>(())
    /// ```
    pub fn enabled_with(&self, switch: Option<bool>) -> bool {
        switch.unwrap_or(self.enabled)
    }

    /// Whether requests fire it (it has a path), whether or not it is enabled.
    pub fn fired_by_requests(&self) -> bool {
        self.request.is_some()
    }

    /// The method, path and status classes of the requests that fire it, when requests
    /// do (`None`: only code fires it). The method is `None` when any method does.
    pub fn fired_by_request(&self) -> Option<(Option<&str>, &str, StatusClasses)> {
        self.request.as_ref().map(|request| {
            (
                request.method.as_deref(),
                request.path.as_str(),
                request.status,
            )
        })
    }

    /// Whether a request with this method and path, answered with `status`, fires the
    /// trigger (never when the configuration disables it).
    pub fn fired_by(&self, method: &str, path: &str, status: u16) -> bool {
        self.enabled && self.matches_request(method, path, status)
    }

    /// Whether a request with this method and path, answered with `status`, is one the
    /// trigger describes, enabled or not: what fires it once an admin's switch is taken
    /// into account ([`enabled_with`](Self::enabled_with)).
    pub fn matches_request(&self, method: &str, path: &str, status: u16) -> bool {
        let Some(request) = &self.request else {
            return false;
        };
        request.status.contains(status)
            && request.method.as_deref().is_none_or(|m| m == method)
            && page(path) == request.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(definition: TriggerDefinition) -> Vec<String> {
        definition
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_request_fires_by_method_path_and_status_class() {
        let order = TriggerDefinition {
            path: Some("/orders/".into()),
            status: Some(vec!["2XX".into()]),
            ..TriggerDefinition::new("Order placed")
        }
        .validate()
        .unwrap();
        assert!(order.fired_by("POST", "/orders", 201));
        assert!(order.fired_by("GET", "/orders/", 200), "any method");
        assert!(!order.fired_by("POST", "/orders", 303), "3xx not listed");
        assert!(!order.fired_by("POST", "/orders//", 200));
        assert!(!order.fired_by("POST", "/orders/1", 200));
        let off = TriggerDefinition {
            enabled: false,
            path: Some("/orders".into()),
            ..TriggerDefinition::new("Order placed")
        }
        .validate()
        .unwrap();
        assert!(!off.fired_by("POST", "/orders", 200));
        assert!(
            off.matches_request("POST", "/orders", 200),
            "described, but off"
        );
        assert!(!off.matches_request("POST", "/orders", 500));
        assert!(!off.enabled_with(None));
        assert!(off.enabled_with(Some(true)), "an admin's switch wins");
        assert!(!order.enabled_with(Some(false)), "both ways");
        let code = TriggerDefinition::new("Payment confirmed")
            .validate()
            .unwrap();
        assert!(!code.fired_by_requests());
        assert!(!code.fired_by("POST", "/", 200));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(fields(TriggerDefinition::new(" padded")), ["name"]);
        assert_eq!(fields(TriggerDefinition::new("")), ["name"]);
        let wrong = TriggerDefinition {
            method: Some("PO ST".into()),
            path: Some("signup".into()),
            status: Some(vec!["2xx".into(), "6xx".into()]),
            ..TriggerDefinition::new("User registered")
        };
        assert_eq!(fields(wrong), ["method", "status[1]", "path"]);
        let no_path = TriggerDefinition {
            method: Some("POST".into()),
            ..TriggerDefinition::new("User registered")
        };
        assert_eq!(fields(no_path), ["method"]);
    }
}
