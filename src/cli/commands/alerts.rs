//! `fleetwatch alerts`: counts and rates per group, with totals and a quarantine file; with
//! `--compare`, two periods side by side.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::Result;
use fleetwatch::analyze::alerts::AlertQuery;
use fleetwatch::analyze::compare::compare;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::engine::Filters;
use fleetwatch::model::Day;
use fleetwatch::render::parquet::Dataset;
use fleetwatch::render::parquet::table::write_report;
use fleetwatch::render::{self, OutputFormat};
use std::path::PathBuf;
use std::time::Instant;

/// Everything `alerts` needs, resolved from the command line.
pub struct AlertsConfig {
    pub selection: Selection,
    pub query: AlertQuery,
    /// The period the selected one is compared with.
    pub compare: Option<(Day, Day)>,
    pub output: AlertsOutput,
}

/// Where the table goes.
pub enum AlertsOutput {
    Stdout(OutputFormat),
    /// A Parquet dataset in this directory.
    Parquet(PathBuf),
}

pub fn run(cfg: AlertsConfig) -> Result<Status> {
    let t0 = Instant::now();
    if let Some(period) = cfg.compare {
        return run_compare(cfg, period, t0);
    }
    let engine = cfg.selection.engine()?;
    let settings = parquet_settings(&cfg);
    let report = engine.answer_one(cfg.query).report;
    match &cfg.output {
        AlertsOutput::Stdout(format) => stdout_write(|w| {
            render::alerts::write(w, &report, engine.inventory(), engine.filters(), *format)
        })?,
        AlertsOutput::Parquet(dir) => {
            let s = &cfg.selection;
            let side: Vec<PathBuf> = s.outcomes.iter().chain(&s.campaign).cloned().collect();
            let run =
                fleetwatch::export::run_id(&s.inputs, &side, s.inventory.as_deref(), &settings)?;
            let dataset = Dataset::new(dir, run);
            if engine.errors().is_empty() {
                write_report(&report, engine.inventory(), &dataset)
                    .and_then(|_| dataset.commit())
                    .map(|d| {
                        eprintln!(
                            "wrote {} in {} under {} (run {}{})",
                            render::count_of(d.rows, "row", "rows"),
                            render::count_of(d.files, "Parquet file", "Parquet files"),
                            dir.display(),
                            dataset.run(),
                            if d.replaced > 0 {
                                format!(
                                    ", replacing {} of its earlier run",
                                    render::count_of(d.replaced, "file", "files")
                                )
                            } else {
                                String::new()
                            }
                        )
                    })
                    .inspect_err(|_| dataset.abort())?;
            } else {
                eprintln!("note: an input could not be read: no Parquet file written");
            }
        }
    }
    conclude_run(&report, &engine, &cfg.selection.rejects, t0)
}

/// What changes the rows of a Parquet report besides the inputs (its run id's settings).
fn parquet_settings(cfg: &AlertsConfig) -> String {
    let q = &cfg.query;
    format!(
        "alerts by={:?} dedup={} distinct={} zeros={} filters={:?} columns={:?} labels={:?}",
        q.by,
        q.dedup,
        q.distinct,
        q.zeros,
        cfg.selection.filters.items(),
        cfg.selection.read.columns,
        q.labels
    )
}

/// Both periods from one read: the engine is set up without the period filters, and each
/// query carries its own period.
fn run_compare(cfg: AlertsConfig, base: (Day, Day), t0: Instant) -> Result<Status> {
    let filters = cfg.selection.filters.clone();
    let selection = Selection {
        filters: Filters {
            since: None,
            until: None,
            ..filters.clone()
        },
        ..cfg.selection
    };
    let engine = selection.engine()?;
    let now = AlertQuery {
        since: filters.since,
        until: filters.until,
        ..cfg.query.clone()
    };
    let before = AlertQuery {
        since: Some(base.0),
        until: Some(base.1),
        ..cfg.query
    };
    let mut answers = engine.answer(&[now, before]).into_iter();
    let (now, before) = match (answers.next(), answers.next()) {
        (Some(a), Some(b)) => (a.report, b.report),
        _ => anyhow::bail!("the engine answered fewer queries than it was asked"),
    };
    let c = compare(&now, &before, engine.inventory());
    stdout_write(|w| {
        let format = match cfg.output {
            AlertsOutput::Stdout(f) => f,
            AlertsOutput::Parquet(_) => OutputFormat::Table,
        };
        render::compare::write(w, &c, &now, engine.inventory(), &filters, format)
    })?;
    conclude_run(&now, &engine, &selection.rejects, t0)
}
