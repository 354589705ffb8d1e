//! Every device's firmware version as of each moment, where evidence shows it changed.
//!
//! An inventory row gives a device's version at the end (the extract is taken after the
//! period). A device upgraded during the period ran another version before: crediting its
//! earlier alerts to the end version blames the new firmware for the old one's faults. The
//! evidence of a change (an OTA outcome record or an 8F43 alert carrying the new version, at a
//! time) builds a timeline per changed device; the version it ran before the first change comes
//! from the campaign's source version when known, and is otherwise labelled as unknown rather
//! than guessed. Devices without evidence ran their inventory version throughout.
//!
//! Alerts are credited by their exact time; installed bases count a device on the new version
//! from the day of the change (the change day belongs to the new version).

use crate::model::time::day_of;
use crate::model::{Day, Millis};
use rustc_hash::FxHashMap;

/// Evidence that a device ran `version` from `at` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareChange {
    pub device: u64,
    pub at: Millis,
    pub version: String,
}

/// One changed device: the version before the first change, then each change by time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Firmware id (`Inventory::firmwares`) before the first change.
    pub before: u16,
    /// (time, firmware id), sorted by time; consecutive repeats of a version removed.
    pub changes: Vec<(Millis, u16)>,
}

impl Timeline {
    /// The version running at `ts`.
    #[inline]
    pub fn at(&self, ts: Millis) -> u16 {
        let i = self.changes.partition_point(|c| c.0 <= ts);
        if i == 0 {
            self.before
        } else {
            self.changes[i - 1].1
        }
    }

    /// The device's versions by day: `(first day, version)` segments in order, the first
    /// starting at `None` (since it was installed). The change day belongs to the new version.
    pub fn segments(&self) -> Vec<(Option<Day>, u16)> {
        let mut out: Vec<(Option<Day>, u16)> = vec![(None, self.before)];
        for &(at, v) in &self.changes {
            let day = day_of(at);
            match out.last_mut() {
                // Two changes on one day: the day belongs to the later one.
                Some(last) if last.0 == Some(day) => last.1 = v,
                _ => out.push((Some(day), v)),
            }
        }
        out.dedup_by(|b, a| a.1 == b.1);
        out
    }
}

/// The timelines of the devices whose firmware changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirmwareHistory {
    pub devices: FxHashMap<u64, Timeline>,
}

impl FirmwareHistory {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The version a device ran at `ts`: its timeline's, or `end` (the inventory's) without one.
    #[inline]
    pub fn version_at(&self, device: u64, ts: Millis, end: u16) -> u16 {
        match self.devices.get(&device) {
            Some(t) => t.at(ts),
            None => end,
        }
    }
}

/// The name of the version a device ran before a change when no evidence says which.
pub const UNKNOWN_BEFORE: &str = "(before the upgrade: unknown)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::day_start;

    #[test]
    fn a_timeline_answers_by_time_and_by_day() {
        let d10 = day_start(10);
        let t = Timeline {
            before: 1,
            changes: vec![(d10 + 3_600_000, 2), (day_start(12), 3)],
        };
        assert_eq!(t.at(d10), 1, "before the change, the old version");
        assert_eq!(t.at(d10 + 3_600_000), 2, "from the change on, the new one");
        assert_eq!(t.at(day_start(11)), 2);
        assert_eq!(t.at(day_start(13)), 3);
        assert_eq!(t.segments(), vec![(None, 1), (Some(10), 2), (Some(12), 3)]);
        let h = FirmwareHistory {
            devices: [(7, t)].into_iter().collect(),
        };
        assert_eq!(h.version_at(7, d10, 9), 1);
        assert_eq!(
            h.version_at(8, d10, 9),
            9,
            "no timeline: the inventory's version"
        );
    }

    #[test]
    fn two_changes_on_one_day_give_the_day_to_the_later() {
        let t = Timeline {
            before: 1,
            changes: vec![(day_start(5) + 1000, 2), (day_start(5) + 2000, 3)],
        };
        assert_eq!(t.segments(), vec![(None, 1), (Some(5), 3)]);
    }
}
