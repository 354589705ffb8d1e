//! The command line: clap arguments (`args`), the configuration each command resolves from
//! them, and one thin `run` per command (`commands/`) that calls the library and hands the
//! result to a renderer. This module holds what every command shares: the exit statuses, the
//! inputs an analysis command resolves into an `Engine`, and the closing totals.

pub mod allocator;
pub mod args;
pub mod commands;
pub mod progress;

use anyhow::{Context, Result};
use fleetwatch::analyze::alerts::AlertReport;
use fleetwatch::analyze::labels::Labels;
use fleetwatch::engine::scan::ReadOptions;
use fleetwatch::engine::{Engine, Filters};
use fleetwatch::inventory::{Inventory, load_inventory};
use fleetwatch::render;
use fleetwatch::source::pipeline::SourceError;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Exit statuses, documented in `--help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every record was read.
    Ok = 0,
    /// The run could not complete (an input could not be opened or read, bad arguments to a
    /// file, an I/O error).
    Failed = 1,
    /// Bad command-line usage (from clap).
    Usage = 2,
    /// The run completed, but some records were rejected (see the quarantine file).
    CompletedWithRejects = 3,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

/// Buffered, locked stdout.
pub type Out<'a> = std::io::BufWriter<std::io::StdoutLock<'a>>;

/// Writes to stdout, ignoring a closed pipe (`fleetwatch ... | head`).
pub fn stdout_write(f: impl FnOnce(&mut Out) -> std::io::Result<()>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut lock = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match f(&mut lock).and_then(|_| std::io::Write::flush(&mut lock)) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// The inputs of an analysis command, resolved from its arguments: the alert inputs, the
/// inventory, how to read them, the shared filters and the reclassification rules.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub inputs: Vec<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub read: ReadOptions,
    pub filters: Filters,
    pub labels: Arc<Labels>,
    /// Where rejected records go.
    pub rejects: PathBuf,
    /// Firmware evidence: OTA outcome records and a campaign file (its source versions).
    pub outcomes: Vec<PathBuf>,
    pub campaign: Option<PathBuf>,
    /// Whether the command credits alerts to firmware versions (grouping, filters, cohorts):
    /// then the firmware history is built from the evidence before the analysis reads.
    pub firmware_history: bool,
}

impl Selection {
    /// Loads the inventory (saying what it found) and sets up the engine, with a progress
    /// line on a terminal.
    pub fn engine(&self) -> Result<Engine> {
        let inv = load_inventory_noting(self.inventory.as_deref(), self.read.threads)?;
        // The firmware evidence is read whatever the filters (an upgrade before --since, or an
        // 8F43 outside --codes, still changes a version), and a `--firmware` may name a version
        // only the history knows: with a history, the filters are bound after it.
        let first = if self.firmware_history {
            Filters::default()
        } else {
            self.filters.clone()
        };
        let engine = Engine::new(&self.inputs, inv, self.read.clone(), first)
            .context("cannot set up the run")?;
        if !self.filters.is_empty() {
            eprintln!("selection: {}", self.filters.describe());
        }
        let mut engine = engine.with_watch(Box::new(progress::Watcher::default()));
        if self.firmware_history {
            self.install_firmware_history(&mut engine)?;
            engine.select(self.filters.clone())?;
        } else if !self.outcomes.is_empty() || self.campaign.is_some() {
            eprintln!(
                "note: --outcomes and --campaign are firmware evidence, and nothing here is by firmware: not read"
            );
        }
        Ok(engine)
    }

    /// Reads the firmware evidence (outcome records, a campaign file, and the alerts that
    /// report a new version) and gives the engine's inventory its firmware history.
    fn install_firmware_history(&self, engine: &mut Engine) -> Result<()> {
        let outcomes = if self.outcomes.is_empty() {
            Vec::new()
        } else {
            fleetwatch::source::expand_inputs(&self.outcomes)?
        };
        let reader: Option<&dyn fleetwatch::analyze::reader::Reader> = if engine.reads_stdin() {
            eprintln!(
                "note: the inputs include stdin, which is read once: the firmware history comes from --outcomes and --campaign only"
            );
            None
        } else {
            Some(&*engine)
        };
        let evidence = fleetwatch::analyze::firmware::evidence(
            &outcomes,
            engine.names().len(),
            self.campaign.as_deref(),
            reader,
        )?;
        let (from_outcomes, from_alerts) = (evidence.from_outcomes, evidence.from_alerts);
        let names = outcomes.iter().map(|i| i.name()).collect();
        let changed = engine.install_firmware_history(evidence, names)?;
        eprintln!(
            "firmware history: {} devices changed version in the period ({} changes from outcome records, {} from alerts); alerts are credited to the version their device ran then",
            render::thousands(changed as u64),
            render::thousands(from_outcomes as u64),
            render::thousands(from_alerts as u64)
        );
        Ok(())
    }

    /// "all codes", or the filters: for chart titles and headers.
    pub fn what(&self) -> String {
        if self.filters.is_empty() {
            "all codes".into()
        } else {
            self.filters.describe()
        }
    }
}

/// Loads the inventory (or an empty one), reporting what it found on stderr.
pub fn load_inventory_noting(path: Option<&Path>, threads: usize) -> Result<Inventory> {
    let Some(path) = path else {
        eprintln!("note: no --inventory given: every device counts as Unknown and rates are n/a");
        return Ok(Inventory::default());
    };
    let t0 = Instant::now();
    let threads = if threads == 0 {
        fleetwatch::source::pipeline::default_threads()
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

/// Prints the totals, writes the quarantine file, and decides the exit status.
pub fn conclude(
    report: &AlertReport,
    errors: &[SourceError],
    names: &[String],
    rejects: &Path,
    t0: Instant,
) -> Result<Status> {
    let secs = t0.elapsed().as_secs_f64();
    for e in errors {
        eprintln!("error: {}: {}", e.source, e.message);
    }
    let t = &report.totals;
    eprintln!("{}", render::totals_summary(t));
    if let Some(w) = render::empty_warning(t) {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "  {:.2}s, {} records/s",
        secs,
        render::thousands((t.read as f64 / secs.max(1e-6)) as u64)
    );
    debug_assert!(t.balanced(), "totals must add up: {t:?}");
    if report.rejects.is_empty() {
        // A clean run leaves no quarantine file behind from an earlier one.
        let regular = std::fs::symlink_metadata(rejects).is_ok_and(|m| m.is_file());
        match if regular {
            std::fs::remove_file(rejects)
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        } {
            Ok(()) => eprintln!(
                "  nothing rejected: removed {} left by an earlier run",
                rejects.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "warning: {}: an earlier run's rejects, cannot remove: {e}",
                rejects.display()
            ),
        }
    } else {
        let f = std::fs::File::create(rejects)
            .with_context(|| format!("{}: cannot write the quarantine file", rejects.display()))?;
        let mut w = std::io::BufWriter::new(f);
        render::rejects::write_rejects(&mut w, &report.rejects, names)?;
        std::io::Write::flush(&mut w)?;
        eprintln!(
            "  {} rejected records written to {}",
            render::thousands(report.rejects.len()),
            rejects.display()
        );
        if let Some(e) = report.rejects.spill_error() {
            eprintln!("  warning: {e} (they were kept in memory)");
        }
        for r in report.rejects.first(3) {
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

/// `conclude` for a run on an engine: its errors and input names.
pub fn conclude_run(
    report: &AlertReport,
    engine: &Engine,
    rejects: &Path,
    t0: Instant,
) -> Result<Status> {
    conclude(report, &engine.errors(), engine.names(), rejects, t0)
}

/// Resolves the command's arguments into its configuration and runs it.
pub fn run(command: args::Command) -> Result<Status> {
    use args::Command as C;
    match command {
        C::Alerts(a) => commands::alerts::run(a.resolve()?),
        C::Export(a) => commands::export::run(a.resolve()?),
        C::Chart(a) => commands::chart::run(a.resolve()?),
        C::Report(a) => commands::report::run(a.resolve()?),
        C::Spikes(a) => commands::spikes::run(a.resolve()?),
        C::Offenders(a) => commands::offenders::run(a.resolve()?),
        C::Whatif(a) => commands::whatif::run(a.resolve()?),
        C::Ota(a) => commands::ota::run(a.resolve()?),
        C::Migration(a) => commands::migration::run(a.resolve()?),
        C::Gbcs(a) => commands::gbcs::run(a.messages, a.format),
        C::Serve(a) => commands::serve::run(a.resolve()),
        C::Consume(a) => commands::consume::run(a.resolve()?),
        C::Codes { query } => commands::codes::run(query.as_deref()),
        C::Generate(a) => {
            let (cfg, out) = a.resolve();
            commands::generate::run(cfg, &out)
        }
        C::Demo {
            out,
            devices,
            days,
            seed,
        } => commands::demo::run(commands::demo::DemoConfig {
            out,
            devices,
            days,
            seed,
        }),
    }
}
