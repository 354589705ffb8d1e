//! `fleetwatch generate`: a realistic synthetic fleet, deterministic for a seed.
//!
//! It writes an inventory, an alert stream (CSV, JSON lines or DUIS XML), an OTA campaign with
//! its outcome records, a SMETS1 migration log, and `truth.json`, which says what was planted
//! so tests can check that analyses find it. Every assumption is in `docs/generator.md`.
//!
//! The fleet (a few dozen bytes per device) and the OTA and migration plans are held in
//! memory; alerts are generated and written one day at a time, so the stream can hold
//! hundreds of millions of records. Random draws come from independent streams per purpose
//! (`Rng::fork`), so the same seed gives the same bytes, and the alert records are the same
//! whatever the output format.

pub mod fleet;
mod gbcs;
pub mod migration;
pub mod ota;
pub mod rng;
pub mod stream;
pub mod write;

use crate::model::time::{format_day, format_timestamp};
use crate::model::{Day, DeviceId};
use fleet::{Fleet, MODELS, NO_HUB};
use rng::Rng;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::Result;
use std::io::Write;
use std::path::{Path, PathBuf};
use stream::Stream;
pub use write::Format;
use write::{AlertWriter, Out};

#[derive(Clone, Debug)]
pub struct Config {
    pub devices: usize,
    pub days: u32,
    pub seed: u64,
    pub start: Day,
    pub format: Format,
    pub gzip: bool,
    /// Probability that a malformed record is written before a record.
    pub malformed: f64,
    /// Probability that a record is delivered twice (same message id).
    pub duplicates: f64,
}

impl Config {
    pub fn new(devices: usize, days: u32, seed: u64) -> Config {
        Config {
            devices,
            days,
            seed,
            start: crate::model::time::days_from_civil(2024, 1, 1),
            format: Format::Csv,
            gzip: false,
            malformed: 0.001,
            duplicates: 0.001,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub version: String,
    pub seed: u64,
    pub devices: usize,
    pub days: u32,
    pub start: String,
    pub end: String,
    pub format: Format,
    pub gzip: bool,
    pub malformed_rate: f64,
    pub duplicate_rate: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// Devices in the fleet, SMETS1 devices not (yet) migrated included.
    pub fleet_devices: usize,
    /// Rows of the inventory file.
    pub inventory_devices: usize,
    /// Records (lines, or XML documents) in the alert file, every kind included.
    pub alert_records_written: u64,
    /// Distinct, well-formed alert records: what fleetwatch must accept.
    pub accepted_records: u64,
    /// Occurrences behind them (throttled records stand for several).
    pub alert_occurrences: u64,
    /// Records delivered a second time (same device, code, time and message id).
    pub duplicates: u64,
    /// Malformed records planted, which fleetwatch must reject.
    pub malformed: u64,
    pub malformed_by_kind: BTreeMap<String, u64>,
    /// Accepted records from devices missing from the inventory.
    pub unknown_device_records: u64,
    pub unknown_devices: usize,
    /// Accepted records of DCC alerts (N24 power outage).
    pub dcc_alert_records: u64,
    pub records_by_code: BTreeMap<String, u64>,
    pub records_by_day: BTreeMap<String, u64>,
    pub occurrences_by_region: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Files {
    pub inventory: String,
    pub alerts: String,
    pub ota_campaign: String,
    pub ota_outcomes: String,
    pub migration: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    pub generator: Settings,
    pub files: Files,
    pub counts: Counts,
    pub incident: stream::IncidentTruth,
    pub noisy_devices: Vec<stream::NoisyTruth>,
    pub hot_81b8: Vec<stream::Hot81b8>,
    pub ota: ota::OtaTruth,
    pub migration: migration::MigrationTruth,
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Why a fleet could not be written: the output directory, and the I/O error (which names the
/// file when one was open).
#[derive(Debug, thiserror::Error)]
#[error("{dir}: cannot write the generated fleet: {cause}")]
pub struct GenerateError {
    pub dir: String,
    pub cause: std::io::Error,
}

/// Generates everything into `dir` (created if needed) and returns the truth it also wrote.
pub fn generate(
    cfg: &Config,
    dir: &Path,
    progress: impl FnMut(Day, u64),
) -> std::result::Result<Truth, GenerateError> {
    generate_into(cfg, dir, progress).map_err(|cause| GenerateError {
        dir: dir.display().to_string(),
        cause,
    })
}

fn generate_into(cfg: &Config, dir: &Path, mut progress: impl FnMut(Day, u64)) -> Result<Truth> {
    std::fs::create_dir_all(dir)?;
    let mut fleet = Fleet::build(cfg.seed, cfg.devices, cfg.start, cfg.days);
    let incident_day = stream::incident_day(&fleet, cfg.seed);
    let migration = migration::plan(&mut fleet, cfg.seed, incident_day);
    let mut ota = ota::plan(&fleet, cfg.seed);
    let mut counts = Counts {
        fleet_devices: fleet.devices.len(),
        ..Default::default()
    };
    let inventory = write_inventory(&fleet, &ota, dir, &mut counts)?;
    let (campaign, outcomes) = write_ota(&fleet, &mut ota, cfg.seed, dir)?;
    let migration_path = write_migration(&fleet, &migration, dir)?;

    let mut stream = Stream::new(&fleet, &ota, cfg.seed, incident_day);
    let mut writer = AlertWriter::create(dir, cfg.format, cfg.gzip)?;
    let mut faults = Rng::fork(cfg.seed, "faults");
    let mut recs = Vec::new();
    let mut unknown: HashSet<u64> = HashSet::new();
    let mut kind = 0usize;
    let mut by_code: BTreeMap<u32, u64> = BTreeMap::new();
    for day in cfg.start..cfg.start + cfg.days as Day {
        recs.clear();
        stream.day(day, &mut recs);
        let mut day_records = 0u64;
        for r in &recs {
            if faults.chance(cfg.malformed) {
                let what = writer.malformed(r, kind)?;
                kind += 1;
                counts.malformed += 1;
                *counts.malformed_by_kind.entry(what.into()).or_default() += 1;
            }
            writer.record(r)?;
            day_records += 1;
            counts.accepted_records += 1;
            counts.alert_occurrences += r.count as u64;
            *by_code.entry(r.code.0).or_default() += 1;
            let region = r.region.map(|g| g.name()).unwrap_or("Unknown");
            *counts
                .occurrences_by_region
                .entry(region.into())
                .or_default() += r.count as u64;
            if !r.code.is_device() {
                counts.dcc_alert_records += 1;
            }
            if r.region.is_none() {
                counts.unknown_device_records += 1;
                unknown.insert(r.id);
            }
            if faults.chance(cfg.duplicates) {
                writer.record(r)?;
                counts.duplicates += 1;
            }
        }
        counts.records_by_day.insert(format_day(day), day_records);
        progress(day, writer.records);
    }
    counts.alert_records_written = writer.records;
    counts.records_by_code = by_code
        .into_iter()
        .map(|(c, n)| (crate::model::AlertCode(c).to_string(), n))
        .collect();
    counts.unknown_devices = unknown.len();
    let alerts = writer.finish()?;

    let noisy_devices = stream
        .noisy
        .iter()
        .map(|n| {
            let d = &fleet.devices[n.device as usize];
            stream::NoisyTruth {
                device_id: DeviceId(d.id).to_string(),
                model: d.model_spec().name.into(),
                code: format!("{:04X}", n.code),
                records: n.records,
                alerts: n.alerts,
            }
        })
        .collect();
    let truth = Truth {
        generator: Settings {
            version: env!("CARGO_PKG_VERSION").into(),
            seed: cfg.seed,
            devices: cfg.devices,
            days: cfg.days,
            start: format_day(cfg.start),
            end: format_day(cfg.start + cfg.days as Day - 1),
            format: cfg.format,
            gzip: cfg.gzip,
            malformed_rate: cfg.malformed,
            duplicate_rate: cfg.duplicates,
        },
        files: Files {
            inventory: name(&inventory),
            alerts: name(&alerts),
            ota_campaign: name(&campaign),
            ota_outcomes: name(&outcomes),
            migration: name(&migration_path),
        },
        counts,
        incident: stream.incident_truth.clone(),
        noisy_devices,
        hot_81b8: stream::HOT_81B8
            .iter()
            .map(|(m, fw, x)| stream::Hot81b8 {
                model: m.to_string(),
                firmware: fw.map(str::to_string),
                multiplier: *x,
            })
            .collect(),
        ota: ota.truth.clone(),
        migration: migration.truth.clone(),
    };
    let mut f = std::fs::File::create(dir.join("truth.json"))?;
    serde_json::to_writer_pretty(&mut f, &truth)?;
    f.write_all(b"\n")?;
    Ok(truth)
}

fn write_inventory(
    fleet: &Fleet,
    ota: &ota::OtaPlan,
    dir: &Path,
    counts: &mut Counts,
) -> Result<PathBuf> {
    let mut out = Out::create(dir, "inventory.csv", false)?;
    let w = out.w();
    writeln!(
        w,
        "device_id,device_type,region,generation,model,firmware_version,install_date,comms_hub,cohort,migration_date"
    )?;
    for (i, d) in fleet.devices.iter().enumerate() {
        if !d.in_inventory() {
            continue;
        }
        counts.inventory_devices += 1;
        let fw = if ota.upgraded_at[i] != crate::model::Millis::MAX {
            ota::TARGET_VERSION
        } else {
            d.firmware_name()
        };
        let hub = if d.hub == NO_HUB {
            String::new()
        } else {
            DeviceId(fleet.devices[d.hub as usize].id).to_string()
        };
        let installed = format_day(d.installed);
        let (cohort, migrated) = match d.cohort {
            Some(c) => (c.name(), installed.as_str()),
            None => ("", ""),
        };
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{}",
            DeviceId(d.id),
            d.device_type.name(),
            d.region.name(),
            d.generation.name(),
            MODELS[d.model as usize].name,
            fw,
            installed,
            hub,
            cohort,
            migrated
        )?;
    }
    out.finish()
}

fn write_ota(
    fleet: &Fleet,
    ota: &mut ota::OtaPlan,
    seed: u64,
    dir: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let mut c = Out::create(dir, "ota_campaign.csv", false)?;
    writeln!(
        c.w(),
        "campaign,device_id,model,source_version,target_version"
    )?;
    for &i in &ota.targets {
        let d = &fleet.devices[i as usize];
        writeln!(
            c.w(),
            "{},{},{},{},{}",
            ota::CAMPAIGN,
            DeviceId(d.id),
            d.model_spec().name,
            d.firmware_name(),
            ota::TARGET_VERSION
        )?;
    }
    let campaign = c.finish()?;
    // Outcome rows: mostly in time order; some written a day late (out of order) and some
    // twice (same message id), as real feeds deliver them.
    let mut rng = Rng::fork(seed, "ota-rows");
    let mut o = Out::create(dir, "ota_outcomes.csv", false)?;
    writeln!(
        o.w(),
        "timestamp,device_id,campaign,service_request,stage,outcome,reason,firmware_version,attempt,message_id"
    )?;
    let mut late: Vec<&ota::OtaEvent> = Vec::new();
    let (mut rows, mut dups, mut lates) = (0usize, 0usize, 0usize);
    let mut current_day = Day::MIN;
    let write_row = |w: &mut Out, e: &ota::OtaEvent| -> Result<()> {
        let d = &fleet.devices[e.device as usize];
        writeln!(
            w.w(),
            "{},{},{},{},{},{},{},{},{},{}",
            std::str::from_utf8(&crate::model::time::timestamp_bytes(e.ts)).unwrap(),
            DeviceId(d.id),
            ota::CAMPAIGN,
            e.stage.service_request(),
            e.stage.name(),
            if e.ok { "success" } else { "failure" },
            e.reason,
            if e.stage == ota::Stage::Running {
                ota::TARGET_VERSION
            } else {
                ""
            },
            e.attempt,
            stream::ota_message(e.ts, e.message)
        )?;
        Ok(())
    };
    for e in &ota.events {
        let day = crate::model::time::day_of(e.ts);
        if day != current_day {
            for l in late.drain(..) {
                write_row(&mut o, l)?;
                rows += 1;
            }
            current_day = day;
        }
        if rng.chance(0.01) {
            late.push(e);
            lates += 1;
            continue;
        }
        write_row(&mut o, e)?;
        rows += 1;
        if rng.chance(0.005) {
            write_row(&mut o, e)?;
            rows += 1;
            dups += 1;
        }
    }
    for l in late {
        write_row(&mut o, l)?;
        rows += 1;
    }
    let outcomes = o.finish()?;
    ota.truth.outcome_rows = rows;
    ota.truth.duplicated_rows = dups;
    ota.truth.late_rows = lates;
    Ok((campaign, outcomes))
}

fn write_migration(fleet: &Fleet, plan: &migration::MigrationPlan, dir: &Path) -> Result<PathBuf> {
    let mut out = Out::create(dir, "migration.csv", false)?;
    writeln!(out.w(), "timestamp,device_id,cohort,event,reason")?;
    for e in &plan.events {
        if plan
            .missing_days
            .contains(&crate::model::time::day_of(e.ts))
        {
            continue;
        }
        let d = &fleet.devices[e.device as usize];
        writeln!(
            out.w(),
            "{},{},{},{},{}",
            format_timestamp(e.ts).replace(".000Z", "Z"),
            DeviceId(d.id),
            d.cohort.map(|c| c.name()).unwrap_or(""),
            e.step.name(),
            e.reason
        )?;
    }
    out.finish()
}
