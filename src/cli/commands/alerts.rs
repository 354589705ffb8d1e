//! `fleetwatch alerts`: counts and rates per group, with totals and a quarantine file.

use super::Status;
use super::progress::ProgressDisplay;
use anyhow::{Context, Result};
use fleetwatch::analyze::alerts::{AlertFold, AlertQuery, AlertReport, Folds, Tap};
use fleetwatch::engine::scan::{ReadOptions, scan};
use fleetwatch::inventory::{Inventory, load_inventory};
use fleetwatch::render::{self, OutputFormat};
use fleetwatch::source::{Input, expand_inputs};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything `alerts` needs, resolved from the command line.
pub struct AlertsConfig {
    pub inputs: Vec<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub query: AlertQuery,
    pub read: ReadOptions,
    pub format: OutputFormat,
    pub rejects: PathBuf,
}

/// Loads the inventory (or an empty one), reporting what it found on stderr.
pub fn inventory_or_empty(path: Option<&Path>, threads: usize) -> Result<Inventory> {
    let Some(path) = path else {
        eprintln!("note: no --inventory given: every device counts as Unknown and rates are n/a");
        return Ok(Inventory::default());
    };
    let t0 = Instant::now();
    let threads = if threads == 0 {
        fleetwatch::engine::pipeline::default_threads()
    } else {
        threads
    };
    let (inv, rejects, rejected) = load_inventory(path, threads)
        .with_context(|| format!("{}: cannot load inventory", path.display()))?;
    let what = if inv.is_count_table() {
        format!(
            "count table, {} rows",
            render::thousands(inv.counts.len() as u64)
        )
    } else {
        format!(
            "{} devices, {:.1} bytes/device in memory",
            render::thousands(inv.devices.len() as u64),
            inv.heap_bytes() as f64 / inv.devices.len().max(1) as f64
        )
    };
    eprintln!(
        "inventory {}: {what} in {:.2}s",
        path.display(),
        t0.elapsed().as_secs_f64()
    );
    if inv.repeated_ids > 0 {
        eprintln!(
            "  warning: {} device ids appear more than once (the last row wins)",
            render::thousands(inv.repeated_ids as u64)
        );
    }
    if rejected > 0 {
        eprintln!(
            "  warning: {} inventory rows skipped, for example:",
            render::thousands(rejected)
        );
        for r in rejects.iter().take(3) {
            eprintln!("    line {}: {}: {}", r.line, r.reason, r.raw);
        }
    }
    Ok(inv)
}

/// Runs the fold over the inputs; shared by commands that build on the alert counts.
pub fn compute(
    inputs: &[Input],
    inv: &Inventory,
    query: &AlertQuery,
    read: &ReadOptions,
) -> (AlertReport, Vec<fleetwatch::engine::pipeline::SourceError>) {
    let (report, _, errors) = compute_tapped(inputs, inv, query, read);
    (report, errors)
}

/// `compute`, handing back the query's tap (`AlertQuery::tap`) with what it saw.
pub fn compute_tapped(
    inputs: &[Input],
    inv: &Inventory,
    query: &AlertQuery,
    read: &ReadOptions,
) -> (
    AlertReport,
    Option<Box<dyn Tap>>,
    Vec<fleetwatch::engine::pipeline::SourceError>,
) {
    let progress = ProgressDisplay::start(Some(input_bytes(inputs)));
    let (folds, errors) = scan(inputs, read, Some(progress.counters.clone()), || {
        AlertFold::new(query, inv)
    });
    progress.finish();
    let mut folds = folds.into_iter();
    let mut all = folds.next().unwrap_or_else(|| AlertFold::new(query, inv));
    for f in folds {
        all.merge(f);
    }
    let (report, tap) = all.finish_with_tap();
    (report, tap, errors)
}

/// Like `compute`, for several queries answered from one read of the inputs. The first
/// report's totals and rejects are the run's.
pub fn compute_many(
    inputs: &[Input],
    inv: &Inventory,
    queries: &[AlertQuery],
    read: &ReadOptions,
) -> (
    Vec<AlertReport>,
    Vec<fleetwatch::engine::pipeline::SourceError>,
) {
    let progress = ProgressDisplay::start(Some(input_bytes(inputs)));
    let new = || Folds(queries.iter().map(|q| AlertFold::new(q, inv)).collect());
    let (workers, errors) = scan(inputs, read, Some(progress.counters.clone()), new);
    progress.finish();
    let mut workers = workers.into_iter();
    let mut all = workers.next().unwrap_or_else(new);
    for w in workers {
        for (mine, theirs) in all.0.iter_mut().zip(w.0) {
            mine.merge(theirs);
        }
    }
    (all.0.into_iter().map(AlertFold::finish).collect(), errors)
}

/// Bytes of the file inputs, for the progress display.
fn input_bytes(inputs: &[Input]) -> u64 {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Stdin => None,
        })
        .sum()
}

/// Prints the totals, writes the quarantine file, and decides the exit status.
pub fn conclude(
    report: &AlertReport,
    errors: &[fleetwatch::engine::pipeline::SourceError],
    names: &[String],
    rejects: &Path,
    secs: f64,
) -> Result<Status> {
    for e in errors {
        eprintln!("error: {}: {}", e.source, e.message);
    }
    let t = &report.totals;
    eprintln!("{}", render::totals_summary(t));
    eprintln!(
        "  {:.2}s, {} records/s",
        secs,
        render::thousands((t.read as f64 / secs.max(1e-6)) as u64)
    );
    debug_assert!(t.balanced(), "totals must add up: {t:?}");
    if !report.rejects.is_empty() {
        let f = std::fs::File::create(rejects)
            .with_context(|| format!("{}: cannot write the quarantine file", rejects.display()))?;
        let mut w = std::io::BufWriter::new(f);
        render::rejects::write_rejects(&mut w, &report.rejects, names)?;
        std::io::Write::flush(&mut w)?;
        eprintln!(
            "  {} rejected records written to {}",
            render::thousands(report.rejects.len() as u64),
            rejects.display()
        );
        for r in report.rejects.iter().take(3) {
            eprintln!(
                "    {}:{}: {}",
                names.get(r.source).map(String::as_str).unwrap_or("?"),
                r.line,
                r.reason
            );
        }
    }
    Ok(if !errors.is_empty() {
        Status::Failed
    } else if t.rejected > 0 {
        Status::CompletedWithRejects
    } else {
        Status::Ok
    })
}

pub fn run(cfg: AlertsConfig) -> Result<Status> {
    let t0 = Instant::now();
    let inputs = expand_inputs(&cfg.inputs)?;
    let inv = inventory_or_empty(cfg.inventory.as_deref(), cfg.read.threads)?;
    let (report, errors) = compute(&inputs, &inv, &cfg.query, &cfg.read);
    super::stdout_write(|w| render::alerts::write(w, &report, &inv, cfg.format))?;
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    conclude(
        &report,
        &errors,
        &names,
        &cfg.rejects,
        t0.elapsed().as_secs_f64(),
    )
}
