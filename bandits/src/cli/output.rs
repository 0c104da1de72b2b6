//! What the commands print: for a person, aligned columns, the targeting in waffle's
//! words, rates and intervals in percent; for a program, indented JSON.

use std::io::Write;

use super::failure::Failure;
use crate::engine::targeting::Targeting;
use crate::engine::Flag;
use crate::store::StoredFlag;

/// Rows of cells, each column as wide as its widest cell, two spaces apart.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|cell| cell.to_string()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

/// `flags list`: one row per flag.
pub(crate) fn flags_table(flags: &[StoredFlag]) -> String {
    let rows: Vec<Vec<String>> = flags
        .iter()
        .map(|stored| {
            let targeting = stored.flag.targeting();
            let (views, conversions) = stored
                .totals
                .iter()
                .fold((0, 0), |(v, c), t| (v + t.views, c + t.conversions));
            let winner = stored
                .flag
                .winner()
                .and_then(|i| stored.flag.arms().get(i))
                .map(|arm| arm.name.clone());
            vec![
                stored.flag.name().to_string(),
                everyone(targeting).to_string(),
                percent(targeting),
                on_off(targeting.testing).to_string(),
                stored.flag.arms().len().to_string(),
                stored.flag.policy().label().to_string(),
                views.to_string(),
                conversions.to_string(),
                winner.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "EVERYONE",
            "PERCENT",
            "TESTING",
            "ARMS",
            "POLICY",
            "VIEWS",
            "CONVERSIONS",
            "WINNER",
        ],
        &rows,
    )
}

/// `flags show`: the definition's fields, then one row per arm.
pub(crate) fn flag_text(stored: &StoredFlag) -> String {
    let flag = &stored.flag;
    let statistics = stored.statistics();
    let targeting = flag.targeting();
    let or_dash = |value: Option<&str>| value.unwrap_or("-").to_string();
    let mut fields = vec![
        ("name", flag.name().to_string()),
        (
            "note",
            or_dash(Some(flag.note()).filter(|note| !note.is_empty())),
        ),
        ("policy", flag.policy().label().to_string()),
        ("winner rule", statistics.rule.clone()),
        ("source path", or_dash(flag.source_path())),
        ("target path", or_dash(flag.target_path())),
        ("goal event", or_dash(flag.goal_event())),
        ("everyone", everyone(targeting).to_string()),
        ("percent", percent(targeting)),
        ("testing", on_off(targeting.testing).to_string()),
        ("epoch", stored.epoch.to_string()),
        (
            "winner",
            statistics
                .winner
                .as_ref()
                .and_then(|winner| winner.arm.clone())
                .unwrap_or_else(|| "-".into()),
        ),
    ];
    if let Some(percent) = flag.definition().as_percentage() {
        fields.push(("percentage flag", format!("{percent}% see on")));
    }
    let mut text: String = fields
        .iter()
        .map(|(name, value)| format!("{:<16}{value}\n", format!("{name}:")))
        .collect();
    text.push('\n');
    let confidence = format!("INTERVAL ({}%)", round(statistics.confidence * 100.0));
    let rows: Vec<Vec<String>> = statistics
        .arms
        .iter()
        .enumerate()
        .map(|(i, arm)| {
            let name = if i == 0 {
                format!("{} (control)", arm.arm)
            } else {
                arm.arm.clone()
            };
            vec![
                name,
                arm.views.to_string(),
                arm.conversions.to_string(),
                format!("{}%", round(arm.rate * 100.0)),
                arm.interval
                    .map(|interval| {
                        format!(
                            "{}% to {}%",
                            round(interval.lower * 100.0),
                            round(interval.upper * 100.0)
                        )
                    })
                    .unwrap_or_else(|| "-".into()),
                arm.p_value_against_control
                    .map(|p| format!("{p:.4}"))
                    .unwrap_or_else(|| "-".into()),
                arm.probability_best
                    .map(|p| format!("{}%", round(p * 100.0)))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    text.push_str(&table(
        &[
            "ARM",
            "VIEWS",
            "CONVERSIONS",
            "RATE",
            &confidence,
            "P-VALUE",
            "P(BEST)",
        ],
        &rows,
    ));
    text
}

/// What a deploy log needs to know of a flag, in one line.
pub(crate) fn summary(flag: &Flag) -> String {
    let targeting = flag.targeting();
    let arms: Vec<&str> = flag.arms().iter().map(|arm| arm.name.as_str()).collect();
    let browser = if flag.client_side() {
        ", client side"
    } else {
        ""
    };
    format!(
        "arms {}, {}, everyone {}, percent {}, testing {}{browser}",
        arms.join(","),
        flag.policy().label(),
        everyone(targeting),
        percent(targeting),
        on_off(targeting.testing)
    )
}

/// `value` as indented JSON and a newline.
pub(crate) fn print_json(
    out: &mut dyn Write,
    value: &impl serde::Serialize,
) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| Failure::Stopped(format!("cannot write JSON: {error}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// `everyone` in waffle's words: on, off, or unset (the rules and the bandit decide).
fn everyone(targeting: &Targeting) -> &'static str {
    match targeting.everyone {
        Some(true) => "on",
        Some(false) => "off",
        None => "unset",
    }
}

fn percent(targeting: &Targeting) -> String {
    targeting
        .percent
        .map(|percent| format!("{percent}%"))
        .unwrap_or_else(|| "-".into())
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// `value` to two decimals, without trailing zeros.
fn round(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let text = table(
            &["NAME", "VIEWS"],
            &[vec!["headline-flag".into(), "3".into()]],
        );
        assert_eq!(text, "NAME           VIEWS\nheadline-flag  3\n");
        assert_eq!(round(95.0), "95");
        assert_eq!(round(17.5049), "17.5");
        assert_eq!(round(0.001), "0");
    }
}
