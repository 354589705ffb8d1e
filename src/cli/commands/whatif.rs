//! `fleetwatch whatif`: the alert volume and rate before and after a remediation, per group
//! (CSP region by default) and overall; and reclassification rules replayed over history,
//! before and after per label and category.
//!
//! One read of the inputs: the remediation fold splits each group by whether the rule matches
//! the alert (`GroupKey::class` 1), so "after" is "before" minus the matched part; the label
//! folds group by label and category without rules and with them.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::{Result, bail};
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport, Dim, GroupKey, denom_dims};
use fleetwatch::analyze::labels::Labels;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::whatif::{DeviceRule, Remediation};
use fleetwatch::inventory::{DenomDims, DeviceInfo, Inventory};
use fleetwatch::model::time::format_day;
use fleetwatch::render::alerts::key_value;
use fleetwatch::render::chart::{self, ChartData, StackedBars};
use fleetwatch::render::records::Records;
use fleetwatch::render::{OutputFormat, thousands};
use plotters::style::RGBColor;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub struct WhatifConfig {
    pub selection: Selection,
    /// Remediation rules as written (`model=EDMI-ES2,code=81B8`); any may match.
    pub remediate: Vec<String>,
    /// The groups of the before/after table (CSP region by default).
    pub by: Vec<Dim>,
    pub chart: Option<PathBuf>,
    pub format: OutputFormat,
}

pub fn run(cfg: WhatifConfig) -> Result<Status> {
    let t0 = Instant::now();
    let relabel = !cfg.selection.labels.is_empty();
    let engine = cfg.selection.engine()?;
    let inv = engine.inventory();
    let what = cfg.selection.what();
    let mut rules = Vec::new();
    for text in &cfg.remediate {
        let (rule, unknown) =
            DeviceRule::parse(text, inv).map_err(|e| anyhow::anyhow!("--remediate {text}: {e}"))?;
        if !unknown.is_empty() {
            eprintln!(
                "warning: --remediate {text}: no device in the inventory has {}: that part matches nothing",
                unknown.join(", ")
            );
        }
        if rule.needs_devices() && inv.devices.is_empty() {
            bail!(
                "--remediate {text} names devices by their attributes: give the per-device --inventory"
            );
        }
        rules.push(rule);
    }
    let remediation = Arc::new(Remediation { rules });
    let base = AlertQuery {
        distinct: false,
        ..Default::default()
    };
    let mut queries = vec![AlertQuery {
        by: cfg.by.clone(),
        split: (!cfg.remediate.is_empty())
            .then(|| remediation.clone() as Arc<dyn fleetwatch::analyze::alerts::Split>),
        ..base.clone()
    }];
    if relabel {
        for labels in [Arc::new(Labels::none()), cfg.selection.labels.clone()] {
            queries.push(AlertQuery {
                by: vec![Dim::Label, Dim::Category],
                labels,
                ..base.clone()
            });
        }
    }
    let reports: Vec<AlertReport> = engine
        .answer(&queries)
        .into_iter()
        .map(|a| a.report)
        .collect();
    let mut meta = json!({
        "codes": what,
        "filters": engine.filters().to_json(),
        "period": reports[0].period.map(|(a, b)| json!({"from": format_day(a), "to": format_day(b)})),
        "totals": reports[0].totals,
    });
    let remediation_records = (!cfg.remediate.is_empty()).then(|| {
        let (records, summary) = remediation_table(&reports[0], &cfg.by, &remediation, inv);
        meta["remediation"] = json!({"rule": remediation.describe(), "summary": summary, "rows": records.json_rows()});
        (records, summary)
    });
    let label_records = relabel.then(|| {
        let r = label_table(&reports[1], &reports[2]);
        meta["relabel"] = json!({"rows": r.json_rows()});
        r
    });
    stdout_write(|w| {
        match cfg.format {
            OutputFormat::Json => {
                serde_json::to_writer_pretty(&mut *w, &meta)?;
                writeln!(w)?;
            }
            OutputFormat::Csv => {
                // One table per run in CSV: the remediation when given, else the labels.
                match (&remediation_records, &label_records) {
                    (Some((r, _)), _) => r.write(w, cfg.format, json!(null))?,
                    (None, Some(r)) => r.write(w, cfg.format, json!(null))?,
                    _ => {}
                }
            }
            OutputFormat::Table => {
                if let Some((r, summary)) = &remediation_records {
                    writeln!(
                        w,
                        "What if the alerts matching {} stopped (of {}):",
                        remediation.describe(),
                        what
                    )?;
                    writeln!(w, "  {summary}\n")?;
                    r.write(w, cfg.format, json!(null))?;
                }
                if let Some(r) = &label_records {
                    if remediation_records.is_some() {
                        writeln!(w)?;
                    }
                    writeln!(
                        w,
                        "Reclassification replayed over {}: alerts per label and category, before and after the rules",
                        what
                    )?;
                    r.write(w, cfg.format, json!(null))?;
                }
            }
        }
        Ok(())
    })?;
    if let (Some(path), Some((records, _))) = (&cfg.chart, &remediation_records) {
        let data = before_after_chart(records, &cfg.by, &remediation.describe(), &what);
        chart::save(&data, path)?;
        eprintln!("chart written to {}", path.display());
    }
    conclude_run(&reports[0], &engine, &cfg.selection.rejects, t0)
}

/// Installed devices per group, and how many of them the remediation touches.
fn matched_devices(
    inv: &Inventory,
    dims: DenomDims,
    rem: &Remediation,
) -> BTreeMap<fleetwatch::inventory::DenomKey, (u64, u64)> {
    let mut out: BTreeMap<_, (u64, u64)> = BTreeMap::new();
    for (id, packed) in inv.devices.iter() {
        let info = DeviceInfo::unpack(packed);
        let e = out.entry(dims.key(&info)).or_default();
        e.0 += 1;
        e.1 += u64::from(rem.matches_device(Some(id), &info));
    }
    out
}

fn pct(part: f64, whole: f64) -> String {
    if part == 0.0 {
        "0.00".into()
    } else if whole > 0.0 {
        format!("{:.2}", part * 100.0 / whole)
    } else {
        "n/a".into()
    }
}

/// The change in percent: `-38.63`, or `0.00` when nothing is removed.
fn change(removed: u64, before: u64) -> String {
    if removed == 0 {
        "0.00".into()
    } else {
        format!("-{}", pct(removed as f64, before as f64))
    }
}

/// Per group and overall: alerts and rate before and after, and the devices the rule touches.
fn remediation_table(
    r: &AlertReport,
    by: &[Dim],
    rem: &Remediation,
    inv: &Inventory,
) -> (Records, String) {
    // Group rows by their key without the split flag: (before, removed, device-days).
    let mut groups: BTreeMap<GroupKey, (u64, u64, Option<u64>)> = BTreeMap::new();
    for row in &r.rows {
        let k = GroupKey {
            class: None,
            ..row.key
        };
        let e = groups.entry(k).or_insert((0, 0, row.denominator));
        e.0 += row.alerts;
        if row.key.class == Some(1) {
            e.1 += row.alerts;
        }
    }
    let devices = matched_devices(inv, denom_dims(by), rem);
    let mut cols: Vec<(&str, bool)> = by.iter().map(|d| (d.column(), false)).collect();
    cols.extend([
        ("alerts_before", true),
        ("alerts_after", true),
        ("removed", true),
        ("change_pct", true),
        ("per_1000_before", true),
        ("per_1000_after", true),
        ("devices", true),
        ("devices_touched", true),
    ]);
    let mut out = Records::new(&cols);
    let rate = |a: u64, dd: Option<u64>| {
        dd.filter(|&d| d > 0)
            .map(|d| format!("{:.4}", a as f64 * 1000.0 / d as f64))
            .unwrap_or_else(|| "n/a".into())
    };
    let (mut before, mut removed) = (0u64, 0u64);
    for (k, (b, rm, dd)) in &groups {
        before += b;
        removed += rm;
        let mut row: Vec<String> = by
            .iter()
            .map(|&d| key_value(d, k, &r.labels, inv))
            .collect();
        let dev = devices.get(&k.denom_key()).copied();
        row.extend([
            b.to_string(),
            (b - rm).to_string(),
            rm.to_string(),
            change(*rm, *b),
            rate(*b, *dd),
            rate(b - rm, *dd),
            dev.map(|d| d.0.to_string()).unwrap_or_default(),
            dev.map(|d| d.1.to_string()).unwrap_or_default(),
        ]);
        out.push(row);
    }
    let all = matched_devices(inv, DenomDims::default(), rem);
    let (fleet, touched) = all.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    let period_dd = r.period.and_then(|(a, b)| {
        fleetwatch::inventory::Denominators::build(inv, DenomDims::default()).device_days(
            &Default::default(),
            a,
            b,
        )
    });
    let mut total: Vec<String> = by.iter().map(|_| String::new()).collect();
    if let Some(first) = total.first_mut() {
        *first = "all".into();
    }
    total.extend([
        before.to_string(),
        (before - removed).to_string(),
        removed.to_string(),
        change(removed, before),
        rate(before, period_dd),
        rate(before - removed, period_dd),
        fleet.to_string(),
        touched.to_string(),
    ]);
    out.push(total);
    let summary = format!(
        "the rule touches {} of {} devices ({}% of the fleet) and {} of {} alerts ({}% of the volume)",
        thousands(touched),
        thousands(fleet),
        pct(touched as f64, fleet as f64),
        thousands(removed),
        thousands(before),
        pct(removed as f64, before as f64)
    );
    (out, summary)
}

/// Alerts per label and category without the rules and with them.
fn label_table(before: &AlertReport, after: &AlertReport) -> Records {
    let mut rows: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for (report, after_side) in [(before, false), (after, true)] {
        for row in &report.rows {
            let label = row
                .key
                .label
                .map(|l| report.labels.label_name(l))
                .unwrap_or_default();
            let cat = row
                .key
                .category
                .map(|c| report.labels.category_name(c).to_string())
                .unwrap_or_default();
            let e = rows.entry((label, cat)).or_default();
            if after_side {
                e.1 += row.alerts;
            } else {
                e.0 += row.alerts;
            }
        }
    }
    let mut out = Records::new(&[
        ("label", false),
        ("category", false),
        ("alerts_before", true),
        ("alerts_after", true),
        ("change", true),
    ]);
    let mut sorted: Vec<_> = rows.into_iter().filter(|(_, (b, a))| b != a).collect();
    sorted.sort_by(|x, y| {
        (y.1.0.max(y.1.1))
            .cmp(&x.1.0.max(x.1.1))
            .then(x.0.cmp(&y.0))
    });
    for ((label, cat), (b, a)) in sorted {
        out.push(vec![
            label,
            cat,
            b.to_string(),
            a.to_string(),
            (a as i64 - b as i64).to_string(),
        ]);
    }
    out
}

/// Bars per group: the alerts that stay, with the removed part stacked on top.
fn before_after_chart(r: &Records, by: &[Dim], rule: &str, what: &str) -> ChartData {
    let n = by.len();
    let col = |name: &str| r.header.iter().position(|h| h == name).unwrap_or(0);
    let (after, removed) = (col("alerts_after"), col("removed"));
    let rows: Vec<&Vec<String>> = r
        .rows
        .iter()
        .filter(|row| n == 0 || row[0] != "all")
        .collect();
    let num = |row: &Vec<String>, i: usize| row[i].parse::<f64>().unwrap_or(0.0);
    ChartData::Bars(StackedBars {
        x_label: by
            .iter()
            .map(|d| d.column())
            .collect::<Vec<_>>()
            .join(" / "),
        title: format!("What if the alerts matching {rule} stopped ({what})"),
        y_label: "alerts over the period".into(),
        bars: rows
            .iter()
            .map(|row| {
                if n == 0 {
                    "all".to_string()
                } else {
                    row[..n].join(" / ")
                }
            })
            .collect(),
        stacks: vec![
            (
                "after".into(),
                RGBColor(70, 110, 170),
                rows.iter().map(|row| num(row, after)).collect(),
            ),
            (
                "removed".into(),
                RGBColor(230, 150, 60),
                rows.iter().map(|row| num(row, removed)).collect(),
            ),
        ],
    })
}
