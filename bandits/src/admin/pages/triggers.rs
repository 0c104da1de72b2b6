//! The HTML of the triggers page: each trigger the configuration declares, what fires it,
//! and its switch.

use maud::{html, Markup};

use super::Page;
use crate::admin::dates::date;
use crate::config::Triggers;
use crate::engine::partners::Trigger;
use crate::store::TriggerSwitch;

impl Page<'_> {
    /// The declared triggers with the configuration's state, the admin's switch and
    /// whether each fires, and buttons to switch each on, off or back to the configuration.
    pub(in crate::admin) fn triggers(
        &self,
        csrf: &str,
        triggers: &Triggers,
        switches: &[TriggerSwitch],
    ) -> Markup {
        self.layout(
            Some(csrf),
            html! {
                h1 { "Triggers" }
                p.muted {
                    "Declared in the configuration ([[bandits.triggers]]). A switch set here wins over the configuration's "
                    code { "enabled" } ", both ways, on every instance from its next flush; “use configuration” hands the decision back."
                }
                @if triggers.iter().next().is_none() {
                    p.muted { "The configuration declares no trigger." }
                } @else {
                    table {
                        thead { tr {
                            th { "Trigger" } th { "Fired by" } th { "Configuration" }
                            th { "Admin switch" } th { "Fires now" } th { "" }
                        } }
                        tbody {
                            @for trigger in triggers.iter() {
                                @let switch = switches.iter().find(|s| s.name == trigger.name());
                                (self.trigger_row(csrf, trigger, switch))
                            }
                        }
                    }
                }
            },
        )
    }

    fn trigger_row(&self, csrf: &str, trigger: &Trigger, switch: Option<&TriggerSwitch>) -> Markup {
        let set = switch.map(|switch| switch.enabled);
        let on = trigger.enabled_with(set);
        let button = |value: &str, label: &str| {
            html! {
                form.inline method="post" action={ (self.prefix) "/triggers" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="name" value=(trigger.name());
                    input type="hidden" name="enabled" value=(value);
                    button.quiet type="submit" { (label) }
                }
            }
        };
        html! {
            tr {
                td data-label="Trigger" { strong { (trigger.name()) } }
                td data-label="Fired by" {
                    @match trigger.fired_by_request() {
                        Some((method, path, status)) => {
                            (method.unwrap_or("any method")) " " code { (path) } " answered " (status.names().join(", "))
                            ", or code"
                        }
                        None => "code only",
                    }
                }
                td data-label="Configuration" { @if trigger.enabled() { "enabled" } @else { "disabled" } }
                td data-label="Admin switch" {
                    @match switch {
                        Some(switch) => {
                            @if switch.enabled { "on" } @else { "off" }
                            " " span.muted { "since " (date(switch.updated_at)) }
                        }
                        None => span.muted { "— (configuration decides)" },
                    }
                }
                td data-label="Fires now" {
                    @if on { span.badge.won { "fires" } } @else { span.badge.switched { "off" } }
                }
                td {
                    @if set != Some(true) { (button("true", "Switch on")) " " }
                    @if set != Some(false) { (button("false", "Switch off")) " " }
                    @if set.is_some() { (button("", "Use configuration")) }
                }
            }
        }
    }
}
