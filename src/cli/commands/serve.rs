//! `fleetwatch serve`: the live receiver (`fleetwatch::live`), with the inventory loaded here.

use super::Status;
use anyhow::Result;
use std::path::PathBuf;

pub struct ServeRun {
    pub inventory: Option<PathBuf>,
    pub config: fleetwatch::live::ServeConfig,
}

pub fn run(r: ServeRun) -> Result<Status> {
    r.config.check()?;
    let inv = crate::cli::load_inventory_noting(r.inventory.as_deref(), r.config.threads)?;
    fleetwatch::live::run(r.config, inv)?;
    Ok(Status::Ok)
}
