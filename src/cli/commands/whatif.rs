//! `fleetwatch whatif`: the alert volume and rate before and after a remediation, per group
//! (CSP region by default) and overall; and reclassification rules replayed over history,
//! before and after per label and category. One read of the inputs answers every fold. The
//! analysis is `analyze::whatif`; the output `render::whatif`.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::{Result, bail};
use fleetwatch::analyze::alerts::{AlertReport, Dim};
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::whatif::before_after as whatif;
use fleetwatch::analyze::whatif::{DeviceRule, Remediation};
use fleetwatch::inventory::Inventory;
use fleetwatch::render::OutputFormat;
use fleetwatch::render::chart;
use fleetwatch::render::whatif::Whatif;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub struct WhatifConfig {
    pub selection: Selection,
    /// Remediation rules as written (`model=EDMI-ES2,code=81B8`); any may match.
    pub remediate: Vec<String>,
    /// The groups of the before/after table (CSP region by default).
    pub by: Vec<Dim>,
    pub chart: Option<PathBuf>,
    pub format: OutputFormat,
}

pub fn run(cfg: WhatifConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let inv = engine.inventory();
    let remediation = (!cfg.remediate.is_empty())
        .then(|| remediation(&cfg.remediate, inv))
        .transpose()?;
    let labels = &cfg.selection.labels;
    let mut queries = vec![whatif::remediation_query(&cfg.by, remediation.clone())];
    if !labels.is_empty() {
        queries.extend(whatif::relabel_queries(labels));
    }
    let reports: Vec<AlertReport> = engine
        .answer(&queries)
        .into_iter()
        .map(|a| a.report)
        .collect();
    let mut out = Whatif::new(&reports[0], engine.filters(), cfg.selection.what());
    if let Some(rem) = &remediation {
        let effect = whatif::remediation_effect(&reports[0], &cfg.by, rem, inv);
        out.remediation(&effect, &cfg.by, rem, &reports[0].labels, inv);
    }
    if !labels.is_empty() {
        out.relabel(&whatif::label_changes(&reports[1], &reports[2]));
    }
    stdout_write(|w| out.write(w, cfg.format))?;
    if let (Some(path), Some(data)) = (&cfg.chart, out.chart(&cfg.by)) {
        chart::save(&data, path)?;
        eprintln!("chart written to {}", path.display());
    }
    conclude_run(&reports[0], &engine, &cfg.selection.rejects, t0)
}

/// The `--remediate` rules, warning about names no device has.
pub fn remediation(texts: &[String], inv: &Inventory) -> Result<Arc<Remediation>> {
    let mut rules = Vec::new();
    for text in texts {
        let (rule, unknown) =
            DeviceRule::parse(text, inv).map_err(|e| anyhow::anyhow!("--remediate {text}: {e}"))?;
        if !unknown.is_empty() {
            eprintln!(
                "warning: --remediate {text}: no device in the inventory has {}: that part matches nothing",
                unknown.join(", ")
            );
        }
        if rule.needs_devices() && inv.devices.is_empty() {
            bail!(
                "--remediate {text} names devices by their attributes: give the per-device --inventory"
            );
        }
        rules.push(rule);
    }
    Ok(Arc::new(Remediation { rules }))
}
