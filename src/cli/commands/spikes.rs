//! `fleetwatch spikes`: days on which a group's alert rate rose well above its own baseline,
//! ranked by excess alerts, each explained by the cohorts (model, firmware, device type,
//! generation) that carry the excess.
//!
//! One pass folds the alerts by day and the chosen dimensions plus the cohort dimensions; the
//! groups' daily series are rolled up from it, judged (`analyze::spikes`), and the flagged
//! days are explained from the same fold.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::Result;
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport, AlertRow, Dim, GroupKey, denom_dims};
use fleetwatch::analyze::labels::Labels as LabelRules;
use fleetwatch::analyze::labels::Labels;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::spikes::{DailySeries, DayCheck, SpikeParams, check};
use fleetwatch::analyze::stats::median;
use fleetwatch::inventory::{Denominators, Inventory};
use fleetwatch::model::Day;
use fleetwatch::model::time::format_day;
use fleetwatch::render::OutputFormat;
use fleetwatch::render::alerts::key_value;
use fleetwatch::render::chart::{self, ChartData, LineChart, Series, region_color};
use fleetwatch::render::records::Records;
use plotters::style::RGBColor;
use rustc_hash::FxHashMap;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub struct SpikesConfig {
    pub selection: Selection,
    /// The dimensions a group is made of (never `Day`).
    pub by: Vec<Dim>,
    pub params: SpikeParams,
    /// Rows to show (0: all).
    pub top: usize,
    pub charts: Option<PathBuf>,
    pub format: OutputFormat,
}

/// The cohort dimensions a spike is explained by, and their names in the output.
const COHORTS: &[(&str, &[Dim])] = &[
    ("model", &[Dim::Model]),
    ("model+firmware", &[Dim::Model, Dim::Firmware]),
    ("device type", &[Dim::DeviceType]),
    ("generation", &[Dim::Generation]),
];

/// One flagged day of one group.
pub struct Spike {
    pub group: GroupKey,
    pub check: DayCheck,
    pub installed: Option<u64>,
    pub cohorts: Vec<CohortShare>,
    pub verdict: String,
}

/// A cohort's part in a spike.
#[derive(Clone, Debug)]
pub struct CohortShare {
    /// Which dimension: "model", "model+firmware", ...
    pub dimension: &'static str,
    pub name: String,
    /// Its alerts that day over its own median of the trailing window.
    pub excess: f64,
    /// Of the group's excess.
    pub share: f64,
    /// Of the group's installed devices that day, when known.
    pub fleet_share: Option<f64>,
}

pub fn run(cfg: SpikesConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let report = fold(&engine, &cfg.selection.labels, &cfg.by);
    let mut found = find(&report, engine.inventory(), &cfg.by, &cfg.params);
    let shown = if cfg.top == 0 {
        found.spikes.len()
    } else {
        cfg.top.min(found.spikes.len())
    };
    // Where the inventory links devices to hubs, the spikes shown are explained by hub model too.
    if let Some(path) = &cfg.selection.inventory
        && let Some(hubs) = super::spikes_hubs::read(path, engine.inventory())
    {
        let setting = super::spikes_hubs::Setting {
            by: &cfg.by,
            window: cfg.params.window,
            first_day: report.period.map_or(0, |p| p.0),
            reader: &engine,
        };
        super::spikes_hubs::explain(&mut found.spikes[..shown], hubs, &setting);
    }
    eprintln!(
        "spikes: {} flagged days in {} of {} groups ({} group-days judged)",
        found.spikes.len(),
        found.flagged_groups,
        found.series.len(),
        found.judged
    );
    let records = records(&found.spikes[..shown], &cfg.by, &report, engine.inventory());
    let meta = json!({
        "filters": engine.filters().to_json(),
        "group_by": cfg.by.iter().map(|d| d.column()).collect::<Vec<_>>(),
        "period": report.period.map(|(a, b)| json!({"from": format_day(a), "to": format_day(b)})),
        "params": {
            "window": cfg.params.window, "min_history": cfg.params.min_history,
            "threshold": cfg.params.threshold, "min_ratio": cfg.params.min_ratio,
            "min_excess": cfg.params.min_excess,
        },
        "groups": found.series.len(),
        "group_days_judged": found.judged,
        "flagged": found.spikes.len(),
        "cohorts": found.spikes[..shown].iter().map(|s| s.cohorts.iter().map(|c| json!({
            "dimension": c.dimension, "name": c.name, "excess": c.excess,
            "share_of_excess": c.share, "share_of_devices": c.fleet_share,
        })).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "totals": report.totals,
    });
    stdout_write(|w| records.write(w, cfg.format, meta))?;
    if let Some(dir) = &cfg.charts {
        let n = draw_charts(&found, shown, &cfg, &report, engine.inventory(), dir)?;
        eprintln!("  {n} charts written to {}", dir.display());
    }
    conclude_run(&report, &engine, &cfg.selection.rejects, t0)
}

/// The fold behind spikes: by day, the group dimensions and the cohort dimensions.
pub fn fold(reader: &dyn Reader, labels: &Arc<LabelRules>, by: &[Dim]) -> AlertReport {
    let mut dims = vec![Dim::Day];
    for &d in by.iter().chain(COHORTS.iter().flat_map(|c| c.1.iter())) {
        if !dims.contains(&d) {
            dims.push(d);
        }
    }
    let query = AlertQuery {
        by: dims,
        distinct: false,
        labels: labels.clone(),
        ..Default::default()
    };
    reader.answer_one(query).report
}

/// Everything found: the groups' series and the flagged days, ranked by excess.
pub struct Found {
    pub series: Vec<(GroupKey, DailySeries)>,
    pub spikes: Vec<Spike>,
    pub judged: usize,
    pub flagged_groups: usize,
}

/// Rolls the fold up to the groups' daily series, judges them and explains the flagged days.
pub fn find(report: &AlertReport, inv: &Inventory, by: &[Dim], p: &SpikeParams) -> Found {
    let Some((first, last)) = report.period else {
        return Found {
            series: Vec::new(),
            spikes: Vec::new(),
            judged: 0,
            flagged_groups: 0,
        };
    };
    let days = (last - first + 1) as usize;
    let denoms = Denominators::build(inv, denom_dims(by));
    let mut groups: FxHashMap<GroupKey, (DailySeries, Vec<&AlertRow>)> = FxHashMap::default();
    for row in &report.rows {
        let Some(day) = row.key.day else { continue };
        let g = row.key.project(by);
        let (s, rows) = groups
            .entry(g)
            .or_insert_with(|| (DailySeries::new(first, days), Vec::new()));
        s.counts[(day - first) as usize] += row.alerts as f64;
        rows.push(row);
    }
    let mut series: Vec<(GroupKey, DailySeries, Vec<&AlertRow>)> = groups
        .into_iter()
        .map(|(g, (mut s, rows))| {
            let dk = g.denom_key();
            for (i, slot) in s.installed.iter_mut().enumerate() {
                *slot = denoms.installed(&dk, first + i as Day);
            }
            (g, s, rows)
        })
        .collect();
    series.sort_by_key(|x| x.0);
    // The installed base per group x cohort, built at the first flagged day (a pass over the
    // inventory per cohort dimension: not worth it when nothing is flagged).
    let mut cohort_denoms: Option<Vec<Denominators>> = None;
    let mut spikes = Vec::new();
    let mut judged = 0;
    let mut flagged_groups = 0;
    for (g, s, rows) in &series {
        let checks = check(s, p);
        judged += checks.len();
        let before = spikes.len();
        for c in checks.into_iter().filter(|c| c.flagged) {
            let t = (c.day - first) as usize;
            let cohort_denoms = cohort_denoms.get_or_insert_with(|| {
                COHORTS
                    .iter()
                    .map(|(_, dims)| {
                        let all: Vec<Dim> = by.iter().chain(dims.iter()).copied().collect();
                        Denominators::build(inv, denom_dims(&all))
                    })
                    .collect()
            });
            let at = Context {
                by,
                first,
                window: p.window,
                installed: s.installed[t],
                cohort_denoms,
                labels: &report.labels,
                inv,
            };
            let cohorts = explain(&c, rows, &at);
            let verdict = verdict(&cohorts);
            spikes.push(Spike {
                group: *g,
                check: c,
                installed: s.installed[t],
                cohorts,
                verdict,
            });
        }
        flagged_groups += usize::from(spikes.len() > before);
    }
    spikes.sort_by(|a, b| {
        b.check
            .excess()
            .total_cmp(&a.check.excess())
            .then(a.group.cmp(&b.group))
            .then(a.check.day.cmp(&b.check.day))
    });
    Found {
        series: series.into_iter().map(|(g, s, _)| (g, s)).collect(),
        spikes,
        judged,
        flagged_groups,
    }
}

/// What explaining a flagged day needs besides the day and the group's fold rows.
struct Context<'a> {
    by: &'a [Dim],
    first: Day,
    window: usize,
    /// The group's installed devices that day.
    installed: Option<u64>,
    /// Per cohort dimension, the installed devices of group x cohort.
    cohort_denoms: &'a [Denominators],
    labels: &'a Labels,
    inv: &'a Inventory,
}

/// Each cohort's excess on the flagged day over its own trailing median, as a share of the
/// group's excess; the largest few per cohort dimension.
fn explain(c: &DayCheck, rows: &[&AlertRow], at: &Context) -> Vec<CohortShare> {
    let Context {
        by,
        first,
        window,
        installed,
        cohort_denoms,
        labels,
        inv,
    } = *at;
    let from = (c.day - window as Day).max(first);
    let span = (c.day - from + 1) as usize;
    let mut out = Vec::new();
    for (ci, (name, dims)) in COHORTS.iter().enumerate() {
        if dims.iter().all(|d| by.contains(d)) {
            continue; // the group already fixes this cohort
        }
        let keep: Vec<Dim> = by.iter().chain(dims.iter()).copied().collect();
        let mut per: FxHashMap<GroupKey, Vec<f64>> = FxHashMap::default();
        for r in rows {
            let day = r.key.day.unwrap_or(first);
            if day < from || day > c.day {
                continue;
            }
            let v = per
                .entry(r.key.project(&keep))
                .or_insert_with(|| vec![0.0; span]);
            v[(day - from) as usize] += r.alerts as f64;
        }
        let mut shares: Vec<CohortShare> = per
            .into_iter()
            .map(|(k, mut v)| {
                let today = v[span - 1];
                let mut history: Vec<f64> = v.drain(..span - 1).collect();
                let excess = today - median(&mut history);
                let fleet_share = installed.filter(|&n| n > 0).and_then(|n| {
                    cohort_denoms[ci]
                        .installed(&k.denom_key(), c.day)
                        .map(|m| m as f64 / n as f64)
                });
                let label = dims
                    .iter()
                    .map(|&d| {
                        let v = key_value(d, &k, labels, inv);
                        if v.is_empty() { "(none)".into() } else { v }
                    })
                    .collect::<Vec<_>>()
                    .join(" fw ");
                CohortShare {
                    dimension: name,
                    name: label,
                    excess,
                    share: if c.excess() > 0.0 {
                        excess / c.excess()
                    } else {
                        0.0
                    },
                    fleet_share,
                }
            })
            .filter(|s| s.excess > 0.0)
            .collect();
        shares.sort_by(|a, b| b.excess.total_cmp(&a.excess).then(a.name.cmp(&b.name)));
        shares.truncate(5);
        out.extend(shares);
    }
    out
}

/// One line for the analyst: is the excess one model or firmware (or a few), one device
/// type, or the whole group? A cohort set is "concentrated" when at most three cohorts carry
/// 80% of the excess on at most half that share of the group's devices.
pub(crate) fn verdict(cohorts: &[CohortShare]) -> String {
    let of = |dim: &str| -> Vec<&CohortShare> {
        cohorts.iter().filter(|c| c.dimension == dim).collect()
    };
    for (dim, what) in [
        ("model+firmware", "model and firmware"),
        ("model", "model"),
        ("device type", "device type"),
        ("comms hub model", "comms hub model"),
    ] {
        let list = of(dim);
        let mut share = 0.0;
        let mut fleet = Some(0.0);
        for (k, c) in list.iter().take(3).enumerate() {
            share += c.share;
            fleet = fleet.zip(c.fleet_share).map(|(a, b)| a + b);
            if share >= 0.8 {
                if fleet.is_some_and(|f| f > share / 2.0) {
                    break;
                }
                let names: Vec<&str> = list[..=k].iter().map(|c| c.name.as_str()).collect();
                let on = fleet
                    .map(|f| format!(" on {:.0}% of the devices", f * 100.0))
                    .unwrap_or_default();
                let what = if k == 0 {
                    what.to_string()
                } else {
                    format!("{} {what}s", k + 1)
                };
                return format!(
                    "{what}: {} carry {:.0}% of the excess{on}",
                    names.join(", "),
                    share * 100.0
                );
            }
        }
    }
    match of("model").first() {
        Some(c) => format!(
            "spread across models (largest {}: {:.0}% of the excess{})",
            c.name,
            c.share * 100.0,
            c.fleet_share
                .map(|f| format!(" on {:.0}% of the devices", f * 100.0))
                .unwrap_or_default()
        ),
        None => "spread: no cohort rose on its own".into(),
    }
}

fn records(spikes: &[Spike], by: &[Dim], report: &AlertReport, inv: &Inventory) -> Records {
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
    for (i, s) in spikes.iter().enumerate() {
        let c = &s.check;
        let mut row = vec![(i + 1).to_string(), format_day(c.day)];
        row.extend(
            by.iter()
                .map(|&d| key_value(d, &s.group, &report.labels, inv)),
        );
        let rate_known = s.installed.is_some_and(|n| n > 0);
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
            s.installed.map(|n| n.to_string()).unwrap_or_default(),
            s.verdict.clone(),
        ]);
        r.push(row);
    }
    r
}

/// A chart per flagged group among the shown spikes: its daily rate, its baseline, and the
/// flagged days marked.
fn draw_charts(
    found: &Found,
    shown: usize,
    cfg: &SpikesConfig,
    report: &AlertReport,
    inv: &Inventory,
    dir: &std::path::Path,
) -> Result<usize> {
    std::fs::create_dir_all(dir)?;
    let (by, p) = (&cfg.by, &cfg.params);
    let mut done: Vec<GroupKey> = Vec::new();
    for s in &found.spikes[..shown] {
        if done.contains(&s.group) {
            continue;
        }
        done.push(s.group);
        let Some((_, series)) = found.series.iter().find(|(g, _)| *g == s.group) else {
            continue;
        };
        let name: Vec<String> = by
            .iter()
            .map(|&d| key_value(d, &s.group, &report.labels, inv))
            .collect();
        let checks = check(series, p);
        let color = s
            .group
            .region
            .map(region_color)
            .unwrap_or(RGBColor(60, 60, 60));
        let rate: Vec<(Day, f64)> = (0..series.counts.len())
            .map(|i| (series.first_day + i as Day, series.rate(i)))
            .collect();
        let baseline: Vec<(Day, f64)> = checks.iter().map(|c| (c.day, c.baseline_rate)).collect();
        let markers: Vec<(Day, f64)> = found
            .spikes
            .iter()
            .filter(|x| x.group == s.group)
            .map(|x| (x.check.day, x.check.rate))
            .collect();
        let unit = if s.installed.is_some() {
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
        });
        let slug: String = name
            .join("-")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = dir.join(format!(
            "spike-{:02}-{}.png",
            done.len(),
            slug.trim_matches('-')
        ));
        chart::save(&data, &path)?;
    }
    Ok(done.len())
}
