use super::{rewrite, SourceError};

fn plain(source: &str) -> String {
    rewrite(source).expect("rewrites").into_owned()
}

fn refused(source: &str) -> SourceError {
    rewrite(source).expect_err("refused")
}

#[test]
fn the_waffle_tag_becomes_an_if() {
    assert_eq!(
        plain(r#"{% flag "headline-flag" %}A{% else %}B{% endflag %}"#),
        r#"{% if flag(name="headline-flag") %}A{% else %}B{% endif %}"#
    );
    assert_eq!(
        plain(r#"<p>{% flag "x" %}A{% endflag %}</p>"#),
        r#"<p>{% if flag(name="x") %}A{% endif %}</p>"#
    );
    // A name from a variable, and whitespace control kept.
    assert_eq!(
        plain("{%- flag name -%}\nA\n{%- endflag -%}"),
        "{%- if flag(name=name) -%}\nA\n{%- endif -%}"
    );
}

#[test]
fn positional_arguments_get_their_names() {
    assert_eq!(
        plain(r#"{{ variant("x") }} {{ payload("x", "label") }}"#),
        r#"{{ variant(name="x") }} {{ payload(name="x", key="label") }}"#
    );
    assert_eq!(
        plain(r#"{% if flag("x") and not flag( 'y' ) %}{% endif %}"#),
        r#"{% if flag(name="x") and not flag( name='y' ) %}{% endif %}"#
    );
    assert_eq!(
        plain(r#"{{ payload("x", default="Sign up") }}"#),
        r#"{{ payload(name="x", default="Sign up") }}"#
    );
    assert_eq!(
        plain(r#"{% set v = variant("x") | upper %}"#),
        r#"{% set v = variant(name="x") | upper %}"#
    );
}

#[test]
fn the_keyword_form_is_left_as_it_is() {
    let source =
        r#"{% if flag(name="x") %}{{ payload(name="x", key="label", default="A") }}{% endif %}"#;
    assert!(matches!(rewrite(source), Ok(std::borrow::Cow::Borrowed(_))));
}

#[test]
fn the_one_liner_becomes_tera() {
    assert_eq!(
        plain(r#"<% if flag("headline-flag") %>A<% else %>B<% endif %>"#),
        r#"{% if flag(name="headline-flag") %}A{% else %}B{% endif %}"#
    );
    assert_eq!(
        plain(r#"<% if variant("x") == "b" %>B<% elif flag("y") %>Y<% endif %>"#),
        r#"{% if variant(name="x") == "b" %}B{% elif flag(name="y") %}Y{% endif %}"#
    );
}

#[test]
fn other_text_stays_byte_for_byte() {
    let untouched = [
        // EJS and ERB shown on a page, including an `if` that reads no flag.
        "<pre><%= name %> <%- html %> <% if (user) { %>hi<% } %> <%# note %></pre>",
        "<% else %> <% endif %> outside any one-liner",
        // Raw blocks and comments, whatever they hold.
        r#"{% raw %}{% flag "x" %}{{ flag("y") }}<% if flag("z") %>{% endraw %}"#,
        r#"{#- {% flag "x" %} {{ flag("y") }} -#}"#,
        // Strings, filters, macros and members named like the functions.
        r#"{{ 'flag("x")' }} {{ "variant('x')" }} {{ `payload("x")` }} {{ title | payload("x") }}"#,
        r#"{{ macros::flag("x") }} {{ page.variant }} {{ flags }} {{ flagged("x") }}"#,
        "text with { and < and {% if a %}{{ b }}{% endif %}",
    ];
    for source in untouched {
        assert_eq!(plain(source), source, "{source}");
    }
    // Around a rewritten tag, everything else is kept too.
    let source = "<%= a %>\n{% raw %}<% if flag(\"x\") %>{% endraw %}\n{% flag \"x\" %}\u{e9}{% endflag %} <%= b %>";
    assert_eq!(
        plain(source),
        "<%= a %>\n{% raw %}<% if flag(\"x\") %>{% endraw %}\n{% if flag(name=\"x\") %}\u{e9}{% endif %} <%= b %>"
    );
}

#[test]
fn line_breaks_are_kept_where_the_author_wrote_them() {
    let source = "a\n{% flag \"x\" %}\nb\n{% else %}\n{{ variant(\"x\") }}\n{% endflag %}\n<% if flag(\"y\") %>\nc\n<% endif %>\n";
    let rewritten = plain(source);
    assert_eq!(
        rewritten.lines().count(),
        source.lines().count(),
        "{rewritten}"
    );
    for (author, plain) in source.lines().zip(rewritten.lines()) {
        assert_eq!(author.is_empty(), plain.is_empty());
    }
}

#[test]
fn mistakes_name_the_line_the_author_wrote() {
    assert_eq!(
        refused("a\nb\n{% flag \"x\" %}\nA\n"),
        SourceError {
            line: 3,
            message: "`{% flag %}` is never closed: end it with `{% endflag %}`".into()
        }
    );
    let error = refused("{% flag \"x\" %}\n{% if y %}\n{% endflag %}\n{% endif %}");
    assert_eq!(error.line, 3, "{error}");
    assert!(
        error.message.contains("`{% if %}` opened on line 2"),
        "{error}"
    );
    let error = refused("{% flag \"x\" %}\nA\n{% endif %}");
    assert_eq!(error.line, 3, "{error}");
    assert!(error.message.contains("opened on line 1"), "{error}");
    assert_eq!(refused("x\n{% endflag %}").line, 2);
    assert_eq!(refused("\n\n<% if flag(\"x\") %>A").line, 3);
    assert_eq!(refused("{% flag %}A{% endflag %}").line, 1);
    let error = refused("\n{{ payload(\"x\", \"label\", \"more\") }}");
    assert_eq!(error.line, 2);
    assert!(
        error.message.contains("payload() takes at most 2"),
        "{error}"
    );
    let error = refused("\n\n{% filter flag(name=\"x\") %}A{% endfilter %}");
    assert_eq!(error.line, 3);
    assert!(error.message.contains("retired"), "{error}");
}

#[test]
fn nested_blocks_close_in_order() {
    assert_eq!(
        plain(r#"{% for i in xs %}{% flag "x" %}{% if i %}A{% endif %}{% endflag %}{% endfor %}"#),
        r#"{% for i in xs %}{% if flag(name="x") %}{% if i %}A{% endif %}{% endif %}{% endfor %}"#
    );
    assert_eq!(
        plain(r#"<% if flag("a") %>{% flag "b" %}AB{% endflag %}<% endif %>"#),
        r#"{% if flag(name="a") %}{% if flag(name="b") %}AB{% endif %}{% endif %}"#
    );
}

#[test]
fn every_result_parses_as_tera() {
    let sources = [
        r#"{% flag "a" %}A{% else %}B{% endflag %}"#,
        r#"<% if flag("a") %>A<% else %>B<% endif %>"#,
        r#"{{ payload("a", "label") }}{{ variant("a") }}{% if flag("b") %}{% endif %}"#,
        "{%- flag name -%}\nA\n{%- endflag -%}",
    ];
    for source in sources {
        let rewritten = plain(source);
        rocket_dyn_templates::tera::Template::new("t", None, &rewritten)
            .unwrap_or_else(|error| panic!("{rewritten}: {error}"));
    }
}

#[test]
fn no_input_makes_it_panic() {
    // Cut short anywhere, each form is either rewritten or refused with a line.
    let source = "{% flag \"x\" %}<% if flag('y', key=[1, (2)]) %>{{ payload(\"z\", \"é\") }}<% endif %>{% raw %}{% endflag %}";
    for end in (0..=source.len()).filter(|end| source.is_char_boundary(*end)) {
        let _ = rewrite(&source[..end]);
    }
}
