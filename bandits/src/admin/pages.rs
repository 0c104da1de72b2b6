//! The admin's HTML, written with maud: every value is escaped unless marked otherwise, and
//! nothing here is. No JavaScript; one small stylesheet that reads on a phone and at 1280 px.

mod partners;
mod triggers;

use maud::{html, Markup, DOCTYPE};

use super::charts::{charts, interval_bar};
use super::dates::date;
use super::form::FlagForm;
use crate::config::Config;
use crate::engine::report::{sample_ratio, Statistics};
use crate::engine::ArmTotals;
use crate::engine::{FieldError, Rule};
use crate::store::{EventQuery, History, LoggedEvent, NamedSegment, StoredFlag};
pub(super) use partners::PartnerPage;

/// The admin's stylesheet, in a file of its own.
const STYLE: &str = include_str!("admin.css");

/// One admin page: its title and the configuration it links with.
pub(super) struct Page<'a> {
    prefix: &'a str,
    title: &'a str,
}

impl<'a> Page<'a> {
    pub(super) fn new(config: &'a Config, title: &'a str) -> Page<'a> {
        Page {
            prefix: config.admin_prefix(),
            title,
        }
    }

    fn layout(&self, csrf: Option<&str>, body: Markup) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · rocket-bandits admin" }
                    style { (maud::PreEscaped(STYLE)) }
                }
                body {
                    header {
                        a.brand href={ (self.prefix) "/" } { "rocket-bandits" }
                        @if let Some(csrf) = csrf {
                            a href={ (self.prefix) "/" } { "Flags" }
                            a href={ (self.prefix) "/activity" } { "Activity" }
                            a href={ (self.prefix) "/partners" } { "Partners" }
                            a href={ (self.prefix) "/triggers" } { "Triggers" }
                            form method="post" action={ (self.prefix) "/logout" } {
                                input type="hidden" name="csrf" value=(csrf);
                                button.quiet type="submit" { "Sign out" }
                            }
                        }
                    }
                    main { (body) }
                }
            }
        }
    }

    /// A page with one message.
    pub(super) fn message(&self, text: &str) -> Markup {
        self.layout(None, html! { h1 { (self.title) } p { (text) } })
    }

    /// The sign-in form.
    pub(super) fn sign_in(&self, csrf: &str, error: Option<&str>) -> Markup {
        self.layout(
            None,
            html! {
                div.card {
                    h1 { "Sign in" }
                    form method="post" action={ (self.prefix) "/login" } {
                        label for="secret" { "Admin token or password" }
                        input #secret type="password" name="secret" autocomplete="current-password" required autofocus;
                        input type="hidden" name="csrf" value=(csrf);
                        @if let Some(error) = error { p.error role="alert" { (error) } }
                        button type="submit" { "Sign in" }
                    }
                }
            },
        )
    }

    /// The flags list.
    pub(super) fn flags(
        &self,
        csrf: &str,
        query: &str,
        flags: &[&StoredFlag],
        total: usize,
    ) -> Markup {
        self.layout(
            Some(csrf),
            html! {
                h1 { "Flags" }
                p { a href={ (self.prefix) "/new" } { "New flag" } }
                form.search method="get" action={ (self.prefix) "/" } role="search" {
                    input type="search" name="q" value=(query) placeholder="Search names and notes" aria-label="Search flags";
                    button type="submit" { "Search" }
                }
                @if flags.is_empty() {
                    p.muted {
                        @if total == 0 { "No flags yet. Create one with the JSON API or in code." }
                        @else { "No flag matches “" (query) "”." }
                    }
                } @else {
                    table {
                        thead { tr {
                            th { "Flag" } th { "Arms" } th { "Policy" } th.num { "Visitors" }
                            th { "Conversion rate" } th { "Best arm" } th { "Status" }
                        } }
                        tbody {
                            @for stored in flags { (self.row(stored)) }
                        }
                    }
                    p.muted { (flags.len()) " of " (total) " flags" }
                }
            },
        )
    }

    fn row(&self, stored: &StoredFlag) -> Markup {
        let flag = &stored.flag;
        let visitors: u64 = stored.totals.iter().map(|t| t.views).sum();
        let best = best_arm(&stored.totals).and_then(|i| flag.arms().get(i));
        let winner = flag.winner().and_then(|i| flag.arms().get(i));
        html! {
            tr {
                td data-label="Flag" {
                    a href={ (self.prefix) "/flags/" (flag.name()) } { strong { (flag.name()) } }
                    @if !flag.note().is_empty() { span.note title=(flag.note()) { (flag.note()) } }
                }
                td data-label="Arms" {
                    @for (i, arm) in flag.arms().iter().enumerate() {
                        @if i > 0 { ", " }
                        (arm.name)
                    }
                }
                td data-label="Policy" { (flag.policy().label()) }
                td.num data-label="Visitors" { (visitors) }
                td.num data-label="Conversion rate" {
                    @for (arm, totals) in flag.arms().iter().zip(&stored.totals) {
                        div { (arm.name) ": " (percent(totals)) }
                    }
                }
                td data-label="Best arm" {
                    @match best { Some(arm) => (arm.name), None => span.muted { "—" } }
                }
                td data-label="Status" {
                    @if sample_ratio(flag, &stored.totals).mismatch {
                        span.badge.mismatch title="The arms' views do not split as intended: see the flag's page" { "sample ratio mismatch" } " "
                    }
                    @if let Some(winner) = winner {
                        span.badge.won { "winner: " (winner.name) }
                    } @else if let Some(everyone) = flag.targeting().everyone {
                        span.badge.switched { @if everyone { "launched" } @else { "switched off" } }
                    } @else if visitors == 0 {
                        span.badge { "waiting for visitors" }
                    } @else {
                        span.badge { "running" }
                    }
                }
            }
        }
    }
}

impl Page<'_> {
    /// A flag's statistics.
    pub(super) fn flag(
        &self,
        csrf: &str,
        stored: &StoredFlag,
        stats: &Statistics,
        history: &History,
        by_partner: &[NamedSegment],
    ) -> Markup {
        let arm_names: Vec<String> = stats.arms.iter().map(|a| a.arm.clone()).collect();
        let flag = &stored.flag;
        let confidence = format!("{:.0}%", 100.0 * stats.confidence);
        self.layout(
            Some(csrf),
            html! {
                p { a href={ (self.prefix) "/" } { "← All flags" } }
                h1 { (flag.name()) }
                @if !flag.note().is_empty() { p { (flag.note()) } }
                p.muted {
                    (stats.policy) " · " (stats.winner_rule)
                    @if let Some(path) = flag.source_path() { " · shown on " code { (path) } }
                    @if let Some(path) = flag.target_path() { " · goal " code { (path) } }
                    @if let Some(event) = flag.goal_event() { " · goal event " code { (event) } }
                }
                p { (stats.rule) }
                @if stats.sample_ratio.mismatch {
                    p.error role="alert" { (stats.sample_ratio.message) }
                } @else {
                    p.muted { (stats.sample_ratio.message) }
                }
                @if let Some(winner) = &stats.winner {
                    p { span.badge.won { "Winner: " (winner.arm.as_deref().unwrap_or("?")) }
                        @if let Some(at) = winner.locked_at { " locked " (date(at)) } @else { " set by hand" } }
                }
                table {
                    thead { tr {
                        th { "Arm" } th.num { "Visitors" } th.num { "Conversions" } th.num { "Rate" }
                        th { (confidence) " " (stats.interval.label()) " interval" } th.num { "p vs control" } th.num { "P(best)" } th.num title="The conversion rate choosing this arm is expected to lose if another arm is better, in percentage points" { "Expected loss" }
                    } }
                    tbody {
                        @for (i, arm) in stats.arms.iter().enumerate() {
                            tr {
                                td data-label="Arm" { strong { (arm.arm) } @if i == 0 { " " span.muted { "(control)" } } }
                                td.num data-label="Visitors" { (arm.views) }
                                td.num data-label="Conversions" { (arm.conversions) }
                                td.num data-label="Rate" { @if arm.views > 0 { (format!("{:.2}%", 100.0 * arm.rate)) } @else { "—" } }
                                td data-label={ (confidence) " interval" } {
                                    @match arm.interval {
                                        Some(interval) => {
                                            (format!("{:.2}% – {:.2}%", 100.0 * interval.lower, 100.0 * interval.upper))
                                            (interval_bar(interval.lower, interval.upper, arm.rate))
                                        }
                                        None => "—",
                                    }
                                }
                                td.num data-label="p vs control" {
                                    @match arm.p_value_against_control { Some(p) => (format!("{p:.4}")), None => "—" }
                                }
                                td.num data-label="P(best)" {
                                    @match arm.probability_best { Some(p) => (format!("{:.1}%", 100.0 * p)), None => "—" }
                                }
                                td.num data-label="Expected loss" {
                                    @match arm.expected_loss { Some(loss) => (format!("{:.3} pts", 100.0 * loss)), None => "—" }
                                }
                            }
                        }
                    }
                }
                (self.by_partner(by_partner))
                (charts(&arm_names, history, stats.confidence))
                p.actions {
                    a href={ (self.prefix) "/flags/" (flag.name()) "/edit" } { "Edit" }
                    " · "
                    a href={ (self.prefix) "/activity?flag=" (flag.name()) } { "Activity" }
                    " · "
                    a href={ (self.prefix) "/flags/" (flag.name()) "/events" } download={ (flag.name()) "-events.csv" } { "Export log (CSV)" }
                    " · "
                    a href={ (self.prefix) "/flags/" (flag.name()) "/events?format=ndjson" } download={ (flag.name()) "-events.ndjson" } { "NDJSON" }
                    " · "
                    a href={ (self.prefix) "/flags/" (flag.name()) "/reset" } { "Reset statistics…" }
                    " · "
                    a href={ (self.prefix) "/flags/" (flag.name()) "/delete" } { "Delete flag…" }
                }
            },
        )
    }

    /// A flag's numbers split by the partner who referred its visitors, when any partner
    /// did: a row per partner (then no partner) and arm.
    fn by_partner(&self, segments: &[NamedSegment]) -> Markup {
        let referred = segments.iter().any(|named| named.segment.partner.is_some());
        html! {
            h2 { "By referral partner" }
            @if !referred {
                p.muted { "No visitor referred by a partner has been counted in this flag yet." }
            } @else {
                table.by-partner {
                    thead { tr {
                        th { "Partner" } th { "Arm" } th.num { "Visitors" } th.num { "Conversions" } th.num { "Rate" }
                    } }
                    tbody {
                        @for named in segments {
                            @for (i, arm) in named.segment.arms.iter().enumerate() {
                                tr {
                                    td data-label="Partner" {
                                        @if i == 0 {
                                            @match &named.segment.partner {
                                                Some(uid) => {
                                                    a href={ (self.prefix) "/partners/" (uid) } {
                                                        (named.name.as_deref().unwrap_or(uid))
                                                    }
                                                }
                                                None => span.muted { "no partner" },
                                            }
                                        }
                                    }
                                    td data-label="Arm" { (arm.arm) }
                                    td.num data-label="Visitors" { (arm.views) }
                                    td.num data-label="Conversions" { (arm.conversions) }
                                    td.num data-label="Rate" { @if arm.views > 0 { (format!("{:.2}%", 100.0 * arm.rate)) } @else { "—" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A confirmation step before a change that cannot be undone.
    pub(super) fn confirm(
        &self,
        csrf: &str,
        text: &str,
        action: &str,
        button: &str,
        back: &str,
    ) -> Markup {
        self.layout(
            Some(csrf),
            html! {
                div.card {
                    h1 { (self.title) }
                    p { (text) }
                    form method="post" action={ (self.prefix) (action) } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (button) }
                        a href={ (self.prefix) (back) } { "Cancel" }
                    }
                }
            },
        )
    }
}

impl Page<'_> {
    /// The activity log: exposures and conversions, newest first, searchable, paginated.
    pub(super) fn activity(
        &self,
        csrf: &str,
        query: &EventQuery,
        events: &[LoggedEvent],
        page_size: u32,
    ) -> Markup {
        let field = |value: &Option<String>| value.clone().unwrap_or_default();
        let older = events
            .last()
            .filter(|_| events.len() as u32 == page_size)
            .map(|last| {
                let mut link = format!("{}/activity?before={}", self.prefix, last.id);
                for (key, value) in [
                    ("visitor", &query.visitor),
                    ("flag", &query.flag),
                    ("path", &query.path),
                ] {
                    if let Some(value) = value {
                        link.push_str(&format!("&{key}={}", encode(value)));
                    }
                }
                link
            });
        self.layout(
            Some(csrf),
            html! {
                h1 { "Activity" }
                form.search method="get" action={ (self.prefix) "/activity" } role="search" {
                    input type="search" name="visitor" value=(field(&query.visitor)) placeholder="Visitor id" aria-label="Visitor id";
                    input type="search" name="flag" value=(field(&query.flag)) placeholder="Flag" aria-label="Flag";
                    input type="search" name="path" value=(field(&query.path)) placeholder="Path" aria-label="Path";
                    button type="submit" { "Search" }
                }
                @if events.is_empty() {
                    p.muted { "No activity matches." }
                } @else {
                    table {
                        thead { tr { th { "When" } th { "What" } th { "Visitor" } th { "Flag" } th { "Arm" } th { "Path" } th { "Partner" } } }
                        tbody {
                            @for logged in events {
                                @let event = &logged.event;
                                tr {
                                    td data-label="When" { (date(event.at)) }
                                    td data-label="What" { (event.kind.as_str()) }
                                    td data-label="Visitor" {
                                        a href={ (self.prefix) "/activity?visitor=" (encode(&event.visitor)) } { code { (event.visitor) } }
                                    }
                                    td data-label="Flag" { a href={ (self.prefix) "/flags/" (event.flag) } { (event.flag) } }
                                    td data-label="Arm" { (event.arm) }
                                    td data-label="Path" { code { (event.path) } }
                                    td data-label="Partner" {
                                        @match &event.partner {
                                            Some(uid) => a href={ (self.prefix) "/partners/" (uid) } { code { (uid) } },
                                            None => span.muted { "—" },
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(older) = older { p { a href=(older) { "Older entries →" } } }
            },
        )
    }
}

/// `value` percent-encoded for a query string (Rocket's encoder).
fn encode(value: &str) -> String {
    rocket::http::RawStr::new(value)
        .percent_encode()
        .to_string()
}

impl Page<'_> {
    /// The create or edit form, with each problem beside its field.
    pub(super) fn flag_form(
        &self,
        csrf: &str,
        form: &FlagForm,
        errors: &[FieldError],
        editing: bool,
    ) -> Markup {
        let error = |field: &str| -> Markup {
            let messages: Vec<&Rule> = errors
                .iter()
                .filter(|e| {
                    e.field == field
                        || e.field.starts_with(&format!("{field}."))
                        || e.field.starts_with(&format!("{field}["))
                })
                .map(|e| &e.rule)
                .collect();
            html! { @for m in messages { span.error role="alert" { (m) } } }
        };
        let exact = |field: &str| -> Markup {
            html! { @for e in errors { @if e.field == field { span.error role="alert" { (e.rule) } } } }
        };
        let action = if editing {
            format!("{}/flags/{}/edit", self.prefix, form.name)
        } else {
            format!("{}/new", self.prefix)
        };
        let selected = |value: &str, option: &str| value == option;
        let general: Vec<&FieldError> = errors
            .iter()
            .filter(|e| e.field == "body" || e.field == "arms")
            .collect();
        let body = html! {
            h1 { (self.title) }
            @if !errors.is_empty() {
                p.error role="alert" { "Nothing was saved: " (errors.len()) " problem(s) below." }
                @for e in general { p.error { (e.rule) } }
            }
            form.flag method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                fieldset {
                    legend { "Flag" }
                    label { "Name" @if editing { input type="text" name="name" value=(form.name) readonly; } @else { input type="text" name="name" value=(form.name) required placeholder="headline-flag"; } }
                    (exact("name"))
                    label { "Note" textarea name="note" rows="3" { (form.note) } }
                    (exact("note"))
                }
                fieldset {
                    legend { "Arms (the first is the control)" }
                    @for (i, arm) in form.arms.iter().enumerate() {
                        div.arm {
                            input type="text" name={ "arms[" (i) "].name" } value=(arm.name) placeholder="arm name" aria-label={ "Arm " (i + 1) " name" };
                            input type="text" name={ "arms[" (i) "].payload" } value=(arm.payload) placeholder="payload (JSON, optional)" aria-label={ "Arm " (i + 1) " payload" };
                        }
                        (error(&format!("arms[{i}]")))
                    }
                    (exact("arms"))
                }
                fieldset {
                    legend { "Where and what" }
                    (text_field("Shown on (source path)", "source_path", &form.source_path, "/", exact("source_path")))
                    (text_field("Goal page (target path)", "target_path", &form.target_path, "/contact/", exact("target_path")))
                    (text_field("Goal event (fired from code)", "goal_event", &form.goal_event, "signup", exact("goal_event")))
                    div.checks {
                        label { input type="checkbox" name="client_side" value="true" checked[form.client_side]; " readable in the browser (flags.json, flags.js, OpenFeature)" }
                    }
                }
                fieldset {
                    legend { "Policy" }
                    label { "Policy" select name="policy" {
                        @for (value, label) in [("epsilon_greedy", "epsilon-greedy"), ("epsilon_decay", "epsilon-decay"), ("ucb1", "UCB1"), ("thompson", "Thompson sampling"), ("top_two_thompson", "top-two Thompson (ends with an answer)"), ("split", "fixed split"), ("percentage", "percentage (waffle: the percent below see the second arm, no bandit)")] {
                            option value=(value) selected[selected(&form.policy, value)] { (label) }
                        }
                    } }
                    (text_field("ε (epsilon-greedy)", "epsilon", &form.epsilon, "0.1", exact("policy.epsilon")))
                    (text_field("c (UCB1)", "c", &form.c, "2", exact("policy.c")))
                    label { "α, β (Thompson priors)" span.pair {
                        input type="text" name="alpha" value=(form.alpha) placeholder="1" aria-label="alpha";
                        input type="text" name="beta" value=(form.beta) placeholder="1" aria-label="beta";
                    } }
                    (exact("policy.alpha")) (exact("policy.beta"))
                    (text_field("β, share shown the leader (top-two Thompson)", "leader", &form.leader, "0.8", exact("policy.leader")))
                    (text_field("Weights (fixed split, one per arm)", "weights", &form.weights, "50, 50", exact("policy.weights"))) (exact("policy"))
                }
                fieldset {
                    legend { "Winner" }
                    (text_field("Significance level", "significance_level", &form.significance_level, "0.05", exact("significance_level")))
                    (text_field("Minimum visitors before a winner", "min_views", &form.min_views, "100", exact("min_views")))
                    label { "Winner rule" select name="winner_rule" {
                        @for (value, label) in [("t_test", "t-test (django-bandits)"), ("sequential", "sequential (safe to check often)"), ("bayesian", "Bayesian (probability best, expected loss)"), ("manual", "manual")] {
                            option value=(value) selected[selected(&form.winner_rule, value)] { (label) }
                        }
                    } }
                    (text_field("Mixture sd (sequential)", "mixture_sd", &form.mixture_sd, "0.05", exact("winner_rule.mixture_sd")))
                    (text_field("Probability best (Bayesian)", "probability", &form.probability, "0.95", exact("winner_rule.probability")))
                    (text_field("Expected loss below (Bayesian, in rate: 0.0001 = one conversion in 10,000 visitors)", "expected_loss", &form.expected_loss, "0.0001", exact("winner_rule.expected_loss")))
                    label { "Interval shown" select name="interval" {
                        @for (value, label) in [("wilson", "Wilson (frequentist)"), ("beta", "Beta posterior (with the flag's prior)")] {
                            option value=(value) selected[selected(&form.interval, value)] { (label) }
                        }
                    } }
                    (exact("interval"))
                    (text_field("Locked winner (arm name; empty: none)", "winner", &form.winner, "", exact("winner")))
                }
                fieldset {
                    legend { "Who enters" }
                    label { "Everyone" select name="everyone" {
                        option value="" selected[form.everyone.is_empty()] { "the rules below decide" }
                        option value="on" selected[form.everyone == "on"] { "on: everyone sees the first non-control arm" }
                        option value="off" selected[form.everyone == "off"] { "off: everyone sees the control" }
                    } }
                    (text_field("Percent of visitors", "percent", &form.percent, "(all)", exact("targeting.percent")))
                    label { "Rollout (UTC): the percent rises from 0 at the start to its value at the end" span.pair {
                        input type="datetime-local" name="rollout_start" value=(form.rollout_start) aria-label="Rollout start";
                        input type="datetime-local" name="rollout_end" value=(form.rollout_end) aria-label="Rollout end";
                    } }
                    div.checks {
                        label { input type="checkbox" name="authenticated" value="true" checked[form.authenticated]; " signed-in users" }
                        label { input type="checkbox" name="staff" value="true" checked[form.staff]; " staff" }
                        label { input type="checkbox" name="superusers" value="true" checked[form.superusers]; " superusers" }
                        label { input type="checkbox" name="require_all" value="true" checked[form.require_all]; " every rule must agree" }
                        label { input type="checkbox" name="testing" value="true" checked[form.testing]; " testing overrides (?bandits_<flag>=<arm>)" }
                        label { input type="checkbox" name="exclude_signed_in" value="true" checked[form.exclude_signed_in]; " leave signed-in users out" }
                    }
                    label { "Users (comma-separated ids)" input type="text" name="users" value=(form.users); }
                    (error("targeting.users"))
                    label { "Groups (comma-separated)" input type="text" name="groups" value=(form.groups); }
                    (error("targeting.groups"))
                    label { "Languages (comma-separated, e.g. fr, de-CH)" input type="text" name="languages" value=(form.languages); }
                    (error("targeting.languages")) (error("targeting.rollout"))
                }
                button type="submit" { @if editing { "Save changes" } @else { "Create flag" } }
            }
        };
        self.layout(Some(csrf), body)
    }
}

/// A labelled text input with its problems under it.
fn text_field(label: &str, name: &str, value: &str, placeholder: &str, problems: Markup) -> Markup {
    html! {
        label { (label) input type="text" name=(name) value=(value) placeholder=(placeholder); }
        (problems)
    }
}

/// An arm's conversion rate as a percentage, or a dash without views.
fn percent(totals: &ArmTotals) -> String {
    if totals.views == 0 {
        "—".to_string()
    } else {
        format!("{:.1}%", 100.0 * totals.rate())
    }
}

/// The arm with the best observed rate among those with views.
fn best_arm(totals: &[ArmTotals]) -> Option<usize> {
    totals
        .iter()
        .enumerate()
        .filter(|(_, t)| t.views > 0)
        .max_by(|(_, a), (_, b)| a.rate().total_cmp(&b.rate()))
        .map(|(i, _)| i)
}
