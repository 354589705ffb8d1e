//! Rendering spikes: the ranked table (or CSV, or JSON with the parameters and each spike's
//! cohorts) and a chart per flagged group.
//!
//! Only the first `shown` spikes are written and charted; the JSON still counts every group
//! judged and every day flagged, so a short table never hides how much was found.

use super::OutputFormat;
use super::alerts::key_value;
use super::chart::{self, ChartData, LineChart, Series, region_color};
use super::records::Records;
use crate::analyze::alerts::{AlertReport, Dim, GroupKey};
use crate::analyze::spikes::find::{Found, Spike};
use crate::analyze::spikes::{SpikeParams, check};
use crate::engine::Filters;
use crate::inventory::Inventory;
use crate::model::Day;
use crate::model::time::format_day;
use plotters::style::RGBColor;
use serde_json::{Value, json};
use std::io::{self, Write};
use std::path::Path;

/// What the spikes output shows, and what the spikes were found in.
pub struct Shown<'a> {
    pub found: &'a Found,
    /// How many of the spikes (the largest first) are written and charted.
    pub shown: usize,
    pub by: &'a [Dim],
    pub params: &'a SpikeParams,
    /// The fold the spikes were found in (its period, totals and label names).
    pub report: &'a AlertReport,
    pub inv: &'a Inventory,
}

impl Shown<'_> {
    fn spikes(&self) -> &[Spike] {
        &self.found.spikes[..self.shown]
    }
}

/// A group's name for a sentence: its values joined (`North / 8F35 / ESME`).
pub fn group_name(s: &Shown, group: &GroupKey) -> String {
    s.by.iter()
        .map(|&d| key_value(d, group, &s.report.labels, s.inv, &s.report.scope.clock))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Writes the spikes shown; the JSON form carries the filters and parameters too.
pub fn write(
    w: &mut impl Write,
    s: &Shown,
    filters: &Filters,
    fmt: OutputFormat,
) -> io::Result<()> {
    records(s).write(w, fmt, meta(s, filters))
}

fn meta(s: &Shown, filters: &Filters) -> Value {
    let (found, p, report) = (s.found, s.params, s.report);
    json!({
        "filters": filters.to_json(),
        "group_by": s.by.iter().map(|d| d.column()).collect::<Vec<_>>(),
        "period": report.period.map(|(a, b)| json!({"from": format_day(a), "to": format_day(b)})),
        "params": {
            "window": p.window, "min_history": p.min_history,
            "threshold": p.threshold, "min_ratio": p.min_ratio,
            "min_excess": p.min_excess,
        },
        "groups": found.series.len(),
        "group_days_judged": found.judged,
        "flagged": found.spikes.len(),
        "cohorts": s.spikes().iter().map(|s| s.cohorts.iter().map(|c| json!({
            "dimension": c.dimension, "name": c.name, "excess": c.excess,
            "share_of_excess": c.share, "share_of_devices": c.fleet_share,
        })).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "totals": report.totals,
    })
}

pub fn records(s: &Shown) -> Records {
    let by = s.by;
    let mut cols: Vec<(&str, bool)> = vec![("rank", true), ("day", false)];
    cols.extend(by.iter().map(|d| (d.column(), false)));
    cols.extend([
        ("alerts", true),
        ("expected", true),
        ("excess", true),
        ("ratio", true),
        ("z", true),
        ("per_1000", true),
        ("baseline_per_1000", true),
        ("installed_devices", true),
        ("explanation", false),
    ]);
    let mut r = Records::new(&cols);
    for (i, spike) in s.spikes().iter().enumerate() {
        let c = &spike.check;
        let mut row = vec![(i + 1).to_string(), format_day(c.day)];
        row.extend(by.iter().map(|&d| {
            key_value(
                d,
                &spike.group,
                &s.report.labels,
                s.inv,
                &s.report.scope.clock,
            )
        }));
        let rate_known = spike.installed.is_some_and(|n| n > 0);
        row.extend([
            format!("{}", c.count),
            format!("{:.1}", c.expected),
            format!("{:.1}", c.excess()),
            if c.ratio().is_finite() {
                format!("{:.1}", c.ratio())
            } else {
                "inf".into()
            },
            format!("{:.1}", c.z),
            if rate_known {
                format!("{:.4}", c.rate)
            } else {
                "n/a".into()
            },
            if rate_known {
                format!("{:.4}", c.baseline_rate)
            } else {
                "n/a".into()
            },
            spike.installed.map(|n| n.to_string()).unwrap_or_default(),
            spike.verdict.clone(),
        ]);
        r.push(row);
    }
    r
}

/// A chart per flagged group among the spikes shown: its daily rate, its baseline, and the
/// flagged days marked. Returns how many were written into `dir`.
pub fn charts(s: &Shown, dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let all = chart_data(s);
    for (stem, data) in &all {
        chart::save(data, &dir.join(format!("{stem}.png")))?;
    }
    Ok(all.len())
}

/// The chart of each flagged group among the spikes shown, in rank order, with a file stem
/// (`spike-01-north-8f35-esme`).
pub fn chart_data(s: &Shown) -> Vec<(String, ChartData)> {
    let mut out = Vec::new();
    let mut done: Vec<GroupKey> = Vec::new();
    for spike in s.spikes() {
        if done.contains(&spike.group) {
            continue;
        }
        done.push(spike.group);
        let Some((_, series)) = s.found.series.iter().find(|(g, _)| *g == spike.group) else {
            continue;
        };
        let name: Vec<String> =
            s.by.iter()
                .map(|&d| {
                    key_value(
                        d,
                        &spike.group,
                        &s.report.labels,
                        s.inv,
                        &s.report.scope.clock,
                    )
                })
                .collect();
        let checks = check(series, s.params);
        let color = spike
            .group
            .region
            .map(region_color)
            .unwrap_or(RGBColor(60, 60, 60));
        let rate: Vec<(Day, f64)> = (0..series.counts.len())
            .map(|i| (series.first_day + i as Day, series.rate(i)))
            .collect();
        let baseline: Vec<(Day, f64)> = checks.iter().map(|c| (c.day, c.baseline_rate)).collect();
        let markers: Vec<(Day, f64)> = s
            .found
            .spikes
            .iter()
            .filter(|x| x.group == spike.group)
            .map(|x| (x.check.day, x.check.rate))
            .collect();
        let unit = if spike.installed.is_some() {
            "alerts per 1,000 devices per day"
        } else {
            "alerts per day"
        };
        let data = ChartData::Line(LineChart {
            title: format!("Spike: {}", name.join(" / ")),
            y_label: unit.into(),
            series: vec![
                Series {
                    name: "daily rate".into(),
                    color,
                    points: rate,
                },
                Series {
                    name: "baseline (trailing median, weekday-adjusted)".into(),
                    color: RGBColor(150, 150, 150),
                    points: baseline,
                },
            ],
            markers,
            days: (
                series.first_day,
                series.first_day + series.counts.len() as Day - 1,
            ),
            ..Default::default()
        });
        let slug: String = name
            .join("-")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let stem = format!("spike-{:02}-{}", done.len(), slug.trim_matches('-'));
        out.push((stem, data));
    }
    out
}
