//! Rendering the `alerts` report as a table, CSV or JSON.

use super::table::Table;
use super::{OutputFormat, rate, thousands};
use crate::analyze::alerts::{AlertReport, AlertRow, Dim, GroupKey};
use crate::analyze::labels::Labels;
use crate::catalogue;
use crate::engine::Filters;
use crate::inventory::Inventory;
use crate::model::Clock;
use crate::model::time::format_day;
use serde_json::{Map, Value, json};
use std::io::{self, Write};

fn dim_value(d: Dim, row: &AlertRow, r: &AlertReport, inv: &Inventory) -> String {
    key_value(d, &row.key, &r.labels, inv, &r.scope.clock)
}

/// The text of one dimension of a group key, as every output shows it.
pub fn key_value(d: Dim, k: &GroupKey, labels: &Labels, inv: &Inventory, clock: &Clock) -> String {
    match d {
        Dim::Day => k.day.map(format_day).unwrap_or_default(),
        Dim::Hour => k.hour.map(|h| clock.format_hour(h)).unwrap_or_default(),
        Dim::Region => k.region.map(|r| r.name().to_string()).unwrap_or_default(),
        Dim::DeviceType => k
            .device_type
            .map(|r| r.name().to_string())
            .unwrap_or_default(),
        Dim::Generation => k
            .generation
            .map(|r| r.name().to_string())
            .unwrap_or_default(),
        Dim::Code => k.code.map(|c| c.to_string()).unwrap_or_default(),
        Dim::Category => k
            .category
            .map(|c| labels.category_name(c).to_string())
            .unwrap_or_default(),
        Dim::Model => k
            .model
            .map(|m| inv.model_name(m).to_string())
            .unwrap_or_default(),
        Dim::Firmware => k
            .firmware
            .map(|m| inv.firmware_name(m).to_string())
            .unwrap_or_default(),
        Dim::Label => k.label.map(|l| labels.label_name(l)).unwrap_or_default(),
        Dim::Device => k
            .device
            .map(|d| crate::model::DeviceId(d).to_string())
            .unwrap_or_default(),
    }
}

/// The rate's column: per 1,000 devices per day, or per hour when grouped by hour.
fn rate_column(r: &AlertReport) -> &'static str {
    if r.by.contains(&Dim::Hour) {
        "per_1000_per_hour"
    } else {
        "per_1000_per_day"
    }
}

fn denominator_column(r: &AlertReport) -> &'static str {
    if r.by_day() {
        "installed_devices"
    } else {
        "device_days"
    }
}

/// Writes the report; the filters it was computed under head the table and sit in the JSON
/// (CSV stays one plain table for other tools).
pub fn write(
    w: &mut impl Write,
    r: &AlertReport,
    inv: &Inventory,
    filters: &Filters,
    fmt: OutputFormat,
) -> io::Result<()> {
    match fmt {
        OutputFormat::Table => {
            if !filters.is_empty() {
                writeln!(w, "selection: {}", filters.describe())?;
            }
            write_table(w, r, inv)
        }
        OutputFormat::Csv => write_csv(w, r, inv),
        OutputFormat::Json => write_json(w, r, inv, filters),
    }
}

fn write_table(w: &mut impl Write, r: &AlertReport, inv: &Inventory) -> io::Result<()> {
    let mut header: Vec<String> = r.by.iter().map(|d| d.column().to_string()).collect();
    let mut numeric = vec![false; header.len()];
    if r.by.contains(&Dim::Code) {
        header.push("name".into());
        numeric.push(false);
    }
    let devices = r.distinct.then_some("devices");
    for h in ["alerts"]
        .into_iter()
        .chain(devices)
        .chain([denominator_column(r), rate_column(r)])
    {
        header.push(h.into());
        numeric.push(true);
    }
    let mut t = Table::new(header, numeric);
    for row in &r.rows {
        let mut cells: Vec<String> = r.by.iter().map(|d| dim_value(*d, row, r, inv)).collect();
        if let Some(code) = row.key.code {
            let name = catalogue::describe(code);
            let mut short: String = name.chars().take(40).collect();
            if name.chars().count() > 40 {
                short.push('…');
            }
            cells.push(short);
        }
        cells.push(thousands(row.alerts));
        if r.distinct {
            cells.push(format!(
                "{}{}",
                if row.devices_exact { "" } else { "~" },
                thousands(row.devices)
            ));
        }
        cells.push(
            row.denominator
                .map(thousands)
                .unwrap_or_else(|| "n/a".into()),
        );
        cells.push(rate(row.per_1000));
        t.rows.push(cells);
    }
    t.write(w)?;
    if r.distinct && r.rows.iter().any(|x| !x.devices_exact) {
        writeln!(
            w,
            "~ estimated distinct devices (HyperLogLog, about ±2.3%) for groups above {} devices",
            crate::analyze::distinct::EXACT_LIMIT
        )?;
    }
    if r.rows.iter().any(|x| x.per_1000.is_none()) {
        writeln!(
            w,
            "n/a: no installed base for the group (devices not in the inventory, or no count for that date)"
        )?;
    }
    Ok(())
}

/// CSV header: the dimensions, then the measures (without the distinct devices when they
/// were not counted).
pub fn csv_header(r: &AlertReport) -> Vec<String> {
    let mut h: Vec<String> = r.by.iter().map(|d| d.column().to_string()).collect();
    h.extend(["alerts", "records"].map(String::from));
    if r.distinct {
        h.extend(["alerting_devices", "alerting_devices_exact"].map(String::from));
    }
    h.extend([denominator_column(r), rate_column(r)].map(String::from));
    h
}

pub fn write_csv(w: &mut impl Write, r: &AlertReport, inv: &Inventory) -> io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(csv_header(r))?;
    for row in &r.rows {
        let mut rec: Vec<String> = r.by.iter().map(|d| dim_value(*d, row, r, inv)).collect();
        rec.push(row.alerts.to_string());
        rec.push(row.records.to_string());
        if r.distinct {
            rec.push(row.devices.to_string());
            rec.push(row.devices_exact.to_string());
        }
        rec.push(row.denominator.map(|d| d.to_string()).unwrap_or_default());
        rec.push(row.per_1000.map(|v| format!("{v}")).unwrap_or_default());
        out.write_record(&rec)?;
    }
    out.flush()?;
    Ok(())
}

fn write_json(
    w: &mut impl Write,
    r: &AlertReport,
    inv: &Inventory,
    filters: &Filters,
) -> io::Result<()> {
    let rows: Vec<Value> = r
        .rows
        .iter()
        .map(|row| {
            let mut m = Map::new();
            for d in &r.by {
                m.insert(d.column().into(), Value::String(dim_value(*d, row, r, inv)));
            }
            m.insert("alerts".into(), json!(row.alerts));
            m.insert("records".into(), json!(row.records));
            if r.distinct {
                m.insert("alerting_devices".into(), json!(row.devices));
                m.insert("alerting_devices_exact".into(), json!(row.devices_exact));
            }
            m.insert(denominator_column(r).into(), json!(row.denominator));
            m.insert(rate_column(r).into(), json!(row.per_1000));
            Value::Object(m)
        })
        .collect();
    let mut doc = json!({
        "group_by": r.by.iter().map(|d| d.column()).collect::<Vec<_>>(),
        "filters": filters.to_json(),
        "period": r.period.map(|(a, b)| json!({"from": format_day(a), "to": format_day(b)})),
        "totals": r.totals,
        "rows": rows,
    });
    if let Some(warning) = super::empty_warning(&r.totals) {
        doc["warning"] = json!(warning);
    }
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}
