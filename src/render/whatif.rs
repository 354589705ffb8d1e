//! Rendering what-if: the before/after table of a remediation with its one-line summary, the
//! label replay table, and the before/after bars.
//!
//! CSV is one plain table, so it holds the remediation when there is one and the labels
//! otherwise; the JSON document and the table form hold both.

use super::alerts::key_value;
use super::chart::{ChartData, StackedBars};
use super::records::Records;
use super::{OutputFormat, thousands};
use crate::analyze::alerts::{AlertReport, Dim};
use crate::analyze::labels::Labels;
use crate::analyze::whatif::Remediation;
use crate::analyze::whatif::before_after::{BeforeAfter, LabelChange, RemediationEffect};
use crate::engine::Filters;
use crate::inventory::Inventory;
use crate::model::time::format_day;
use plotters::style::RGBColor;
use serde_json::{Value, json};
use std::io::{self, Write};

/// The what-if output, built up from the parts the run computed.
pub struct Whatif {
    /// The codes and filters in words ("all codes" when none).
    what: String,
    /// The JSON document.
    meta: Value,
    remediation: Option<Remediated>,
    relabel: Option<Records>,
}

struct Remediated {
    rule: String,
    records: Records,
    summary: String,
}

impl Whatif {
    /// The output of a run over `report`'s period and totals, with nothing in it yet.
    pub fn new(report: &AlertReport, filters: &Filters, what: String) -> Whatif {
        let meta = json!({
            "codes": what,
            "filters": filters.to_json(),
            "period": report.period.map(|(a, b)| json!({"from": format_day(a), "to": format_day(b)})),
            "totals": report.totals,
        });
        Whatif {
            what,
            meta,
            remediation: None,
            relabel: None,
        }
    }

    /// Adds the before/after table of `rem` per group of `by`.
    pub fn remediation(
        &mut self,
        e: &RemediationEffect,
        by: &[Dim],
        rem: &Remediation,
        labels: &Labels,
        inv: &Inventory,
    ) {
        let records = remediation_records(e, by, labels, inv);
        let summary = summary(&e.all);
        let rule = rem.describe();
        self.meta["remediation"] =
            json!({"rule": rule, "summary": summary, "rows": records.json_rows()});
        self.remediation = Some(Remediated {
            rule,
            records,
            summary,
        });
    }

    /// Adds the label replay table.
    pub fn relabel(&mut self, changes: &[LabelChange]) {
        let records = label_records(changes);
        self.meta["relabel"] = json!({"rows": records.json_rows()});
        self.relabel = Some(records);
    }

    pub fn write(&self, w: &mut impl Write, fmt: OutputFormat) -> io::Result<()> {
        match fmt {
            OutputFormat::Json => {
                serde_json::to_writer_pretty(&mut *w, &self.meta)?;
                writeln!(w)?;
            }
            OutputFormat::Csv => match (&self.remediation, &self.relabel) {
                (Some(r), _) => r.records.write(w, fmt, json!(null))?,
                (None, Some(r)) => r.write(w, fmt, json!(null))?,
                _ => {}
            },
            OutputFormat::Table => {
                if let Some(r) = &self.remediation {
                    writeln!(
                        w,
                        "What if the alerts matching {} stopped (of {}):",
                        r.rule, self.what
                    )?;
                    writeln!(w, "  {}\n", r.summary)?;
                    r.records.write(w, fmt, json!(null))?;
                }
                if let Some(r) = &self.relabel {
                    if self.remediation.is_some() {
                        writeln!(w)?;
                    }
                    writeln!(
                        w,
                        "Reclassification replayed over {}: alerts per label and category, before and after the rules",
                        self.what
                    )?;
                    r.write(w, fmt, json!(null))?;
                }
            }
        }
        Ok(())
    }

    /// The remediation's table for a report: a key (its CSV file's stem), a title with the
    /// summary, and the records. (The report replays no reclassification rules.)
    pub fn sections(&self) -> Vec<(&'static str, String, &Records)> {
        let mut out = Vec::new();
        if let Some(r) = &self.remediation {
            out.push((
                "whatif",
                format!(
                    "What if the alerts matching {} stopped: {}",
                    r.rule, r.summary
                ),
                &r.records,
            ));
        }
        out
    }

    /// Bars per group of `by`: the alerts that stay, with the removed part stacked on top
    /// (`None` without a remediation).
    pub fn chart(&self, by: &[Dim]) -> Option<ChartData> {
        let r = self.remediation.as_ref()?;
        Some(before_after_chart(&r.records, by, &r.rule, &self.what))
    }
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

/// Alerts per 1,000 device-days, or `n/a`.
fn rate(alerts: u64, device_days: Option<u64>) -> String {
    device_days
        .filter(|&d| d > 0)
        .map(|d| format!("{:.4}", alerts as f64 * 1000.0 / d as f64))
        .unwrap_or_else(|| "n/a".into())
}

/// The measures of a row, after the group's names.
fn cells(g: &BeforeAfter) -> [String; 8] {
    [
        g.before.to_string(),
        g.after().to_string(),
        g.removed.to_string(),
        change(g.removed, g.before),
        rate(g.before, g.device_days),
        rate(g.after(), g.device_days),
        g.devices.map(|d| d.devices.to_string()).unwrap_or_default(),
        g.devices.map(|d| d.touched.to_string()).unwrap_or_default(),
    ]
}

fn remediation_records(
    e: &RemediationEffect,
    by: &[Dim],
    labels: &Labels,
    inv: &Inventory,
) -> Records {
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
    for (k, g) in &e.groups {
        let mut row: Vec<String> = by
            .iter()
            .map(|&d| key_value(d, k, labels, inv, &Default::default()))
            .collect();
        row.extend(cells(g));
        out.push(row);
    }
    let mut total: Vec<String> = by.iter().map(|_| String::new()).collect();
    if let Some(first) = total.first_mut() {
        *first = "all".into();
    }
    total.extend(cells(&e.all));
    out.push(total);
    out
}

fn summary(all: &BeforeAfter) -> String {
    let d = all.devices.unwrap_or_default();
    format!(
        "the rule touches {} of {} devices ({}% of the fleet) and {} of {} alerts ({}% of the volume)",
        thousands(d.touched),
        thousands(d.devices),
        pct(d.touched as f64, d.devices as f64),
        thousands(all.removed),
        thousands(all.before),
        pct(all.removed as f64, all.before as f64)
    )
}

fn label_records(changes: &[LabelChange]) -> Records {
    let mut out = Records::new(&[
        ("label", false),
        ("category", false),
        ("alerts_before", true),
        ("alerts_after", true),
        ("change", true),
    ]);
    for c in changes {
        out.push(vec![
            c.label.clone(),
            c.category.clone(),
            c.before.to_string(),
            c.after.to_string(),
            (c.after as i64 - c.before as i64).to_string(),
        ]);
    }
    out
}

/// Bars per group: the rate per 1,000 devices per day that stays, with the part the
/// remediation removes stacked on top (groups of different sizes compare on rates).
fn before_after_chart(r: &Records, by: &[Dim], rule: &str, what: &str) -> ChartData {
    let n = by.len();
    let col = |name: &str| r.header.iter().position(|h| h == name).unwrap_or(0);
    let (before, after) = (col("per_1000_before"), col("per_1000_after"));
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
        y_label: "alerts per 1,000 devices per day".into(),
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
                rows.iter()
                    .map(|row| (num(row, before) - num(row, after)).max(0.0))
                    .collect(),
            ),
        ],
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_and_shares_in_percent() {
        assert_eq!(change(0, 100), "0.00");
        assert_eq!(change(25, 100), "-25.00");
        assert_eq!(pct(1.0, 3.0), "33.33");
        assert_eq!(pct(0.0, 0.0), "0.00");
        assert_eq!(pct(1.0, 0.0), "n/a");
        assert_eq!(rate(5, Some(2000)), "2.5000");
        assert_eq!(rate(5, Some(0)), "n/a");
    }
}
