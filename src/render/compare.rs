//! Rendering a period comparison (`alerts --compare`): one row per group with both periods'
//! alerts, device-days and rates, the change with its 95% interval, the p- and q-values and
//! whether the change is beyond Poisson noise.

use super::OutputFormat;
use super::alerts::key_value;
use super::records::Records;
use crate::analyze::alerts::{AlertReport, Dim};
use crate::analyze::compare::{Comparison, FDR};
use crate::engine::Filters;
use crate::inventory::Inventory;
use crate::model::time::format_day;
use serde_json::json;
use std::io::{self, Write};

fn num(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| format!("{x:.digits$}"))
        .unwrap_or_default()
}

fn span(p: Option<(crate::model::Day, crate::model::Day)>) -> String {
    p.map(|(a, b)| format!("{}..{}", format_day(a), format_day(b)))
        .unwrap_or_else(|| "no alerts".into())
}

/// The comparison as records (full precision: the CSV and JSON forms).
pub fn records(c: &Comparison, by: &[Dim], report: &AlertReport, inv: &Inventory) -> Records {
    let mut cols: Vec<(&str, bool)> = by.iter().map(|d| (d.column(), false)).collect();
    cols.extend([
        ("alerts", true),
        ("device_days", true),
        ("per_1000_per_day", true),
        ("compare_alerts", true),
        ("compare_device_days", true),
        ("compare_per_1000_per_day", true),
        ("change", true),
        ("change_ci_low", true),
        ("change_ci_high", true),
        ("p_value", true),
        ("q_value", true),
        ("beyond_noise", false),
    ]);
    let mut r = Records::new(&cols);
    for g in &c.groups {
        let mut row: Vec<String> = by
            .iter()
            .map(|&d| key_value(d, &g.key, &report.labels, inv, &report.scope.clock))
            .collect();
        row.extend([
            g.alerts.to_string(),
            g.exposure.map(|e| e.to_string()).unwrap_or_default(),
            num(g.per_1000, 6),
            g.base_alerts.to_string(),
            g.base_exposure.map(|e| e.to_string()).unwrap_or_default(),
            num(g.base_per_1000, 6),
            num(g.change, 6),
            num(g.ci_low, 6),
            num(g.ci_high, 6),
            num(g.p, 6),
            num(g.q, 6),
            if g.beyond_noise { "yes" } else { "no" }.into(),
        ]);
        r.push(row);
    }
    r
}

/// Writes the comparison; the table rounds for reading (rates to 2 places, changes in %).
pub fn write(
    w: &mut impl Write,
    c: &Comparison,
    report: &AlertReport,
    inv: &Inventory,
    filters: &Filters,
    fmt: OutputFormat,
) -> io::Result<()> {
    let by = &report.by;
    let full = records(c, by, report, inv);
    match fmt {
        OutputFormat::Table => {
            writeln!(
                w,
                "{} against {}{}: alerts per 1,000 devices per day; \"beyond noise\" at a {:.0}% false discovery rate",
                span(c.period),
                span(c.base_period),
                if filters.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", filters.describe())
                },
                FDR * 100.0
            )?;
            let mut cols: Vec<(&str, bool)> = by.iter().map(|d| (d.column(), false)).collect();
            cols.extend([
                ("alerts", true),
                ("per_1000", true),
                ("compare_alerts", true),
                ("compare_per_1000", true),
                ("change", true),
                ("95% interval", false),
                ("beyond noise", false),
            ]);
            let mut t = Records::new(&cols);
            let pct = |v: Option<f64>| {
                v.filter(|x| x.is_finite())
                    .map(|x| format!("{:+.1}%", x * 100.0))
                    .unwrap_or_else(|| "n/a".into())
            };
            for (g, row) in c.groups.iter().zip(&full.rows) {
                let mut cells: Vec<String> = row[..by.len()].to_vec();
                cells.extend([
                    g.alerts.to_string(),
                    num(g.per_1000, 2),
                    g.base_alerts.to_string(),
                    num(g.base_per_1000, 2),
                    pct(g.change),
                    match (g.ci_low, g.ci_high) {
                        (Some(lo), Some(hi)) => format!("{} to {}", pct(Some(lo)), pct(Some(hi))),
                        (Some(lo), None) => format!("{} or more", pct(Some(lo))),
                        _ => "n/a".into(),
                    },
                    if g.beyond_noise { "yes" } else { "no" }.into(),
                ]);
                t.push(cells);
            }
            t.write(w, fmt, serde_json::Value::Null)
        }
        OutputFormat::Csv => full.write(w, fmt, serde_json::Value::Null),
        OutputFormat::Json => full.write(
            w,
            fmt,
            json!({
                "period": span(c.period),
                "compare_period": span(c.base_period),
                "false_discovery_rate": FDR,
                "filters": filters.to_json(),
                "totals": report.totals,
            }),
        ),
    }
}
