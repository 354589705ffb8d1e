//! Rendering offenders: a summary over two tables (the top devices, the rate per model and
//! firmware version), or one of them as CSV, or JSON.
//!
//! CSV is one plain table, so `--show` picks which; the JSON document carries the devices as
//! its rows and the models beside them, and the table form writes both.

use super::records::Records;
use super::{OutputFormat, thousands};
use crate::analyze::offenders::Offenders;
use crate::analyze::totals::Totals;
use crate::engine::Filters;
use crate::inventory::Inventory;
use crate::model::time::format_day;
use serde_json::{Value, json};
use std::io::{self, Write};

crate::keyword_enum!(
    /// Which table `--format csv` writes (the table and JSON forms hold all).
    pub enum Show {
        Devices = "devices": "the top devices",
        Models = "models": "the rate per model and firmware version",
    }
);

/// What the answer was computed over, for the heading and the JSON document.
pub struct Heading<'a> {
    /// The codes and filters in words ("all codes" when none).
    pub what: &'a str,
    pub filters: &'a Filters,
    pub totals: &'a Totals,
}

/// Writes the answer in `fmt`; `show` picks the CSV table.
pub fn write(
    w: &mut impl Write,
    o: &Offenders,
    inv: &Inventory,
    heading: &Heading,
    fmt: OutputFormat,
    show: Show,
) -> io::Result<()> {
    let (devices, models) = (devices(o, inv), models(o, inv));
    match fmt {
        OutputFormat::Table => write_table(w, o, &devices, &models, heading.what),
        OutputFormat::Csv => match show {
            Show::Devices => devices.write(w, fmt, Value::Null),
            Show::Models => models.write(w, fmt, Value::Null),
        },
        OutputFormat::Json => devices.write(w, fmt, meta(o, &models, heading)),
    }
}

fn meta(o: &Offenders, models: &Records, heading: &Heading) -> Value {
    json!({
        "codes": heading.what,
        "filters": heading.filters.to_json(),
        "period": o.period.map(|(a, b)| json!({"from": format_day(a), "to": format_day(b)})),
        "alerts": o.alerts,
        "alerting_devices": o.alerting_devices,
        "installed_devices": o.installed,
        "top_1pct_share": o.top1_share,
        "top_10pct_share": o.top10_share,
        "trend": {
            "verdict": o.trend.verdict(), "mann_kendall_s": o.trend.s, "z": o.trend.z,
            "p": o.trend.p, "sen_slope_per_1000_per_day": o.trend.slope_per_day,
            "weekly_change": o.trend.weekly_change(),
        },
        "models": models.json_rows(),
        "totals": heading.totals,
    })
}

pub fn devices(o: &Offenders, inv: &Inventory) -> Records {
    let mut out = Records::new(&[
        ("rank", true),
        ("device_id", false),
        ("region", false),
        ("device_type", false),
        ("generation", false),
        ("model", false),
        ("firmware_version", false),
        ("alerts", true),
        ("records", true),
        ("share", true),
    ]);
    for (i, d) in o.devices.iter().enumerate() {
        let (region, ty, generation, model, fw) = match d.info {
            Some(i) => (
                i.region.name().to_string(),
                i.device_type.name().to_string(),
                i.generation.name().to_string(),
                inv.model_name(i.model).to_string(),
                inv.firmware_name(i.firmware).to_string(),
            ),
            None => (
                "(not in inventory)".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        out.push(vec![
            (i + 1).to_string(),
            d.device
                .map(|d| d.to_string())
                .unwrap_or_else(|| "(no device)".into()),
            region,
            ty,
            generation,
            model,
            fw,
            d.alerts.to_string(),
            d.records.to_string(),
            format!("{:.4}", d.share),
        ]);
    }
    out
}

pub fn models(o: &Offenders, inv: &Inventory) -> Records {
    let mut out = Records::new(&[
        ("model", false),
        ("firmware_version", false),
        ("installed_devices", true),
        ("alerting_devices", true),
        ("alerts", true),
        ("share", true),
        ("per_1000_per_day", true),
        ("trend", false),
    ]);
    let name = |s: &str| {
        if s.is_empty() {
            "(none)".to_string()
        } else {
            s.to_string()
        }
    };
    for m in &o.models {
        out.push(vec![
            name(inv.model_name(m.model)),
            name(inv.firmware_name(m.firmware)),
            m.installed.map(|n| n.to_string()).unwrap_or_default(),
            m.alerting_devices.to_string(),
            m.alerts.to_string(),
            format!("{:.4}", m.share),
            m.per_1000_per_day
                .map(|r| format!("{r:.4}"))
                .unwrap_or_else(|| "n/a".into()),
            m.trend.describe(),
        ]);
    }
    out
}

fn write_table(
    w: &mut impl Write,
    o: &Offenders,
    devices: &Records,
    models: &Records,
    what: &str,
) -> io::Result<()> {
    let period = o
        .period
        .map(|(a, b)| format!("{} to {}", format_day(a), format_day(b)))
        .unwrap_or_else(|| "no alerts".into());
    writeln!(w, "Offenders for {what}, {period}")?;
    writeln!(
        w,
        "  {} alerts from {} devices{}",
        thousands(o.alerts),
        thousands(o.alerting_devices as u64),
        o.installed
            .filter(|&n| n > 0)
            .map(|n| format!(
                " ({:.2}% of {} installed)",
                o.alerting_devices as f64 * 100.0 / n as f64,
                thousands(n)
            ))
            .unwrap_or_default()
    )?;
    writeln!(
        w,
        "  the top 1% of alerting devices raise {:.1}% of the alerts, the top 10% {:.1}%",
        o.top1_share * 100.0,
        o.top10_share * 100.0
    )?;
    writeln!(
        w,
        "  daily rate per 1,000 devices: {} (Mann-Kendall over {} days)",
        o.trend.describe(),
        o.trend.days
    )?;
    writeln!(w, "\nTop devices")?;
    devices.write(w, OutputFormat::Table, Value::Null)?;
    writeln!(w, "\nBy model and firmware version")?;
    models.write(w, OutputFormat::Table, Value::Null)
}
