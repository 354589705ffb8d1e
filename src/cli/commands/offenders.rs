//! `fleetwatch offenders --codes CODE`: who is behind a code's volume: the top devices, how
//! concentrated the volume is, the rate per model and firmware version, and its trend. The
//! analysis is `analyze::offenders`; the output `render::offenders`.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::Result;
use fleetwatch::analyze::alerts::AlertReport;
use fleetwatch::analyze::offenders;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::render::offenders::Heading;
pub use fleetwatch::render::offenders::Show;
use fleetwatch::render::{self, OutputFormat};
use std::time::Instant;

pub struct OffendersConfig {
    pub selection: Selection,
    pub top: usize,
    pub show: Show,
    pub format: OutputFormat,
}

pub fn run(cfg: OffendersConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let reports: Vec<AlertReport> = engine
        .answer(&offenders::queries())
        .into_iter()
        .map(|a| a.report)
        .collect();
    let o = offenders::analyse(&reports[0], &reports[1], engine.inventory(), cfg.top);
    let what = cfg.selection.what();
    let heading = Heading {
        what: &what,
        filters: engine.filters(),
        totals: &reports[0].totals,
    };
    let inv = engine.inventory();
    stdout_write(|w| render::offenders::write(w, &o, inv, &heading, cfg.format, cfg.show))?;
    conclude_run(&reports[0], &engine, &cfg.selection.rejects, t0)
}
