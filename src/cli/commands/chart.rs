//! `fleetwatch chart`: one chart, PNG or SVG.

use super::Status;
use anyhow::Result;
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport, CodeFilter, Dim};
use fleetwatch::analyze::labels::Labels;
use fleetwatch::engine::pipeline::SourceError;
use fleetwatch::engine::scan::ReadOptions;
use fleetwatch::inventory::Inventory;
use fleetwatch::render::chart::{self, ChartKind};
use fleetwatch::source::{Input, expand_inputs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Which alerts a chart or report is drawn from.
pub struct Selection {
    pub inputs: Vec<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub codes: Option<CodeFilter>,
    pub read: ReadOptions,
    pub labels: Arc<Labels>,
}

/// A selection's inputs expanded and its inventory loaded.
pub struct Loaded {
    pub inputs: Vec<Input>,
    pub inventory: Inventory,
    pub names: Vec<String>,
    /// "all codes", or the filter: for chart titles.
    pub what: String,
}

impl Selection {
    pub fn load(&self) -> Result<Loaded> {
        let inputs = expand_inputs(&self.inputs)?;
        let inventory =
            super::alerts::inventory_or_empty(self.inventory.as_deref(), self.read.threads)?;
        Ok(Loaded {
            names: inputs.iter().map(Input::name).collect(),
            inputs,
            inventory,
            what: self
                .codes
                .as_ref()
                .map(|c| format!("codes {c}"))
                .unwrap_or_else(|| "all codes".into()),
        })
    }

    /// The alert report grouped by `by`, over the selected codes. With reclassification rules
    /// (`--labels`), codes are grouped by their labels.
    pub fn report(&self, l: &Loaded, by: [Dim; 2]) -> (AlertReport, Vec<SourceError>) {
        let (mut reports, errors) = self.reports(l, &[by]);
        (reports.remove(0), errors)
    }

    /// Several groupings from one read of the inputs (the first report's totals are the run's).
    pub fn reports(
        &self,
        l: &Loaded,
        groupings: &[[Dim; 2]],
    ) -> (Vec<AlertReport>, Vec<SourceError>) {
        let labels = !self.labels.is_empty();
        let label_for_code = |d: Dim| {
            if labels && d == Dim::Code {
                Dim::Label
            } else {
                d
            }
        };
        let queries: Vec<AlertQuery> = groupings
            .iter()
            .map(|by| AlertQuery {
                by: by.iter().map(|&d| label_for_code(d)).collect(),
                codes: self.codes.clone(),
                labels: self.labels.clone(),
                ..Default::default()
            })
            .collect();
        super::alerts::compute_many(&l.inputs, &l.inventory, &queries, &self.read)
    }
}

pub struct ChartConfig {
    pub kind: ChartKind,
    pub selection: Selection,
    pub out: PathBuf,
    pub rejects: PathBuf,
}

pub fn run(cfg: ChartConfig) -> Result<Status> {
    let t0 = Instant::now();
    let l = cfg.selection.load()?;
    let (report, errors) = cfg.selection.report(&l, cfg.kind.grouping());
    let data = chart::build(cfg.kind, &report, &l.what);
    chart::save(&data, &cfg.out)?;
    eprintln!("chart written to {}: {}", cfg.out.display(), data.title());
    super::alerts::conclude(
        &report,
        &errors,
        &l.names,
        &cfg.rejects,
        t0.elapsed().as_secs_f64(),
    )
}
