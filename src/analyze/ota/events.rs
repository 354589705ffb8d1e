//! A device's firmware events, from outcome records and from device alerts.

use crate::analyze::alerts::Tap;
use crate::inventory::DeviceInfo;
use crate::model::Interner;
use crate::model::firmware::Stage;
use crate::model::{AlertCode, Event, Millis};
use rustc_hash::FxHashMap;
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
    fn alert(&mut self, ev: &Event, code: AlertCode, _: Option<&DeviceInfo>) {
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

/// The names of failure reasons that mean the hardware cannot take the image.
pub fn is_hardware_reason(reasons: &Interner, reason: u16) -> bool {
    let r = reasons.name(reason).to_ascii_lowercase();
    r.contains("hardware")
}
