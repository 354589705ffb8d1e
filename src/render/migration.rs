//! The migration report as text: its tables (`Records`), the summary lines, and the files of
//! `--out` (every table as CSV, the charts as PNG and SVG).
//!
//! The tables come in a fixed order (weekly, pace changes, failures, outlook, reporting gaps,
//! then the alert rates when the alerts were read); the CSV form on stdout is the first alone.

use super::chart::migration::charts;
use super::chart::save;
use super::output::{WriteError, create_dir, write_csv};
use super::records::Records;
use super::{OutputFormat, thousands};
use crate::analyze::migration::log::Log;
use crate::analyze::migration::outlook::{Outlook, SizeFrom};
use crate::analyze::migration::report::{CohortRates, CohortStatus, MigrationReport, standings};
use crate::model::Day;
use crate::model::time::{format_day, weekday};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// A table: its key (JSON key, CSV file stem), its title, its rows.
pub type Table = (&'static str, &'static str, Records);

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

fn rate(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |r| format!("{r:.4}"))
}

/// Every table, in order.
pub fn tables(m: &MigrationReport) -> Vec<Table> {
    let (log, a) = (&m.log, &m.analysis);
    let cohort = |c: u16| log.cohorts.name(c).to_string();
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
        ("reported_weekdays", true),
        ("pace_per_week", true),
        ("pace_change", false),
        ("backlog_missing_days", true),
        ("backlog_excess_est", true),
    ]);
    for (&c, weeks) in &a.cohorts {
        for w in weeks {
            weekly.push(vec![
                cohort(c),
                format_day(w.start),
                w.migrated.to_string(),
                w.commissioned.to_string(),
                w.failed.to_string(),
                w.cum_migrated.to_string(),
                w.cum_commissioned.to_string(),
                w.backlog.to_string(),
                w.reported_weekdays.to_string(),
                w.pace.map_or("n/a".into(), |p| format!("{p:.1}")),
                changed.get(&(c, w.start)).cloned().unwrap_or_default(),
                w.backlog_missing_days.to_string(),
                format!("{:.0}", w.backlog_excess),
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
        failures.push(vec![cohort(*c), reason.to_string(), n.to_string()]);
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
            cohort(ch.cohort),
            format_day(ch.week),
            format!("{:.1}", ch.before),
            format!("{:.1}", ch.after),
            ch.describe(),
        ]);
    }
    let mut outlook = Records::new(&[
        ("cohort", false),
        ("devices", true),
        ("devices_from", false),
        ("migrated", true),
        ("remaining", true),
        ("pace_since", false),
        ("pace_weeks", true),
        ("pace_per_week", true),
        ("pace_low", true),
        ("pace_high", true),
        ("peak_pace_per_week", true),
        ("status", false),
        ("forecast_finish_low", false),
        ("forecast_finish", false),
        ("forecast_finish_high", false),
    ]);
    for o in &a.outlook {
        let interval = o.pace.and_then(|p| p.interval());
        let (why, range_why) = no_forecast(m, o);
        let day = |d: Option<Day>, why: &str| d.map(format_day).unwrap_or_else(|| why.into());
        outlook.push(vec![
            cohort(o.cohort),
            o.size.map(|s| s.to_string()).unwrap_or_default(),
            size_from(o.size_from).into(),
            o.migrated.to_string(),
            o.remaining
                .map(|s| s.to_string())
                .unwrap_or_else(|| "n/a".into()),
            o.pace_since.map(format_day).unwrap_or_default(),
            o.pace.map_or(0, |p| p.weeks).to_string(),
            format!("{:.1}", o.pace_per_week()),
            interval.map_or("n/a".into(), |i| format!("{:.1}", i.0)),
            interval.map_or("n/a".into(), |i| format!("{:.1}", i.1)),
            format!("{:.1}", o.peak_pace),
            CohortStatus::of(o).name().to_string(),
            day(o.finish_low, &range_why),
            day(o.finish, &why),
            day(o.finish_high, &range_why),
        ]);
    }
    let mut gaps = Records::new(&[("day", false), ("weekday", false)]);
    const WEEKDAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    for &d in &a.gaps {
        gaps.push(vec![
            format_day(d),
            WEEKDAYS[weekday(d) as usize].to_string(),
        ]);
    }
    let mut out = vec![
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
            "Where each cohort stands, and when it finishes at its pace since the last change (low, high: 90% range)",
            outlook,
        ),
        (
            "reporting_gaps",
            "Reporting gaps: weekdays with no log row at all",
            gaps,
        ),
    ];
    if let Some(rates) = &m.alert_rates {
        out.push((
            "alert_rates",
            "SMETS1 alerts per 1,000 device-days before and after migration, per cohort (devices migrated in the log)",
            alert_rates(log, rates),
        ));
    }
    out
}

fn alert_rates(log: &Log, rates: &[CohortRates]) -> Records {
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
    for r in rates {
        t.push(vec![
            log.cohorts.name(r.cohort).to_string(),
            r.devices.to_string(),
            r.alerts_before.to_string(),
            r.device_days_before.to_string(),
            rate(r.per_1000_before()),
            r.alerts_after.to_string(),
            r.device_days_after.to_string(),
            rate(r.per_1000_after()),
        ]);
    }
    t
}

fn size_from(s: SizeFrom) -> &'static str {
    match s {
        SizeFrom::Given => "--cohort-size",
        SizeFrom::Inventory => "inventory",
        SizeFrom::NoInventory | SizeFrom::OnlyMigrated => "",
    }
}

/// Why a cohort has no forecast, and why no range (empty where the status says it).
fn no_forecast(m: &MigrationReport, o: &Outlook) -> (String, String) {
    let why = if !m.with_inventory {
        "n/a (needs --inventory)"
    } else if o.size_from == SizeFrom::OnlyMigrated {
        "n/a (the inventory lists only migrated devices: give --cohort-size)"
    } else if o.stalled || o.remaining == Some(0) {
        ""
    } else if o.pace_per_week() <= 0.0 {
        "n/a (no migration since the last change)"
    } else if o.finish.is_none() {
        "beyond a century"
    } else {
        ""
    };
    let range_why = if o.finish.is_some() && o.pace.is_some_and(|p| p.df == 0) {
        "n/a (too few weeks for a spread)"
    } else if o.finish.is_some() {
        "beyond a century"
    } else if why.is_empty() {
        ""
    } else {
        "n/a"
    };
    (why.into(), range_why.into())
}

/// The summary: the log's span, each cohort's standing and outlook, stalls, reporting gaps,
/// and what missing report days do to the backlog.
pub fn summary(m: &MigrationReport) -> Vec<String> {
    let (log, a) = (&m.log, &m.analysis);
    let cohort = |c: u16| log.cohorts.name(c);
    let mut s = vec![format!(
        "SMETS1 migration log {} to {}: {} weeks, {} cohorts",
        format_day(a.first_day),
        format_day(a.last_day),
        a.weeks.len(),
        a.cohorts.len()
    )];
    let mut overstated = false;
    for st in standings(a) {
        let excess = if st.backlog_missing_days > 0 && st.backlog_excess >= 0.5 {
            overstated = true;
            format!(
                " (about {} of it commissioned on missing report days)",
                thousands(st.backlog_excess.round() as u64)
            )
        } else {
            String::new()
        };
        s.push(format!(
            "  {:10} {} migrated, {} operated by suppliers, backlog {}{excess}, {} failed attempts",
            cohort(st.cohort),
            thousands(st.migrated),
            thousands(st.commissioned),
            thousands(st.backlog),
            thousands(st.failed)
        ));
    }
    for o in &a.outlook {
        if let Some(line) = outlook_line(m, o) {
            s.push(format!("  {:10} {line}", cohort(o.cohort)));
        }
    }
    let stalled: Vec<&str> = a
        .outlook
        .iter()
        .filter(|o| o.stalled)
        .map(|o| cohort(o.cohort))
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
    if overstated {
        s.push(format!(
            "  caveat: backlogs from {} on are overstated: a device commissioned on a missing report day has no row and stays in the backlog (estimated per cohort from its commissions per reported day of that week; weekly column backlog_excess_est)",
            format_day(a.gaps[0])
        ));
    }
    let no_size: Vec<&str> = a
        .outlook
        .iter()
        .filter(|o| o.size_from == SizeFrom::OnlyMigrated)
        .map(|o| cohort(o.cohort))
        .collect();
    if !no_size.is_empty() {
        s.push(format!(
            "  no size for {}: the inventory lists only their migrated devices; give --cohort-size COHORT=DEVICES (the DCC publishes cohort sizes) for the remaining devices and forecasts",
            no_size.join(", ")
        ));
    }
    if !m.with_inventory {
        s.push(
            "  (give --inventory for the remaining devices and forecasts; cohort sizes from --cohort-size, or from an inventory that lists unmigrated devices)".into(),
        );
    }
    s
}

/// `3,717 remain; 164.6 a week since 2024-02-12 (3 weeks): done about 2024-08-04 (90% range
/// 2024-07-21 to 2024-08-21)`, or why the cohort has no forecast.
pub fn outlook_line(m: &MigrationReport, o: &Outlook) -> Option<String> {
    let remaining = o.remaining.filter(|&r| r > 0)?;
    let pace = match (o.pace, o.pace_since) {
        (Some(p), Some(since)) => format!(
            "{:.1} a week since {} ({} week{})",
            p.per_week,
            format_day(since),
            p.weeks,
            if p.weeks == 1 { "" } else { "s" }
        ),
        _ => "no pace".into(),
    };
    let outlook = if o.stalled {
        "stalled".to_string()
    } else if CohortStatus::of(o) == CohortStatus::Complete {
        "complete (at most 1% of the cohort left)".to_string()
    } else {
        match (o.finish, o.finish_low, o.finish_high) {
            (Some(f), Some(lo), hi) => format!(
                "done about {} (90% range {} to {})",
                format_day(f),
                format_day(lo),
                hi.map_or("beyond a century".into(), format_day)
            ),
            (Some(f), _, _) => format!("done about {} (no range: too few weeks)", format_day(f)),
            _ => no_forecast(m, o).0,
        }
    };
    Some(format!(
        "{} remain; {pace}: {outlook}",
        thousands(remaining)
    ))
}

/// Writes the summary and tables to stdout's writer in `fmt`.
pub fn write(w: &mut impl Write, m: &MigrationReport, fmt: OutputFormat) -> std::io::Result<()> {
    let (summary, tables) = (summary(m), tables(m));
    match fmt {
        OutputFormat::Json => {
            let mut doc = serde_json::Map::new();
            doc.insert("summary".into(), json!(summary));
            for (key, _, r) in &tables {
                doc.insert((*key).into(), serde_json::Value::Array(r.json_rows()));
            }
            serde_json::to_writer_pretty(&mut *w, &serde_json::Value::Object(doc))?;
            writeln!(w)
        }
        OutputFormat::Csv => tables[0].2.write(w, fmt, json!(null)),
        OutputFormat::Table => {
            for l in &summary {
                writeln!(w, "{l}")?;
            }
            for (_, title, r) in &tables {
                writeln!(w, "\n{title}")?;
                r.write(w, fmt, json!(null))?;
            }
            Ok(())
        }
    }
}

/// Writes every table as `KEY.csv` and the charts as `STEM.png` and `STEM.svg` into `dir`.
pub fn write_files(dir: &Path, m: &MigrationReport) -> Result<(), WriteError> {
    create_dir(dir)?;
    for (key, _, r) in &tables(m) {
        write_csv(&dir.join(format!("{key}.csv")), r)?;
    }
    for (stem, data) in charts(m) {
        save(&data, &dir.join(format!("{stem}.png")))?;
        save(&data, &dir.join(format!("{stem}.svg")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::migration::weekly::Analysis;

    #[test]
    fn an_empty_log_still_has_every_table_and_says_what_is_missing() {
        let m = MigrationReport {
            log: Log::default(),
            analysis: Analysis::default(),
            with_inventory: false,
            alert_rates: Some(vec![CohortRates {
                cohort: 1,
                devices: 2,
                alerts_before: 0,
                device_days_before: 0,
                alerts_after: 4,
                device_days_after: 2000,
            }]),
        };
        let keys: Vec<&str> = tables(&m).iter().map(|t| t.0).collect();
        assert_eq!(
            keys,
            [
                "weekly",
                "pace_changes",
                "failures",
                "outlook",
                "reporting_gaps",
                "alert_rates"
            ]
        );
        let rates = &tables(&m)[5].2.rows[0];
        assert_eq!(rates[0], "IOC");
        assert_eq!((rates[4].as_str(), rates[7].as_str()), ("n/a", "2.0000"));
        assert!(summary(&m).last().unwrap().contains("--inventory"));
    }
}
