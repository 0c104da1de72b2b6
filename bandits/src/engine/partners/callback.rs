//! A subscription's callback URL: checked when it is saved, filled in when a trigger
//! completes.

use std::fmt::Write as _;

use crate::engine::{FieldError, Rule};

/// The longest callback URL accepted, in bytes.
pub const MAX_CALLBACK_URL_LEN: usize = 2_000;

/// The placeholders a callback URL may hold; `{visitor_id}` it must.
pub const PLACEHOLDERS: [&str; 4] = ["visitor_id", "trigger", "event_id", "partner"];

/// The field every callback URL error names.
const FIELD: &str = "callback_url";

/// A partner's callback URL: `http` or `https`, holding `{visitor_id}` and no placeholder
/// but those of [`PLACEHOLDERS`].
///
/// ```
/// use bandits::engine::partners::{CallbackUrl, Placeholders};
///
/// let url = CallbackUrl::parse(
///     "https://partner.example/track/?campaign=123&visitor_id={visitor_id}&t={trigger}",
/// )?;
/// let filled = url.render(&Placeholders {
///     visitor_id: "0123456789abcdef0123456789abcdef",
///     trigger: "User registered",
///     event_id: "e1",
///     partner: "Ab3dE6gH",
/// });
/// assert_eq!(
///     filled,
///     "https://partner.example/track/?campaign=123\
///      &visitor_id=0123456789abcdef0123456789abcdef&t=User%20registered",
/// );
///
/// let error = CallbackUrl::parse("https://partner.example/track/").unwrap_err();
/// assert_eq!(error.field, "callback_url");
/// # Ok::<(), bandits::engine::FieldError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(String);

/// The values a callback URL's placeholders are filled with (each percent-encoded).
#[derive(Debug, Clone, Copy)]
pub struct Placeholders<'a> {
    /// `{visitor_id}`: the visitor's id.
    pub visitor_id: &'a str,
    /// `{trigger}`: the trigger's name.
    pub trigger: &'a str,
    /// `{event_id}`: the callback's id, also sent as its `Idempotency-Key`.
    pub event_id: &'a str,
    /// `{partner}`: the partner's uid.
    pub partner: &'a str,
}

impl Placeholders<'_> {
    fn value(&self, name: &str) -> &str {
        match name {
            "visitor_id" => self.visitor_id,
            "trigger" => self.trigger,
            "event_id" => self.event_id,
            _ => self.partner,
        }
    }
}

/// A piece of a callback URL: text as written, or a placeholder's name.
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits `text` into text and placeholders; the error says what is wrong.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("has a '}' without its '{'".into());
        }
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 1..];
        let close = after
            .find(['{', '}'])
            .filter(|&i| after.as_bytes()[i] == b'}')
            .ok_or_else(|| "has a '{' without its '}'".to_string())?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "has the placeholder {{{}}}; the placeholders are {{visitor_id}}, \
                 {{trigger}}, {{event_id}} and {{partner}}",
                name.chars().take(40).collect::<String>()
            ));
        }
        out.push(Piece::Placeholder(name));
        rest = &after[close + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

impl CallbackUrl {
    /// Checks `text`; the error names the field `callback_url` and says what is wrong.
    pub fn parse(text: &str) -> Result<CallbackUrl, FieldError> {
        let refuse = |reason: String| FieldError::new(FIELD, Rule::CallbackUrl { reason });
        let text = text.trim();
        if text.len() > MAX_CALLBACK_URL_LEN {
            return Err(refuse(format!(
                "is {} bytes long, at most {MAX_CALLBACK_URL_LEN} allowed",
                text.len()
            )));
        }
        let pieces = pieces(text).map_err(refuse)?;
        if !pieces
            .iter()
            .any(|piece| matches!(piece, Piece::Placeholder("visitor_id")))
        {
            return Err(refuse("must hold {visitor_id}".into()));
        }
        // Checked as it will be sent: with every placeholder filled in.
        let sample = render(
            &pieces,
            &Placeholders {
                visitor_id: "0123456789abcdef0123456789abcdef",
                trigger: "trigger",
                event_id: "0123456789abcdef0123456789abcdef",
                partner: "Ab3dE6gH",
            },
        );
        let url =
            url::Url::parse(&sample).map_err(|error| refuse(format!("is not a URL ({error})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse(format!(
                "must start with http:// or https://, not {}:",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(refuse("has no host".into()));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse("holds a space or a control character".into()));
        }
        Ok(CallbackUrl(text.to_string()))
    }

    /// The URL as saved, placeholders unfilled.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL to call: every placeholder replaced by its value, percent-encoded.
    pub fn render(&self, values: &Placeholders<'_>) -> String {
        // Parsed when saved: the pieces are valid.
        match pieces(&self.0) {
            Ok(pieces) => render(&pieces, values),
            Err(_) => self.0.clone(),
        }
    }
}

fn render(pieces: &[Piece<'_>], values: &Placeholders<'_>) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(name) => encode_into(&mut out, values.value(name)),
        }
    }
    out
}

/// Percent-encodes every byte of `value` but RFC 3986's unreserved characters, so a value
/// is one path segment or one query value wherever the placeholder stands.
fn encode_into(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        let error = CallbackUrl::parse(text).unwrap_err();
        assert_eq!(error.field, "callback_url");
        error.rule.to_string()
    }

    #[test]
    fn only_http_and_https_urls_with_the_visitor_id_are_accepted() {
        for good in [
            "https://partner.example/track/?campaign=123&visitor_id={visitor_id}",
            "http://127.0.0.1:8080/{partner}/{trigger}/{visitor_id}?e={event_id}",
        ] {
            assert!(CallbackUrl::parse(good).is_ok(), "{good}");
        }
        assert!(reason("https://partner.example/track/").contains("{visitor_id}"));
        assert!(reason("ftp://partner.example/{visitor_id}").contains("http"));
        assert!(reason("javascript:alert(1)//{visitor_id}").contains("http"));
        assert!(reason("partner.example/{visitor_id}").contains("not a URL"));
        assert!(reason("https://partner.example/{visitor}").contains("{visitor}"));
        assert!(reason("https://partner.example/{visitor_id").contains("'{'"));
        assert!(reason("https://partner.example/}{visitor_id}").contains("'}'"));
        assert!(reason("https://partner.example/a b/{visitor_id}").contains("space"));
        let long = format!("https://p.example/{{visitor_id}}/{}", "a".repeat(2_000));
        assert!(reason(&long).contains("at most"));
    }

    #[test]
    fn values_are_percent_encoded() {
        let url = CallbackUrl::parse("https://p.example/{trigger}?v={visitor_id}").unwrap();
        let filled = url.render(&Placeholders {
            visitor_id: "a&b=c",
            trigger: "Order placed/€",
            event_id: "",
            partner: "",
        });
        assert_eq!(
            filled,
            "https://p.example/Order%20placed%2F%E2%82%AC?v=a%26b%3Dc"
        );
    }
}
