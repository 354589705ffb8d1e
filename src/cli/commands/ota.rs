//! `fleetwatch ota`: an OTA firmware campaign's funnel, failures, stragglers, guard rails and
//! effect on alerts (see `fleetwatch::analyze::ota`).

use super::Status;
use crate::cli::{Selection, conclude, stdout_write};
use anyhow::{Result, anyhow, bail};
use fleetwatch::analyze::alerts::AlertReport;
use fleetwatch::analyze::ota::campaign::{CampaignSpec, Campaigns};
use fleetwatch::analyze::ota::outcomes::read_all;
use fleetwatch::analyze::ota::run::{OtaParams, OtaResult, analyse};
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::whatif::DeviceRule;
use fleetwatch::engine::Engine;
use fleetwatch::inventory::Inventory;
use fleetwatch::render::{OutputFormat, ota, thousands};
use fleetwatch::source::{Input, expand_inputs};
use std::path::PathBuf;
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

pub fn run(cfg: OtaConfig) -> Result<Status> {
    let t0 = Instant::now();
    let params = OtaParams {
        max_failures: cfg.max_failures,
        guard_threshold: cfg.guard_threshold,
        guard_min_devices: cfg.guard_min_devices,
        codes: cfg.selection.filters.codes.clone(),
    };
    let Evaluated {
        engine,
        inputs,
        mut result,
    } = evaluate(&cfg.selection, &cfg.outcomes, params, |inv| {
        campaign_spec(&cfg, inv)
    })?;
    let tables = ota::tables(&result);
    stdout_write(|w| ota::write(w, &tables, cfg.format, cfg.guard_threshold))?;
    if let Some(dir) = &cfg.out {
        let charts = ota::write_files(dir, &tables, &result)?;
        let names: Vec<String> = charts
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        eprintln!(
            "tables (CSV) and {} written to {}",
            names.join(", "),
            dir.display()
        );
    }
    // Totals: the outcome records', then the alerts'.
    if !inputs.is_empty() {
        eprintln!("{}", ota::outcome_totals(&result.outcome_counts));
    }
    let mut names = engine.names().to_vec();
    names.extend(inputs.iter().map(Input::name));
    let mut report = result
        .alert_report
        .take()
        .unwrap_or_else(AlertReport::empty);
    report.add_rejects(std::mem::take(&mut result.rejects));
    conclude(
        &report,
        &engine.errors(),
        &names,
        &cfg.selection.rejects,
        t0,
    )
}

/// A campaign analysed: the engine that read the alert evidence, the outcome inputs, the result.
pub struct Evaluated {
    pub engine: Engine,
    pub inputs: Vec<Input>,
    pub result: OtaResult,
}

/// Reads the outcome records and the alert evidence and analyses the campaign `spec` names
/// (the `ota` command, and the report's OTA section).
pub fn evaluate(
    selection: &Selection,
    outcomes: &[PathBuf],
    params: OtaParams,
    spec: impl FnOnce(&Inventory) -> Result<CampaignSpec>,
) -> Result<Evaluated> {
    // The evidence is a fixed set of firmware codes: --codes narrows the effect table instead.
    let selection = Selection {
        filters: selection.filters.without_codes(),
        ..selection.clone()
    };
    let engine = selection.engine()?;
    let inv = engine.inventory();
    let inputs = if outcomes.is_empty() {
        Vec::new()
    } else {
        expand_inputs(outcomes)?
    };
    let records = read_all(&inputs, engine.names().len())?;
    let spec = spec(inv)?;
    let campaigns = Campaigns::resolve(&spec, &records.outcomes, inv, &engine.scope().devices)?;
    eprintln!(
        "campaign: {} targeted devices in {} campaign(s)",
        thousands(campaigns.targets.len() as u64),
        campaigns.count()
    );
    let alerts = engine.has_inputs().then_some(&engine as &dyn Reader);
    let result = analyse(campaigns, records, inv, alerts, params);
    Ok(Evaluated {
        engine,
        inputs,
        result,
    })
}

/// Where the targets come from: `--campaign`, `--targets` (parsed against the inventory; a
/// name no device has is a warning), or the outcome records.
fn campaign_spec(cfg: &OtaConfig, inv: &Inventory) -> Result<CampaignSpec> {
    Ok(match (&cfg.campaign, &cfg.targets, &cfg.target_version) {
        (Some(path), _, v) => CampaignSpec::File {
            path: path.clone(),
            target_version: v.clone(),
        },
        (None, Some(rule), Some(v)) => {
            let (rule, unknown) =
                DeviceRule::parse(rule, inv).map_err(|e| anyhow!("--targets: {e}"))?;
            if !unknown.is_empty() {
                eprintln!(
                    "warning: --targets: no device in the inventory has {}",
                    unknown.join(", ")
                );
            }
            CampaignSpec::Rule {
                rule,
                name: cfg.name.clone(),
                target_version: v.clone(),
            }
        }
        (None, Some(_), None) => bail!("--targets needs --target-version"),
        (None, None, Some(v)) => CampaignSpec::Outcomes {
            target_version: v.clone(),
        },
        (None, None, None) => bail!(
            "without --campaign or --targets, the targets are the devices the outcome records name, and --target-version is needed"
        ),
    })
}
