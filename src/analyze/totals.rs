//! The run's accounting: every record read is accepted, a duplicate, or rejected.

use serde::Serialize;

/// Counts that always add up: `read = accepted + duplicates + rejected`, where accepted
/// records are alerts in scope, alerts outside the filters, and non-alert messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub read: u64,
    pub accepted_alerts: u64,
    pub out_of_scope: u64,
    pub non_alert: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Occurrences behind the accepted alert records (throttled alerts count several).
    pub alerts: u64,
    pub unknown_device_records: u64,
    pub unknown_devices: u64,
}

impl Totals {
    pub fn accepted(&self) -> u64 {
        self.accepted_alerts + self.out_of_scope + self.non_alert
    }

    pub fn balanced(&self) -> bool {
        self.read == self.accepted() + self.duplicates + self.rejected
    }

    pub fn add(&mut self, o: &Totals) {
        self.read += o.read;
        self.accepted_alerts += o.accepted_alerts;
        self.out_of_scope += o.out_of_scope;
        self.non_alert += o.non_alert;
        self.duplicates += o.duplicates;
        self.rejected += o.rejected;
        self.alerts += o.alerts;
        self.unknown_device_records += o.unknown_device_records;
    }
}
