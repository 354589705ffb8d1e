//! `fleetwatch demo`: generate a medium fleet, run every analysis on it, and say what was
//! found and where each output is. The first command a newcomer runs.

use super::Status;
use super::report::ReportConfig;
use crate::cli::{Selection, conclude};
use anyhow::Result;
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport, Dim};
use fleetwatch::analyze::overview::{region_rates, top_codes};
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::spikes::{find, known};
use fleetwatch::engine::Engine;
use fleetwatch::engine::scan::ReadOptions;
use fleetwatch::generate::{Config, Format, Truth};
use fleetwatch::model::time::format_day;
use fleetwatch::render::report::write_alerts_csv;
use fleetwatch::render::thousands;
use std::path::PathBuf;
use std::time::Instant;

pub struct DemoConfig {
    pub out: PathBuf,
    pub devices: usize,
    pub days: u32,
    pub seed: u64,
}

pub fn run(cfg: DemoConfig) -> Result<Status> {
    let t0 = Instant::now();
    let mut gen_cfg = Config::new(cfg.devices, cfg.days, cfg.seed);
    gen_cfg.format = Format::Csv;
    eprintln!(
        "fleetwatch demo: generating a synthetic fleet of {} devices over {} days (seed {}) in {}",
        thousands(cfg.devices as u64),
        cfg.days,
        cfg.seed,
        cfg.out.display()
    );
    let (truth, gen_secs) = super::generate::run_generate(&gen_cfg, &cfg.out, false)?;
    eprintln!(
        "  generated {} alert records in {:.1}s",
        thousands(truth.counts.alert_records_written),
        gen_secs
    );
    let inv_path = cfg.out.join(&truth.files.inventory);
    let alerts = cfg.out.join(&truth.files.alerts);
    let rejects = cfg.out.join("rejects.jsonl");
    let selection = Selection {
        inputs: vec![alerts.clone()],
        inventory: Some(inv_path.clone()),
        read: ReadOptions::default(),
        rejects: rejects.clone(),
        ..Default::default()
    };
    // The report is the week's briefing over everything the fleet has: the OTA campaign and
    // its outcome records, and the migration log, whose cohort sizes a user would take from
    // the DCC's figures (the generator's truth here).
    let sizes: Vec<String> = truth
        .migration
        .cohorts
        .iter()
        .map(|c| format!("{}={}", c.cohort, c.devices))
        .collect();
    let briefing = ReportConfig {
        selection: Selection {
            campaign: Some(cfg.out.join(&truth.files.ota_campaign)),
            outcomes: vec![cfg.out.join(&truth.files.ota_outcomes)],
            firmware_history: true,
            ..selection.clone()
        },
        out: cfg.out.join("report"),
        migration: vec![cfg.out.join(&truth.files.migration)],
        cohort_sizes: sizes.clone(),
        remediate: Vec::new(),
        compare: None,
        target_version: None,
    };
    let drawn = super::report::write(&briefing)?;
    let engine = selection.engine()?;
    let codes = engine
        .answer_one(AlertQuery {
            by: vec![Dim::Generation, Dim::Code],
            ..Default::default()
        })
        .report;
    if let Some(e) = drawn.errors.iter().chain(&engine.errors()).next() {
        anyhow::bail!("{}: {}", e.source, e.message);
    }
    let report = drawn.report;
    write_alerts_csv(
        &cfg.out.join("alerts_by_day_region.csv"),
        &report,
        engine.inventory(),
    )?;
    write_alerts_csv(
        &cfg.out.join("alerts_by_generation_code.csv"),
        &codes,
        engine.inventory(),
    )?;
    let status = conclude(&report, &[], engine.names(), &rejects, t0)?;
    summarize(&truth, &report, &codes);
    spike_summary(&engine, &cfg.out.join(&truth.files.ota_outcomes))?;
    println!();
    println!("Outputs in {}:", cfg.out.display());
    for (f, what) in [
        (truth.files.inventory.as_str(), "the device inventory"),
        (truth.files.alerts.as_str(), "the alert stream"),
        (
            truth.files.ota_campaign.as_str(),
            "the OTA campaign's target devices",
        ),
        (
            truth.files.ota_outcomes.as_str(),
            "OTA outcome records per stage",
        ),
        (truth.files.migration.as_str(), "the SMETS1 migration log"),
        ("truth.json", "what the generator planted"),
        (
            "alerts_by_day_region.csv",
            "alerts and rate per 1,000 devices per day and region",
        ),
        (
            "alerts_by_generation_code.csv",
            "alerts and rate per generation and code",
        ),
        (
            "rejects.jsonl",
            "the planted malformed records, rejected with file, line and reason",
        ),
        (
            "report/report.html",
            "the briefing: findings, then rates, spikes, changes, offenders, OTA and migration (open it in a browser)",
        ),
        (
            "report/",
            "the report's charts as PNG and SVG, and its tables as CSV",
        ),
    ] {
        println!("  {f:32} {what}");
    }
    println!();
    let (a, i) = (alerts.display(), inv_path.display());
    println!("Try:");
    println!("  fleetwatch alerts {a} --inventory {i} --by region,code --codes supply");
    println!(
        "  fleetwatch spikes {a} --inventory {i} --outcomes {} --charts spikes/",
        cfg.out.join(&truth.files.ota_outcomes).display()
    );
    println!("  fleetwatch offenders {a} --inventory {i} --code 81B8");
    println!(
        "  fleetwatch whatif {a} --inventory {i} --remediate model=S1-ELSTER-AS300,firmware=1.2,code=81B8"
    );
    let dir = cfg.out.display();
    println!(
        "  fleetwatch ota {a} --inventory {i} --campaign {dir}/{} --outcomes {dir}/{} --out ota/",
        truth.files.ota_campaign, truth.files.ota_outcomes
    );
    // The cohort sizes, which the DCC publishes, are the generator's here.
    let sized: String = sizes
        .iter()
        .map(|s| format!(" --cohort-size '{s}'"))
        .collect();
    println!(
        "  fleetwatch migration {dir}/{} --inventory {i}{sized} --out migration/",
        truth.files.migration
    );
    // Rejects are planted on purpose: the demo itself succeeded.
    Ok(if status == Status::CompletedWithRejects {
        Status::Ok
    } else {
        status
    })
}

/// The top spike episodes (`fleetwatch spikes --outcomes`) with their explanations, the OTA
/// campaign's own firmware codes apart.
fn spike_summary(engine: &Engine, outcomes: &std::path::Path) -> Result<()> {
    let by = [Dim::Region, Dim::Code, Dim::DeviceType];
    let records = fleetwatch::analyze::ota::outcomes::read_all(
        &[fleetwatch::source::Input::File(outcomes.to_path_buf())],
        0,
    )?;
    let clock = engine.scope().clock.clone();
    let setting = find::Setting {
        campaigns: known::runs_from_outcomes(&records.outcomes, &clock, "campaign"),
        clock,
        ..Default::default()
    };
    let folded = find::fold(engine, &by, &setting);
    let found = find::find(&folded, engine.inventory(), &by, &setting);
    println!(
        "  spikes: {} episodes ({} flagged days) in {} of {} region x code x type groups, each device counted at most {} alerts a day; the largest:",
        found.episodes.len(),
        found.spikes.len()
            - found
                .campaign_episodes
                .iter()
                .map(|e| e.days())
                .sum::<usize>(),
        found.flagged_groups,
        found.series.len(),
        setting.params.device_cap,
    );
    for e in found.episodes.iter().take(5) {
        let k = &e.group;
        let days = if e.first_day == e.last_day {
            format!("{:21}", format_day(e.first_day))
        } else {
            format!("{}..{}", format_day(e.first_day), format_day(e.last_day))
        };
        println!(
            "    {days} {:10} {:4} {:5} {:>7} alerts from {} devices, {:.1} expected: {}",
            k.region.map(|r| r.name()).unwrap_or(""),
            k.code.map(|c| c.to_string()).unwrap_or_default(),
            k.device_type.map(|t| t.name()).unwrap_or(""),
            thousands(e.alerts as u64),
            thousands(e.devices),
            e.expected,
            found.spikes[e.peak].verdict
        );
    }
    if let Some(r) = setting.campaigns.first() {
        println!(
            "  known event: {} campaign episodes ({} flagged days) of the firmware codes during {} ({}..{}), listed apart",
            found.campaign_episodes.len(),
            found
                .campaign_episodes
                .iter()
                .map(|e| e.days())
                .sum::<usize>(),
            r.name,
            format_day(r.first),
            format_day(r.last)
        );
    }
    Ok(())
}

/// Prints what the demo found, set against what the generator planted.
fn summarize(truth: &Truth, by_day_region: &AlertReport, by_gen_code: &AlertReport) {
    let t = &by_day_region.totals;
    println!();
    println!("What fleetwatch found");
    println!(
        "  records read {} = accepted {} + duplicates {} + rejected {}",
        thousands(t.read),
        thousands(t.accepted_alerts),
        thousands(t.duplicates),
        thousands(t.rejected)
    );
    println!(
        "  (planted: {} alerts, {} duplicates, {} malformed)",
        thousands(truth.counts.accepted_records),
        thousands(truth.counts.duplicates),
        thousands(truth.counts.malformed)
    );
    // Rate per region, and the day furthest above its region's median.
    let (rates, worst) = region_rates(by_day_region);
    println!("  alerts per 1,000 devices per day, median over the period:");
    for r in &rates {
        println!("    {:12} {:8.1}", r.region, r.median);
    }
    if let Some(w) = worst {
        println!(
            "  biggest departure: {} on {}: {:.1} per 1,000 devices, {:.1}x its median of {:.1}",
            w.region,
            format_day(w.day),
            w.rate,
            w.times,
            w.median
        );
        println!(
            "  (planted incident: {} hubs in {} lost connection on {}, {} to {})",
            thousands(truth.incident.hubs as u64),
            truth.incident.region,
            truth.incident.day,
            &truth.incident.start[11..16],
            &truth.incident.end[11..16]
        );
    }
    for t in top_codes(by_gen_code) {
        let g = if t.generation == "Unknown" {
            "devices not in the inventory"
        } else {
            &t.generation
        };
        let code = t
            .code
            .map(|c| format!("{c} {}", fleetwatch::catalogue::describe(c)))
            .unwrap_or_default();
        println!(
            "  top code on {g}: {code}: {} alerts, {:.0}% of the generation's volume",
            thousands(t.alerts),
            100.0 * t.alerts as f64 / t.total.max(1) as f64
        );
    }
    println!(
        "  OTA campaign {}: {} devices targeted, {} upgraded, {} never heard from (see {})",
        truth.ota.campaign,
        thousands(truth.ota.targeted as u64),
        thousands(truth.ota.upgraded as u64),
        thousands(truth.ota.never_heard_from as u64),
        truth.files.ota_outcomes
    );
    let migrated: usize = truth
        .migration
        .cohorts
        .iter()
        .map(|c| c.migrated_in_period)
        .sum();
    println!(
        "  SMETS1 migration: {} devices migrated in the period; reports missing on {}",
        thousands(migrated as u64),
        truth.migration.missing_report_days.join(", ")
    );
}
