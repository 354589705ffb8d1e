//! The hand-off to a data lake: a run's accepted alert records, its daily table and its
//! device table as Hive-partitioned Parquet, which Spark, DuckDB, Trino and ClickHouse read
//! as they are (`render::parquet` has the file conventions).
//!
//! ```text
//! OUT/events/day=YYYY-MM-DD/region=REGION/part-<run>-<n>.parquet   one row per alert record
//! OUT/daily/day=YYYY-MM-DD/region=REGION/part-<run>-<n>.parquet    alerts --by day,region,type,gen,code
//! OUT/inventory/part-0.parquet                                     the device table
//! ```
//!
//! Everything is written under hidden temporary names first; `Pending::commit` renames it
//! into place once the read succeeded, so a reader never sees a partial file and a killed
//! export leaves nothing visible. The run id (`run_id`) is a hash of the inputs' paths, sizes
//! and modification times, the inventory's, and the settings: a re-run of the same inputs
//! replaces its own files, an export of other inputs adds its own beside them. The inventory
//! file has one name (`part-0.parquet`): each export replaces it with its own, unless it was
//! written from the same inventory file (path, size, time) and selection, which its metadata
//! records: then it is kept (daily exports of many feeds against one inventory write it once).

mod event_rows;
pub mod events;

use crate::analyze::alerts::{AlertQuery, AlertReport, Dedup, Dim, TapFactory};
use crate::analyze::reader::Reader;
use crate::inventory::DeviceFilter;
use crate::model::{DeviceId, Interner};
use crate::render::parquet::inventory::{SideColumns, current, write_inventory};
use crate::render::parquet::table::write_report;
use crate::render::parquet::{Dataset, DatasetSummary, ParquetError, RunId};
use crate::source::named::{Field, read_named};
use crate::source::{Input, InputError, expand_inputs};
use events::{EventSink, EventTap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the event writer was not handed back by the read")]
    LostTap,
}

/// How to export.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    pub out: PathBuf,
    pub run: RunId,
    pub dedup: Dedup,
    /// Rows per file of events at most (one row group each).
    pub row_group: usize,
    /// Rows a worker buffers in all before it writes its largest partition.
    pub buffer_rows: usize,
    /// Threads that write what is buffered at the end.
    pub threads: usize,
    /// The identity of the inventory file and the selection (`run_id` of no inputs): a device
    /// table already written from it is kept as it is.
    pub inventory_identity: String,
}

impl ExportConfig {
    pub fn new(out: PathBuf, run: RunId) -> ExportConfig {
        ExportConfig {
            out,
            run,
            dedup: Dedup::Auto,
            row_group: 1 << 17,
            buffer_rows: 1 << 20,
            threads: 0,
            inventory_identity: String::new(),
        }
    }
}

/// The datasets an export wrote, not yet visible: `commit` or `abort`.
pub struct Pending {
    pub report: AlertReport,
    pub run: RunId,
    pub events_rows: u64,
    pub daily_rows: u64,
    pub inventory_rows: Option<u64>,
    /// Whether the device table there was already written from this inventory (and kept).
    pub inventory_unchanged: bool,
    events: Dataset,
    daily: Dataset,
    inventory: Option<Dataset>,
}

/// What a committed export holds.
#[derive(Clone, Debug, Default)]
pub struct ExportSummary {
    pub events: DatasetSummary,
    pub daily: DatasetSummary,
    pub inventory: Option<DatasetSummary>,
}

impl Pending {
    /// Renames every file into place (events, then the daily table, then the inventory) and
    /// removes the files of an earlier run with the same id.
    pub fn commit(self) -> Result<ExportSummary, ExportError> {
        let events = self.events.commit()?;
        let daily = self.daily.commit()?;
        let inventory = self.inventory.as_ref().map(Dataset::commit).transpose()?;
        Ok(ExportSummary {
            events,
            daily,
            inventory,
        })
    }

    /// Removes every file written (nothing becomes visible).
    pub fn abort(self) {
        self.events.abort();
        self.daily.abort();
        if let Some(d) = &self.inventory {
            d.abort();
        }
    }
}

/// The grouping of the daily table.
pub const DAILY_BY: [Dim; 5] = [
    Dim::Day,
    Dim::Region,
    Dim::DeviceType,
    Dim::Generation,
    Dim::Code,
];

/// Reads the inputs once, writing the events as they are accepted and then the daily table
/// and the device table (every device, whatever the filters, with the cohort and hub columns
/// from `side`). `names` are the inputs' names (the `source` column); days are cut by the
/// reader's clock.
pub fn export(
    reader: &dyn Reader,
    names: &[String],
    side: Option<&SideColumns>,
    cfg: &ExportConfig,
) -> Result<Pending, ExportError> {
    let inv = reader.inventory();
    let threads = if cfg.threads == 0 {
        crate::source::pipeline::default_threads()
    } else {
        cfg.threads
    };
    let sink = Arc::new(EventSink::new(
        Dataset::new(&cfg.out.join("events"), cfg.run.clone()),
        inv.models.clone(),
        inv.firmwares.clone(),
        names.to_vec(),
        cfg.row_group,
        cfg.buffer_rows,
    )?);
    let s = sink.clone();
    let query = AlertQuery {
        by: DAILY_BY.to_vec(),
        dedup: cfg.dedup,
        distinct: true,
        tap: Some(TapFactory(Arc::new(move || {
            Box::new(EventTap::new(s.clone()))
        }))),
        ..Default::default()
    };
    let inventory = (!inv.devices.is_empty())
        .then(|| Dataset::new(&cfg.out.join("inventory"), cfg.run.clone()));
    // The device table is written while the inputs are read (a core's worth of work that
    // would otherwise wait for the read to end).
    let unchanged = inventory
        .as_ref()
        .and_then(|d| current(d, &cfg.inventory_identity));
    // Every device, whatever the filters: the device table is shared by every export into
    // the directory, and the installed bases downstream are the whole region's.
    let all = DeviceFilter::default();
    let all = &all;
    let (mut answer, inventory_rows) = std::thread::scope(|s| {
        let identity = cfg.inventory_identity.as_str();
        let devices = inventory
            .as_ref()
            .filter(|_| unchanged.is_none())
            .map(|d| s.spawn(move || write_inventory(inv, all, side, identity, d)));
        let answer = reader.answer_one(query);
        let rows = devices.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (answer, rows)
    });
    let tap = answer.tap_as::<EventTap>().ok_or(ExportError::LostTap)?;
    // The daily table is written beside the events the workers still hold: those files are
    // of uneven sizes, and the last ones would otherwise leave a core idle.
    let daily = Dataset::new(&cfg.out.join("daily"), cfg.run.clone());
    let daily_rows = std::thread::scope(|s| {
        let report = &answer.report;
        let daily = &daily;
        let rows = s.spawn(move || write_report(report, inv, daily));
        tap.finish(threads);
        rows.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    let sink = Arc::try_unwrap(sink).map_err(|_| ExportError::LostTap)?;
    let events = sink.dataset;
    let events_rows = answer.report.totals.accepted_alerts;
    let mut pending = Pending {
        report: answer.report,
        run: cfg.run.clone(),
        events_rows,
        daily_rows: 0,
        inventory_rows: None,
        inventory_unchanged: false,
        events,
        daily,
        inventory,
    };
    let written = (|| -> Result<(), ParquetError> {
        if let Some(e) = pending.events.take_failure() {
            return Err(e);
        }
        pending.inventory_rows = inventory_rows.transpose()?.or(unchanged);
        pending.inventory_unchanged = unchanged.is_some();
        pending.daily_rows = daily_rows?;
        Ok(())
    })();
    match written {
        Ok(()) => Ok(pending),
        Err(e) => {
            pending.abort();
            Err(e.into())
        }
    }
}

/// The run id of an export (or a Parquet report): the identities of the inputs (expanded:
/// every file of a directory), of the side inputs (firmware evidence) and of the inventory,
/// and `settings` (the filters and options that change the rows).
pub fn run_id(
    inputs: &[PathBuf],
    side_inputs: &[PathBuf],
    inventory: Option<&Path>,
    settings: &str,
) -> Result<RunId, InputError> {
    let mut files: Vec<Option<PathBuf>> = Vec::new();
    for list in [inputs, side_inputs] {
        if list.is_empty() {
            continue;
        }
        for i in expand_inputs(list)? {
            files.push(match i {
                Input::File(p) => Some(p),
                Input::Stdin => None,
            });
        }
    }
    Ok(RunId::of(&files, inventory, settings))
}

const SIDE_FIELDS: &[Field] = &[
    ("device_id", &["device_id", "device", "eui", "deviceid"]),
    ("cohort", &["cohort", "migration_cohort"]),
    (
        "comms_hub",
        &["comms_hub", "hub", "comms_hub_id", "chf", "hub_id"],
    ),
];

/// The inventory file's cohort and comms-hub columns, when its header has either (`None`
/// when it has neither: the file is not read again).
pub fn read_side_columns(path: &Path) -> Result<Option<SideColumns>, InputError> {
    let input = Input::File(path.to_path_buf());
    let mut head = String::new();
    {
        use std::io::BufRead;
        let mut r = crate::source::open_input(&input)?.reader;
        r.read_line(&mut head)
            .map_err(InputError::io_named(input.name(), "read"))?;
    }
    let header = head.to_ascii_lowercase();
    let names: Vec<&str> = header
        .trim_end()
        .split(',')
        .map(|h| h.trim().trim_matches('"').trim_start_matches('\u{feff}'))
        .collect();
    let has = |f: usize| SIDE_FIELDS[f].1.iter().any(|a| names.contains(a));
    let json = head.trim_start().starts_with('{');
    if !json && !has(1) && !has(2) {
        return Ok(None);
    }
    let mut side = SideColumns {
        cohorts: Interner::default(),
        of_device: Default::default(),
    };
    read_named(&input, SIDE_FIELDS, &[0], |_, values, _| {
        let Ok(v) = values else { return };
        let Some(id) = DeviceId::parse(v[0].trim().as_bytes()) else {
            return;
        };
        let cohort = if v[1].trim().is_empty() {
            0
        } else {
            side.cohorts
                .id(&crate::analyze::migration::cohort_name(&v[1]))
        };
        let hub = DeviceId::parse(v[2].trim().as_bytes()).map(|h| h.0);
        if cohort != 0 || hub.is_some() {
            side.of_device.insert(id.0, (cohort, hub));
        }
    })?;
    Ok(Some(side))
}
