//! The engine a command runs its analyses on: the inputs, the inventory, the user's selection,
//! and every read of the inputs (each answering several queries at once).

use super::filter::Filters;
use super::scan::{ReadOptions, scan};
use crate::analyze::alerts::{AlertFold, AlertQuery, Folds, Scope};
use crate::analyze::firmware::Evidence;
use crate::analyze::reader::{Answer, Reader};
use crate::inventory::{Inventory, UnknownName};
use crate::model::Reject;
use crate::source::pipeline::{Progress, SourceError};
use crate::source::{Input, expand_inputs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Watches the reads (the command line draws a progress line from it).
pub trait Watch: Send + Sync {
    /// A read of `total` bytes (when known) starts: the counters the workers advance.
    fn started(&self, total: Option<u64>) -> Arc<Progress>;
    fn finished(&self);
}

/// A run's inputs, inventory and selection.
pub struct Engine {
    inputs: Vec<Input>,
    names: Vec<String>,
    inventory: Inventory,
    read: ReadOptions,
    filters: Filters,
    scope: Scope,
    watch: Option<Box<dyn Watch>>,
    /// Sources that failed as a whole, once each, over every read.
    errors: Mutex<Vec<SourceError>>,
    /// Rejected records of side inputs (outcome records read as firmware evidence): their
    /// sources are named after the alert inputs in `names`.
    side_rejects: Vec<Reject>,
    alert_inputs: usize,
}

/// Why an engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Input(#[from] crate::source::InputError),
    #[error(transparent)]
    Filter(#[from] UnknownName),
}

impl Engine {
    /// Expands the input paths (directories are walked) and binds the filters to the inventory.
    pub fn new(
        paths: &[PathBuf],
        inventory: Inventory,
        read: ReadOptions,
        filters: Filters,
    ) -> Result<Engine, EngineError> {
        let inputs = if paths.is_empty() {
            Vec::new()
        } else {
            expand_inputs(paths)?
        };
        let scope = filters.bind(&inventory)?;
        Ok(Engine {
            names: inputs.iter().map(Input::name).collect(),
            inputs,
            inventory,
            read,
            filters,
            scope,
            watch: None,
            errors: Mutex::new(Vec::new()),
            side_rejects: Vec::new(),
            alert_inputs: 0,
        }
        .counted())
    }

    fn counted(mut self) -> Engine {
        self.alert_inputs = self.inputs.len();
        self
    }

    /// Whether an input is standard input, which can be read only once.
    pub fn reads_stdin(&self) -> bool {
        self.inputs.contains(&Input::Stdin)
    }

    /// Installs the firmware history the evidence shows (`Inventory::install_firmware_history`)
    /// and keeps the evidence's rejected records for the run's accounting. Returns how many
    /// devices changed version. Select (`select`) after it when a `--firmware` filter may name
    /// a version only the history knows.
    pub fn install_firmware_history(
        &mut self,
        evidence: Evidence,
        side_names: Vec<String>,
    ) -> Result<usize, EngineError> {
        let n = self
            .inventory
            .install_firmware_history(&evidence.changes, &evidence.before);
        self.names.extend(side_names);
        self.side_rejects.extend(evidence.rejects);
        Ok(n)
    }

    /// Rejected records of side inputs.
    pub fn side_rejects(&self) -> &[Reject] {
        &self.side_rejects
    }

    /// How many of `names` are alert inputs (the rest are side inputs).
    pub fn alert_input_count(&self) -> usize {
        self.alert_inputs
    }

    /// Binds another selection to the inventory (see `Filters::bind`).
    pub fn select(&mut self, filters: Filters) -> Result<(), EngineError> {
        self.scope = filters.bind(&self.inventory)?;
        self.filters = filters;
        Ok(())
    }

    pub fn with_watch(mut self, watch: Box<dyn Watch>) -> Engine {
        self.watch = Some(watch);
        self
    }

    /// The inputs' names (rejects refer to a source by its index in this list).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn has_inputs(&self) -> bool {
        !self.inputs.is_empty()
    }

    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn read_options(&self) -> &ReadOptions {
        &self.read
    }

    /// The sources that could not be read, over every read so far.
    pub fn errors(&self) -> Vec<SourceError> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Bytes of the file inputs, for the progress display.
    fn input_bytes(&self) -> u64 {
        self.inputs
            .iter()
            .filter_map(|i| match i {
                Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
                Input::Stdin => None,
            })
            .sum()
    }

    fn note_errors(&self, new: Vec<SourceError>) {
        if let Ok(mut errors) = self.errors.lock() {
            for e in new {
                if !errors.iter().any(|x| x.source == e.source) {
                    errors.push(e);
                }
            }
        }
    }
}

impl Reader for Engine {
    fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    fn answer(&self, queries: &[AlertQuery]) -> Vec<Answer> {
        let queries: Vec<AlertQuery> = queries
            .iter()
            .map(|q| AlertQuery {
                scope: narrow(&q.scope, &self.scope),
                dedup_window: self.read.dedup_window.unwrap_or(q.dedup_window),
                ..q.clone()
            })
            .collect();
        let inv = &self.inventory;
        let progress = self
            .watch
            .as_ref()
            .map(|w| w.started(Some(self.input_bytes())));
        let new = || Folds(queries.iter().map(|q| AlertFold::new(q, inv)).collect());
        let (workers, errors) = scan(&self.inputs, &self.read, progress, new);
        if let Some(w) = &self.watch {
            w.finished();
        }
        self.note_errors(errors);
        let threads = workers.len();
        let mut workers = workers.into_iter();
        let mut all = workers.next().unwrap_or_else(new);
        for w in workers {
            for (mine, theirs) in all.0.iter_mut().zip(w.0) {
                mine.merge(theirs, threads);
            }
        }
        all.0
            .into_iter()
            .map(|f| {
                let (report, tap) = f.finish_with_tap();
                Answer { report, tap }
            })
            .collect()
    }
}

/// A query's own scope narrowed by the engine's: the later first day, the earlier last day,
/// the engine's device filter, and the engine's code filter unless the query has one (a query
/// that fixes its codes, like the OTA evidence, is built from filters without codes).
fn narrow(query: &Scope, engine: &Scope) -> Scope {
    Scope {
        since: query.since.max(engine.since),
        until: match (query.until, engine.until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        codes: query.codes.clone().or_else(|| engine.codes.clone()),
        clock: engine.clock.clone(),
        devices: if query.devices.is_all() {
            engine.devices.clone()
        } else {
            query.devices.clone()
        },
    }
}
