//! Rendering spikes: the episodes ranked by excess (table, CSV or JSON with the parameters,
//! each episode's cohorts and every flagged day), the campaign episodes apart, and a chart per
//! group among the episodes shown.
//!
//! Only the first `shown` episodes (and as many campaign episodes) are written and charted;
//! the JSON still counts every group judged and every day flagged, so a short table never hides
//! how much was found.

use super::OutputFormat;
use super::alerts::key_value;
use super::chart::{self, ChartData, LineChart, Series, region_color};
use super::records::Records;
use crate::analyze::alerts::{AlertReport, Dim, GroupKey};
use crate::analyze::spikes::check;
use crate::analyze::spikes::find::{Episode, Found, Setting};
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
    /// How many episodes (the largest first), and as many campaign episodes, are written
    /// and charted.
    pub shown: usize,
    pub by: &'a [Dim],
    pub setting: &'a Setting,
    /// The read the spikes were found in (its period, totals and label names).
    pub report: &'a AlertReport,
    pub inv: &'a Inventory,
}

impl Shown<'_> {
    /// The episodes shown, largest excess first.
    pub fn episodes(&self) -> &[Episode] {
        let e = &self.found.episodes;
        &e[..self.shown.min(e.len())]
    }

    /// The campaign episodes shown (known events, listed apart).
    pub fn campaign_episodes(&self) -> &[Episode] {
        let e = &self.found.campaign_episodes;
        &e[..self.shown.min(e.len())]
    }

    /// A group's name for a sentence: its values joined (`North / 8F35 / ESME`).
    pub fn group_name(&self, g: &GroupKey) -> String {
        self.by
            .iter()
            .map(|&d| self.name(d, g))
            .collect::<Vec<_>>()
            .join(" / ")
    }

    fn name(&self, d: Dim, g: &GroupKey) -> String {
        key_value(
            d,
            g,
            &self.report.labels,
            self.inv,
            &self.report.scope.clock,
        )
    }
}

/// Writes the episodes shown (the campaign episodes apart); the JSON form carries the filters,
/// parameters and every flagged day too.
pub fn write(
    w: &mut impl Write,
    s: &Shown,
    filters: &Filters,
    fmt: OutputFormat,
) -> io::Result<()> {
    let incidents = records(s, s.episodes(), false);
    let campaign = records(s, s.campaign_episodes(), true);
    match fmt {
        OutputFormat::Json => {
            let mut doc = match meta(s, filters) {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            doc.insert(
                "episodes".into(),
                Value::Array(with_cohorts(s, incidents.json_rows(), s.episodes())),
            );
            doc.insert(
                "campaign_episodes".into(),
                Value::Array(with_cohorts(s, campaign.json_rows(), s.campaign_episodes())),
            );
            doc.insert("flags".into(), Value::Array(flags(s)));
            serde_json::to_writer_pretty(&mut *w, &Value::Object(doc))?;
            writeln!(w)
        }
        OutputFormat::Csv => {
            let mut all = incidents;
            all.rows.extend(campaign.rows);
            all.write(w, fmt, Value::Null)
        }
        OutputFormat::Table => {
            let f = s.found;
            writeln!(
                w,
                "{} spike episodes ({} flagged days), largest excess first; a device counts at most {} alerts a day{}",
                f.episodes.len(),
                f.spikes.len() - f.campaign_episodes.iter().map(|e| e.days()).sum::<usize>(),
                s.setting.params.device_cap,
                if s.setting.params.device_cap == 0 {
                    " (no cap)".to_string()
                } else {
                    String::new()
                }
            )?;
            incidents.write(w, fmt, Value::Null)?;
            if !f.campaign_episodes.is_empty() {
                writeln!(
                    w,
                    "\nKnown events: {} episodes of campaign firmware codes during {} (not ranked among the incidents)",
                    f.campaign_episodes.len(),
                    campaign_runs(s)
                )?;
                campaign.write(w, fmt, Value::Null)?;
            }
            Ok(())
        }
    }
}

fn campaign_runs(s: &Shown) -> String {
    s.setting
        .campaigns
        .iter()
        .map(|r| format!("{} {}..{}", r.name, format_day(r.first), format_day(r.last)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn meta(s: &Shown, filters: &Filters) -> Value {
    let (found, p, report) = (s.found, &s.setting.params, s.report);
    json!({
        "filters": filters.to_json(),
        "group_by": s.by.iter().map(|d| d.column()).collect::<Vec<_>>(),
        "period": report.period.map(|(a, b)| json!({"from": format_day(a), "to": format_day(b)})),
        "params": {
            "window": p.window, "min_history": p.min_history,
            "weekday_window": p.weekday_window,
            "threshold": p.threshold, "min_ratio": p.min_ratio,
            "min_excess": p.min_excess, "device_cap": p.device_cap,
        },
        "excluded": s.setting.exclude.as_ref().map(|e| e.to_string()),
        "excluded_alerts": found.excluded_alerts,
        "alerts_over_device_cap": found.over_cap_alerts,
        "campaigns": s.setting.campaigns.iter().map(|r| json!({
            "campaign": r.name, "first_day": format_day(r.first), "last_day": format_day(r.last),
        })).collect::<Vec<_>>(),
        "groups": found.series.len(),
        "group_days_judged": found.judged,
        "flagged": found.spikes.len(),
        "episodes_found": found.episodes.len(),
        "campaign_episodes_found": found.campaign_episodes.len(),
        "totals": report.totals,
    })
}

/// Each episode's JSON row with the cohorts of its peak day.
fn with_cohorts(s: &Shown, rows: Vec<Value>, episodes: &[Episode]) -> Vec<Value> {
    rows.into_iter()
        .zip(episodes)
        .map(|(mut row, e)| {
            let cohorts: Vec<Value> = s.found.spikes[e.peak]
                .cohorts
                .iter()
                .map(|c| {
                    json!({
                        "dimension": c.dimension, "name": c.name, "excess": c.excess,
                        "share_of_excess": c.share, "share_of_devices": c.fleet_share,
                    })
                })
                .collect();
            if let Value::Object(m) = &mut row {
                m.insert(
                    "peak_day".into(),
                    format_day(s.found.spikes[e.peak].check.day).into(),
                );
                m.insert("cohorts".into(), Value::Array(cohorts));
            }
            row
        })
        .collect()
}

/// Every flagged day, in group and day order, with the episode it belongs to.
fn flags(s: &Shown) -> Vec<Value> {
    let f = s.found;
    let kind = |i: usize| {
        if f.campaign_episodes.iter().any(|e| e.spikes.contains(&i)) {
            "campaign"
        } else {
            "incident"
        }
    };
    f.spikes
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let c = &x.check;
            let mut m = serde_json::Map::new();
            m.insert("day".into(), format_day(c.day).into());
            for &d in s.by {
                m.insert(d.column().into(), s.name(d, &x.group).into());
            }
            m.insert("alerts".into(), x.alerts.into());
            m.insert("counted".into(), c.count.into());
            m.insert("expected".into(), round(c.expected, 2).into());
            m.insert("excess".into(), round(c.excess(), 2).into());
            m.insert("z".into(), round(c.z, 2).into());
            m.insert("devices".into(), x.devices.into());
            m.insert("episode".into(), kind(i).into());
            m.insert("explanation".into(), x.verdict.clone().into());
            Value::Object(m)
        })
        .collect()
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The episodes as records (`known`: campaign episodes, with the campaign's name).
pub fn records(s: &Shown, episodes: &[Episode], known: bool) -> Records {
    let by = s.by;
    let mut cols: Vec<(&str, bool)> = vec![
        ("rank", true),
        ("first_day", false),
        ("last_day", false),
        ("days", true),
    ];
    cols.extend(by.iter().map(|d| (d.column(), false)));
    cols.extend([
        ("alerts", true),
        ("counted", true),
        ("expected", true),
        ("excess", true),
        ("ratio", true),
        ("peak_z", true),
        ("devices", true),
        ("per_1000", true),
        ("baseline_per_1000", true),
        ("installed_devices", true),
        ("explanation", false),
        ("known_event", false),
    ]);
    let mut r = Records::new(&cols);
    for (i, e) in episodes.iter().enumerate() {
        let peak = &s.found.spikes[e.peak];
        let c = &peak.check;
        let mut row = vec![
            if known {
                String::new()
            } else {
                (i + 1).to_string()
            },
            format_day(e.first_day),
            format_day(e.last_day),
            e.days().to_string(),
        ];
        row.extend(by.iter().map(|&d| s.name(d, &e.group)));
        let rate_known = peak.installed.is_some_and(|n| n > 0);
        let ratio = if e.expected > 0.0 {
            format!("{:.1}", e.counted / e.expected)
        } else {
            "inf".into()
        };
        row.extend([
            format!("{}", e.alerts),
            format!("{}", e.counted),
            format!("{:.1}", e.expected),
            format!("{:.1}", e.excess),
            ratio,
            format!("{:.1}", c.z),
            e.devices.to_string(),
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
            peak.installed.map(|n| n.to_string()).unwrap_or_default(),
            peak.verdict.clone(),
            e.campaign
                .as_ref()
                .map(|c| format!("campaign {c}"))
                .unwrap_or_default(),
        ]);
        r.push(row);
    }
    r
}

/// A chart per group among the episodes shown (incidents first, then campaign episodes): its
/// daily rate (capped counts), its baseline, and the flagged days marked. Returns how many
/// were written into `dir`.
pub fn charts(s: &Shown, dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let all = chart_data(s);
    for (stem, data) in &all {
        chart::save(data, &dir.join(format!("{stem}.png")))?;
    }
    Ok(all.len())
}

/// The chart of each group among the episodes shown, incidents first, with a file stem
/// (`spike-01-Central-N24-CHF`).
pub fn chart_data(s: &Shown) -> Vec<(String, ChartData)> {
    let mut out = Vec::new();
    let mut done: Vec<GroupKey> = Vec::new();
    for e in s.episodes().iter().chain(s.campaign_episodes()) {
        let spike = &s.found.spikes[e.peak];
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
        let checks = check(series, &s.setting.params);
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
                    name: match s.setting.params.device_cap {
                        0 => "daily rate".into(),
                        k => format!("daily rate (a device counts at most {k} a day)"),
                    },
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
