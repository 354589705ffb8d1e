//! The OTA charts: the share of each region's targeted devices running the target version,
//! cumulative per day; and the firmware's effect per code with its interval (a forest plot).
//!
//! Every region's line covers the same days (the first to the last upgrade anywhere), so a
//! region whose upgrades start late is flat at zero before, not missing. Shares, not counts,
//! so that regions with more targets do not look further on.
//!
//! The effect is drawn as it is written in the table, never a bare percentage: each code's
//! point with its 95% interval as a line, its verdict beside it; a code without an interval
//! says "no interval" in place of a point.

use super::{ChartData, Forest, ForestRow, LineChart, Series, region_color};
use crate::analyze::ota::campaign::Campaigns;
use crate::analyze::ota::effect::{Effect, Verdict};
use crate::analyze::ota::funnel::Aggregate;
use crate::model::Day;
use plotters::style::RGBColor;

/// The percentage of each region's targeted devices running the target version, per day.
pub fn cumulative_chart(agg: &Aggregate, campaigns: &Campaigns) -> ChartData {
    let mut targeted: std::collections::BTreeMap<crate::model::Region, u64> = Default::default();
    for (c, f) in &agg.funnel {
        *targeted.entry(c.region).or_default() += f.targeted;
    }
    let days: Vec<Day> = agg
        .upgrades_per_day
        .values()
        .flat_map(|m| m.keys().copied())
        .collect();
    let (first, last) = (
        days.iter().copied().min().unwrap_or(0),
        days.iter().copied().max().unwrap_or(0),
    );
    let series = agg
        .upgrades_per_day
        .iter()
        .map(|(region, per_day)| {
            let mut total = 0u64;
            let of = targeted.get(region).copied().unwrap_or(0).max(1) as f64;
            Series {
                name: region.name().to_string(),
                color: region_color(*region),
                points: (first..=last)
                    .map(|d| {
                        total += per_day.get(&d).copied().unwrap_or(0);
                        (d, total as f64 * 100.0 / of)
                    })
                    .collect(),
            }
        })
        .collect();
    let names: Vec<&str> = campaigns
        .names
        .names
        .iter()
        .skip(1)
        .map(String::as_str)
        .collect();
    ChartData::Line(LineChart {
        title: format!(
            "Share of targeted devices running the target version: {}",
            names.join(", ")
        ),
        y_label: "% of the region's targeted devices".into(),
        series,
        markers: Vec::new(),
        days: (first, last),
        ..Default::default()
    })
}

/// Codes the effect chart shows at most (the rest are in the table, and counted under it).
pub const EFFECT_ROWS: usize = 30;

/// One colour per verdict, the same in the chart and its text.
pub fn verdict_color(v: Verdict) -> RGBColor {
    match v {
        Verdict::Clear => RGBColor(31, 119, 180),
        Verdict::NoClear => RGBColor(110, 110, 110),
        Verdict::Dominated => RGBColor(214, 110, 0),
        Verdict::PreTrendsDiffer => RGBColor(148, 60, 170),
    }
}

/// `81B8 Supply Tamper State ...`: a code and its catalogue name (the code alone when the
/// catalogue has no name for it).
fn code_label(e: &Effect) -> String {
    match crate::catalogue::describe(e.code) {
        n if n.starts_with('(') => e.code.to_string(),
        n => format!("{} {n}", e.code),
    }
}

/// The firmware effect per code, in the effect table's order (clear effects first, then the
/// largest): the relative effect in % with its 95% device-bootstrap interval, and the verdict.
/// `None` without rows (no alert inputs, or no code with enough alerts).
pub fn effect_chart(effects: &[Effect], campaigns: &Campaigns) -> Option<ChartData> {
    if effects.is_empty() {
        return None;
    }
    let pct = |x: f64| x * 100.0;
    let rows = effects
        .iter()
        .take(EFFECT_ROWS)
        .map(|e| ForestRow {
            label: code_label(e),
            estimate: e.ratio().map(pct),
            interval: e.ci.map(|(lo, hi)| (pct(lo), pct(hi))),
            text: effect_text(e),
            note: e.verdict.name().to_string(),
            color: verdict_color(e.verdict),
        })
        .collect();
    let names: Vec<&str> = campaigns
        .names
        .names
        .iter()
        .skip(1)
        .map(String::as_str)
        .collect();
    Some(ChartData::Forest(Forest {
        title: format!(
            "Did the firmware help? Effect per code with its 95% interval: {}",
            names.join(", ")
        ),
        x_label: "change in the upgraded devices' rate beyond the never-upgraded devices' (%)"
            .into(),
        rows,
        more: effects.len().saturating_sub(EFFECT_ROWS),
    }))
}

/// The effect as a reader takes it in: `-48.2% [-55.0%, -40.1%]`, never a bare percentage
/// (`n/a` without a ratio; the interval `n/a` without one).
pub fn effect_text(e: &Effect) -> String {
    let pct = |x: f64| format!("{:+.1}%", x * 100.0);
    match (e.ratio(), e.ci) {
        (Some(r), Some((lo, hi))) => format!("{} [{}, {}]", pct(r), pct(lo), pct(hi)),
        (Some(r), None) => format!("{} [interval n/a]", pct(r)),
        _ => "n/a".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertCode, Region};

    #[test]
    fn every_region_covers_every_day_cumulatively() {
        let mut agg = Aggregate::default();
        // 10 targeted devices in North, 4 in South.
        for (region, targeted) in [(Region::North, 10), (Region::South, 4)] {
            let cohort = crate::analyze::ota::funnel::Cohort {
                campaign: 1,
                region,
                model: 0,
                source: 0,
            };
            agg.funnel.entry(cohort).or_default().targeted = targeted;
        }
        agg.upgrades_per_day
            .entry(Region::North)
            .or_default()
            .extend([(10, 2), (12, 1)]);
        agg.upgrades_per_day
            .entry(Region::South)
            .or_default()
            .insert(11, 4);
        let mut campaigns = Campaigns::default();
        campaigns.names.id("C1");
        let ChartData::Line(l) = cumulative_chart(&agg, &campaigns) else {
            panic!("a line chart")
        };
        assert_eq!(l.days, (10, 12));
        assert_eq!(l.series[0].points, vec![(10, 20.0), (11, 20.0), (12, 30.0)]);
        assert_eq!(
            l.series[1].points,
            vec![(10, 0.0), (11, 100.0), (12, 100.0)]
        );
        assert!(l.title.ends_with(": C1"));
    }

    fn effect(code: u16, rates: [f64; 4], ci: Option<(f64, f64)>, verdict: Verdict) -> Effect {
        Effect {
            code: AlertCode::device(code),
            alerts_after: 100,
            alerts_before: 100,
            a: rates[0],
            b: rates[1],
            c_after: rates[2],
            c_before: rates[3],
            ci,
            pretrend: None,
            pretrend_ci: None,
            top1pct_share: 0.01,
            control_top1pct_share: 0.01,
            treated: 10,
            control: 10,
            verdict,
        }
    }

    #[test]
    fn effect_rows_carry_percentages_intervals_and_verdicts_in_table_order() {
        let mut campaigns = Campaigns::default();
        campaigns.names.id("C1");
        let effects = [
            // (1 / 2) / (1 / 1) - 1 = -50%, in [-60%, -40%].
            effect(
                0x81B8,
                [1.0, 2.0, 1.0, 1.0],
                Some((-0.6, -0.4)),
                Verdict::Clear,
            ),
            // (3 / 2) / (1 / 1) - 1 = +50%, no interval.
            effect(0x8F84, [3.0, 2.0, 1.0, 1.0], None, Verdict::NoClear),
            // A rate at zero: no ratio and no interval.
            effect(0x8F57, [0.0, 2.0, 1.0, 1.0], None, Verdict::NoClear),
        ];
        let Some(ChartData::Forest(f)) = effect_chart(&effects, &campaigns) else {
            panic!("a forest plot")
        };
        assert_eq!(f.rows.len(), 3);
        assert_eq!(f.more, 0);
        assert!(f.title.ends_with(": C1"), "{}", f.title);
        let r = &f.rows[0];
        assert!(
            r.label.starts_with("81B8 ") && r.label.len() > 5,
            "{}",
            r.label
        );
        assert!((r.estimate.unwrap() + 50.0).abs() < 1e-9);
        let (lo, hi) = r.interval.unwrap();
        assert!((lo + 60.0).abs() < 1e-9 && (hi + 40.0).abs() < 1e-9);
        assert_eq!(r.text, "-50.0% [-60.0%, -40.0%]");
        assert_eq!(r.note, "clear effect");
        assert_eq!(r.color, verdict_color(Verdict::Clear));
        // Without an interval the row has its estimate in words, nothing to draw as a line.
        assert_eq!(f.rows[1].interval, None);
        assert_eq!(f.rows[1].text, "+50.0% [interval n/a]");
        assert_eq!(f.rows[1].note, "no clear effect");
        assert_eq!((f.rows[2].estimate, f.rows[2].interval), (None, None));
        assert_eq!(f.rows[2].text, "n/a");
        // The axis holds 0 and every interval, with a margin.
        let (x0, x1) = super::super::draw::forest_range(&f);
        assert!(x0 < -60.0 && x1 > 50.0, "{x0} {x1}");
        // No rows, no chart; more rows than shown are counted.
        assert!(effect_chart(&[], &campaigns).is_none());
        let many: Vec<Effect> = (0..EFFECT_ROWS as u16 + 4)
            .map(|i| effect(0x8000 + i, [1.0; 4], Some((-0.1, 0.1)), Verdict::NoClear))
            .collect();
        let Some(ChartData::Forest(f)) = effect_chart(&many, &campaigns) else {
            panic!()
        };
        assert_eq!((f.rows.len(), f.more), (EFFECT_ROWS, 4));
        assert_eq!(
            ChartData::Forest(f).size(),
            (1100, 130 + 40 * (EFFECT_ROWS as u32 + 1))
        );
    }

    #[test]
    fn a_wide_interval_stops_the_axis_at_the_cap() {
        let f = Forest {
            rows: vec![ForestRow {
                label: "x".into(),
                estimate: Some(50.0),
                interval: Some((-20.0, 5000.0)),
                text: String::new(),
                note: String::new(),
                color: RGBColor(0, 0, 0),
            }],
            ..Default::default()
        };
        let (x0, x1) = super::super::draw::forest_range(&f);
        let cap = super::super::draw::FOREST_CAP;
        assert!(x0 < -20.0 && x1 > cap && x1 < cap * 1.1, "{x0} {x1}");
    }
}
