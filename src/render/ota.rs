//! The OTA analysis as text: its tables (`Records`), the summary lines, and the files of
//! `--out` (every table as CSV, the cumulative-upgrades chart, the firmware-effect chart).
//!
//! The CSV form on stdout is the funnel alone (one table is what a CSV can hold); JSON holds
//! every table, and the terminal shows the first rows of each (all of them are in the files).

use super::chart::ota::{cumulative_chart, effect_chart, effect_text};
use super::chart::save;
use super::output::{WriteError, create_dir, write_csv};
use super::records::Records;
use super::{OutputFormat, thousands};
use crate::analyze::ota::funnel::JudgedDevice;
use crate::analyze::ota::guard::GuardResult;
use crate::analyze::ota::run::{OtaResult, OutcomeCounts};
use crate::catalogue;
use crate::model::DeviceId;
use crate::model::time::{format_day, format_timestamp};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Every table, keyed as the JSON document and the CSV files name them, with its title.
pub struct OtaTables {
    pub summary: Vec<String>,
    pub sections: Vec<(&'static str, &'static str, Records)>,
}

/// The chart file `write_files` adds beside the tables.
pub const CHART_FILE: &str = "upgraded_per_region.png";
/// The firmware-effect chart's file stem: `write_files` writes it as PNG and SVG when there
/// is an effect table.
pub const EFFECT_CHART: &str = "firmware_effect";

pub fn tables(r: &OtaResult) -> OtaTables {
    let stragglers = stragglers(r);
    OtaTables {
        summary: summary(r, stragglers.rows.len()),
        sections: vec![
            (
                "funnel",
                "Funnel (devices) per campaign, region, model and source version",
                funnel(r),
            ),
            (
                "failures",
                "Failures by stage, reason, model and region (devices affected, Pareto)",
                failures(r),
            ),
            (
                "cannot_upgrade",
                "Devices that likely cannot be upgraded remotely",
                stragglers,
            ),
            (
                "cannot_upgrade_by_region_model",
                "... per region and model",
                stragglers_by(r),
            ),
            (
                "guard_rails",
                "Guard rails (replay): failure rate of devices that finished an attempt; trips when the 95% Wilson lower bound exceeds the threshold",
                guards(r),
            ),
            (
                "firmware_effect",
                "Did the firmware help? Difference in differences per code (upgraded devices after vs before, against never-upgraded devices on the same days): effect with its 95% device-bootstrap interval, and the verdict",
                effect(r),
            ),
        ],
    }
}

fn version(r: &OtaResult, v: u16) -> String {
    match r.campaigns.versions.name(v) {
        "" => "(unknown)".to_string(),
        s => s.to_string(),
    }
}

/// A failure reason as the tables name it.
pub fn reason_name(r: &OtaResult, reason: u16) -> String {
    match r.reasons.name(reason) {
        "" => "(no reason given)".to_string(),
        s => s.to_string(),
    }
}

fn funnel(r: &OtaResult) -> Records {
    let mut t = Records::new(&[
        ("campaign", false),
        ("region", false),
        ("model", false),
        ("source_version", false),
        ("targeted", true),
        ("delivered", true),
        ("transferred", true),
        ("verified", true),
        ("activated", true),
        ("running_target", true),
        ("failed", true),
        ("in_progress", true),
        ("never_heard_from", true),
        ("not_started", true),
    ]);
    for (c, f) in &r.aggregate.funnel {
        t.push(vec![
            r.campaigns.names.name(c.campaign).to_string(),
            c.region.name().to_string(),
            r.model_name(c.model).to_string(),
            version(r, c.source),
            f.targeted.to_string(),
            f.delivered.to_string(),
            f.transferred.to_string(),
            f.verified.to_string(),
            f.activated.to_string(),
            f.running.to_string(),
            f.failed.to_string(),
            f.in_progress.to_string(),
            f.never_heard_from.to_string(),
            f.not_started.to_string(),
        ]);
    }
    t
}

fn failures(r: &OtaResult) -> Records {
    let mut t = Records::new(&[
        ("stage", false),
        ("reason", false),
        ("model", false),
        ("region", false),
        ("devices", true),
        ("cumulative_share", true),
    ]);
    for (k, n, share) in &r.failures {
        t.push(vec![
            k.stage.name().to_string(),
            reason_name(r, k.reason),
            r.model_name(k.model).to_string(),
            k.region.name().to_string(),
            n.to_string(),
            format!("{share:.4}"),
        ]);
    }
    t
}

fn stragglers(r: &OtaResult) -> Records {
    let mut t = Records::new(&[
        ("device_id", false),
        ("campaign", false),
        ("region", false),
        ("model", false),
        ("attempts", true),
        ("failed_attempts", true),
        ("last_stage", false),
        ("last_reason", false),
        ("last_seen", false),
    ]);
    for JudgedDevice {
        id,
        cohort: c,
        outcome: o,
    } in &r.stragglers
    {
        t.push(vec![
            DeviceId(*id).to_string(),
            r.campaigns.names.name(c.campaign).to_string(),
            c.region.name().to_string(),
            r.model_name(c.model).to_string(),
            o.attempts.to_string(),
            o.failed_attempts.to_string(),
            o.last_failed_stage
                .map(|s| s.name())
                .unwrap_or("")
                .to_string(),
            reason_name(r, o.last_reason),
            o.last_seen.map(format_timestamp).unwrap_or_default(),
        ]);
    }
    t
}

fn stragglers_by(r: &OtaResult) -> Records {
    let mut t = Records::new(&[("region", false), ("model", false), ("devices", true)]);
    for ((region, m), n) in &r.stragglers_by {
        t.push(vec![
            region.name().to_string(),
            r.model_name(*m).to_string(),
            n.to_string(),
        ]);
    }
    t
}

fn guards(r: &OtaResult) -> Records {
    let mut t = Records::new(&[
        ("group", false),
        ("value", false),
        ("finished", true),
        ("failed", true),
        ("failure_rate", true),
        ("wilson_lower", true),
        ("tripped_on", false),
        ("finished_then", true),
        ("failed_then", true),
    ]);
    for g in &r.guards {
        t.push(guard_row(g.group.name(), &g.value, &g.result));
    }
    t
}

fn guard_row(group: &str, value: &str, g: &GuardResult) -> Vec<String> {
    vec![
        group.to_string(),
        value.to_string(),
        g.finished.to_string(),
        g.failed.to_string(),
        format!("{:.4}", g.failure_rate()),
        format!("{:.4}", g.lower_bound),
        g.tripped.map(|t| format_day(t.0)).unwrap_or_default(),
        g.tripped.map(|t| t.1.to_string()).unwrap_or_default(),
        g.tripped.map(|t| t.2.to_string()).unwrap_or_default(),
    ]
}

fn effect(r: &OtaResult) -> Records {
    let mut t = Records::new(&[
        ("alert_code", false),
        ("name", false),
        ("effect", false),
        ("verdict", false),
        ("relative_effect", true),
        ("ci_low", true),
        ("ci_high", true),
        ("pretrend", true),
        ("pretrend_ci_low", true),
        ("pretrend_ci_high", true),
        ("top1pct_share", true),
        ("control_top1pct_share", true),
        ("alerts_after", true),
        ("alerts_before", true),
        ("upgraded_after_per_1000", true),
        ("upgraded_before_per_1000", true),
        ("control_after_per_1000", true),
        ("control_before_per_1000", true),
        ("difference_per_1000", true),
        ("treated_devices", true),
        ("control_devices", true),
    ]);
    let num = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.4}"));
    for e in &r.effects {
        t.push(vec![
            e.code.to_string(),
            catalogue::describe(e.code).chars().take(40).collect(),
            effect_text(e),
            e.verdict.name().to_string(),
            num(e.ratio()),
            num(e.ci.map(|c| c.0)),
            num(e.ci.map(|c| c.1)),
            num(e.pretrend),
            num(e.pretrend_ci.map(|c| c.0)),
            num(e.pretrend_ci.map(|c| c.1)),
            format!("{:.4}", e.top1pct_share),
            format!("{:.4}", e.control_top1pct_share),
            e.alerts_after.to_string(),
            e.alerts_before.to_string(),
            format!("{:.4}", e.a),
            format!("{:.4}", e.b),
            format!("{:.4}", e.c_after),
            format!("{:.4}", e.c_before),
            format!("{:.4}", e.difference()),
            e.treated.to_string(),
            e.control.to_string(),
        ]);
    }
    t
}

/// Two lines per campaign (funnel, time to upgrade), then the devices that cannot be upgraded.
fn summary(r: &OtaResult, stragglers: usize) -> Vec<String> {
    let mut out = Vec::new();
    for s in &r.summaries {
        let name = r.campaigns.names.name(s.campaign);
        let tv = r.campaigns.versions.name(
            r.campaigns
                .target_version
                .get(s.campaign as usize)
                .copied()
                .unwrap_or(0),
        );
        let f = &s.total;
        let days = |h: Option<f64>| h.map_or("n/a".into(), |h| format!("{:.1} days", h / 24.0));
        out.push(format!(
            "{name} to {tv}: {} targeted, {} running it ({:.1}%), {} failed and not upgraded, {} in progress, {} never heard from, {} not started",
            thousands(f.targeted),
            thousands(f.running),
            f.running as f64 * 100.0 / f.targeted as f64,
            thousands(f.failed),
            thousands(f.in_progress),
            thousands(f.never_heard_from),
            thousands(f.not_started),
        ));
        let [p50, p90, p99] = s.upgrade_hours;
        out.push(format!(
            "  time to upgrade (first event to running it): median {}, p90 {}, p99 {}",
            days(p50),
            days(p90),
            days(p99)
        ));
    }
    out.push(format!(
        "{} devices likely cannot be upgraded remotely (hardware mismatch, or {} failed attempts or more)",
        thousands(stragglers as u64),
        r.params.max_failures
    ));
    out
}

/// Writes the tables to stdout's writer in `format`.
pub fn write(
    w: &mut impl Write,
    t: &OtaTables,
    format: OutputFormat,
    guard_threshold: f64,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            let mut doc = serde_json::Map::new();
            doc.insert("summary".into(), json!(t.summary));
            doc.insert("guard_threshold".into(), json!(guard_threshold));
            for (key, _, r) in &t.sections {
                doc.insert((*key).into(), serde_json::Value::Array(r.json_rows()));
            }
            serde_json::to_writer_pretty(&mut *w, &serde_json::Value::Object(doc))?;
            writeln!(w)
        }
        OutputFormat::Csv => t.sections[0].2.write(w, OutputFormat::Csv, json!(null)),
        OutputFormat::Table => {
            for line in &t.summary {
                writeln!(w, "{line}")?;
            }
            for (key, title, r) in &t.sections {
                writeln!(w, "\n{title}")?;
                let limit = if *key == "cannot_upgrade" { 20 } else { 40 };
                let mut shown = r.clone();
                let more = shown.rows.len().saturating_sub(limit);
                shown.rows.truncate(limit);
                shown.write(w, OutputFormat::Table, json!(null))?;
                if more > 0 {
                    writeln!(
                        w,
                        "... and {more} more rows (all of them with --out DIR or -f json)"
                    )?;
                }
            }
            Ok(())
        }
    }
}

/// Writes every table as `KEY.csv`, the cumulative chart and (when there are effect rows)
/// the firmware-effect chart as PNG and SVG into `dir`; returns the charts' paths.
pub fn write_files(dir: &Path, t: &OtaTables, r: &OtaResult) -> Result<Vec<PathBuf>, WriteError> {
    create_dir(dir)?;
    for (key, _, records) in &t.sections {
        write_csv(&dir.join(format!("{key}.csv")), records)?;
    }
    let chart = dir.join(CHART_FILE);
    save(&cumulative_chart(&r.aggregate, &r.campaigns), &chart)?;
    let mut charts = vec![chart];
    if let Some(data) = effect_chart(&r.effects, &r.campaigns) {
        for ext in ["png", "svg"] {
            let path = dir.join(format!("{EFFECT_CHART}.{ext}"));
            save(&data, &path)?;
            charts.push(path);
        }
    }
    Ok(charts)
}

/// `outcome records read N = accepted A + duplicates D + rejected R`, and the rows about
/// devices outside the campaign.
pub fn outcome_totals(c: &OutcomeCounts) -> String {
    format!(
        "outcome records read {} = accepted {} + duplicates {} + rejected {}{}",
        thousands(c.read),
        thousands(c.accepted),
        thousands(c.duplicates),
        thousands(c.rejected),
        if c.outside > 0 {
            format!(
                " ({} accepted rows name devices outside the campaign)",
                thousands(c.outside)
            )
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_rows_and_outcome_totals() {
        let g = GuardResult {
            finished: 40,
            failed: 10,
            lower_bound: 0.14,
            tripped: Some((19733, 30, 9)),
        };
        assert_eq!(
            guard_row("region", "North", &g),
            [
                "region",
                "North",
                "40",
                "10",
                "0.2500",
                "0.1400",
                "2024-01-11",
                "30",
                "9"
            ]
        );
        let c = OutcomeCounts {
            read: 1200,
            accepted: 1000,
            duplicates: 150,
            rejected: 50,
            outside: 3,
        };
        assert_eq!(
            outcome_totals(&c),
            "outcome records read 1,200 = accepted 1,000 + duplicates 150 + rejected 50 (3 accepted rows name devices outside the campaign)"
        );
    }
}
