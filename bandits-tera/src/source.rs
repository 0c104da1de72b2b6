//! waffle's forms, rewritten into plain Tera when a template is loaded: the block tag
//! `{% flag "x" %}...{% endflag %}`, the one-liner `<% if flag("x") %>...<% endif %>`, and
//! positional arguments to `flag`, `variant` and `payload`.
//!
//! Tera cannot be taught new tags, delimiters or positional arguments, so the source is
//! rewritten before Tera parses it. Only those constructs change; every other byte (text,
//! comments, `{% raw %}` blocks, `<%= ... %>` and other `<%` text) is kept, and no line
//! break is added or removed, so a line number in an error from Tera is the line the author
//! wrote.

use std::borrow::Cow;
use std::fmt;

/// The functions whose arguments may be given by position, and the names of those
/// positions.
const POSITIONAL: [(&str, &[&str]); 3] = [
    ("flag", &["name"]),
    ("variant", &["name"]),
    ("payload", &["name", "key"]),
];

/// Why a template's source could not be rewritten, at the line its author wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong and how to write it.
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SourceError {}

/// A block the rewriter is inside of, to close the right one.
#[derive(Debug)]
enum Open {
    /// `{% flag ... %}`, to be closed by `{% endflag %}`.
    Flag { line: usize },
    /// `<% if ... %>`, to be closed by `<% endif %>`.
    Angle { line: usize },
    /// Any other Tera block (`if`, `for`, `block`, `macro`, `filter`), closed by `end` and
    /// its name.
    Tera { tag: String, line: usize },
}

/// `source` in plain Tera; borrowed when nothing needed rewriting.
pub fn rewrite(source: &str) -> Result<Cow<'_, str>, SourceError> {
    let mut writer = Rewriter {
        source,
        out: String::new(),
        copied: 0,
        open: Vec::new(),
    };
    writer.run()?;
    if writer.copied == 0 {
        return Ok(Cow::Borrowed(source));
    }
    writer.out.push_str(&source[writer.copied..]);
    Ok(Cow::Owned(writer.out))
}

struct Rewriter<'a> {
    source: &'a str,
    out: String,
    /// The source up to here is in `out` (when anything changed at all).
    copied: usize,
    open: Vec<Open>,
}

impl<'a> Rewriter<'a> {
    fn line_at(&self, at: usize) -> usize {
        self.source[..at].matches('\n').count() + 1
    }

    fn error(&self, at: usize, message: impl Into<String>) -> SourceError {
        SourceError {
            line: self.line_at(at),
            message: message.into(),
        }
    }

    /// Replaces `source[start..end]` with `with`.
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        self.out.push_str(&self.source[self.copied..start]);
        self.out.push_str(with);
        self.copied = end;
    }

    fn run(&mut self) -> Result<(), SourceError> {
        let bytes = self.source.as_bytes();
        let mut at = 0;
        while let Some(offset) = self.source[at..].find(['{', '<']) {
            let start = at + offset;
            let pair = bytes.get(start..start + 2);
            at = match pair {
                Some(b"{#") => match self.source[start + 2..].find("#}") {
                    Some(end) => start + 2 + end + 2,
                    None => break,
                },
                Some(b"{{") => match tag_end(self.source, start + 2, "}}") {
                    Some(end) => {
                        self.expression(start + 2, end)?;
                        end + 2
                    }
                    None => break,
                },
                Some(b"{%") => match tag_end(self.source, start + 2, "%}") {
                    Some(end) => self.statement(start, end)?,
                    None => break,
                },
                Some(b"<%") => self.angle(start)?,
                _ => start + 1,
            };
        }
        match self
            .open
            .iter()
            .find(|open| !matches!(open, Open::Tera { .. }))
        {
            Some(Open::Flag { line }) => Err(SourceError {
                line: *line,
                message: "`{% flag %}` is never closed: end it with `{% endflag %}`".into(),
            }),
            Some(Open::Angle { line }) => Err(SourceError {
                line: *line,
                message: "`<% if %>` is never closed: end it with `<% endif %>`".into(),
            }),
            _ => Ok(()),
        }
    }

    /// The statement `{% ... %}` from `start` (its `{%`) to `end` (its `%}`); returns where
    /// scanning goes on.
    fn statement(&mut self, start: usize, end: usize) -> Result<usize, SourceError> {
        let inner = Trimmed::of(self.source, start + 2, end);
        let body = &self.source[inner.start..inner.end];
        let (tag, rest) = split_tag(body);
        let rest_start = inner.end - rest.len();
        match tag {
            "raw" => {
                // Everything up to the end of `{% endraw %}` stays as it is.
                return Ok(match find_endraw(self.source, end + 2) {
                    Some(after) => after,
                    None => self.source.len(),
                });
            }
            "flag" => {
                if rest.trim().is_empty() {
                    return Err(self.error(
                        start,
                        "`{% flag %}` needs the flag's name: `{% flag \"headline-flag\" %}`",
                    ));
                }
                let line = self.line_at(start);
                self.open.push(Open::Flag { line });
                let name = self.rewritten_calls(rest_start, inner.end)?;
                let with = format!(
                    "{{%{} if flag(name={}) {}%}}",
                    inner.left_dash(),
                    name.trim(),
                    inner.right_dash()
                );
                self.replace(start, end + 2, &with);
                return Ok(end + 2);
            }
            "endflag" => {
                self.close(start, "flag")?;
                let with = format!("{{%{} endif {}%}}", inner.left_dash(), inner.right_dash());
                self.replace(start, end + 2, &with);
                return Ok(end + 2);
            }
            "filter" if starts_with_call(rest, "flag") => {
                return Err(self.error(
                    start,
                    "the `{% filter flag(...) %}` block is retired, because it rendered its body \
                     before deciding: write `{% flag \"name\" %}...{% else %}...{% endflag %}`",
                ));
            }
            "if" | "for" | "block" | "macro" | "filter" => {
                let line = self.line_at(start);
                self.open.push(Open::Tera {
                    tag: tag.to_string(),
                    line,
                });
            }
            _ => {
                if let Some(opened @ ("if" | "for" | "block" | "macro" | "filter")) =
                    tag.strip_prefix("end")
                {
                    self.close(start, opened)?;
                }
            }
        }
        self.expression(rest_start, inner.end)?;
        Ok(end + 2)
    }

    /// Closes the innermost block, which must be `tag` when either it or the innermost is
    /// one of the rewriter's own.
    fn close(&mut self, at: usize, tag: &str) -> Result<(), SourceError> {
        let closing = match tag {
            "flag" => "`{% endflag %}`",
            "angle" => "`<% endif %>`",
            _ => "",
        };
        match (self.open.pop(), tag) {
            (Some(Open::Flag { .. }), "flag") | (Some(Open::Angle { .. }), "angle") => Ok(()),
            (Some(Open::Tera { tag: open, .. }), closed) if open == closed => Ok(()),
            (Some(Open::Flag { line }), _) => Err(self.error(
                at,
                format!("`{{% flag %}}` opened on line {line} must be closed with `{{% endflag %}}` first"),
            )),
            (Some(Open::Angle { line }), _) => Err(self.error(
                at,
                format!("`<% if %>` opened on line {line} must be closed with `<% endif %>` first"),
            )),
            (Some(Open::Tera { tag: open, line }), _) if !closing.is_empty() => Err(self.error(
                at,
                format!("{closing} closes `{{% {open} %}}` opened on line {line}: close it with `{{% end{open} %}}` first"),
            )),
            (None, _) if !closing.is_empty() => {
                Err(self.error(at, format!("{closing} has no block to close")))
            }
            // Tera's own blocks, mismatched: Tera says so when it parses.
            _ => Ok(()),
        }
    }

    /// `<%` at `start`: the one-liner's `<% if flag(...) %>`, and its `elif`, `else` and
    /// `endif`; any other `<%` is text. Returns where scanning goes on.
    fn angle(&mut self, start: usize) -> Result<usize, SourceError> {
        let Some(end) = tag_end(self.source, start + 2, "%>") else {
            return Ok(start + 2);
        };
        let body = &self.source[start + 2..end];
        // `<%=`, `<%-`, `<%#`, `<%_` and `<%%` are other languages' tags.
        if !body.starts_with([' ', '\t']) || body.contains('\n') {
            return Ok(start + 2);
        }
        let inner_start = start + 2 + (body.len() - body.trim_start().len());
        let inner_end = end - (body.len() - body.trim_end().len());
        let (tag, rest) = split_tag(&self.source[inner_start..inner_end]);
        let rest_start = inner_end - rest.len();
        let in_angle = matches!(self.open.last(), Some(Open::Angle { .. }));
        let with = match tag {
            "if" if mentions_flag_function(rest) => {
                let line = self.line_at(start);
                self.open.push(Open::Angle { line });
                let condition = self.rewritten_calls(rest_start, inner_end)?;
                format!("{{% if {} %}}", condition.trim())
            }
            "elif" if in_angle => {
                let condition = self.rewritten_calls(rest_start, inner_end)?;
                format!("{{% elif {} %}}", condition.trim())
            }
            "else" if in_angle && rest.trim().is_empty() => "{% else %}".to_string(),
            "endif" if in_angle && rest.trim().is_empty() => {
                self.close(start, "angle")?;
                "{% endif %}".to_string()
            }
            _ => return Ok(start + 2),
        };
        self.replace(start, end + 2, &with);
        Ok(end + 2)
    }

    /// Rewrites the positional calls in the expression `source[start..end]` in place.
    fn expression(&mut self, start: usize, end: usize) -> Result<(), SourceError> {
        let insertions = positional_insertions(self.source, start, end)
            .map_err(|message| self.error(start, message))?;
        for (at, name) in insertions {
            let with = format!("{name}=");
            self.out.push_str(&self.source[self.copied..at]);
            self.out.push_str(&with);
            self.copied = at;
        }
        Ok(())
    }

    /// The expression `source[start..end]` with its positional calls rewritten, as a new
    /// string (for a tag that is replaced whole).
    fn rewritten_calls(&self, start: usize, end: usize) -> Result<String, SourceError> {
        let insertions = positional_insertions(self.source, start, end)
            .map_err(|message| self.error(start, message))?;
        let mut out = String::new();
        let mut copied = start;
        for (at, name) in insertions {
            out.push_str(&self.source[copied..at]);
            out.push_str(name);
            out.push('=');
            copied = at;
        }
        out.push_str(&self.source[copied..end]);
        Ok(out)
    }
}

/// The inside of a `{% ... %}` tag without its whitespace-control dashes and spaces.
struct Trimmed {
    start: usize,
    end: usize,
    left_dash: bool,
    right_dash: bool,
}

impl Trimmed {
    fn of(source: &str, start: usize, end: usize) -> Trimmed {
        let body = &source[start..end];
        let left_dash = body.starts_with('-');
        let right_dash = body.len() > usize::from(left_dash) && body.ends_with('-');
        let (mut start, mut end) = (
            start + usize::from(left_dash),
            end - usize::from(right_dash),
        );
        let trimmed = source[start..end].trim_start();
        start = end - trimmed.len();
        end = start + trimmed.trim_end().len();
        Trimmed {
            start,
            end,
            left_dash,
            right_dash,
        }
    }

    fn left_dash(&self) -> &'static str {
        if self.left_dash {
            "-"
        } else {
            ""
        }
    }

    fn right_dash(&self) -> &'static str {
        if self.right_dash {
            "-"
        } else {
            ""
        }
    }
}

/// The tag's name and what follows it.
fn split_tag(body: &str) -> (&str, &str) {
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    body.split_at(name_end)
}

/// Where the tag that starts before `from` ends (the offset of `close`), skipping string
/// literals, which Tera writes between `"`, `'` or `` ` `` with no escapes.
fn tag_end(source: &str, from: usize, close: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut at = from;
    while at < bytes.len() {
        match bytes[at] {
            quote @ (b'"' | b'\'' | b'`') => {
                at += 1 + source[at + 1..].find(char::from(quote))? + 1;
            }
            _ if source[at..].starts_with(close) => return Some(at),
            _ => at += 1,
        }
    }
    None
}

/// Where scanning goes on after the `{% endraw %}` that closes a raw block opened before
/// `from`.
fn find_endraw(source: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = source[at..].find("{%") {
        let start = at + offset;
        let end = tag_end(source, start + 2, "%}")?;
        let inner = Trimmed::of(source, start + 2, end);
        if &source[inner.start..inner.end] == "endraw" {
            return Some(end + 2);
        }
        at = start + 2;
    }
    None
}

/// Whether `expression` begins with a call of `function`.
fn starts_with_call(expression: &str, function: &str) -> bool {
    expression
        .trim_start()
        .strip_prefix(function)
        .is_some_and(|rest| rest.trim_start().starts_with('('))
}

/// Whether `expression` calls `flag`, `variant` or `payload`: what makes an `<% if %>` the
/// one-liner rather than another language's code.
fn mentions_flag_function(expression: &str) -> bool {
    calls(expression, 0, expression.len()).next().is_some()
}

/// The calls of `flag`, `variant` and `payload` in `source[start..end]`, outside string
/// literals: each as the positions of its name and of its `(`.
fn calls(source: &str, start: usize, end: usize) -> impl Iterator<Item = (&str, usize)> + '_ {
    let bytes = source.as_bytes();
    let mut at = start;
    std::iter::from_fn(move || {
        while at < end {
            let byte = bytes[at];
            if matches!(byte, b'"' | b'\'' | b'`') {
                at = match source[at + 1..end].find(char::from(byte)) {
                    Some(offset) => at + 1 + offset + 1,
                    None => end,
                };
                continue;
            }
            if !is_identifier_byte(byte) {
                at += 1;
                continue;
            }
            let word_start = at;
            while at < end && is_identifier_byte(bytes[at]) {
                at += 1;
            }
            let word = &source[word_start..at];
            // A filter (`| flag(...)`), a macro (`macros::flag(...)`) or a member
            // (`x.flag`) is someone else's.
            let before = source[start..word_start].trim_end();
            let someone_elses = before.ends_with(['|', ':', '.']);
            let open = at + (source[at..end].len() - source[at..end].trim_start().len());
            if !someone_elses
                && open < end
                && bytes[open] == b'('
                && POSITIONAL.iter().any(|(name, _)| *name == word)
            {
                return Some((word, open));
            }
        }
        None
    })
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Where to insert `name=` (and which name) before each positional argument of the calls
/// of `flag`, `variant` and `payload` in `source[start..end]`, in order.
fn positional_insertions(
    source: &str,
    start: usize,
    end: usize,
) -> Result<Vec<(usize, &'static str)>, String> {
    let mut insertions = Vec::new();
    for (function, open) in calls(source, start, end) {
        let Some((_, names)) = POSITIONAL.iter().find(|(name, _)| *name == function) else {
            continue;
        };
        let mut positional = 0;
        for (arg_start, arg_end) in arguments(source, open + 1, end) {
            let arg = &source[arg_start..arg_end];
            let trimmed = arg.trim_start();
            if trimmed.trim_end().is_empty() || is_keyword(trimmed) {
                continue;
            }
            let Some(name) = names.get(positional) else {
                return Err(format!(
                    "{function}() takes at most {} argument{} without a name: {}",
                    names.len(),
                    if names.len() == 1 { "" } else { "s" },
                    match function {
                        "payload" => "`payload(\"x\")` or `payload(\"x\", \"label\")`",
                        "variant" => "`variant(\"x\")`",
                        _ => "`flag(\"x\")`",
                    }
                ));
            };
            positional += 1;
            insertions.push((arg_start + (arg.len() - trimmed.len()), *name));
        }
    }
    insertions.sort_unstable_by_key(|(at, _)| *at);
    Ok(insertions)
}

/// Whether an argument is given by name: `name = ...`, not `name == ...`.
fn is_keyword(argument: &str) -> bool {
    let (name, rest) = split_tag(argument);
    let rest = rest.trim_start();
    !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && rest.starts_with('=')
        && !rest.starts_with("==")
}

/// The arguments of the call whose `(` is just before `from`: each as its span, split at
/// the commas outside nested brackets and strings.
fn arguments(source: &str, from: usize, end: usize) -> Vec<(usize, usize)> {
    let bytes = source.as_bytes();
    let mut spans = Vec::new();
    let (mut depth, mut at, mut arg_start) = (0usize, from, from);
    while at < end {
        match bytes[at] {
            quote @ (b'"' | b'\'' | b'`') => {
                at = match source[at + 1..end].find(char::from(quote)) {
                    Some(offset) => at + 1 + offset,
                    None => end,
                };
            }
            b'(' | b'[' => depth += 1,
            b')' | b']' if depth == 0 => {
                spans.push((arg_start, at));
                return spans;
            }
            b')' | b']' => depth -= 1,
            b',' if depth == 0 => {
                spans.push((arg_start, at));
                arg_start = at + 1;
            }
            _ => {}
        }
        at += 1;
    }
    // Unclosed: Tera says so.
    spans
}

#[cfg(test)]
mod tests;
