//! The one record every decoder produces.

use super::{AlertCode, DeviceId, DeviceType, Generation, Millis, Region};

/// What kind of DUIS message (or export row) a record was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A device alert (`DeviceAlertMessage`, SMETS1 device alerts, export rows).
    DeviceAlert,
    /// A future-dated command outcome (`FutureDatedDeviceAlertMessage`, 8F66/8F67).
    FutureDatedAlert,
    /// An alert raised by the DCC itself (`DCCAlertMessage`, `S1SPAlert`).
    DccAlert,
    /// A response to a service request: read, counted, not an alert.
    Response,
    /// A service request: read, counted, not an alert.
    Request,
}

impl MessageKind {
    pub fn is_alert(self) -> bool {
        matches!(
            self,
            MessageKind::DeviceAlert | MessageKind::FutureDatedAlert | MessageKind::DccAlert
        )
    }
}

/// Attributes a record may carry itself (CSV/JSON columns). They are used for devices the
/// inventory does not know, so a count-table inventory still gets regions from the alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecordAttrs {
    pub region: Option<Region>,
    pub device_type: Option<DeviceType>,
    pub generation: Option<Generation>,
}

/// One decoded record. `Copy` and small: decoders fill one in place per record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: MessageKind,
    pub ts: Millis,
    /// The originating device; `None` for DCC alerts that name no device.
    pub device: Option<DeviceId>,
    /// `None` only for responses and requests.
    pub code: Option<AlertCode>,
    /// Occurrences this record stands for (a throttled alert's `ThrottledAlertCount`), at least 1.
    pub count: u32,
    /// A hash of the message id (DUIS `ResponseID`/`RequestID`, a `message_id` column), 0 if none.
    pub message_id: u64,
    pub attrs: RecordAttrs,
    /// A firmware alert's outcome and image version, when its GBCS payload was read.
    pub firmware: Option<super::firmware::FirmwareResult>,
}

impl Event {
    pub fn alert(ts: Millis, device: DeviceId, code: AlertCode) -> Event {
        Event {
            kind: MessageKind::DeviceAlert,
            ts,
            device: Some(device),
            code: Some(code),
            count: 1,
            message_id: 0,
            attrs: RecordAttrs::default(),
            firmware: None,
        }
    }
}

/// A 64-bit FNV-1a hash, for message ids: stable across runs and platforms.
pub fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
