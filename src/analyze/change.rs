//! Before and after a per-device change (a firmware upgrade, a migration): which side of its
//! device's change day each alert falls on, and the device-days on each side.
//!
//! A device's change day itself belongs to neither side (its alerts that day are a mix). Devices
//! with no change (`None`) form a class of their own, the natural control.

use crate::analyze::alerts::Split;
use crate::inventory::DeviceInfo;
use crate::model::time::day_of;
use crate::model::{AlertCode, Day, Event};
use rustc_hash::FxHashMap;

/// Classes (`GroupKey::class`).
pub const OUTSIDE: u8 = 0;
pub const AFTER: u8 = 1;
pub const BEFORE: u8 = 2;
pub const NEVER: u8 = 3;

/// The devices of interest and the day each changed (`None`: not during the data).
#[derive(Debug, Default)]
pub struct ChangeSplit {
    pub changed: FxHashMap<u64, Option<Day>>,
}

impl ChangeSplit {
    pub fn class_on(&self, device: u64, day: Day) -> u8 {
        match self.changed.get(&device) {
            None => OUTSIDE,
            Some(c) => class_of(*c, day),
        }
    }
}

/// The class of a device that changed on `change` (or never), on `day`.
pub fn class_of(change: Option<Day>, day: Day) -> u8 {
    match change {
        None => NEVER,
        Some(c) if day > c => AFTER,
        Some(c) if day < c => BEFORE,
        Some(_) => OUTSIDE,
    }
}

impl Split for ChangeSplit {
    fn class(&self, ev: &Event, device: Option<u64>, _: &DeviceInfo, _: AlertCode) -> u8 {
        device.map_or(OUTSIDE, |d| self.class_on(d, day_of(ev.ts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_by_day() {
        let mut changed = FxHashMap::default();
        changed.insert(1, Some(10));
        changed.insert(2, None);
        let s = ChangeSplit { changed };
        assert_eq!(s.class_on(1, 9), BEFORE);
        assert_eq!(s.class_on(1, 10), OUTSIDE);
        assert_eq!(s.class_on(1, 11), AFTER);
        assert_eq!(s.class_on(2, 11), NEVER);
        assert_eq!(s.class_on(3, 11), OUTSIDE);
    }
}
