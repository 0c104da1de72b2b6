//! `window.bandits`: the visitor's browser-readable flags as a script, served as
//! `/bandits/flags.js` or inlined into a page (bandits-tera's `bandits_script()`).

use rocket::serde::json::Value;

/// The script defining `window.bandits` over `flags` (the `{"flags": {...}}` object of
/// `flags.json`), as django-waffle's `wafflejs` defines `waffle`:
/// `bandits.isActive(name)`, `bandits.variant(name)`, `bandits.payload(name)`, and
/// `bandits.convert(event)`, which posts the goal event to `/bandits/convert` and
/// resolves to the number of flags it converted. A flag the script does not list is
/// inactive, with no variant and no payload.
///
/// The flags are written as JSON with `<`, `>`, `&` and the two line separators escaped,
/// so the text is safe inside a `<script>` element whatever a payload holds.
///
/// ```
/// let flags = serde_json::json!({"flags": {"layout": {"variant": "cards", "active": true,
///     "payload": {"note": "</script><script>alert(1)</script>"}}}});
/// let script = bandits::browser::script(&flags);
/// assert!(script.contains("window.bandits"));
/// assert!(!script.contains("</script>"));
/// ```
pub fn script(flags: &Value) -> String {
    let data = script_json(flags);
    format!(
        r#"(function () {{
  "use strict";
  var data = {data};
  var flags = data.flags || {{}};
  function get(name) {{
    return Object.prototype.hasOwnProperty.call(flags, name) ? flags[name] : null;
  }}
  window.bandits = {{
    flags: flags,
    isActive: function (name) {{ var flag = get(name); return !!(flag && flag.active); }},
    variant: function (name) {{ var flag = get(name); return flag ? flag.variant : null; }},
    payload: function (name) {{
      var flag = get(name);
      return flag && flag.payload !== undefined ? flag.payload : null;
    }},
    convert: function (event) {{
      return fetch("{base}/convert", {{
        method: "POST",
        credentials: "same-origin",
        headers: {{ "Content-Type": "application/json" }},
        body: JSON.stringify({{ event: event }})
      }}).then(function (response) {{
        return response.ok ? response.json().then(function (body) {{ return body.converted; }}) : 0;
      }});
    }}
  }};
}})();
"#,
        base = super::BASE
    )
}

/// [`script`] in a `<script>` element, for a page to carry its flags without another
/// request.
pub fn inline_script(flags: &Value) -> String {
    format!("<script>{}</script>", script(flags))
}

/// `value` as JSON that cannot end a `<script>` element or start an HTML comment or
/// entity in it: `<`, `>` and `&` (which JSON holds only inside strings) as `\u` escapes,
/// and U+2028 and U+2029, which older JavaScript reads as line ends.
fn script_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaped_json_reads_back_as_the_same_value() {
        let value = json!({"flags": {"f": {"payload": "a<b>&c\u{2028}</script><!--"}}});
        let escaped = script_json(&value);
        for bad in ["<", ">", "&", "\u{2028}"] {
            assert!(!escaped.contains(bad), "{escaped}");
        }
        let back: Value = serde_json::from_str(&escaped).expect("still JSON");
        assert_eq!(back, value);
    }
}
