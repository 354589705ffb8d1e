//! `fleetwatch report`: one self-contained HTML file with the charts (inline SVG), the totals
//! and sortable tables, plus the charts as PNG and SVG and the tables as CSV (see
//! `fleetwatch::render::report`).

use super::Status;
use crate::cli::{Selection, conclude};
use anyhow::Result;
use fleetwatch::analyze::migration::report::MigrationReport;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::engine::Engine;
use fleetwatch::render::chart::ChartKind;
use fleetwatch::render::migration::totals_line;
use fleetwatch::render::report::{ChartReports, PageInfo, create_out_dir};
use fleetwatch::source::pipeline::SourceError;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The quarantine file, beside the report (the report names it).
const REJECTS: &str = "rejects.jsonl";

pub struct ReportConfig {
    pub selection: Selection,
    pub out: PathBuf,
    /// SMETS1 migration logs: their charts and tables join the report.
    pub migration: Vec<PathBuf>,
    /// `FOC=3132`: cohort sizes for the migration forecast.
    pub cohort_sizes: Vec<String>,
}

/// What a report was drawn from: the two groupings every chart needs, and the read's errors
/// and input names.
pub struct Drawn {
    pub charts: ChartReports,
    pub errors: Vec<SourceError>,
    pub names: Vec<String>,
}

pub fn run(cfg: ReportConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let rejects = cfg.out.join(REJECTS);
    let migration = migration_section(
        &cfg.migration,
        engine.names().len(),
        cfg.selection.inventory.as_deref(),
        &cfg.cohort_sizes,
    )?;
    let mut r = write_report(
        &cfg.selection,
        &engine,
        &cfg.out,
        &rejects,
        migration.as_ref(),
    )?;
    if let Some(mut m) = migration {
        r.names
            .extend(cfg.migration.iter().map(|p| p.display().to_string()));
        r.charts
            .by_day_region
            .add_rejects(std::mem::take(&mut m.log.rejects));
    }
    conclude(&r.charts.by_day_region, &r.errors, &r.names, &rejects, t0)
}

/// Reads and analyses the migration logs, if any (rejects point past the alert inputs).
pub fn migration_section(
    logs: &[PathBuf],
    first_source: usize,
    inventory: Option<&Path>,
    sizes: &[String],
) -> Result<Option<MigrationReport>> {
    if logs.is_empty() {
        return Ok(None);
    }
    let inputs = fleetwatch::source::expand_inputs(logs)?;
    let m = super::migration::build(&inputs, first_source, inventory, sizes, &Default::default())?;
    eprintln!("{}", totals_line(&m.log));
    Ok(Some(m))
}

/// Reads both groupings (one read of the inputs) and writes the report, charts and tables into
/// `out`. `rejects` is where the caller writes the quarantine file, which the report names.
pub fn write_report(
    sel: &Selection,
    engine: &Engine,
    out: &Path,
    rejects: &Path,
    migration: Option<&MigrationReport>,
) -> Result<Drawn> {
    create_out_dir(out)?;
    let mut reports =
        super::chart::chart_reports(engine, sel, &[ChartKind::Rate, ChartKind::TopCodes])
            .into_iter();
    let charts = ChartReports {
        by_day_region: reports.next().expect("two reports"),
        by_region_code: reports.next().expect("two reports"),
    };
    let names = engine.names().to_vec();
    let page = PageInfo {
        what: &sel.what(),
        inputs: &names,
        inventory: sel.inventory.as_deref(),
        rejects,
    };
    let path = fleetwatch::render::report::write_report(
        out,
        &charts,
        engine.inventory(),
        migration,
        &page,
    )?;
    eprintln!(
        "report written to {} (charts as PNG and SVG, tables as CSV beside it)",
        path.display()
    );
    Ok(Drawn {
        charts,
        errors: engine.errors(),
        names,
    })
}
