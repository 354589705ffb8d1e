//! `fleetwatch offenders --codes CODE`: who is behind a code's volume.
//!
//! The devices that raise the most, how concentrated the volume is (the share from the top 1%
//! and 10% of alerting devices), the rate per model and firmware version per 1,000 devices,
//! and whether the volume is at a steady state (Mann-Kendall on the daily rate). One read of
//! the inputs answers two folds: by device, and by day x model x firmware.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::Result;
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport, Dim, GroupKey};
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::trend::{Trend, mann_kendall};
use fleetwatch::inventory::{DenomDims, DenomKey, Denominators, Inventory};
use fleetwatch::model::time::format_day;
use fleetwatch::model::{Day, DeviceId};
use fleetwatch::render::records::Records;
use fleetwatch::render::{OutputFormat, thousands};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;

use std::time::Instant;

fleetwatch::keyword_enum!(
    /// Which table `--format csv` writes (the table and JSON forms hold all).
    pub enum Show {
        Devices = "devices": "the top devices",
        Models = "models": "the rate per model and firmware version",
    }
);

pub struct OffendersConfig {
    pub selection: Selection,
    pub top: usize,
    pub show: Show,
    pub format: OutputFormat,
}

/// The answer, ready to render.
pub struct Offenders {
    pub alerts: u64,
    pub alerting_devices: usize,
    pub installed: Option<u64>,
    /// Share of the alerts from the top 1% and top 10% of alerting devices (at least one).
    pub top1_share: f64,
    pub top10_share: f64,
    pub trend: Trend,
    pub devices: Records,
    pub models: Records,
    pub period: Option<(Day, Day)>,
}

pub fn run(cfg: OffendersConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let queries = [
        AlertQuery {
            by: vec![Dim::Device],
            distinct: false,
            ..Default::default()
        },
        AlertQuery {
            by: vec![Dim::Day, Dim::Model, Dim::Firmware],
            distinct: false,
            ..Default::default()
        },
    ];
    let reports: Vec<AlertReport> = engine
        .answer(&queries)
        .into_iter()
        .map(|a| a.report)
        .collect();
    let o = analyse(&reports[0], &reports[1], engine.inventory(), cfg.top);
    let what = cfg.selection.what();
    let meta = json!({
        "codes": what,
        "filters": engine.filters().to_json(),
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
        "models": o.models.json_rows(),
        "totals": reports[0].totals,
    });
    stdout_write(|w| match cfg.format {
        OutputFormat::Table => write_table(w, &o, &what),
        OutputFormat::Csv => match cfg.show {
            Show::Devices => o.devices.write(w, cfg.format, meta.clone()),
            Show::Models => o.models.write(w, cfg.format, meta.clone()),
        },
        OutputFormat::Json => o.devices.write(w, cfg.format, meta.clone()),
    })?;
    conclude_run(&reports[0], &engine, &cfg.selection.rejects, t0)
}

/// Share of `total` from the largest `ceil(fraction * n)` of `sorted` (descending) values.
pub fn top_share(sorted: &[u64], fraction: f64, total: u64) -> f64 {
    if sorted.is_empty() || total == 0 {
        return 0.0;
    }
    let k = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[..k].iter().sum::<u64>() as f64 / total as f64
}

pub fn analyse(
    by_device: &AlertReport,
    by_day_model: &AlertReport,
    inv: &Inventory,
    top: usize,
) -> Offenders {
    let mut devices: Vec<(&GroupKey, u64, u64)> = by_device
        .rows
        .iter()
        .map(|r| (&r.key, r.alerts, r.records))
        .collect();
    devices.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.device.cmp(&b.0.device)));
    let counts: Vec<u64> = devices.iter().map(|d| d.1).collect();
    let total: u64 = counts.iter().sum();
    let period = by_day_model.period;

    let mut dev = Records::new(&[
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
    for (i, (k, alerts, records)) in devices
        .iter()
        .take(if top == 0 { usize::MAX } else { top })
        .enumerate()
    {
        let id = k.device.map(DeviceId);
        let info = id.and_then(|d| inv.lookup(d));
        let (region, ty, generation, model, fw) = match info {
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
        dev.push(vec![
            (i + 1).to_string(),
            id.map(|d| d.to_string())
                .unwrap_or_else(|| "(no device)".into()),
            region,
            ty,
            generation,
            model,
            fw,
            alerts.to_string(),
            records.to_string(),
            format!("{:.4}", *alerts as f64 / total.max(1) as f64),
        ]);
    }

    // Per model x firmware: alerting devices from the device fold, volume and daily series
    // from the day fold, device-days from the inventory.
    let mut alerting: BTreeMap<(u16, u16), usize> = BTreeMap::new();
    for (k, _, _) in &devices {
        if let Some(i) = k.device.and_then(|d| inv.lookup(DeviceId(d))) {
            *alerting.entry((i.model, i.firmware)).or_default() += 1;
        }
    }
    let (first, last) = period.unwrap_or((0, -1));
    let days = (last - first + 1).max(0) as usize;
    let mut series: BTreeMap<(u16, u16), (u64, Vec<f64>)> = BTreeMap::new();
    let mut overall = vec![0.0; days];
    for r in &by_day_model.rows {
        let (Some(day), Some(m), Some(f)) = (r.key.day, r.key.model, r.key.firmware) else {
            continue;
        };
        let i = (day - first) as usize;
        let e = series.entry((m, f)).or_insert_with(|| (0, vec![0.0; days]));
        e.0 += r.alerts;
        e.1[i] += r.alerts as f64;
        overall[i] += r.alerts as f64;
    }
    let denoms = Denominators::build(
        inv,
        DenomDims {
            model: true,
            firmware: true,
            ..Default::default()
        },
    );
    let fleet = Denominators::build(inv, DenomDims::default());
    let per_1000 = |counts: &[f64], key: &DenomKey, d: &Denominators| -> Vec<f64> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| match d.installed(key, first + i as Day) {
                Some(n) if n > 0 => c * 1000.0 / n as f64,
                _ => c,
            })
            .collect()
    };
    let mut models = Records::new(&[
        ("model", false),
        ("firmware_version", false),
        ("installed_devices", true),
        ("alerting_devices", true),
        ("alerts", true),
        ("share", true),
        ("per_1000_per_day", true),
        ("trend", false),
    ]);
    let mut rows: Vec<_> = series.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    for ((m, f), (alerts, counts)) in rows {
        let key = DenomKey {
            model: Some(m),
            firmware: Some(f),
            ..Default::default()
        };
        let installed = days
            .checked_sub(1)
            .and_then(|_| denoms.installed(&key, last));
        let device_days = period.and_then(|(a, b)| denoms.device_days(&key, a, b));
        let trend = mann_kendall(&per_1000(&counts, &key, &denoms));
        let name = |s: &str| {
            if s.is_empty() {
                "(none)".to_string()
            } else {
                s.to_string()
            }
        };
        models.push(vec![
            name(inv.model_name(m)),
            name(inv.firmware_name(f)),
            installed.map(|n| n.to_string()).unwrap_or_default(),
            alerting.get(&(m, f)).copied().unwrap_or(0).to_string(),
            alerts.to_string(),
            format!("{:.4}", alerts as f64 / total.max(1) as f64),
            device_days
                .filter(|&d| d > 0)
                .map(|d| format!("{:.4}", alerts as f64 * 1000.0 / d as f64))
                .unwrap_or_else(|| "n/a".into()),
            trend.describe(),
        ]);
    }
    let trend = mann_kendall(&per_1000(&overall, &DenomKey::default(), &fleet));
    Offenders {
        alerts: total,
        alerting_devices: devices.len(),
        installed: (days > 0)
            .then(|| fleet.installed(&DenomKey::default(), last))
            .flatten(),
        top1_share: top_share(&counts, 0.01, total),
        top10_share: top_share(&counts, 0.10, total),
        trend,
        devices: dev,
        models,
        period,
    }
}

fn write_table(w: &mut impl Write, o: &Offenders, what: &str) -> std::io::Result<()> {
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
    o.devices
        .write(w, OutputFormat::Table, serde_json::Value::Null)?;
    writeln!(w, "\nBy model and firmware version")?;
    o.models
        .write(w, OutputFormat::Table, serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::top_share;

    #[test]
    fn top_shares_round_up_to_whole_devices() {
        // 20 devices: top 1% is 1 device, top 10% is 2.
        let mut v = vec![100, 50];
        v.extend(std::iter::repeat_n(5, 18));
        let total: u64 = v.iter().sum();
        assert_eq!(total, 240);
        assert_eq!(top_share(&v, 0.01, total), 100.0 / 240.0);
        assert_eq!(top_share(&v, 0.10, total), 150.0 / 240.0);
        assert_eq!(top_share(&[], 0.1, 0), 0.0);
    }
}
