//! The migration charts: cumulative migrated and operated devices per cohort, and the weekly
//! pace per cohort as stacked bars.
//!
//! Each cohort keeps one colour in both charts; its "operated" line is the same colour,
//! lighter, so the gap between a cohort's two lines (its backlog) reads at a glance.

use super::{ChartData, LineChart, Series, StackedBars};
use crate::analyze::migration::report::MigrationReport;
use crate::analyze::migration::weekly::Week;
use crate::model::time::format_day;
use plotters::style::RGBColor;

/// Cohort colours, in migration order (others grey).
pub fn cohort_color(name: &str) -> RGBColor {
    match name {
        "IOC" => RGBColor(31, 119, 180),
        "MOC" => RGBColor(255, 127, 14),
        "MOC Secure" => RGBColor(44, 160, 44),
        "FOC" => RGBColor(214, 39, 40),
        _ => RGBColor(120, 120, 120),
    }
}

/// The colour 55% of the way to white.
fn lighter(c: RGBColor) -> RGBColor {
    let l = |x: u8| (x as u16 + (255 - x as u16) * 55 / 100) as u8;
    RGBColor(l(c.0), l(c.1), l(c.2))
}

/// The charts, each with its file stem: `migration_cumulative`, `migration_pace`.
pub fn charts(m: &MigrationReport) -> Vec<(&'static str, ChartData)> {
    let a = &m.analysis;
    let cohort = |c: u16| m.log.cohorts.name(c);
    let mut series = Vec::new();
    for (&c, weeks) in &a.cohorts {
        let name = cohort(c);
        let color = cohort_color(name);
        let end = |w: &Week| (w.start + 6).min(a.last_day);
        series.push(Series {
            name: format!("{name} migrated"),
            color,
            points: weeks
                .iter()
                .map(|w| (end(w), w.cum_migrated as f64))
                .collect(),
        });
        series.push(Series {
            name: format!("{name} operated"),
            color: lighter(color),
            points: weeks
                .iter()
                .map(|w| (end(w), w.cum_commissioned as f64))
                .collect(),
        });
    }
    let span = format!("{} to {}", format_day(a.first_day), format_day(a.last_day));
    let cumulative = ChartData::Line(LineChart {
        title: format!("SMETS1 migration: cumulative migrated and operated per cohort, {span}"),
        y_label: "devices (cumulative, from the log)".into(),
        series,
        markers: Vec::new(),
        days: (a.first_day, a.last_day),
        ..Default::default()
    });
    let pace = ChartData::Bars(StackedBars {
        title: format!("SMETS1 migration: weekly pace per cohort, {span}"),
        x_label: "week starting".into(),
        y_label: "devices migrated per week (per reported weekday x 5)".into(),
        bars: a
            .weeks
            .iter()
            .map(|&d| format_day(d)[5..].to_string())
            .collect(),
        stacks: a
            .cohorts
            .iter()
            .map(|(&c, weeks)| {
                let name = cohort(c).to_string();
                let color = cohort_color(&name);
                (
                    name,
                    color,
                    weeks.iter().map(|w| w.pace.unwrap_or(0.0)).collect(),
                )
            })
            .collect(),
        ..Default::default()
    });
    vec![
        ("migration_cumulative", cumulative),
        ("migration_pace", pace),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lighter_moves_each_channel_towards_white() {
        assert_eq!(lighter(RGBColor(0, 255, 100)), RGBColor(140, 255, 185));
        assert_eq!(cohort_color("Pilot"), RGBColor(120, 120, 120));
    }
}
