//! The evidence of firmware changes, for the inventory's firmware history: OTA outcome records
//! that report the running version, the alerts that report a new version in their GBCS payload
//! (8F43, and an actioned activation 8F66 that names its image), and a campaign file's source
//! versions (what ran before). See `inventory::firmware` for how the history is used.
//!
//! The alert evidence takes a read of the inputs of its own, restricted to those two codes,
//! before the analysis reads them: the version an alert is credited to must be known when the
//! alert is folded.

use super::alerts::{AlertQuery, CodeFilter, Tap, TapFactory};
use super::ota::campaign::Campaigns;
use super::ota::outcomes::{Outcomes, read_file};
use super::reader::Reader;
use crate::inventory::FirmwareChange;
use crate::model::firmware::Stage;
use crate::model::{AlertCode, Event, Interner, Reject};
use crate::source::Input;
use rustc_hash::FxHashMap;
use std::path::Path;
use std::sync::Arc;

/// What the evidence says, and what reading it cost.
#[derive(Debug, Default)]
pub struct Evidence {
    pub changes: Vec<FirmwareChange>,
    /// Per device, the version it ran before the campaign (a campaign file's source version).
    pub before: FxHashMap<u64, String>,
    /// Changes found in outcome records and in alerts.
    pub from_outcomes: usize,
    pub from_alerts: usize,
    /// Outcome records that could not be read (the run's quarantine takes them).
    pub rejects: Vec<Reject>,
    pub outcome_rows: u64,
}

/// Why the evidence could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Campaign(#[from] super::ota::campaign::CampaignError),
    #[error(transparent)]
    Outcomes(#[from] crate::source::InputError),
}

/// The alert codes whose payload can name a new running version.
const VERSION_CODES: [u16; 2] = [0x8F43, 0x8F66];

/// Reads the evidence: outcome files (their rejects point at source `first_source + i`), a
/// campaign file, and, when `reader` is given, the alerts that carry a new version.
pub fn evidence(
    outcomes: &[Input],
    first_source: usize,
    campaign: Option<&Path>,
    reader: Option<&dyn Reader>,
) -> Result<Evidence, EvidenceError> {
    let mut out = Evidence::default();
    if let Some(path) = campaign {
        let c = Campaigns::from_file(path)?;
        for (&device, t) in &c.targets {
            let v = c.versions.name(t.source);
            if !v.is_empty() {
                out.before.insert(device, v.to_string());
            }
        }
    }
    let (mut reasons, mut versions) = (Interner::default(), Interner::default());
    let mut rows = Outcomes::default();
    for (i, input) in outcomes.iter().enumerate() {
        read_file(
            input,
            first_source + i,
            &mut rows,
            &mut reasons,
            &mut versions,
        )?;
    }
    for row in &rows.rows {
        let e = row.event;
        let version = versions.name(e.version);
        if e.ok && matches!(e.stage, Stage::Running | Stage::Activation) && !version.is_empty() {
            out.changes.push(FirmwareChange {
                device: row.device,
                at: e.ts,
                version: version.to_string(),
            });
            out.from_outcomes += 1;
        }
    }
    out.outcome_rows = rows.read;
    out.rejects = rows.rejects;
    if let Some(reader) = reader {
        let query = AlertQuery {
            by: vec![],
            codes: Some(CodeFilter {
                codes: VERSION_CODES
                    .iter()
                    .map(|&c| AlertCode::device(c))
                    .collect(),
                categories: vec![],
            }),
            distinct: false,
            tap: Some(TapFactory(Arc::new(|| Box::new(VersionTap::default())))),
            ..Default::default()
        };
        if let Some(tap) = reader.answer_one(query).tap_as::<VersionTap>() {
            out.from_alerts = tap.changes.len();
            out.changes.extend(tap.changes);
        }
    }
    Ok(out)
}

/// Collects the changes that alerts' payloads report.
#[derive(Default)]
struct VersionTap {
    changes: Vec<FirmwareChange>,
}

impl Tap for VersionTap {
    fn alert(&mut self, ev: &Event, code: AlertCode, _: Option<u64>, _: crate::model::Day) {
        let (Some(device), Some(fw)) = (ev.device, ev.firmware) else {
            return;
        };
        let Some((stage, ok)) = code.device_code().and_then(Stage::from_code) else {
            return;
        };
        if ok && fw.response_code == 0 && matches!(stage, Stage::Running | Stage::Activation) {
            self.changes.push(FirmwareChange {
                device: device.0,
                at: ev.ts,
                version: fw.version_text(),
            });
        }
    }

    fn merge_from(&mut self, other: Box<dyn Tap>) {
        if let Ok(o) = other.into_any().downcast::<VersionTap>() {
            self.changes.extend(o.changes);
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}
