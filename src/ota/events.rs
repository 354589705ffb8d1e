//! A device's firmware events, from outcome records and from device alerts.

use super::Interner;
use crate::analyze::alerts::Tap;
use crate::inventory::DeviceInfo;
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

/// Collects the firmware alerts of targeted devices (one tap per worker).
pub struct FirmwareTap {
    pub targets: Arc<rustc_hash::FxHashSet<u64>>,
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
        self.events.entry(device.0).or_default().push(FwEvent {
            ts: ev.ts,
            stage,
            ok,
            reason: 0,
            version: 0,
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
