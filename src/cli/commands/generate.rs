//! `fleetwatch generate`: write a synthetic fleet and say what was written.

use super::Status;
use anyhow::Result;
use fleetwatch::generate::{Config, Truth, generate};
use fleetwatch::model::time::format_day;
use fleetwatch::render::thousands;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

/// Generates into `out`, with a progress line on a terminal, and returns the truth.
pub fn run_generate(cfg: &Config, out: &Path, quiet: bool) -> Result<(Truth, f64)> {
    let t0 = Instant::now();
    let tty = std::io::stderr().is_terminal() && !quiet;
    let end = cfg.start + cfg.days as i32;
    let truth = generate(cfg, out, |day, records| {
        if tty {
            eprint!(
                "\r  generating {} ({}/{} days), {} records   ",
                format_day(day),
                day - cfg.start + 1,
                end - cfg.start,
                thousands(records)
            );
        }
    })?;
    if tty {
        eprint!("\r{:70}\r", "");
    }
    Ok((truth, t0.elapsed().as_secs_f64()))
}

pub fn run(cfg: Config, out: &Path) -> Result<Status> {
    let (truth, secs) = run_generate(&cfg, out, false)?;
    let c = &truth.counts;
    let f = &truth.files;
    eprintln!(
        "generated {} devices ({} in the inventory), {} to {}, seed {}, in {:.2}s",
        thousands(c.fleet_devices as u64),
        thousands(c.inventory_devices as u64),
        truth.generator.start,
        truth.generator.end,
        cfg.seed,
        secs
    );
    eprintln!(
        "  {}: {} records ({} alerts, {} duplicates, {} malformed): {} records/s",
        f.alerts,
        thousands(c.alert_records_written),
        thousands(c.accepted_records),
        thousands(c.duplicates),
        thousands(c.malformed),
        thousands((c.alert_records_written as f64 / secs.max(1e-6)) as u64)
    );
    eprintln!(
        "  {}, {} ({} targeted devices), {}, truth.json",
        f.inventory,
        f.ota_outcomes,
        thousands(truth.ota.targeted as u64),
        f.migration
    );
    eprintln!("  in {}", out.display());
    Ok(Status::Ok)
}
