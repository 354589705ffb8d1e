//! A device's firmware events, from outcome records and from device alerts.
//!
//! The alerts' events come from a tap on one read of the alert inputs (`firmware_alerts`),
//! which sees only the targeted devices' firmware codes. A payload's response code and image
//! version are mapped onto the analysis' own interned names (`payload_names`), so an alert and
//! an outcome record of the same failure name it alike.

use crate::analyze::alerts::{AlertQuery, AlertReport, CodeFilter, Tap, TapFactory};
use crate::analyze::reader::Reader;
use crate::model::Interner;
use crate::model::firmware::{Stage, response_reason, version_octets};
use crate::model::{AlertCode, Event, Millis};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// One stage outcome of one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FwEvent {
    pub ts: Millis,
    pub stage: Stage,
    pub ok: bool,
    /// Failure reason (interned; 0 none).
    pub reason: u16,
    /// Firmware version the event reports (interned; 0 unknown).
    pub version: u16,
    /// Attempt number (0 unknown).
    pub attempt: u8,
    /// From a device alert rather than an outcome record.
    pub from_alert: bool,
}

/// Every targeted device's events.
pub type DeviceEvents = FxHashMap<u64, Vec<FwEvent>>;

/// The firmware codes the tap collects.
pub const FIRMWARE_CODES: [u16; 7] = [0x8F8A, 0x8F89, 0x8F72, 0x8F1C, 0x8F66, 0x8F67, 0x8F43];

/// How the details a GBCS payload gives map onto the analysis' interned names.
#[derive(Debug, Default)]
pub struct PayloadNames {
    /// Failure reason ids per (stage, GBCS response code).
    pub reasons: FxHashMap<(Stage, u8), u16>,
    /// Version ids per 4-octet image version (the campaigns' target versions).
    pub versions: Vec<([u8; 4], u16)>,
    /// The id for any other version.
    pub other_version: u16,
}

/// Collects the firmware alerts of targeted devices (one tap per worker).
pub struct FirmwareTap {
    pub targets: Arc<rustc_hash::FxHashSet<u64>>,
    pub names: Arc<PayloadNames>,
    pub events: DeviceEvents,
}

impl Tap for FirmwareTap {
    fn alert(&mut self, ev: &Event, code: AlertCode, _: Option<u64>, _: crate::model::Day) {
        let Some(device) = ev.device else { return };
        let Some((stage, ok)) = code.device_code().and_then(Stage::from_code) else {
            return;
        };
        if !self.targets.contains(&device.0) {
            return;
        }
        // A payload (DUIS GBCSPayload, or a payload column) tells the reason of a failure and
        // the image version.
        let (reason, version) = match ev.firmware {
            Some(f) => (
                if ok {
                    0
                } else {
                    self.names
                        .reasons
                        .get(&(stage, f.response_code))
                        .copied()
                        .unwrap_or(0)
                },
                self.names
                    .versions
                    .iter()
                    .find(|(octets, _)| *octets == f.version)
                    .map_or(self.names.other_version, |v| v.1),
            ),
            None => (0, 0),
        };
        self.events.entry(device.0).or_default().push(FwEvent {
            ts: ev.ts,
            stage,
            ok,
            reason,
            version,
            attempt: 0,
            from_alert: true,
        });
    }

    fn merge_from(&mut self, other: Box<dyn Tap>) {
        if let Ok(o) = other.into_any().downcast::<FirmwareTap>() {
            for (d, mut v) in o.events {
                self.events.entry(d).or_default().append(&mut v);
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// How the details of a firmware alert's payload map onto the analysis' names: the GBCS
/// response codes onto failure reasons, the target versions' octets onto their ids.
///
/// `target_versions` are the campaigns' target versions, interned in `versions`.
pub fn payload_names(
    target_versions: &[u16],
    versions: &mut Interner,
    reasons: &mut Interner,
) -> Arc<PayloadNames> {
    let mut names = PayloadNames::default();
    for stage in [Stage::Transfer, Stage::Activation] {
        for code in 1..=3u8 {
            names
                .reasons
                .insert((stage, code), reasons.id(response_reason(stage, code)));
        }
    }
    for &v in target_versions {
        if let Some(octets) = version_octets(versions.name(v)) {
            names.versions.push((octets, v));
        }
    }
    names.other_version = versions.id("(another version)");
    Arc::new(names)
}

/// The first read: the targeted devices' firmware alerts join their events.
pub fn firmware_alerts(
    reader: &dyn Reader,
    targets: Arc<FxHashSet<u64>>,
    names: Arc<PayloadNames>,
    events: &mut DeviceEvents,
) -> AlertReport {
    let query = AlertQuery {
        by: vec![],
        codes: Some(CodeFilter {
            codes: FIRMWARE_CODES
                .iter()
                .map(|&c| AlertCode::device(c))
                .collect(),
            categories: vec![],
        }),
        distinct: false,
        tap: Some(TapFactory(Arc::new(move || {
            Box::new(FirmwareTap {
                targets: targets.clone(),
                names: names.clone(),
                events: FxHashMap::default(),
            })
        }))),
        ..Default::default()
    };
    let mut answer = reader.answer_one(query);
    if let Some(tap) = answer.tap_as::<FirmwareTap>() {
        for (d, mut v) in tap.events {
            events.entry(d).or_default().append(&mut v);
        }
    }
    answer.report
}

/// The names of failure reasons that mean the hardware cannot take the image.
pub fn is_hardware_reason(reasons: &Interner, reason: u16) -> bool {
    let r = reasons.name(reason).to_ascii_lowercase();
    r.contains("hardware")
}
