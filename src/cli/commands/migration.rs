//! `fleetwatch migration`: SMETS1 migration per cohort and week, with charts (see
//! `fleetwatch::analyze::migration`).

use super::Status;
use crate::cli::{Selection, conclude, stdout_write};
use anyhow::{Result, bail};
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport};
use fleetwatch::analyze::change::{AFTER, BEFORE, ChangeSplit};
use fleetwatch::analyze::migration::log::Migrations;
use fleetwatch::analyze::migration::log::{Log, MigrationEvent, read_migrations};
use fleetwatch::analyze::migration::weekly::{Analysis, PaceParams, analyse};
use fleetwatch::analyze::reader::Reader;
use fleetwatch::model::Day;
use fleetwatch::model::time::{day_of, format_day};
use fleetwatch::render::chart::{self, ChartData, LineChart, Series, StackedBars};
use fleetwatch::render::records::Records;
use fleetwatch::render::{OutputFormat, thousands};
use fleetwatch::source::{Input, expand_inputs};
use plotters::style::RGBColor;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub struct MigrationConfig {
    pub logs: Vec<PathBuf>,
    /// The alert inputs (`--alerts`) and inventory, filters and read options.
    pub selection: Selection,
    /// `FOC=3132`: devices per cohort, for the remaining devices and the forecast.
    pub sizes: Vec<String>,
    pub params: PaceParams,
    pub out: Option<PathBuf>,
    pub format: OutputFormat,
}

/// Cohort colours, in migration order (others grey).
fn cohort_color(name: &str) -> RGBColor {
    match name {
        "IOC" => RGBColor(31, 119, 180),
        "MOC" => RGBColor(255, 127, 14),
        "MOC Secure" => RGBColor(44, 160, 44),
        "FOC" => RGBColor(214, 39, 40),
        _ => RGBColor(120, 120, 120),
    }
}

fn lighter(c: RGBColor) -> RGBColor {
    let l = |x: u8| (x as u16 + (255 - x as u16) * 55 / 100) as u8;
    RGBColor(l(c.0), l(c.1), l(c.2))
}

/// Everything `migration` computes, ready for the terminal, files or the HTML report.
pub struct MigrationReport {
    pub log: Log,
    pub analysis: Analysis,
    pub tables: Vec<(&'static str, &'static str, Records)>,
    pub summary: Vec<String>,
}

/// Reads the logs (and inventory, sizes) and analyses them.
pub fn build(
    logs: &[Input],
    first_source: usize,
    inventory: Option<&Path>,
    sizes: &[String],
    params: &PaceParams,
) -> Result<MigrationReport> {
    let mut log = Log::default();
    for (i, input) in logs.iter().enumerate() {
        log.read(input, first_source + i)?;
    }
    let migrations: Option<Migrations> = match inventory {
        Some(p) => {
            let (m, skipped) = read_migrations(&Input::File(p.to_path_buf()), &mut log.cohorts)?;
            if skipped > 0 {
                eprintln!(
                    "  warning: {skipped} inventory rows with a cohort had an unreadable id or migration date"
                );
            }
            Some(m)
        }
        None => None,
    };
    let mut size_of: BTreeMap<u16, u64> = BTreeMap::new();
    for s in sizes {
        let Some((name, n)) = s.split_once('=') else {
            bail!("--cohort-size `{s}`: write COHORT=DEVICES, e.g. FOC=3132");
        };
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--cohort-size `{s}`: `{n}` is not a number"))?;
        size_of.insert(
            log.cohorts
                .id(&fleetwatch::analyze::migration::cohort_name(name)),
            n,
        );
    }
    let analysis = analyse(&log, migrations.as_ref(), &size_of, params);
    let tables = tables(&log, &analysis);
    let summary = summary(&log, &analysis, migrations.is_some());
    Ok(MigrationReport {
        log,
        analysis,
        tables,
        summary,
    })
}

pub fn run(cfg: MigrationConfig) -> Result<Status> {
    let t0 = Instant::now();
    let logs = expand_inputs(&cfg.logs)?;
    let alert_count = if cfg.selection.inputs.is_empty() {
        0
    } else {
        expand_inputs(&cfg.selection.inputs)?.len()
    };
    let mut m = build(
        &logs,
        alert_count,
        cfg.selection.inventory.as_deref(),
        &cfg.sizes,
        &cfg.params,
    )?;
    let mut alert_report = None;
    let mut names: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    if alert_count > 0 {
        let engine = cfg.selection.engine()?;
        let (table, report) = alert_rates(&m, &engine);
        m.tables.push(("alert_rates", "SMETS1 alerts per 1,000 device-days before and after migration, per cohort (devices migrated in the log)", table));
        alert_report = Some(report);
        names = engine.names().to_vec();
        errors = engine.errors();
    }
    names.extend(logs.iter().map(Input::name));
    stdout_write(|w| write(w, &m, cfg.format))?;
    if let Some(dir) = &cfg.out {
        std::fs::create_dir_all(dir)?;
        for (key, _, r) in &m.tables {
            let mut f =
                std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{key}.csv")))?);
            r.write(&mut f, OutputFormat::Csv, json!(null))?;
            f.flush()?;
        }
        for (stem, data) in charts(&m) {
            chart::save(&data, &dir.join(format!("{stem}.png")))?;
            chart::save(&data, &dir.join(format!("{stem}.svg")))?;
        }
        eprintln!(
            "tables (CSV) and charts (PNG, SVG) written to {}",
            dir.display()
        );
    }
    eprintln!("{}", totals_line(&m.log));
    let mut report = alert_report.unwrap_or_else(AlertReport::empty);
    report.add_rejects(std::mem::take(&mut m.log.rejects));
    conclude(&report, &errors, &names, &cfg.selection.rejects, t0)
}

/// `migration log rows read N = accepted A + duplicates D + rejected R`.
pub fn totals_line(log: &Log) -> String {
    format!(
        "migration log rows read {} = accepted {} + duplicates {} + rejected {}",
        thousands(log.read),
        thousands(log.rows.len() as u64),
        thousands(log.duplicates),
        thousands(log.rejects.len() as u64)
    )
}

fn cohort(log: &Log, c: u16) -> &str {
    log.cohorts.name(c)
}

fn tables(log: &Log, a: &Analysis) -> Vec<(&'static str, &'static str, Records)> {
    let changed: BTreeMap<(u16, Day), String> = a
        .changes
        .iter()
        .map(|c| ((c.cohort, c.week), c.describe()))
        .collect();
    let mut weekly = Records::new(&[
        ("cohort", false),
        ("week", false),
        ("migrated", true),
        ("commissioned", true),
        ("failed", true),
        ("cum_migrated", true),
        ("cum_commissioned", true),
        ("backlog", true),
        ("pace_per_week", true),
        ("pace_change", false),
    ]);
    for (&c, weeks) in &a.cohorts {
        for w in weeks {
            weekly.push(vec![
                cohort(log, c).to_string(),
                format_day(w.start),
                w.migrated.to_string(),
                w.commissioned.to_string(),
                w.failed.to_string(),
                w.cum_migrated.to_string(),
                w.cum_commissioned.to_string(),
                w.backlog.to_string(),
                w.pace.map_or("n/a".into(), |p| format!("{p:.1}")),
                changed.get(&(c, w.start)).cloned().unwrap_or_default(),
            ]);
        }
    }
    let mut failures = Records::new(&[("cohort", false), ("reason", false), ("devices", true)]);
    let mut fl: Vec<_> = a.failures.iter().collect();
    fl.sort_by(|x, y| x.0.0.cmp(&y.0.0).then(y.1.cmp(x.1)));
    for ((c, r), n) in fl {
        let reason = match log.reasons.name(*r) {
            "" => "(no reason given)",
            s => s,
        };
        failures.push(vec![
            cohort(log, *c).to_string(),
            reason.to_string(),
            n.to_string(),
        ]);
    }
    let mut changes = Records::new(&[
        ("cohort", false),
        ("week", false),
        ("pace_before", true),
        ("pace_after", true),
        ("change", false),
    ]);
    for ch in &a.changes {
        changes.push(vec![
            cohort(log, ch.cohort).to_string(),
            format_day(ch.week),
            format!("{:.1}", ch.before),
            format!("{:.1}", ch.after),
            ch.describe(),
        ]);
    }
    let mut outlook = Records::new(&[
        ("cohort", false),
        ("devices", true),
        ("migrated", true),
        ("remaining", true),
        ("recent_pace_per_week", true),
        ("peak_pace_per_week", true),
        ("status", false),
        ("forecast_finish", false),
    ]);
    for o in &a.outlook {
        let status = if o.stalled {
            "stalled"
        } else if o.remaining == Some(0)
            || o.remaining
                .is_some_and(|r| o.size.is_some_and(|s| r as f64 <= 0.01 * s as f64))
        {
            "complete"
        } else {
            "migrating"
        };
        outlook.push(vec![
            cohort(log, o.cohort).to_string(),
            o.size.map(|s| s.to_string()).unwrap_or_default(),
            o.migrated.to_string(),
            o.remaining
                .map(|s| s.to_string())
                .unwrap_or_else(|| "n/a".into()),
            format!("{:.1}", o.recent_pace),
            format!("{:.1}", o.peak_pace),
            status.to_string(),
            o.finish.map(format_day).unwrap_or_else(|| {
                if o.remaining.is_none() {
                    "n/a (needs --inventory and --cohort-size)".into()
                } else {
                    String::new()
                }
            }),
        ]);
    }
    let mut gaps = Records::new(&[("day", false), ("weekday", false)]);
    for &d in &a.gaps {
        let names = [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        gaps.push(vec![
            format_day(d),
            names[fleetwatch::model::time::weekday(d) as usize].to_string(),
        ]);
    }
    vec![
        (
            "weekly",
            "Per cohort and week (weeks start on Monday; pace = migrations per reported weekday x 5)",
            weekly,
        ),
        (
            "pace_changes",
            "Changes of pace (at least 40% and 10 devices a week from the median of the three weeks before)",
            changes,
        ),
        (
            "failures",
            "Failed migrations by reason (devices)",
            failures,
        ),
        (
            "outlook",
            "Where each cohort stands, and when it finishes at its recent pace",
            outlook,
        ),
        (
            "reporting_gaps",
            "Reporting gaps: weekdays with no log row at all",
            gaps,
        ),
    ]
}

fn summary(log: &Log, a: &Analysis, with_inventory: bool) -> Vec<String> {
    let mut s = vec![format!(
        "SMETS1 migration log {} to {}: {} weeks, {} cohorts",
        format_day(a.first_day),
        format_day(a.last_day),
        a.weeks.len(),
        a.cohorts.len()
    )];
    for (&c, weeks) in &a.cohorts {
        if let Some(w) = weeks.last() {
            s.push(format!(
                "  {:10} {} migrated, {} operated by suppliers, backlog {}, {} failed attempts",
                cohort(log, c),
                thousands(w.cum_migrated),
                thousands(w.cum_commissioned),
                thousands(w.backlog),
                thousands(weeks.iter().map(|w| w.failed).sum())
            ));
        }
    }
    let stalled: Vec<&str> = a
        .outlook
        .iter()
        .filter(|o| o.stalled)
        .map(|o| cohort(log, o.cohort))
        .collect();
    if !stalled.is_empty() {
        s.push(format!("  stalled: {}", stalled.join(", ")));
    }
    if !a.gaps.is_empty() {
        s.push(format!(
            "  reporting gaps (weekdays with no report): {}",
            a.gaps
                .iter()
                .map(|&d| format_day(d))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !with_inventory {
        s.push(
            "  (give --inventory and --cohort-size for the remaining devices and forecasts)".into(),
        );
    }
    s
}

fn write(w: &mut impl Write, m: &MigrationReport, fmt: OutputFormat) -> std::io::Result<()> {
    match fmt {
        OutputFormat::Json => {
            let mut doc = serde_json::Map::new();
            doc.insert("summary".into(), json!(m.summary));
            for (key, _, r) in &m.tables {
                doc.insert((*key).into(), serde_json::Value::Array(r.json_rows()));
            }
            serde_json::to_writer_pretty(&mut *w, &serde_json::Value::Object(doc))?;
            writeln!(w)
        }
        OutputFormat::Csv => m.tables[0].2.write(w, fmt, json!(null)),
        OutputFormat::Table => {
            for l in &m.summary {
                writeln!(w, "{l}")?;
            }
            for (_, title, r) in &m.tables {
                writeln!(w, "\n{title}")?;
                r.write(w, fmt, json!(null))?;
            }
            Ok(())
        }
    }
}

/// The charts: cumulative migrated and operated per cohort, and the weekly pace per cohort.
pub fn charts(m: &MigrationReport) -> Vec<(&'static str, ChartData)> {
    let a = &m.analysis;
    let mut series = Vec::new();
    for (&c, weeks) in &a.cohorts {
        let name = cohort(&m.log, c);
        let color = cohort_color(name);
        let end = |w: &fleetwatch::analyze::migration::weekly::Week| (w.start + 6).min(a.last_day);
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
                let name = cohort(&m.log, c).to_string();
                let color = cohort_color(&name);
                (
                    name,
                    color,
                    weeks.iter().map(|w| w.pace.unwrap_or(0.0)).collect(),
                )
            })
            .collect(),
    });
    vec![
        ("migration_cumulative", cumulative),
        ("migration_pace", pace),
    ]
}

/// Alerts per 1,000 device-days of each cohort's devices before and after their migration day
/// (devices migrated in the log; the migration day itself excluded). SMETS1 meters join the
/// DCC's alert traffic when they migrate, so "before" is usually empty: said as n/a.
fn alert_rates(m: &MigrationReport, reader: &dyn Reader) -> (Records, AlertReport) {
    let a = &m.analysis;
    let mut per_cohort: BTreeMap<u16, ChangeSplit> = BTreeMap::new();
    for r in m
        .log
        .rows
        .iter()
        .filter(|r| r.event == MigrationEvent::Migrated)
    {
        let e = per_cohort
            .entry(r.cohort)
            .or_default()
            .changed
            .entry(r.device)
            .or_insert(Some(day_of(r.ts)));
        *e = (*e).min(Some(day_of(r.ts)));
    }
    let cohorts: Vec<(u16, Arc<ChangeSplit>)> = per_cohort
        .into_iter()
        .map(|(c, s)| (c, Arc::new(s)))
        .collect();
    let mut queries: Vec<AlertQuery> = cohorts
        .iter()
        .map(|(_, s)| AlertQuery {
            by: vec![],
            distinct: false,
            split: Some(s.clone()),
            ..Default::default()
        })
        .collect();
    if queries.is_empty() {
        // Still read the alerts once, so that their totals and rejects are reported.
        queries.push(AlertQuery {
            by: vec![],
            distinct: false,
            ..Default::default()
        });
    }
    let reports: Vec<AlertReport> = reader
        .answer(&queries)
        .into_iter()
        .map(|a| a.report)
        .collect();
    let (first, last) = reports
        .first()
        .and_then(|r| r.period)
        .map_or((a.first_day, a.last_day), |(f, l)| {
            (f.min(a.first_day), l.max(a.last_day))
        });
    let mut t = Records::new(&[
        ("cohort", false),
        ("devices", true),
        ("alerts_before", true),
        ("device_days_before", true),
        ("per_1000_before", true),
        ("alerts_after", true),
        ("device_days_after", true),
        ("per_1000_after", true),
    ]);
    for ((c, split), r) in cohorts.iter().zip(&reports) {
        let alerts = |class: u8| -> u64 {
            r.rows
                .iter()
                .filter(|x| x.key.class == Some(class))
                .map(|x| x.alerts)
                .sum()
        };
        let (mut before, mut after) = (0u64, 0u64);
        for day in split.changed.values().flatten() {
            before += (day - first).max(0) as u64;
            after += (last - day).max(0) as u64;
        }
        let rate = |n: u64, d: u64| {
            if n == 0 || d == 0 {
                "n/a".to_string()
            } else {
                format!("{:.4}", n as f64 * 1000.0 / d as f64)
            }
        };
        let (ab, aa) = (alerts(BEFORE), alerts(AFTER));
        t.push(vec![
            cohort(&m.log, *c).to_string(),
            split.changed.len().to_string(),
            ab.to_string(),
            before.to_string(),
            rate(ab, before),
            aa.to_string(),
            after.to_string(),
            rate(aa, after),
        ]);
    }
    let mut iter = reports.into_iter();
    let first_report = iter.next().unwrap_or_else(AlertReport::empty);
    (t, first_report)
}
