//! The rules a flag's fields must keep, each with what was found: the `rule` of every
//! [`FieldError`](super::FieldError). The first group is what validation checks; the
//! second is what reading the input checks before (a number that is not one, JSON that
//! does not parse), and what saving it found (a name already taken), so that the API, the
//! admin's form and the command line report every problem in one shape.

/// A validation rule, with what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rule {
    /// A text field's length in characters.
    #[error("must be {min} to {max} characters long, got {len}")]
    Length {
        /// Fewest characters allowed.
        min: usize,
        /// Most characters allowed.
        max: usize,
        /// Characters found.
        len: usize,
    },
    /// A name holds a character outside `a-z`, `0-9`, `-`, `_`.
    #[error("may hold only lowercase letters, digits, '-' and '_', found {found:?}")]
    Characters {
        /// The first character not allowed.
        found: char,
    },
    /// Too few or too many arms.
    #[error("needs {min} to {max} arms, got {count}")]
    ArmCount {
        /// Fewest arms allowed.
        min: usize,
        /// Most arms allowed.
        max: usize,
        /// Arms found.
        count: usize,
    },
    /// Two arms share a name.
    #[error("the arm name {name:?} is used more than once")]
    Duplicate {
        /// The repeated name.
        name: String,
    },
    /// A number outside its range (NaN and infinities are outside every range).
    #[error("must be in {range}, got {value}")]
    Range {
        /// The allowed range, in interval notation: `[0, 1]`, `(0, 1)`, `(0, inf)`.
        range: &'static str,
        /// The value found.
        value: f64,
    },
    /// A list that needs one entry per arm.
    #[error("needs one entry per arm ({arms}), got {count}")]
    PerArm {
        /// The flag's arms.
        arms: usize,
        /// Entries found.
        count: usize,
    },
    /// Weights that are all zero.
    #[error("must not all be zero")]
    AllZero,
    /// A path holding whitespace, a control character, `?` or `#`.
    #[error("must be a path without spaces, query or fragment, found {found:?}")]
    PathCharacter {
        /// The first character not allowed.
        found: char,
    },
    /// A rollout that ends before it starts.
    #[error("must be after rollout.start")]
    RolloutOrder,
    /// A time outside [`TIMES_MS`](crate::engine::targeting::TIMES_MS).
    #[error(
        "must be a time from 1970 to 9999 in milliseconds since the Unix epoch \
         (0 to 253402300799999), got {value}"
    )]
    Time {
        /// The value found.
        value: i64,
    },
    /// A list longer than allowed.
    #[error("may list at most {max} entries, got {count}")]
    TooMany {
        /// Most entries allowed.
        max: usize,
        /// Entries found.
        count: usize,
    },
    /// A reference to an arm the flag does not have.
    #[error("{name:?} is not one of the flag's arms")]
    UnknownArm {
        /// The name given.
        name: String,
    },
    /// Input that could not be read as the field's type (the JSON reader's own words).
    #[error("{message}")]
    Unreadable {
        /// What the reader said.
        message: String,
    },
    /// Text where a number was expected.
    #[error("must be a number, got {found:?}")]
    NotANumber {
        /// The text found.
        found: String,
    },
    /// Text where a count (0 or more) was expected.
    #[error("must be a whole number, 0 or more, got {found:?}")]
    NotACount {
        /// The text found.
        found: String,
    },
    /// Text where JSON was expected.
    #[error("is not valid JSON: {message}")]
    NotJson {
        /// What the JSON reader said.
        message: String,
    },
    /// Text where a date and time was expected.
    #[error("must be a date and time such as 2026-11-21T09:30 (UTC), got {found:?}")]
    NotADateTime {
        /// The text found.
        found: String,
    },
    /// A definition whose name differs from the flag it replaces.
    #[error("must be {name:?}, the flag in the path (flags cannot be renamed)")]
    Renamed {
        /// The flag being replaced.
        name: String,
    },
    /// A new flag whose name another flag has.
    #[error("a flag named {name:?} already exists")]
    Taken {
        /// The name.
        name: String,
    },
    /// A definition for an existing flag that leaves out one of its arms, where that
    /// would delete the arm's counts (an import never changes counts).
    #[error(
        "leaves out the arm {name:?}, which would delete its counts: remove the arm in the \
         admin or with the API"
    )]
    ArmLeftOut {
        /// The arm left out.
        name: String,
    },
    /// Text where a partner's uid (8 letters and digits) was expected.
    #[error("must be a partner's uid: 8 letters and digits, got {found:?}")]
    NotAUid {
        /// The text found (its first 40 characters).
        found: String,
    },
    /// A label for people that holds a control character.
    #[error("must not hold control characters, found {found:?}")]
    ControlCharacter {
        /// The first control character.
        found: char,
    },
    /// A name with spaces at either end.
    #[error("must not start or end with a space")]
    Padded,
    /// A partner's callback URL that cannot be called.
    #[error("must be an http or https URL holding {{visitor_id}}: it {reason}")]
    CallbackUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP method that is not one.
    #[error("must be an HTTP method such as \"POST\", got {found:?}")]
    Method {
        /// The text found.
        found: String,
    },
    /// A status class that is not one.
    #[error("must be a status class: \"1xx\" to \"5xx\", got {found:?}")]
    StatusClass {
        /// The text found.
        found: String,
    },
    /// A list that must not be empty.
    #[error("must list one entry at least")]
    EmptyList,
    /// A request's method or status given for a trigger that no path fires.
    #[error("needs a path: only requests to a path fire a trigger by method and status")]
    NeedsPath,
    /// A trigger name that `bandits.triggers` does not declare.
    #[error("{name:?} is not a trigger declared in bandits.triggers")]
    UnknownTrigger {
        /// The name given (its first 100 characters).
        name: String,
    },
    /// A valid definition the database could not save.
    #[error("not saved: {message}")]
    NotSaved {
        /// Why.
        message: String,
    },
}
