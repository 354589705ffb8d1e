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

    /// The one-paragraph summary printed after every run.
    pub fn summary(&self) -> String {
        let n = crate::render::thousands;
        let mut s = format!(
            "records read {} = accepted {} + duplicates {} + rejected {}",
            n(self.read),
            n(self.accepted()),
            n(self.duplicates),
            n(self.rejected)
        );
        s += &format!(
            "\n  accepted: {} alert records ({} alerts), {} outside the filters, {} non-alert messages",
            n(self.accepted_alerts),
            n(self.alerts),
            n(self.out_of_scope),
            n(self.non_alert)
        );
        if self.unknown_device_records > 0 {
            s += &format!(
                "\n  {} alert records from {} devices not in the inventory (counted under Unknown)",
                n(self.unknown_device_records),
                n(self.unknown_devices)
            );
        }
        s
    }
}

/// A record that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub source: usize,
    pub line: u64,
    pub offset: u64,
    pub reason: String,
    pub raw: Vec<u8>,
}

impl Reject {
    /// A rejected line of a side input (no byte offset), keeping at most 512 bytes of it.
    pub fn new(source: usize, line: u64, reason: String, raw: &str) -> Reject {
        let mut end = raw.len().min(512);
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        Reject {
            source,
            line,
            offset: 0,
            reason,
            raw: raw.as_bytes()[..end].to_vec(),
        }
    }
}
