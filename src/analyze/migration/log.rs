//! The migration log: `timestamp, device_id, cohort, event, reason` (and optionally `region`),
//! CSV with a header or JSON lines, plain or compressed. Events: `migrated`; `commissioned`
//! (also `operated`, `operational`); `failed` (also `failure`, `migration failed`). A bad row
//! is a reject; an exact repeat a duplicate.

use crate::model::Interner;
use crate::model::Reject;
use crate::model::time::parse_timestamp;
use crate::model::{Day, DeviceId, Millis};
use crate::source::named::{Field, read_named};
use crate::source::{Input, InputError};
use rustc_hash::FxHashMap;
use rustc_hash::FxHashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MigrationEvent {
    Migrated,
    Commissioned,
    Failed,
}

impl MigrationEvent {
    pub fn parse(s: &str) -> Option<MigrationEvent> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "migrated" | "migration" | "migrated ok" => MigrationEvent::Migrated,
            "commissioned" | "operated" | "operational" | "operated by supplier" => {
                MigrationEvent::Commissioned
            }
            "failed" | "failure" | "migration failed" | "fail" => MigrationEvent::Failed,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRow {
    pub ts: Millis,
    pub device: u64,
    /// Cohort (interned in `Log::cohorts`).
    pub cohort: u16,
    pub event: MigrationEvent,
    /// Failure reason (interned in `Log::reasons`; 0 none).
    pub reason: u16,
}

#[derive(Debug)]
pub struct Log {
    pub rows: Vec<LogRow>,
    pub cohorts: Interner,
    pub reasons: Interner,
    pub read: u64,
    pub duplicates: u64,
    pub rejects: Vec<Reject>,
}

impl Default for Log {
    /// The known cohorts come first, so that every table lists them in migration order.
    fn default() -> Log {
        let mut cohorts = Interner::default();
        for c in super::COHORTS {
            cohorts.id(c);
        }
        Log {
            rows: Vec::new(),
            cohorts,
            reasons: Interner::default(),
            read: 0,
            duplicates: 0,
            rejects: Vec::new(),
        }
    }
}

const FIELDS: &[Field] = &[
    (
        "timestamp",
        &["timestamp", "time", "ts", "datetime", "date"],
    ),
    ("device_id", &["device_id", "device", "eui", "deviceid"]),
    ("cohort", &["cohort", "migration_cohort"]),
    ("event", &["event", "status", "state", "event_type"]),
    ("reason", &["reason", "failure_reason"]),
];

impl Log {
    /// Reads one log file (rejects point at `source`).
    pub fn read(&mut self, input: &Input, source: usize) -> Result<(), InputError> {
        let mut seen: FxHashSet<(u64, Millis, MigrationEvent, u16)> = FxHashSet::default();
        let (cohorts, reasons) = (&mut self.cohorts, &mut self.reasons);
        let (rows, rejects, duplicates) = (&mut self.rows, &mut self.rejects, &mut self.duplicates);
        let read = read_named(
            input,
            FIELDS,
            &[0, 1, 2, 3],
            |line, values, raw| match values.and_then(|v| parse(v, cohorts, reasons)) {
                Ok(r) => {
                    if seen.insert((r.device, r.ts, r.event, r.reason)) {
                        rows.push(r);
                    } else {
                        *duplicates += 1;
                    }
                }
                Err(reason) => rejects.push(Reject::new(source, line, reason, raw)),
            },
        )?;
        self.read += read;
        Ok(())
    }
}

fn parse(v: &[String], cohorts: &mut Interner, reasons: &mut Interner) -> Result<LogRow, String> {
    let ts = parse_timestamp(v[0].trim().as_bytes())
        .ok_or_else(|| format!("invalid timestamp `{}`", v[0]))?;
    let device = DeviceId::parse(v[1].trim().as_bytes())
        .ok_or_else(|| format!("invalid device id `{}`", v[1]))?;
    if v[2].trim().is_empty() {
        return Err("no cohort".into());
    }
    let event = MigrationEvent::parse(&v[3]).ok_or_else(|| {
        format!(
            "unknown event `{}` (expected migrated, commissioned or failed)",
            v[3]
        )
    })?;
    Ok(LogRow {
        ts,
        device: device.0,
        cohort: cohorts.id(&super::cohort_name(&v[2])),
        event,
        reason: if event == MigrationEvent::Failed {
            reasons.id(&v[4])
        } else {
            0
        },
    })
}

const INVENTORY_FIELDS: &[Field] = &[
    ("device_id", &["device_id", "device", "eui", "deviceid"]),
    ("cohort", &["cohort", "migration_cohort"]),
    (
        "migration_date",
        &["migration_date", "migrated_on", "migration_day"],
    ),
];

/// What the inventory tells about a cohort's device: its cohort and migration day.
pub type Migrations = FxHashMap<u64, (u16, Option<Day>)>;

/// The cohort and migration day (`None`: not migrated) of every inventory device that has a
/// cohort (SMETS1 meters). Rows without a readable id or date are skipped and counted.
pub fn read_migrations(
    input: &Input,
    cohorts: &mut Interner,
) -> Result<(Migrations, u64), InputError> {
    let mut out = Migrations::default();
    let mut skipped = 0;
    read_named(input, INVENTORY_FIELDS, &[0, 1], |_, values, _| {
        let Ok(v) = values else {
            skipped += 1;
            return;
        };
        if v[1].trim().is_empty() {
            return;
        }
        let Some(id) = DeviceId::parse(v[0].trim().as_bytes()) else {
            skipped += 1;
            return;
        };
        // An empty date is a device not yet migrated; an unreadable one is skipped (it would
        // otherwise pass for one).
        let day = crate::model::time::parse_date(v[2].trim().as_bytes());
        if day.is_none() && !v[2].trim().is_empty() {
            skipped += 1;
            return;
        }
        out.insert(id.0, (cohorts.id(&super::cohort_name(&v[1])), day));
    })?;
    Ok((out, skipped))
}
