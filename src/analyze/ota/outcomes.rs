//! Service-request outcome records: one row per device, stage and outcome.
//!
//! CSV with a header, or JSON lines with the same keys; plain, gzip or zstd. Columns (aliases
//! in brackets): `timestamp` [time, ts, datetime], `device_id` [device, eui], `campaign`,
//! `stage`, `outcome` [result, status] (`success`/`failure`, also ok/failed/true/false),
//! `reason` [failure_reason], `firmware_version` [version], `attempt`, `message_id`;
//! `service_request` is read but not needed. A row that cannot be read is a reject with its
//! line and reason; a row repeated exactly (same device, stage, outcome, time, attempt and
//! message id) is a duplicate. `read_all` reads every file into one `OutcomeRecords`, with
//! the failure reasons and versions interned apart from the campaigns' (the analysis maps
//! the versions into the campaigns' numbering).

use super::events::FwEvent;
use crate::model::Interner;
use crate::model::Reject;
use crate::model::firmware::Stage;
use crate::model::time::parse_timestamp;
use crate::model::{DeviceId, Millis};
use crate::source::named::{Field, read_named};
use crate::source::{Input, InputError};
use rustc_hash::FxHashSet;

/// One accepted outcome row.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub device: u64,
    /// Campaign name (interned in `Outcomes::campaigns`; 0 when the row names none).
    pub campaign: u16,
    pub event: FwEvent,
}

/// Everything read from the outcome files.
#[derive(Debug, Default)]
pub struct Outcomes {
    pub rows: Vec<Outcome>,
    pub campaigns: Interner,
    pub read: u64,
    pub duplicates: u64,
    pub rejects: Vec<Reject>,
}

/// Every outcome file read, with the names its rows refer to.
#[derive(Debug, Default)]
pub struct OutcomeRecords {
    pub outcomes: Outcomes,
    /// Failure reasons (`FwEvent::reason`).
    pub reasons: Interner,
    /// Firmware versions (`FwEvent::version` of the rows).
    pub versions: Interner,
}

/// Reads every file in order; the rejects of `inputs[i]` point at source `first_source + i`.
pub fn read_all(inputs: &[Input], first_source: usize) -> Result<OutcomeRecords, InputError> {
    let mut r = OutcomeRecords::default();
    for (i, input) in inputs.iter().enumerate() {
        read_file(
            input,
            first_source + i,
            &mut r.outcomes,
            &mut r.reasons,
            &mut r.versions,
        )?;
    }
    Ok(r)
}

const FIELDS: &[Field] = &[
    (
        "timestamp",
        &["timestamp", "time", "ts", "datetime", "date_time"],
    ),
    ("device_id", &["device_id", "device", "eui", "deviceid"]),
    ("campaign", &["campaign", "campaign_id"]),
    ("stage", &["stage"]),
    ("outcome", &["outcome", "result", "status"]),
    ("reason", &["reason", "failure_reason"]),
    (
        "firmware_version",
        &["firmware_version", "version", "firmware"],
    ),
    ("attempt", &["attempt", "attempt_number"]),
    ("message_id", &["message_id", "messageid"]),
];

/// Reads one file (its `source` index is where rejects point).
pub fn read_file(
    input: &Input,
    source: usize,
    out: &mut Outcomes,
    reasons: &mut Interner,
    versions: &mut Interner,
) -> Result<(), InputError> {
    let mut seen: FxHashSet<(u64, Millis, u8, bool, u8, u64)> = FxHashSet::default();
    let mut rejects = Vec::new();
    let (mut rows, mut duplicates) = (Vec::new(), 0);
    let campaigns = &mut out.campaigns;
    let read = read_named(input, FIELDS, &[1, 3], |line, values, raw| {
        match values.and_then(|v| parse_row(v, campaigns, reasons, versions)) {
            Ok((o, message)) => {
                let e = o.event;
                if seen.insert((o.device, e.ts, e.stage as u8, e.ok, e.attempt, message)) {
                    rows.push(o);
                } else {
                    duplicates += 1;
                }
            }
            Err(reason) => rejects.push(Reject::new(source, line, reason, raw)),
        }
    })?;
    out.read += read;
    out.duplicates += duplicates;
    out.rows.extend(rows);
    out.rejects.extend(rejects);
    Ok(())
}

fn parse_row(
    v: &[String],
    campaigns: &mut Interner,
    reasons: &mut Interner,
    versions: &mut Interner,
) -> Result<(Outcome, u64), String> {
    let ts = parse_timestamp(v[0].trim().as_bytes())
        .ok_or_else(|| format!("invalid timestamp `{}`", v[0]))?;
    let device = DeviceId::parse(v[1].trim().as_bytes())
        .ok_or_else(|| format!("invalid device id `{}`", v[1]))?;
    let stage = Stage::parse(&v[3]).ok_or_else(|| {
        format!(
            "unknown stage `{}` (expected distribution, transfer, verification, activation or running)",
            v[3]
        )
    })?;
    let ok = match v[4].trim().to_ascii_lowercase().as_str() {
        "success" | "ok" | "succeeded" | "true" | "1" | "actioned" => true,
        "failure" | "failed" | "fail" | "false" | "0" | "not actioned" | "error" => false,
        // A running row is evidence by itself.
        "" if stage == Stage::Running => true,
        other => {
            return Err(format!(
                "unknown outcome `{other}` (expected success or failure)"
            ));
        }
    };
    let attempt = match v[7].trim() {
        "" => 0,
        a => a
            .parse::<u8>()
            .map_err(|_| format!("invalid attempt `{a}`"))?,
    };
    let message = crate::model::hash_bytes(v[8].trim().as_bytes());
    Ok((
        Outcome {
            device: device.0,
            campaign: campaigns.id(&v[2]),
            event: FwEvent {
                ts,
                stage,
                ok,
                reason: if ok { 0 } else { reasons.id(&v[5]) },
                version: versions.id(&v[6]),
                attempt,
                from_alert: false,
            },
        },
        message,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_jsonl_rows_rejects_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.csv");
        std::fs::write(
            &p,
            "Timestamp,DeviceID,Campaign,Stage,Result,Reason,Version,Attempt,message_id\n\
             2024-01-10T03:00:00Z,00-12-4B-00-00-00-00-01,C1,transfer,failure,file transfer failure,,1,m1\n\
             2024-01-10T03:00:00Z,00-12-4B-00-00-00-00-01,C1,transfer,failure,file transfer failure,,1,m1\n\
             2024-01-11T03:00:00Z,00-12-4B-00-00-00-00-01,C1,teleport,success,,,2,m2\n\
             2024-01-12T03:00:00Z,00-12-4B-00-00-00-00-01,C1,running,,,4.0.0,2,m3\n",
        )
        .unwrap();
        let (mut out, mut reasons, mut versions) = Default::default();
        read_file(&Input::File(p), 0, &mut out, &mut reasons, &mut versions).unwrap();
        let out: Outcomes = out;
        assert_eq!(
            (out.read, out.duplicates, out.rows.len(), out.rejects.len()),
            (4, 1, 2, 1)
        );
        assert_eq!(out.rejects[0].line, 4);
        assert!(out.rejects[0].reason.contains("teleport"));
        let f = out.rows[0].event;
        assert_eq!((f.stage, f.ok, f.attempt), (Stage::Transfer, false, 1));
        assert_eq!(reasons.name(f.reason), "file transfer failure");
        let r = out.rows[1].event;
        assert_eq!((r.stage, r.ok), (Stage::Running, true));
        assert_eq!(versions.name(r.version), "4.0.0");

        let j = dir.path().join("o.jsonl");
        std::fs::write(
            &j,
            "{\"timestamp\":\"2024-01-10T03:00:00Z\",\"device_id\":\"00124B0000000002\",\"stage\":\"verification\",\"outcome\":\"success\",\"attempt\":1}\nnot json\n",
        )
        .unwrap();
        let mut out2 = Outcomes::default();
        read_file(&Input::File(j), 1, &mut out2, &mut reasons, &mut versions).unwrap();
        assert_eq!((out2.read, out2.rows.len(), out2.rejects.len()), (2, 1, 1));
        assert_eq!(out2.rows[0].event.attempt, 1);
        assert_eq!(out2.rejects[0].source, 1);
    }

    #[test]
    fn read_all_points_rejects_past_the_alert_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.csv");
        std::fs::write(
            &p,
            "timestamp,device_id,stage,outcome,reason\n\
             2024-01-10T03:00:00Z,00124B0000000001,transfer,failure,hardware mismatch\n\
             bad,00124B0000000001,transfer,failure,\n",
        )
        .unwrap();
        let r = read_all(&[Input::File(p)], 2).unwrap();
        assert_eq!((r.outcomes.rows.len(), r.outcomes.rejects.len()), (1, 1));
        assert_eq!(r.outcomes.rejects[0].source, 2);
        assert_eq!(
            r.reasons.name(r.outcomes.rows[0].event.reason),
            "hardware mismatch"
        );
    }
}
