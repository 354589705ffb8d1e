//! `fleetwatch export`: the events, the daily table and the device table as Hive-partitioned
//! Parquet (the library's `export`), made visible only when every input was read.

use super::Status;
use crate::cli::{Selection, conclude_run};
use anyhow::{Context, Result};
use fleetwatch::analyze::alerts::Dedup;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::export::{ExportConfig, export, read_side_columns, run_id};
use fleetwatch::render::{self, parquet::DatasetSummary};
use std::path::PathBuf;
use std::time::Instant;

/// Everything `export` needs, resolved from the command line.
pub struct ExportRun {
    pub selection: Selection,
    pub out: PathBuf,
    pub dedup: Dedup,
    pub row_group: usize,
    pub buffer_rows: usize,
    /// The filters and options in the run id.
    pub settings: String,
}

pub fn run(cfg: ExportRun) -> Result<Status> {
    crate::cli::allocator::keep_freed_memory();
    let t0 = Instant::now();
    let s = &cfg.selection;
    let side_inputs: Vec<PathBuf> = s.outcomes.iter().chain(&s.campaign).cloned().collect();
    let run = run_id(
        &s.inputs,
        &side_inputs,
        s.inventory.as_deref(),
        &cfg.settings,
    )?;
    let inventory_identity = run_id(&[], &[], s.inventory.as_deref(), "device table")?.0;
    let engine = s.engine()?;
    let side = match &s.inventory {
        Some(p) if !engine.inventory().devices.is_empty() => read_side_columns(p)
            .with_context(|| format!("{}: cannot read the cohort and hub columns", p.display()))?,
        _ => None,
    };
    if s.inventory.is_some() && engine.inventory().devices.is_empty() {
        eprintln!(
            "note: the inventory is a count table: no inventory/ dataset (the Spark job needs one row per device)"
        );
    }
    let ecfg = ExportConfig {
        dedup: cfg.dedup,
        row_group: cfg.row_group,
        buffer_rows: cfg.buffer_rows,
        threads: s.read.threads,
        inventory_identity,
        ..ExportConfig::new(cfg.out.clone(), run.clone())
    };
    let names = engine.names()[..engine.alert_input_count()].to_vec();
    let pending = export(&engine, &names, side.as_ref(), &ecfg)?;
    if !engine.errors().is_empty() {
        let report = pending.report.clone();
        pending.abort();
        eprintln!(
            "note: an input could not be read: nothing was written to {} (a re-run once it reads replaces nothing and adds the run's files)",
            cfg.out.display()
        );
        return conclude_run(&report, &engine, &s.rejects, t0);
    }
    let report = pending.report.clone();
    let unchanged = pending
        .inventory_unchanged
        .then_some(pending.inventory_rows);
    let summary = pending.commit()?;
    let line = |what: &str, d: &DatasetSummary| {
        eprintln!(
            "{what:<10} {} in {}, {:.1} MB{}",
            render::count_of(d.rows, "row", "rows"),
            render::count_of(d.files, "file", "files"),
            d.bytes as f64 / 1e6,
            if d.replaced > 0 {
                format!(
                    " (replacing {})",
                    render::count_of(d.replaced, "earlier file", "earlier files")
                )
            } else {
                String::new()
            }
        )
    };
    eprintln!("export to {} (run {run}):", cfg.out.display());
    line("events/", &summary.events);
    line("daily/", &summary.daily);
    match (unchanged, &summary.inventory) {
        (Some(n), _) => eprintln!(
            "inventory/ {} devices, kept: written from this inventory before",
            render::thousands(n.unwrap_or(0))
        ),
        (None, Some(i)) => line("inventory/", i),
        (None, None) => {}
    }
    conclude_run(&report, &engine, &s.rejects, t0)
}
