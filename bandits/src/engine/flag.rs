//! A flag: its arms, its policy, and the rule that declares a winner.
//!
//! [`FlagDefinition`] is what a site owner writes (in code, the admin or the JSON API):
//! plain public fields, every one with a default. [`Flag`] is what the engine runs, and
//! the only way to get one is [`FlagDefinition::validate`], so a flag with one arm, an
//! epsilon of 3 or a significance level of 0 never reaches a policy.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::policy::Policy;
use super::rule::Rule;
use super::stats::{chances, Chances};
use super::targeting::Targeting;
use super::totals::ArmTotals;
use super::winner::WinnerRule;

/// The longest flag or arm name accepted.
pub const MAX_NAME_LEN: usize = 100;
/// The longest note accepted.
pub const MAX_NOTE_LEN: usize = 10_000;
/// The most arms a flag may have. It bounds the visitor cookie and the cost of the
/// probability-best integration shown in the admin.
pub const MAX_ARMS: usize = 32;

/// One variant of a flag, with an optional JSON payload handed to the page that shows it.
///
/// ```
/// use bandits::engine::Arm;
///
/// let arm = Arm::new("blue").with_payload(serde_json::json!({ "color": "#0055ff" }));
/// assert_eq!(arm.name, "blue");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// The arm's name: lowercase letters, digits, `-` and `_`, 1 to 100 characters.
    pub name: String,
    /// Data for the page showing this arm (a headline, a price, a colour), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

impl Arm {
    /// An arm without payload.
    pub fn new(name: impl Into<String>) -> Self {
        Arm {
            name: name.into(),
            payload: None,
        }
    }

    /// The same arm carrying `payload`.
    pub fn with_payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = Some(payload);
        self
    }
}

/// Which interval the admin and the API show for an arm's conversion rate, at the flag's
/// confidence (`1 - significance_level`).
///
/// ```
/// use bandits::engine::{FlagDefinition, IntervalKind};
///
/// let flag: FlagDefinition = serde_json::from_str(r#"{"name": "f", "interval": "beta"}"#)?;
/// assert_eq!(flag.interval, IntervalKind::Beta);
/// assert_eq!(FlagDefinition::new("g").interval, IntervalKind::Wilson);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalKind {
    /// The Wilson score interval: a frequentist interval that stays inside [0, 1] and
    /// behaves with few visitors. The default.
    #[default]
    Wilson,
    /// The equal-tailed credible interval of the Beta posterior, with the flag's prior
    /// (Thompson sampling's alpha and beta, or uniform): the interval that goes with
    /// Thompson sampling and with the probability that each arm is best.
    Beta,
}

impl IntervalKind {
    /// The interval's name as shown to site owners.
    pub fn label(self) -> &'static str {
        match self {
            IntervalKind::Wilson => "Wilson",
            IntervalKind::Beta => "Beta posterior",
        }
    }
}

/// A flag as a site owner defines it, before validation.
///
/// Every field has a default: two arms `off` (the control) and `on`, epsilon-greedy with
/// epsilon 0.1, significance level 0.05, 100 exposures before any winner is declared, and
/// the t-test winner rule of django-bandits.
///
/// ```
/// use bandits::engine::{FlagDefinition, Policy};
///
/// let flag = FlagDefinition::new("headline-flag")
///     .with_arms(["control", "short", "long"])
///     .with_policy(Policy::thompson())
///     .validate()
///     .expect("a valid flag");
/// assert_eq!(flag.arms().len(), 3);
/// assert_eq!(flag.control().name, "control");
///
/// let err = FlagDefinition::new("Headline Flag").validate().unwrap_err();
/// assert_eq!(err.errors()[0].field, "name");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlagDefinition {
    /// Lowercase letters, digits, `-` and `_`, 1 to 100 characters.
    pub name: String,
    /// Free text for the team: what is being tried, and why.
    pub note: String,
    /// Two or more arms with distinct names; the first is the control and the default.
    pub arms: Vec<Arm>,
    /// How new visitors are assigned an arm.
    pub policy: Policy,
    /// The significance level of the winner rule, in (0, 1). Intervals are shown at
    /// confidence `1 - significance_level`.
    pub significance_level: f64,
    /// Exposures, over all arms, before the winner rule is consulted.
    pub min_views: u64,
    /// When an arm is declared the winner.
    pub winner_rule: WinnerRule,
    /// The name of the arm locked as the winner: every visitor gets it.
    pub winner: Option<String>,
    /// The page where the flag is shown: a visitor's first request to it assigns and
    /// counts the visitor (an exposure). `None`: the visitor is exposed wherever the flag
    /// is first read. Normalised to a leading slash (`contact/` becomes `/contact/`).
    pub source_path: Option<String>,
    /// The goal page: an exposed visitor's request to it counts one conversion.
    pub target_path: Option<String>,
    /// The goal event: `flags.convert("signup")` from code counts one conversion. Same
    /// rule as flag names. A flag may have a goal page, a goal event, or both.
    pub goal_event: Option<String>,
    /// Leave signed-in visitors out of the experiment: they see the control and are not
    /// counted. Takes effect where the site says who is signed in (the fairing's
    /// `signed_in` hook); without the hook every visitor counts.
    pub exclude_signed_in: bool,
    /// The browser may read the flag: `GET /bandits/flags.json`, `flags.js` and
    /// OpenFeature's remote evaluation list it with the visitor's arm and payload. Off by
    /// default, so internal experiments and their payloads stay on the server.
    pub client_side: bool,
    /// The interval the admin and the API show for each arm's rate.
    pub interval: IntervalKind,
    /// Who enters the experiment: waffle's everyone, percent, users, groups, languages,
    /// rollout and testing mode. The default lets every visitor in.
    pub targeting: Targeting,
}

impl Default for FlagDefinition {
    fn default() -> Self {
        FlagDefinition {
            name: String::new(),
            note: String::new(),
            arms: vec![Arm::new("off"), Arm::new("on")],
            policy: Policy::default(),
            significance_level: 0.05,
            min_views: 100,
            winner_rule: WinnerRule::default(),
            winner: None,
            source_path: None,
            target_path: None,
            goal_event: None,
            exclude_signed_in: false,
            client_side: false,
            interval: IntervalKind::default(),
            targeting: Targeting::default(),
        }
    }
}

impl FlagDefinition {
    /// A definition named `name` with every other field at its default.
    pub fn new(name: impl Into<String>) -> Self {
        FlagDefinition {
            name: name.into(),
            ..FlagDefinition::default()
        }
    }

    /// django-waffle's percentage flag: `percent`% of visitors (0 to 100) see the first arm
    /// after the control (`on`), the others the control (`off`). Each visitor keeps their
    /// answer (a bucket fixed by the visitor and the flag), no bandit moves the split, and
    /// no winner is ever locked. Raising the percent later only adds visitors: those in
    /// stay in. Those who see `on` are counted; the others are not.
    ///
    /// It is a plain definition (a 0:100 split, `targeting.percent`, the manual winner
    /// rule), so it can be edited like any other; the API takes it as
    /// `{"name": "...", "percentage": 10}`.
    ///
    /// ```
    /// use bandits::engine::FlagDefinition;
    ///
    /// let flag = FlagDefinition::percentage("new-checkout", 10.0).validate()?;
    /// assert_eq!(flag.definition().as_percentage(), Some(10.0));
    /// assert_eq!(FlagDefinition::new("other").as_percentage(), None);
    /// # Ok::<(), bandits::engine::InvalidFlag>(())
    /// ```
    pub fn percentage(name: impl Into<String>, percent: f64) -> Self {
        FlagDefinition {
            policy: Policy::Split {
                weights: vec![0.0, 1.0],
            },
            winner_rule: WinnerRule::Manual,
            targeting: Targeting {
                percent: Some(percent),
                ..Targeting::default()
            },
            ..FlagDefinition::new(name)
        }
    }

    /// The percent of a [`percentage`](Self::percentage) flag: two arms, everyone who
    /// enters sees the second, the manual rule, and a percent. `None` for any other flag.
    pub fn as_percentage(&self) -> Option<f64> {
        let splits_all_to_on = matches!(&self.policy, Policy::Split { weights }
            if weights.len() == 2 && weights[0] == 0.0 && weights[1] > 0.0);
        (self.arms.len() == 2 && splits_all_to_on && self.winner_rule == WinnerRule::Manual)
            .then_some(self.targeting.percent)
            .flatten()
    }

    /// Replaces the arms by payload-less arms with these names, the first being the control.
    pub fn with_arms<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.arms = names.into_iter().map(Arm::new).collect();
        self
    }

    /// Replaces the policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Replaces the winner rule.
    pub fn with_winner_rule(mut self, rule: WinnerRule) -> Self {
        self.winner_rule = rule;
        self
    }

    /// Shows the flag on `source` with the goal page `target`.
    ///
    /// ```
    /// use bandits::engine::FlagDefinition;
    ///
    /// let flag = FlagDefinition::new("headline-flag").with_paths("/", "contact/").validate()?;
    /// assert_eq!(flag.source_path(), Some("/"));
    /// assert_eq!(flag.target_path(), Some("/contact/"));
    /// # Ok::<(), bandits::engine::InvalidFlag>(())
    /// ```
    pub fn with_paths(mut self, source: impl Into<String>, target: impl Into<String>) -> Self {
        self.source_path = Some(source.into());
        self.target_path = Some(target.into());
        self
    }

    /// Counts a conversion when code fires the event `event`.
    pub fn with_goal_event(mut self, event: impl Into<String>) -> Self {
        self.goal_event = Some(event.into());
        self
    }

    /// Checks every field and returns the runnable [`Flag`], or every problem found.
    pub fn validate(mut self) -> Result<Flag, InvalidFlag> {
        let mut errors = Vec::new();

        let mut report = |field: String, rule: Rule| errors.push(FieldError { field, rule });

        if let Err(rule) = check_name(&self.name) {
            report("name".into(), rule);
        }
        if let Err(rule) = check_length(&self.note, 0, MAX_NOTE_LEN) {
            report("note".into(), rule);
        }
        if self.arms.len() < 2 || self.arms.len() > MAX_ARMS {
            report(
                "arms".into(),
                Rule::ArmCount {
                    min: 2,
                    max: MAX_ARMS,
                    count: self.arms.len(),
                },
            );
        }
        for (i, arm) in self.arms.iter().enumerate() {
            if let Err(rule) = check_name(&arm.name) {
                report(format!("arms[{i}].name"), rule);
            } else if self.arms[..i].iter().any(|a| a.name == arm.name) {
                report(
                    format!("arms[{i}].name"),
                    Rule::Duplicate {
                        name: arm.name.clone(),
                    },
                );
            }
        }
        for (field, rule) in self.policy.problems(self.arms.len()) {
            report(format!("policy.{field}"), rule);
        }
        if !(self.significance_level > 0.0 && self.significance_level < 1.0) {
            report(
                "significance_level".into(),
                Rule::Range {
                    range: "(0, 1)",
                    value: self.significance_level,
                },
            );
        }
        for (field, rule) in self.winner_rule.problems() {
            report(format!("winner_rule.{field}"), rule);
        }

        let winner = match &self.winner {
            None => None,
            Some(name) => {
                let index = self.arms.iter().position(|arm| &arm.name == name);
                if index.is_none() {
                    report("winner".into(), Rule::UnknownArm { name: name.clone() });
                }
                index
            }
        };

        for (field, path) in [
            ("source_path", &mut self.source_path),
            ("target_path", &mut self.target_path),
        ] {
            if let Some(value) = path.as_mut() {
                match normalise_path(value) {
                    Ok(normalised) => *value = normalised,
                    Err(rule) => errors.push(FieldError {
                        field: field.to_string(),
                        rule,
                    }),
                }
            }
        }
        if let Some(event) = &self.goal_event {
            if let Err(rule) = check_name(event) {
                errors.push(FieldError {
                    field: "goal_event".into(),
                    rule,
                });
            }
        }

        for (field, rule) in self.targeting.problems() {
            errors.push(FieldError {
                field: format!("targeting.{field}"),
                rule,
            });
        }

        if errors.is_empty() {
            Ok(Flag {
                definition: self,
                winner,
            })
        } else {
            Err(InvalidFlag { errors })
        }
    }
}

/// `Ok` when `text` has `min` to `max` characters.
fn check_length(text: &str, min: usize, max: usize) -> Result<(), Rule> {
    let len = text.chars().count();
    if len < min || len > max {
        return Err(Rule::Length { min, max, len });
    }
    Ok(())
}

pub(crate) fn check_name(name: &str) -> Result<(), Rule> {
    check_length(name, 1, MAX_NAME_LEN)?;
    match name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        Some(found) => Err(Rule::Characters { found }),
        None => Ok(()),
    }
}

/// The longest path accepted.
pub const MAX_PATH_LEN: usize = 2_000;

/// `path` with a leading slash, or the rule it breaks: 1 to 2,000 characters, no
/// whitespace or control characters, no query (`?`) or fragment (`#`).
fn normalise_path(path: &str) -> Result<String, Rule> {
    let path = path.trim();
    check_length(path, 1, MAX_PATH_LEN)?;
    if let Some(found) = path
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '?' || *c == '#')
    {
        return Err(Rule::PathCharacter { found });
    }
    Ok(if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    })
}

/// A validated flag: the engine's unit of decision.
///
/// Obtained from [`FlagDefinition::validate`], or by deserializing (which validates too).
/// Arm 0 is the control: the arm a visitor gets when no decision can be made.
///
/// ```
/// use bandits::engine::{ArmTotals, FlagDefinition};
/// use rand::{rngs::SmallRng, SeedableRng};
///
/// let flag = FlagDefinition::new("checkout").validate()?;
/// let totals = [ArmTotals::new(120, 6), ArmTotals::new(118, 11)];
/// let mut rng = SmallRng::seed_from_u64(7);
/// let arm = flag.choose_arm(&totals, &mut rng);
/// assert!(arm < 2);
/// # Ok::<(), bandits::engine::InvalidFlag>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FlagDefinition", into = "FlagDefinition")]
pub struct Flag {
    definition: FlagDefinition,
    winner: Option<usize>,
}

impl Flag {
    /// The flag's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// The team's note.
    pub fn note(&self) -> &str {
        &self.definition.note
    }

    /// The arms; the first is the control.
    pub fn arms(&self) -> &[Arm] {
        &self.definition.arms
    }

    /// The control arm: the first, and the default when no decision can be made.
    pub fn control(&self) -> &Arm {
        &self.definition.arms[0]
    }

    /// The index of the arm called `name`.
    pub fn arm_index(&self, name: &str) -> Option<usize> {
        self.definition.arms.iter().position(|arm| arm.name == name)
    }

    /// How new visitors are assigned.
    pub fn policy(&self) -> &Policy {
        &self.definition.policy
    }

    /// The significance level of the winner rule.
    pub fn significance_level(&self) -> f64 {
        self.definition.significance_level
    }

    /// The confidence of the intervals shown for this flag: `1 - significance_level`.
    pub fn confidence(&self) -> f64 {
        1.0 - self.definition.significance_level
    }

    /// Exposures before the winner rule is consulted.
    pub fn min_views(&self) -> u64 {
        self.definition.min_views
    }

    /// The rule that declares a winner.
    pub fn winner_rule(&self) -> &WinnerRule {
        &self.definition.winner_rule
    }

    /// The page where the flag is shown, with a leading slash.
    pub fn source_path(&self) -> Option<&str> {
        self.definition.source_path.as_deref()
    }

    /// The goal page, with a leading slash.
    pub fn target_path(&self) -> Option<&str> {
        self.definition.target_path.as_deref()
    }

    /// The goal event fired from code.
    pub fn goal_event(&self) -> Option<&str> {
        self.definition.goal_event.as_deref()
    }

    /// Who enters the experiment.
    pub fn targeting(&self) -> &Targeting {
        &self.definition.targeting
    }

    /// Whether signed-in visitors are left out of the experiment.
    pub fn exclude_signed_in(&self) -> bool {
        self.definition.exclude_signed_in
    }

    /// The interval shown for each arm's rate ([`FlagDefinition::interval`]).
    pub fn interval(&self) -> IntervalKind {
        self.definition.interval
    }

    /// Whether the browser may read the flag ([`FlagDefinition::client_side`]).
    pub fn client_side(&self) -> bool {
        self.definition.client_side
    }

    /// The index of the locked winner, if one is locked.
    pub fn winner(&self) -> Option<usize> {
        self.winner
    }

    /// The definition this flag was validated from.
    pub fn definition(&self) -> &FlagDefinition {
        &self.definition
    }

    /// The arm for a new visitor: the locked winner if there is one, else the policy's choice.
    ///
    /// `totals` holds one entry per arm, in the flag's order. A slice of another length
    /// (a snapshot taken before the arms were edited) is padded or cut to the flag's arms,
    /// so the answer is always a valid arm index.
    pub fn choose_arm<R: Rng + ?Sized>(&self, totals: &[ArmTotals], rng: &mut R) -> usize {
        self.choose(totals, None, rng).arm
    }

    /// As [`choose_arm`](Self::choose_arm), given the arms' [`Chances`] on the same totals
    /// when the caller has them ([`chances`](Self::chances), once per flush on a site),
    /// with the probability that this arm was the one chosen ([`Choice::propensity`]).
    ///
    /// ```
    /// use bandits::engine::{ArmTotals, FlagDefinition, Policy};
    ///
    /// let flag = FlagDefinition::new("cta").with_policy(Policy::percent(20.0)).validate()?;
    /// let totals = [ArmTotals::default(); 2];
    /// let choice = flag.choose(&totals, None, &mut rand::rng());
    /// assert_eq!(choice.propensity, Some([0.8, 0.2][choice.arm]));
    /// # Ok::<(), bandits::engine::InvalidFlag>(())
    /// ```
    pub fn choose<R: Rng + ?Sized>(
        &self,
        totals: &[ArmTotals],
        chances: Option<&Chances>,
        rng: &mut R,
    ) -> Choice {
        if let Some(winner) = self.winner {
            return Choice {
                arm: winner,
                propensity: Some(1.0),
            };
        }
        let k = self.definition.arms.len();
        let padded;
        let totals = if totals.len() == k {
            totals
        } else {
            let mut resized = totals.to_vec();
            resized.resize(k, ArmTotals::default());
            padded = resized;
            &padded
        };
        let best = chances
            .map(|chances| chances.best.as_slice())
            .filter(|best| best.len() == k);
        let policy = &self.definition.policy;
        let arm = policy.choose_given(totals, best, rng);
        Choice {
            arm,
            propensity: policy.propensity(arm, totals, best),
        }
    }

    /// Whether this flag needs its arms' [`Chances`] at each flush: its policy chooses by
    /// them (the Thompson policies' propensities, top-two Thompson's choices) or its
    /// winner rule decides by them (the Bayesian rule). A locked flag needs nothing.
    pub fn reads_chances(&self) -> bool {
        self.winner.is_none()
            && (self.definition.policy.reads_chances()
                || self.definition.winner_rule.reads_chances())
    }

    /// The arms' [`Chances`] on `totals` under the policy's prior
    /// ([`Policy::prior`]); `None` when `totals` does not hold one entry per arm.
    pub fn chances(&self, totals: &[ArmTotals]) -> Option<Chances> {
        if totals.len() != self.definition.arms.len() {
            return None;
        }
        chances(totals, self.definition.policy.prior())
    }

    /// The arm the winner rule declares the winner given `totals`, if any.
    ///
    /// The rule waits until the arms together have [`min_views`](Self::min_views)
    /// exposures. It does not lock anything: the caller stores the answer with
    /// [`lock_winner`](Self::lock_winner).
    pub fn find_winner(&self, totals: &[ArmTotals]) -> Option<usize> {
        self.find_winner_with(totals, None)
    }

    /// As [`find_winner`](Self::find_winner), with the arms' [`Chances`] on `totals`
    /// computed already ([`chances`](Self::chances)).
    pub fn find_winner_with(
        &self,
        totals: &[ArmTotals],
        chances: Option<&Chances>,
    ) -> Option<usize> {
        if totals.len() != self.definition.arms.len() {
            return None;
        }
        let computed;
        let chances = match chances {
            None if self.definition.winner_rule.reads_chances() => {
                computed = self.chances(totals);
                computed.as_ref()
            }
            given => given,
        };
        self.definition.winner_rule.find_winner_with(
            totals,
            self.definition.significance_level,
            self.definition.min_views,
            chances,
        )
    }

    /// This flag with arm `index` locked as the winner, or `None` if there is no such arm.
    pub fn lock_winner(mut self, index: usize) -> Option<Flag> {
        let name = self.definition.arms.get(index)?.name.clone();
        self.definition.winner = Some(name);
        self.winner = Some(index);
        Some(self)
    }
}

impl TryFrom<FlagDefinition> for Flag {
    type Error = InvalidFlag;

    fn try_from(definition: FlagDefinition) -> Result<Self, Self::Error> {
        definition.validate()
    }
}

impl From<Flag> for FlagDefinition {
    fn from(flag: Flag) -> Self {
        flag.definition
    }
}

/// A new visitor's arm and how likely it was to be the one chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// The arm's index among the flag's arms.
    pub arm: usize,
    /// The probability with which the policy chose this arm at this moment (1 for a
    /// locked winner): what an off-policy estimate divides by
    /// ([`Policy::propensity`]). `None` when it cannot be known: a Thompson policy chosen
    /// without the arms' [`Chances`].
    pub propensity: Option<f64>,
}

/// A flag definition that failed validation: every problem found, each naming its field.
///
/// ```
/// use bandits::engine::{FlagDefinition, Policy};
///
/// let err = FlagDefinition::new("promo")
///     .with_arms(["a", "a"])
///     .with_policy(Policy::EpsilonGreedy { epsilon: 1.5 })
///     .validate()
///     .unwrap_err();
/// let fields: Vec<&str> = err.errors().iter().map(|e| e.field.as_str()).collect();
/// assert_eq!(fields, ["arms[1].name", "policy.epsilon"]);
/// assert_eq!(
///     err.to_string(),
///     "arms[1].name: the arm name \"a\" is used more than once; \
///      policy.epsilon: must be in [0, 1], got 1.5"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidFlag {
    errors: Vec<FieldError>,
}

impl InvalidFlag {
    /// The problems, in the order of the definition's fields.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The problem with `field`, if any (`"name"`, `"arms[1].name"`, `"policy.epsilon"`...).
    pub fn field(&self, field: &str) -> Option<&FieldError> {
        self.errors.iter().find(|e| e.field == field)
    }
}

impl fmt::Display for InvalidFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidFlag {}

/// One field of a definition and the rule it breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    /// The field's path in the definition, as in its JSON form: `name`, `arms[2].name`,
    /// `policy.epsilon`, `significance_level`, `winner_rule.mixture_sd`, `winner`.
    pub field: String,
    /// The rule broken.
    pub rule: Rule,
}

impl FieldError {
    /// `field` breaks `rule`.
    pub fn new(field: impl Into<String>, rule: Rule) -> FieldError {
        FieldError {
            field: field.into(),
            rule,
        }
    }
}
