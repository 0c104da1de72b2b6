//! The charts of a flag's page, as inline SVG drawn on the server: each arm's cumulative
//! rate with its interval over time, each arm's share of traffic, and the interval bar of
//! the statistics table.

use maud::{html, Markup};

use super::dates::date;
use crate::engine::stats::wilson_interval;
use crate::engine::ArmTotals;
use crate::store::History;

/// Series colours, by arm; they repeat past eight arms.
const COLOURS: [&str; 8] = [
    "#6b7280", "#2356c7", "#1c7c4a", "#c2410c", "#7c3aed", "#0e7490", "#be185d", "#a16207",
];

/// A cumulative rate at a time: (time, rate, interval bounds).
type RatePoint = (i64, f64, Option<(f64, f64)>);

/// One arm's points over time: rates for the rate chart, (time, share) for the traffic
/// chart.
struct Series {
    rate: Vec<RatePoint>,
    share: Vec<(i64, f64)>,
}

/// Cumulative rates with their intervals, and each bucket's traffic share, per arm.
fn series(arms: &[String], history: &History, confidence: f64) -> Vec<Series> {
    let mut starts: Vec<i64> = history.points.iter().map(|p| p.start).collect();
    starts.dedup();
    let mut cumulative = vec![ArmTotals::default(); arms.len()];
    let mut out: Vec<Series> = arms
        .iter()
        .map(|_| Series {
            rate: Vec::new(),
            share: Vec::new(),
        })
        .collect();
    for start in starts {
        let mut in_bucket = vec![0u64; arms.len()];
        for point in history.points.iter().filter(|p| p.start == start) {
            if let Some(i) = arms.iter().position(|arm| *arm == point.arm) {
                cumulative[i].views += point.exposures;
                cumulative[i].conversions += point.conversions;
                in_bucket[i] += point.exposures;
            }
        }
        let at = start + history.bucket_ms;
        let total: u64 = in_bucket.iter().sum();
        for (i, series) in out.iter_mut().enumerate() {
            if cumulative[i].views > 0 {
                let interval =
                    wilson_interval(cumulative[i], confidence).map(|iv| (iv.lower, iv.upper));
                series.rate.push((at, cumulative[i].rate(), interval));
            }
            if total > 0 {
                series.share.push((at, in_bucket[i] as f64 / total as f64));
            }
        }
    }
    out
}

/// The two charts of a flag's page, as inline SVG.
pub(super) fn charts(arms: &[String], history: &History, confidence: f64) -> Markup {
    let all = series(arms, history, confidence);
    let times: Vec<i64> = all
        .iter()
        .flat_map(|s| {
            s.rate
                .iter()
                .map(|p| p.0)
                .chain(s.share.iter().map(|p| p.0))
        })
        .collect();
    let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max()) else {
        return html! { p.muted { "The charts appear once the activity log has entries." } };
    };
    let top = all
        .iter()
        .flat_map(|s| s.rate.iter().map(|p| p.2.map_or(p.1, |iv| iv.1)))
        .fold(0.01_f64, f64::max)
        .min(1.0);
    let (w, h, left, bottom) = (640.0, 180.0, 44.0, 18.0);
    let x = |t: i64| {
        let span = (last - first).max(1) as f64;
        left + (w - left - 8.0) * (t - first) as f64 / span
    };
    let y = |v: f64, max: f64| 8.0 + (h - bottom - 8.0) * (1.0 - (v / max).clamp(0.0, 1.0));
    let points = |pts: &mut dyn Iterator<Item = (f64, f64)>| {
        pts.map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let frame = |max_label: String| {
        html! {
            line x1=(left) y1=(h - bottom) x2=(w - 8.0) y2=(h - bottom) stroke="currentColor" stroke-opacity="0.3" {}
            line x1=(left) y1="8" x2=(left) y2=(h - bottom) stroke="currentColor" stroke-opacity="0.3" {}
            text x=(left - 4.0) y="14" text-anchor="end" font-size="11" fill="currentColor" { (max_label) }
            text x=(left - 4.0) y=(h - bottom) text-anchor="end" font-size="11" fill="currentColor" { "0%" }
            text x=(left) y=(h - 3.0) font-size="11" fill="currentColor" { (date(first)) }
            text x=(w - 8.0) y=(h - 3.0) text-anchor="end" font-size="11" fill="currentColor" { (date(last)) }
        }
    };
    html! {
        h2 { "Conversion rate over time" }
        p.muted { "Cumulative, with its interval, from the activity log." }
        svg.chart viewBox={ "0 0 " (w) " " (h) } role="img" aria-label="Conversion rate of each arm over time" {
            (frame(format!("{:.1}%", 100.0 * top)))
            @for (i, s) in all.iter().enumerate() {
                @let colour = COLOURS[i % COLOURS.len()];
                @if s.rate.len() > 1 {
                    @let band = {
                        let upper = s.rate.iter().filter_map(|p| p.2.map(|iv| (x(p.0), y(iv.1, top))));
                        let lower = s.rate.iter().rev().filter_map(|p| p.2.map(|iv| (x(p.0), y(iv.0, top))));
                        points(&mut upper.chain(lower))
                    };
                    polygon points=(band) fill=(colour) fill-opacity="0.12" stroke="none" {}
                }
                polyline points=(points(&mut s.rate.iter().map(|p| (x(p.0), y(p.1, top))))) fill="none" stroke=(colour) stroke-width="2" {}
            }
        }
        h2 { "Share of traffic over time" }
        p.muted { "New visitors per arm in each period, from the activity log." }
        svg.chart viewBox={ "0 0 " (w) " " (h) } role="img" aria-label="Share of traffic of each arm over time" {
            (frame("100%".to_string()))
            @for (i, s) in all.iter().enumerate() {
                polyline points=(points(&mut s.share.iter().map(|p| (x(p.0), y(p.1, 1.0))))) fill="none" stroke=(COLOURS[i % COLOURS.len()]) stroke-width="2" {}
            }
        }
        p.legend {
            @for (i, arm) in arms.iter().enumerate() {
                span { span.swatch style={ "background:" (COLOURS[i % COLOURS.len()]) } {} (arm) }
            }
        }
    }
}

/// A small server-side SVG: the rate as a dot on its interval, on a 0–100% scale zoomed to
/// the interval's neighbourhood.
pub(super) fn interval_bar(lower: f64, upper: f64, rate: f64) -> Markup {
    let top = (upper * 1.25).clamp(0.01, 1.0);
    let x = |v: f64| 4.0 + 152.0 * (v / top).clamp(0.0, 1.0);
    html! {
        svg width="160" height="14" viewBox="0 0 160 14" role="img" aria-label="interval" {
            line x1="4" y1="7" x2="156" y2="7" stroke="currentColor" stroke-opacity="0.2" {}
            line x1=(format!("{:.1}", x(lower))) y1="7" x2=(format!("{:.1}", x(upper))) y2="7"
                stroke="currentColor" stroke-width="4" stroke-linecap="round" stroke-opacity="0.5" {}
            circle cx=(format!("{:.1}", x(rate))) cy="7" r="4" fill="currentColor" {}
        }
    }
}
