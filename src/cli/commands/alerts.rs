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
use fleetwatch::render::{self, OutputFormat};
use std::time::Instant;

/// Everything `alerts` needs, resolved from the command line.
pub struct AlertsConfig {
    pub selection: Selection,
    pub query: AlertQuery,
    /// The period the selected one is compared with.
    pub compare: Option<(Day, Day)>,
    pub format: OutputFormat,
}

pub fn run(cfg: AlertsConfig) -> Result<Status> {
    let t0 = Instant::now();
    if let Some(period) = cfg.compare {
        return run_compare(cfg, period, t0);
    }
    let engine = cfg.selection.engine()?;
    let report = engine.answer_one(cfg.query).report;
    stdout_write(|w| {
        render::alerts::write(w, &report, engine.inventory(), engine.filters(), cfg.format)
    })?;
    conclude_run(&report, &engine, &cfg.selection.rejects, t0)
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
        render::compare::write(w, &c, &now, engine.inventory(), &filters, cfg.format)
    })?;
    conclude_run(&now, &engine, &selection.rejects, t0)
}
