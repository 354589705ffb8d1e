//! `fleetwatch chart`: one chart, PNG or SVG.

use super::Status;
use crate::cli::{Selection, conclude_run};
use anyhow::Result;
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport};
use fleetwatch::analyze::reader::Reader;
use fleetwatch::engine::Engine;
use fleetwatch::render::chart::{self, ChartKind};
use std::path::PathBuf;
use std::time::Instant;

pub struct ChartConfig {
    pub kind: ChartKind,
    pub selection: Selection,
    pub out: PathBuf,
}

/// The reports the charts of `kinds` are drawn from, from one read of the inputs (the first
/// report's totals are the run's). With reclassification rules, codes are grouped by label.
pub fn chart_reports(engine: &Engine, sel: &Selection, kinds: &[ChartKind]) -> Vec<AlertReport> {
    let labels = !sel.labels.is_empty();
    let queries: Vec<AlertQuery> = kinds
        .iter()
        .map(|k| AlertQuery {
            by: k.grouping_with(labels).to_vec(),
            labels: sel.labels.clone(),
            ..Default::default()
        })
        .collect();
    engine
        .answer(&queries)
        .into_iter()
        .map(|a| a.report)
        .collect()
}

pub fn run(cfg: ChartConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let report = chart_reports(&engine, &cfg.selection, &[cfg.kind]).remove(0);
    let data = chart::build(cfg.kind, &report, &cfg.selection.what());
    chart::save(&data, &cfg.out)?;
    eprintln!("chart written to {}: {}", cfg.out.display(), data.title());
    conclude_run(&report, &engine, &cfg.selection.rejects, t0)
}
