//! `fleetwatch migration`: SMETS1 migration per cohort and week, with charts (see
//! `fleetwatch::analyze::migration`).

use super::Status;
use crate::cli::{Selection, conclude, stdout_write};
use anyhow::{Result, anyhow};
use fleetwatch::analyze::alerts::AlertReport;
use fleetwatch::analyze::migration::log::read_migrations;
use fleetwatch::analyze::migration::report::{
    MigrationReport, alert_rates, cohort_sizes, read_logs,
};
use fleetwatch::analyze::migration::weekly::PaceParams;
use fleetwatch::render::{OutputFormat, migration};
use fleetwatch::source::{Input, expand_inputs};
use std::path::{Path, PathBuf};
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

/// Reads the logs, the inventory's migrations and the cohort sizes, and analyses them (the
/// logs' rejects point at sources from `first_source` on).
pub fn build(
    logs: &[Input],
    first_source: usize,
    inventory: Option<&Path>,
    sizes: &[String],
    params: &PaceParams,
) -> Result<MigrationReport> {
    let mut log = read_logs(logs, first_source)?;
    let migrations = match inventory {
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
    let sizes = cohort_sizes(sizes, &mut log.cohorts).map_err(|e| anyhow!("--cohort-size {e}"))?;
    Ok(MigrationReport::analyse(
        log,
        migrations.as_ref(),
        &sizes,
        params,
    ))
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
        let (rates, report) = alert_rates(&m, &engine);
        m.alert_rates = Some(rates);
        alert_report = Some(report);
        names = engine.names().to_vec();
        errors = engine.errors();
    }
    names.extend(logs.iter().map(Input::name));
    stdout_write(|w| migration::write(w, &m, cfg.format))?;
    if let Some(dir) = &cfg.out {
        migration::write_files(dir, &m)?;
        eprintln!(
            "tables (CSV) and charts (PNG, SVG) written to {}",
            dir.display()
        );
    }
    eprintln!("{}", migration::totals_line(&m.log));
    let mut report = alert_report.unwrap_or_else(AlertReport::empty);
    report.add_rejects(std::mem::take(&mut m.log.rejects));
    conclude(&report, &errors, &names, &cfg.selection.rejects, t0)
}
