//! `fleetwatch alerts`: counts and rates per group, with totals and a quarantine file.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::Result;
use fleetwatch::analyze::alerts::AlertQuery;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::render::{self, OutputFormat};
use std::time::Instant;

/// Everything `alerts` needs, resolved from the command line.
pub struct AlertsConfig {
    pub selection: Selection,
    pub query: AlertQuery,
    pub format: OutputFormat,
}

pub fn run(cfg: AlertsConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let report = engine.answer_one(cfg.query).report;
    stdout_write(|w| {
        render::alerts::write(w, &report, engine.inventory(), engine.filters(), cfg.format)
    })?;
    conclude_run(&report, &engine, &cfg.selection.rejects, t0)
}
