//! `fleetwatch spikes`: days on which a group's alert rate rose well above its own baseline,
//! ranked by excess alerts, each explained by the cohorts (model, firmware, device type,
//! generation, and comms hub model where the inventory links hubs) that carry the excess.
//! The analysis is `analyze::spikes`; the table and charts are `render::spikes`.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::Result;
use fleetwatch::analyze::alerts::Dim;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::spikes::SpikeParams;
use fleetwatch::analyze::spikes::{find, hubs};
use fleetwatch::render::OutputFormat;
use fleetwatch::render::spikes::{self, Shown};
use std::path::PathBuf;
use std::time::Instant;

pub struct SpikesConfig {
    pub selection: Selection,
    /// The dimensions a group is made of (never `Day`).
    pub by: Vec<Dim>,
    pub params: SpikeParams,
    /// Rows to show (0: all).
    pub top: usize,
    pub charts: Option<PathBuf>,
    pub format: OutputFormat,
}

pub fn run(cfg: SpikesConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let report = find::fold(&engine, &cfg.selection.labels, &cfg.by);
    let mut found = find::find(&report, engine.inventory(), &cfg.by, &cfg.params);
    let shown = if cfg.top == 0 {
        found.spikes.len()
    } else {
        cfg.top.min(found.spikes.len())
    };
    // Where the inventory links devices to hubs, the spikes shown are explained by hub model too.
    if let Some(path) = &cfg.selection.inventory
        && let Some(links) = hubs::read(path, engine.inventory())
    {
        let setting = hubs::Setting {
            by: &cfg.by,
            window: cfg.params.window,
            first_day: report.period.map_or(0, |p| p.0),
            reader: &engine,
        };
        hubs::explain(&mut found.spikes[..shown], links, &setting);
    }
    eprintln!(
        "spikes: {} flagged days in {} of {} groups ({} group-days judged)",
        found.spikes.len(),
        found.flagged_groups,
        found.series.len(),
        found.judged
    );
    let view = Shown {
        found: &found,
        shown,
        by: &cfg.by,
        params: &cfg.params,
        report: &report,
        inv: engine.inventory(),
    };
    stdout_write(|w| spikes::write(w, &view, engine.filters(), cfg.format))?;
    if let Some(dir) = &cfg.charts {
        let n = spikes::charts(&view, dir)?;
        eprintln!("  {n} charts written to {}", dir.display());
    }
    conclude_run(&report, &engine, &cfg.selection.rejects, t0)
}
