//! The device inventory: who each device is (region, type, generation, model, firmware, install
//! day), and how many devices of a group were installed on a day (the rate denominators).
//!
//! Two shapes are accepted: one row per device, or a count table (optional date, region, type,
//! generation, count). Per-device attributes pack into one `u64` held in a `DeviceTable`, so a
//! device costs about 20 bytes; models and firmware versions are interned to `u16`.

mod denominators;
mod filter;
mod firmware;
mod load;
mod names;
mod table;

pub use denominators::{DenomDims, DenomKey, Denominators};
pub use filter::{DeviceFilter, UnknownName};
pub use firmware::{FirmwareChange, FirmwareHistory, Timeline, UNKNOWN_BEFORE};
pub use load::{InventoryError, InventoryReject, load_inventory};
pub use table::{BatchScratch, DeviceTable};

use crate::model::{Day, DeviceId, DeviceType, Generation, RecordAttrs, Region};

/// The attributes of one device, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub region: Region,
    pub device_type: DeviceType,
    pub generation: Generation,
    /// Index into `Inventory::models` (0 is the empty string: no model given).
    pub model: u16,
    pub firmware: u16,
    /// Install day; `None` means installed throughout.
    pub installed: Option<Day>,
}

/// Day numbers are stored as an offset from 1970 in 16 bits, 0 meaning "no date".
const NO_DAY: u64 = 0;

impl DeviceInfo {
    pub fn pack(self) -> u64 {
        let day = match self.installed {
            Some(d) => (d.clamp(0, 65_534) + 1) as u64,
            None => NO_DAY,
        };
        (self.region as u64)
            | (self.device_type as u64) << 4
            | (self.generation as u64) << 8
            | (self.model as u64) << 10
            | (self.firmware as u64) << 26
            | day << 42
    }

    pub fn unpack(v: u64) -> DeviceInfo {
        let day = (v >> 42) & 0xFFFF;
        DeviceInfo {
            region: Region::from_index((v & 0xF) as u8),
            device_type: DeviceType::from_index((v >> 4 & 0xF) as u8),
            generation: Generation::from_index((v >> 8 & 0x3) as u8),
            model: (v >> 10) as u16,
            firmware: (v >> 26) as u16,
            installed: (day != NO_DAY).then(|| day as Day - 1),
        }
    }

    /// A device the inventory lacks, as its record describes it: the record's own region,
    /// type and generation where it gives them, else unknown.
    pub fn from_record(a: &RecordAttrs) -> DeviceInfo {
        DeviceInfo {
            region: a.region.unwrap_or(Region::Unknown),
            device_type: a.device_type.unwrap_or(DeviceType::Unknown),
            generation: a.generation.unwrap_or(Generation::Unknown),
            model: 0,
            firmware: 0,
            installed: None,
        }
    }

    /// The region, device type and generation of a packed value, as `unpack` gives them
    /// (`Region as usize` and so on), without the rest: what a fold grouping by them reads.
    #[inline]
    pub fn attr_indices(v: u64) -> (usize, usize, usize) {
        (
            Region::from_index((v & 0xF) as u8) as usize,
            DeviceType::from_index((v >> 4 & 0xF) as u8) as usize,
            Generation::from_index((v >> 8 & 0x3) as u8) as usize,
        )
    }
}

/// One row of a count-table inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountRow {
    pub date: Option<Day>,
    pub region: Region,
    pub device_type: DeviceType,
    pub generation: Generation,
    pub count: u64,
}

/// A loaded inventory.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub devices: DeviceTable,
    pub models: Vec<String>,
    pub firmwares: Vec<String>,
    /// Set for count-table inventories (then `devices` is empty).
    pub counts: Vec<CountRow>,
    /// Ids that appeared more than once (the last row wins).
    pub repeated_ids: usize,
    pub source: String,
    /// The versions devices ran before their inventory version, where evidence shows a change
    /// (empty until `install_firmware_history`).
    pub history: FirmwareHistory,
}

impl Inventory {
    #[inline]
    pub fn lookup(&self, id: DeviceId) -> Option<DeviceInfo> {
        self.devices.get(id.0).map(DeviceInfo::unpack)
    }

    #[inline]
    pub fn lookup_packed(&self, id: DeviceId) -> Option<u64> {
        self.devices.get(id.0)
    }

    pub fn is_count_table(&self) -> bool {
        !self.counts.is_empty()
    }

    pub fn model_name(&self, i: u16) -> &str {
        self.models
            .get(i as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The index of a model name (as `DeviceInfo::model` holds it), if any device has it.
    pub fn model_id(&self, name: &str) -> Option<u16> {
        self.models.iter().position(|m| m == name).map(|i| i as u16)
    }

    /// The index of a firmware version, if any device runs it.
    pub fn firmware_id(&self, name: &str) -> Option<u16> {
        self.firmwares
            .iter()
            .position(|m| m == name)
            .map(|i| i as u16)
    }

    /// An inventory with no devices that knows these model names (for tests of model rules).
    pub fn with_models(names: &[&str]) -> Inventory {
        let mut models = vec![String::new()];
        models.extend(names.iter().map(|s| s.to_string()));
        Inventory {
            models,
            ..Inventory::default()
        }
    }

    pub fn firmware_name(&self, i: u16) -> &str {
        self.firmwares
            .get(i as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The firmware id of a version name, added to `firmwares` when new. A dotted version from
    /// a GBCS payload (`4.0.0.0`) finds the inventory's spelling of it (`4.0.0`).
    pub fn firmware_id_or_add(&mut self, name: &str) -> u16 {
        if let Some(i) = self.firmware_id(name) {
            return i;
        }
        if let Some(i) = self
            .firmwares
            .iter()
            .position(|f| !f.is_empty() && crate::model::firmware::same_version(f, name))
        {
            return i as u16;
        }
        if self.firmwares.is_empty() {
            self.firmwares.push(String::new());
        }
        self.firmwares.push(name.to_string());
        (self.firmwares.len() - 1) as u16
    }

    /// Builds every changed device's firmware timeline from the evidence of changes and the
    /// versions known to have run before them (a campaign's source versions); returns how
    /// many devices changed. Devices the inventory lacks are left out (they have no
    /// attributes to group by).
    pub fn install_firmware_history(
        &mut self,
        changes: &[FirmwareChange],
        before: &rustc_hash::FxHashMap<u64, String>,
    ) -> usize {
        let mut by_device: rustc_hash::FxHashMap<u64, Vec<(crate::model::Millis, &str)>> =
            Default::default();
        for c in changes {
            if self.devices.get(c.device).is_some() {
                by_device
                    .entry(c.device)
                    .or_default()
                    .push((c.at, c.version.as_str()));
            }
        }
        let mut history = FirmwareHistory::default();
        let mut ids: Vec<u64> = by_device.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let mut list = by_device.remove(&id).unwrap_or_default();
            list.sort();
            let before_id = match before.get(&id) {
                Some(v) if !v.trim().is_empty() => self.firmware_id_or_add(v.trim()),
                _ => self.firmware_id_or_add(UNKNOWN_BEFORE),
            };
            let mut t = Timeline {
                before: before_id,
                changes: Vec::with_capacity(list.len()),
            };
            for (at, v) in list {
                let v = self.firmware_id_or_add(v);
                if t.changes.last().map_or(t.before, |c| c.1) != v {
                    t.changes.push((at, v));
                }
            }
            if !t.changes.is_empty() {
                history.devices.insert(id, t);
            }
        }
        let n = history.devices.len();
        self.history = history;
        n
    }

    /// Number of devices (per-device inventories) or of counted devices on the latest date.
    pub fn device_count(&self) -> u64 {
        if self.is_count_table() {
            let latest = self.counts.iter().filter_map(|r| r.date).max();
            self.counts
                .iter()
                .filter(|r| r.date == latest)
                .map(|r| r.count)
                .sum()
        } else {
            self.devices.len() as u64
        }
    }

    /// Bytes of memory the per-device data takes.
    pub fn heap_bytes(&self) -> usize {
        self.devices.heap_bytes()
            + self.models.iter().map(|s| s.capacity() + 24).sum::<usize>()
            + self
                .firmwares
                .iter()
                .map(|s| s.capacity() + 24)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        let d = DeviceInfo {
            region: Region::South4G,
            device_type: DeviceType::Cad,
            generation: Generation::Smets1,
            model: 65535,
            firmware: 1234,
            installed: Some(19723),
        };
        assert_eq!(DeviceInfo::unpack(d.pack()), d);
        let d2 = DeviceInfo {
            installed: None,
            model: 0,
            ..d
        };
        assert_eq!(DeviceInfo::unpack(d2.pack()), d2);
        assert!(d.pack() < 1 << 58, "bits 58..63 stay free");
    }
}
