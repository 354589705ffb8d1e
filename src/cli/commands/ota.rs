//! `fleetwatch ota`: an OTA firmware campaign's funnel, failures, stragglers, guard rails and
//! effect on alerts (see `fleetwatch::analyze::ota`).

use super::Status;
use crate::cli::{Selection, conclude, stdout_write};
use anyhow::{Result, bail};
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport, CodeFilter, Dim, TapFactory};
use fleetwatch::analyze::change::ChangeSplit;
use fleetwatch::analyze::ota::campaign::Campaigns;
use fleetwatch::analyze::ota::device::{DeviceOutcome, judge};
use fleetwatch::analyze::ota::effect::{Effect, device_days, effects};
use fleetwatch::analyze::ota::events::{
    DeviceEvents, FIRMWARE_CODES, FirmwareTap, PayloadNames, is_hardware_reason,
};
use fleetwatch::analyze::ota::funnel::{Aggregate, Cohort, cannot_upgrade};
use fleetwatch::analyze::ota::guard::{GuardResult, replay_all};
use fleetwatch::analyze::ota::outcomes::{Outcomes, read_file};
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::stats::percentile;
use fleetwatch::analyze::whatif::DeviceRule;
use fleetwatch::catalogue;
use fleetwatch::model::Interner;
use fleetwatch::model::firmware::Stage;
use fleetwatch::model::firmware::{response_reason, version_octets};
use fleetwatch::model::time::{day_of, format_day, format_timestamp};
use fleetwatch::model::{AlertCode, Day, DeviceId, Region};
use fleetwatch::render::chart::{self, ChartData, LineChart, Series, region_color};
use fleetwatch::render::records::Records;
use fleetwatch::render::{OutputFormat, thousands};
use fleetwatch::source::expand_inputs;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub struct OtaConfig {
    /// The alert inputs (evidence and the effect), inventory, filters and read options.
    pub selection: Selection,
    pub campaign: Option<PathBuf>,
    pub targets: Option<String>,
    pub target_version: Option<String>,
    pub name: String,
    pub outcomes: Vec<PathBuf>,
    pub max_failures: u32,
    pub guard_threshold: f64,
    pub guard_min_devices: u64,
    pub out: Option<PathBuf>,
    pub format: OutputFormat,
}

/// Everything the command found, as tables.
struct Tables {
    funnel: Records,
    failures: Records,
    stragglers: Records,
    stragglers_by: Records,
    guards: Records,
    effect: Records,
    summary: Vec<String>,
}

pub fn run(cfg: OtaConfig) -> Result<Status> {
    let t0 = Instant::now();
    // The evidence is a fixed set of firmware codes: --codes narrows the effect table instead.
    let codes = cfg.selection.filters.codes.clone();
    let selection = Selection {
        filters: cfg.selection.filters.without_codes(),
        ..cfg.selection.clone()
    };
    let engine = selection.engine()?;
    let inv = engine.inventory();
    let outcome_inputs = if cfg.outcomes.is_empty() {
        Vec::new()
    } else {
        expand_inputs(&cfg.outcomes)?
    };
    let mut names: Vec<String> = engine.names().to_vec();
    let alert_count = names.len();
    // Outcome records.
    let (mut reasons, mut versions) = (Interner::default(), Interner::default());
    let mut outcomes = Outcomes::default();
    for (i, input) in outcome_inputs.iter().enumerate() {
        names.push(input.name());
        read_file(
            input,
            alert_count + i,
            &mut outcomes,
            &mut reasons,
            &mut versions,
        )?;
    }
    // The campaign.
    let mut campaigns = match (&cfg.campaign, &cfg.targets) {
        (Some(p), _) => Campaigns::from_file(p)?,
        (None, Some(rule)) => {
            let Some(v) = &cfg.target_version else {
                bail!("--targets needs --target-version");
            };
            let (rule, unknown) =
                DeviceRule::parse(rule, inv).map_err(|e| anyhow::anyhow!("--targets: {e}"))?;
            if !unknown.is_empty() {
                eprintln!(
                    "warning: --targets: no device in the inventory has {}",
                    unknown.join(", ")
                );
            }
            Campaigns::from_rule(&rule, inv, &cfg.name, v)
        }
        (None, None) => {
            let Some(v) = &cfg.target_version else {
                bail!(
                    "without --campaign or --targets, the targets are the devices the outcome records name, and --target-version is needed"
                );
            };
            Campaigns::from_outcomes(&outcomes, v)
        }
    };
    if let Some(v) = &cfg.target_version {
        // An explicit version overrides the file's for every campaign.
        let id = campaigns.versions.id(v);
        campaigns.target_version.iter_mut().for_each(|t| *t = id);
    }
    // The device filters narrow the targets.
    let devices = &engine.scope().devices;
    if !devices.is_all() {
        campaigns.targets.retain(|&id, _| {
            inv.lookup(DeviceId(id))
                .is_some_and(|i| devices.matches(&i))
        });
    }
    if campaigns.targets.is_empty() {
        bail!("the campaign targets no device");
    }
    eprintln!(
        "campaign: {} targeted devices in {} campaign(s)",
        thousands(campaigns.targets.len() as u64),
        campaigns.names.names.len() - 1
    );
    // Events: outcome rows (mapped into the campaigns' version numbering) and firmware alerts.
    let mut events: DeviceEvents = FxHashMap::default();
    let mut outside = 0u64;
    for row in &outcomes.rows {
        if !campaigns.targets.contains_key(&row.device) {
            outside += 1;
            continue;
        }
        let mut e = row.event;
        e.version = campaigns.versions.id(versions.name(e.version));
        events.entry(row.device).or_default().push(e);
    }
    let targets: Arc<FxHashSet<u64>> = Arc::new(campaigns.targets.keys().copied().collect());
    let mut payload_names = PayloadNames::default();
    for stage in [Stage::Transfer, Stage::Activation] {
        for code in 1..=3u8 {
            payload_names
                .reasons
                .insert((stage, code), reasons.id(response_reason(stage, code)));
        }
    }
    for &v in &campaigns.target_version {
        if let Some(octets) = version_octets(campaigns.versions.name(v)) {
            payload_names.versions.push((octets, v));
        }
    }
    payload_names.other_version = campaigns.versions.id("(another version)");
    let payload_names = Arc::new(payload_names);
    let mut alert_report = None;
    if engine.has_inputs() {
        let (t, n) = (targets.clone(), payload_names.clone());
        let query = AlertQuery {
            by: vec![],
            codes: Some(CodeFilter {
                codes: FIRMWARE_CODES
                    .iter()
                    .map(|&c| AlertCode::device(c))
                    .collect(),
                categories: vec![],
            }),
            distinct: false,
            tap: Some(TapFactory(Arc::new(move || {
                Box::new(FirmwareTap {
                    targets: t.clone(),
                    names: n.clone(),
                    events: FxHashMap::default(),
                })
            }))),
            ..Default::default()
        };
        let mut answer = engine.answer_one(query);
        if let Some(tap) = answer.tap_as::<FirmwareTap>() {
            for (d, mut v) in tap.events {
                events.entry(d).or_default().append(&mut v);
            }
        }
        alert_report = Some(answer.report);
    }
    // Judge every targeted device.
    let mut models = Interner::default();
    let mut agg = Aggregate::default();
    let mut judged: Vec<(u64, Cohort, DeviceOutcome)> = Vec::with_capacity(campaigns.targets.len());
    let mut ids: Vec<u64> = campaigns.targets.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let t = campaigns.targets[&id];
        let target_version = campaigns
            .target_version
            .get(t.campaign as usize)
            .copied()
            .unwrap_or(0);
        let mut ev = events.remove(&id).unwrap_or_default();
        let o = judge(&mut ev, target_version);
        let info = inv.lookup(DeviceId(id));
        let model = match campaigns.models.name(t.model) {
            "" => info.map(|i| inv.model_name(i.model)).unwrap_or(""),
            m => m,
        };
        let c = Cohort {
            campaign: t.campaign,
            region: info.map_or(Region::Unknown, |i| i.region),
            model: models.id(model),
            source: t.source,
        };
        agg.add(c, &o);
        judged.push((id, c, o));
    }
    agg.finish();
    let mut tables = build_tables(&cfg, &campaigns, &reasons, &models, &agg, &judged);
    // The firmware's effect needs a second read of the alerts, with the upgrade days known.
    let mut effect_rows = Vec::new();
    if let Some(report) = &alert_report
        && let Some((first, last)) = report.period.or_else(|| period_of(&judged))
    {
        let split = Arc::new(ChangeSplit {
            changed: judged
                .iter()
                .map(|(id, _, o)| (*id, o.upgraded_at.map(day_of)))
                .collect(),
        });
        let query = AlertQuery {
            by: vec![Dim::Day, Dim::Code, Dim::Model],
            distinct: false,
            split: Some(split.clone()),
            ..Default::default()
        };
        let by_day = engine.answer_one(query).report;
        let dd = device_days(
            &split,
            |d| {
                inv.lookup(DeviceId(d))
                    .map_or((0, None), |i| (i.model, i.installed))
            },
            first,
            last,
        );
        effect_rows = effects(&by_day, &dd)
            .into_iter()
            .filter(|e| e.code.device_code().and_then(Stage::from_code).is_none())
            .filter(|e| e.alerts_after + e.alerts_before >= 30)
            .filter(|e| codes.as_ref().is_none_or(|f| f.matches(e.code)))
            .collect();
        effect_rows.sort_by(|a, b| {
            let size = |e: &Effect| e.ratio().map_or(0.0, f64::abs);
            size(b).total_cmp(&size(a)).then(a.code.cmp(&b.code))
        });
    }
    tables.effect = effect_table(&effect_rows);
    render(&cfg, &tables, &campaigns, &agg)?;
    // Totals: the outcome records', then the alerts'.
    if !outcome_inputs.is_empty() {
        let accepted = outcomes.rows.len() as u64;
        eprintln!(
            "outcome records read {} = accepted {} + duplicates {} + rejected {}{}",
            thousands(outcomes.read),
            thousands(accepted),
            thousands(outcomes.duplicates),
            thousands(outcomes.rejects.len() as u64),
            if outside > 0 {
                format!(
                    " ({} accepted rows name devices outside the campaign)",
                    thousands(outside)
                )
            } else {
                String::new()
            }
        );
    }
    let mut report = alert_report.unwrap_or_else(AlertReport::empty);
    report.add_rejects(outcomes.rejects);
    conclude(
        &report,
        &engine.errors(),
        &names,
        &cfg.selection.rejects,
        t0,
    )
}

fn period_of(judged: &[(u64, Cohort, DeviceOutcome)]) -> Option<(Day, Day)> {
    let first = judged.iter().filter_map(|j| j.2.first_seen).min()?;
    let last = judged.iter().filter_map(|j| j.2.last_seen).max()?;
    Some((day_of(first), day_of(last)))
}

fn build_tables(
    cfg: &OtaConfig,
    campaigns: &Campaigns,
    reasons: &Interner,
    models: &Interner,
    agg: &Aggregate,
    judged: &[(u64, Cohort, DeviceOutcome)],
) -> Tables {
    let version = |v: u16| match campaigns.versions.name(v) {
        "" => "(unknown)".to_string(),
        s => s.to_string(),
    };
    let model = |m: u16| match models.name(m) {
        "" => "(unknown)".to_string(),
        s => s.to_string(),
    };
    let reason = |r: u16| match reasons.name(r) {
        "" => "(no reason given)".to_string(),
        s => s.to_string(),
    };
    // Funnel.
    let mut funnel = Records::new(&[
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
    for (c, f) in &agg.funnel {
        funnel.push(vec![
            campaigns.names.name(c.campaign).to_string(),
            c.region.name().to_string(),
            model(c.model),
            version(c.source),
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
    // Failures Pareto.
    let mut failures = Records::new(&[
        ("stage", false),
        ("reason", false),
        ("model", false),
        ("region", false),
        ("devices", true),
        ("cumulative_share", true),
    ]);
    let mut fl: Vec<_> = agg.failures.iter().collect();
    fl.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let total_fail: u64 = fl.iter().map(|x| x.1).sum();
    let mut cum = 0;
    for (k, n) in fl {
        cum += n;
        failures.push(vec![
            k.stage.name().to_string(),
            reason(k.reason),
            model(k.model),
            k.region.name().to_string(),
            n.to_string(),
            format!("{:.4}", cum as f64 / total_fail.max(1) as f64),
        ]);
    }
    // Devices that cannot be upgraded remotely.
    let hardware = |r: u16| is_hardware_reason(reasons, r);
    let mut stragglers = Records::new(&[
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
    let mut by: BTreeMap<(Region, u16), u64> = BTreeMap::new();
    for (id, c, o) in judged
        .iter()
        .filter(|j| cannot_upgrade(&j.2, hardware, cfg.max_failures))
    {
        *by.entry((c.region, c.model)).or_default() += 1;
        stragglers.push(vec![
            DeviceId(*id).to_string(),
            campaigns.names.name(c.campaign).to_string(),
            c.region.name().to_string(),
            model(c.model),
            o.attempts.to_string(),
            o.failed_attempts.to_string(),
            o.last_failed_stage
                .map(|s| s.name())
                .unwrap_or("")
                .to_string(),
            reason(o.last_reason),
            o.last_seen.map(format_timestamp).unwrap_or_default(),
        ]);
    }
    let mut stragglers_by = Records::new(&[("region", false), ("model", false), ("devices", true)]);
    for ((r, m), n) in by {
        stragglers_by.push(vec![r.name().to_string(), model(m), n.to_string()]);
    }
    // Guard rails, per region and per model.
    let mut per_region: BTreeMap<String, Vec<(Day, bool)>> = BTreeMap::new();
    let mut per_model: BTreeMap<String, Vec<(Day, bool)>> = BTreeMap::new();
    for (_, c, o) in judged {
        if let Some(f) = first_finish(o) {
            per_region
                .entry(c.region.name().to_string())
                .or_default()
                .push(f);
            per_model.entry(model(c.model)).or_default().push(f);
        }
    }
    let mut guards = Records::new(&[
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
    for (group, results) in [
        (
            "region",
            replay_all(per_region, cfg.guard_threshold, cfg.guard_min_devices),
        ),
        (
            "model",
            replay_all(per_model, cfg.guard_threshold, cfg.guard_min_devices),
        ),
    ] {
        for (value, g) in results {
            guards.push(guard_row(group, &value, &g));
        }
    }
    let mut summary = Vec::new();
    for (i, name) in campaigns.names.names.iter().enumerate().skip(1) {
        let f = agg.campaign_total(i as u16);
        if f.targeted == 0 {
            continue;
        }
        let tv = campaigns
            .versions
            .name(campaigns.target_version.get(i).copied().unwrap_or(0));
        let hours = agg
            .hours_to_upgrade
            .get(&(i as u16))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let pct =
            |p: f64| percentile(hours, p).map_or("n/a".into(), |h| format!("{:.1} days", h / 24.0));
        summary.push(format!(
            "{name} to {tv}: {} targeted, {} running it ({:.1}%), {} failed and not upgraded, {} in progress, {} never heard from, {} not started",
            thousands(f.targeted),
            thousands(f.running),
            f.running as f64 * 100.0 / f.targeted as f64,
            thousands(f.failed),
            thousands(f.in_progress),
            thousands(f.never_heard_from),
            thousands(f.not_started),
        ));
        summary.push(format!(
            "  time to upgrade (first event to running it): median {}, p90 {}, p99 {}",
            pct(0.5),
            pct(0.9),
            pct(0.99)
        ));
    }
    summary.push(format!(
        "{} devices likely cannot be upgraded remotely (hardware mismatch, or {} failed attempts or more)",
        thousands(stragglers.rows.len() as u64),
        cfg.max_failures
    ));
    Tables {
        funnel,
        failures,
        stragglers,
        stragglers_by,
        guards,
        effect: Records::default(),
        summary,
    }
}

/// The day a device finished its first attempt, and whether that attempt failed: its first
/// failure or its first activation (or upgrade), whichever came first.
fn first_finish(o: &DeviceOutcome) -> Option<(Day, bool)> {
    match (o.first_failure_at, o.first_activated_at) {
        (Some(f), Some(a)) if a < f => Some((day_of(a), false)),
        (Some(f), _) => Some((day_of(f), true)),
        (None, Some(a)) => Some((day_of(a), false)),
        (None, None) => None,
    }
}

fn guard_row(group: &str, value: &str, g: &GuardResult) -> Vec<String> {
    vec![
        group.to_string(),
        value.to_string(),
        g.finished.to_string(),
        g.failed.to_string(),
        format!("{:.4}", g.failed as f64 / g.finished.max(1) as f64),
        format!("{:.4}", g.lower_bound),
        g.tripped.map(|t| format_day(t.0)).unwrap_or_default(),
        g.tripped.map(|t| t.1.to_string()).unwrap_or_default(),
        g.tripped.map(|t| t.2.to_string()).unwrap_or_default(),
    ]
}

fn effect_table(rows: &[Effect]) -> Records {
    let mut r = Records::new(&[
        ("alert_code", false),
        ("name", false),
        ("alerts_after", true),
        ("alerts_before", true),
        ("upgraded_after_per_1000", true),
        ("upgraded_before_per_1000", true),
        ("control_after_per_1000", true),
        ("control_before_per_1000", true),
        ("difference_per_1000", true),
        ("relative_effect", true),
    ]);
    for e in rows {
        r.push(vec![
            e.code.to_string(),
            catalogue::describe(e.code).chars().take(48).collect(),
            e.alerts_after.to_string(),
            e.alerts_before.to_string(),
            format!("{:.4}", e.a),
            format!("{:.4}", e.b),
            format!("{:.4}", e.c_after),
            format!("{:.4}", e.c_before),
            format!("{:.4}", e.difference()),
            e.ratio().map_or("n/a".into(), |x| format!("{x:.4}")),
        ]);
    }
    r
}

fn render(cfg: &OtaConfig, t: &Tables, campaigns: &Campaigns, agg: &Aggregate) -> Result<()> {
    let sections: [(&str, &str, &Records); 6] = [
        (
            "funnel",
            "Funnel (devices) per campaign, region, model and source version",
            &t.funnel,
        ),
        (
            "failures",
            "Failures by stage, reason, model and region (devices affected, Pareto)",
            &t.failures,
        ),
        (
            "cannot_upgrade",
            "Devices that likely cannot be upgraded remotely",
            &t.stragglers,
        ),
        (
            "cannot_upgrade_by_region_model",
            "... per region and model",
            &t.stragglers_by,
        ),
        (
            "guard_rails",
            "Guard rails (replay): failure rate of devices that finished an attempt; trips when the 95% Wilson lower bound exceeds the threshold",
            &t.guards,
        ),
        (
            "firmware_effect",
            "Did the firmware help? Difference in differences per code (upgraded devices after vs before, against devices not yet upgraded on the same days)",
            &t.effect,
        ),
    ];
    stdout_write(|w| match cfg.format {
        OutputFormat::Json => {
            let mut doc = serde_json::Map::new();
            doc.insert("summary".into(), json!(t.summary));
            doc.insert("guard_threshold".into(), json!(cfg.guard_threshold));
            for (key, _, r) in &sections {
                doc.insert((*key).into(), serde_json::Value::Array(r.json_rows()));
            }
            serde_json::to_writer_pretty(&mut *w, &serde_json::Value::Object(doc))?;
            writeln!(w)
        }
        OutputFormat::Csv => t.funnel.write(w, OutputFormat::Csv, json!(null)),
        OutputFormat::Table => {
            for line in &t.summary {
                writeln!(w, "{line}")?;
            }
            for (key, title, r) in &sections {
                writeln!(w, "\n{title}")?;
                let limit = if *key == "cannot_upgrade" { 20 } else { 40 };
                let mut shown = (*r).clone();
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
    })?;
    if let Some(dir) = &cfg.out {
        std::fs::create_dir_all(dir)?;
        for (key, _, r) in &sections {
            let f = std::fs::File::create(dir.join(format!("{key}.csv")))?;
            let mut w = std::io::BufWriter::new(f);
            r.write(&mut w, OutputFormat::Csv, json!(null))?;
            w.flush()?;
        }
        let chart_path = dir.join("upgraded_per_region.png");
        chart::save(&cumulative_chart(agg, campaigns), &chart_path)?;
        eprintln!(
            "tables (CSV) and {} written to {}",
            file_name(&chart_path),
            dir.display()
        );
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Devices running the target version, cumulative per region and day.
fn cumulative_chart(agg: &Aggregate, campaigns: &Campaigns) -> ChartData {
    let days: Vec<Day> = agg
        .upgrades_per_day
        .values()
        .flat_map(|m| m.keys().copied())
        .collect();
    let (first, last) = (
        days.iter().copied().min().unwrap_or(0),
        days.iter().copied().max().unwrap_or(0),
    );
    let series = agg
        .upgrades_per_day
        .iter()
        .map(|(region, per_day)| {
            let mut total = 0u64;
            Series {
                name: region.name().to_string(),
                color: region_color(*region),
                points: (first..=last)
                    .map(|d| {
                        total += per_day.get(&d).copied().unwrap_or(0);
                        (d, total as f64)
                    })
                    .collect(),
            }
        })
        .collect();
    let names: Vec<&str> = campaigns
        .names
        .names
        .iter()
        .skip(1)
        .map(String::as_str)
        .collect();
    ChartData::Line(LineChart {
        title: format!(
            "Devices running the target version, cumulative: {}",
            names.join(", ")
        ),
        y_label: "devices upgraded".into(),
        series,
        markers: Vec::new(),
        days: (first, last),
    })
}
