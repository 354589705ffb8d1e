//! `fleetwatch chart`: one chart, PNG or SVG.

use super::Status;
use crate::analyze::alerts::{AlertQuery, AlertReport, CodeFilter, Dim};
use crate::chart::{self, ChartKind};
use crate::inventory::Inventory;
use crate::scan::ReadOptions;
use crate::source::{Input, expand_inputs};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;

pub struct ChartConfig {
    pub kind: ChartKind,
    pub inputs: Vec<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub codes: Option<CodeFilter>,
    pub codes_text: Option<String>,
    pub out: PathBuf,
    pub read: ReadOptions,
    pub rejects: PathBuf,
}

/// The two reports every chart is drawn from: by day x region, and by region x code.
pub struct ChartInputs {
    pub by_day_region: AlertReport,
    pub by_region_code: AlertReport,
    pub errors: Vec<crate::pipeline::SourceError>,
    pub names: Vec<String>,
}

pub fn compute_reports(
    inputs: &[Input],
    inv: &Inventory,
    codes: Option<CodeFilter>,
    read: &ReadOptions,
) -> ChartInputs {
    let q = |by: Vec<Dim>| AlertQuery {
        by,
        codes: codes.clone(),
        ..Default::default()
    };
    let (by_day_region, mut errors) =
        super::alerts::compute(inputs, inv, &q(vec![Dim::Day, Dim::Region]), read);
    let (by_region_code, e2) =
        super::alerts::compute(inputs, inv, &q(vec![Dim::Region, Dim::Code]), read);
    errors.extend(e2);
    ChartInputs {
        by_day_region,
        by_region_code,
        errors,
        names: inputs.iter().map(Input::name).collect(),
    }
}

/// "all codes", or what the filter holds.
pub fn what(codes: Option<&str>) -> String {
    codes
        .map(|c| format!("codes {c}"))
        .unwrap_or_else(|| "all codes".into())
}

pub fn run(cfg: ChartConfig) -> Result<Status> {
    let t0 = Instant::now();
    let inputs = expand_inputs(&cfg.inputs)?;
    let inv = super::alerts::inventory_or_empty(cfg.inventory.as_deref(), cfg.read.threads)?;
    let r = compute_reports(&inputs, &inv, cfg.codes, &cfg.read);
    let data = chart::build(
        cfg.kind,
        &r.by_day_region,
        &r.by_region_code,
        &what(cfg.codes_text.as_deref()),
    );
    chart::save(&data, &cfg.out)?;
    eprintln!("chart written to {}: {}", cfg.out.display(), data.title());
    super::alerts::conclude(
        &r.by_day_region,
        &r.errors,
        &r.names,
        &cfg.rejects,
        t0.elapsed().as_secs_f64(),
    )
}
