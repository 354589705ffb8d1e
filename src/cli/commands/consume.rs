//! `fleetwatch consume`: the Kafka consumer (`fleetwatch::live::kafka`), with the inventory
//! loaded here.

use super::Status;
use anyhow::Result;
use std::path::PathBuf;

pub struct ConsumeRun {
    pub inventory: Option<PathBuf>,
    pub config: fleetwatch::live::kafka::ConsumeConfig,
}

pub fn run(r: ConsumeRun) -> Result<Status> {
    let inv = crate::cli::load_inventory_noting(r.inventory.as_deref(), 0)?;
    let s = fleetwatch::live::kafka::run(r.config, inv)?;
    eprintln!(
        "stopped ({}): {} messages consumed, {} stored, {} duplicates, {} quarantined; {} commits{}; every committed offset is on disk ({:.2}s from the first message to the last commit, {:.0} messages/s)",
        s.stopped_by,
        s.consumed,
        s.accepted,
        s.duplicates,
        s.rejected,
        s.commits,
        if s.commit_failures > 0 {
            format!(" ({} failed: delivered again later)", s.commit_failures)
        } else {
            String::new()
        },
        s.busy.as_secs_f64(),
        s.consumed as f64 / s.busy.as_secs_f64().max(1e-3)
    );
    Ok(Status::Ok)
}
