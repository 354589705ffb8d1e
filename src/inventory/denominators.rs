//! Installed devices per group and day: the denominators of every rate.
//!
//! For a per-device inventory a group's installed base on day `d` is the number of its devices
//! installed on or before `d` (devices without an install date count throughout). For a count
//! table it is the latest snapshot on or before `d` (or the undated count); before the first
//! snapshot it is unknown, and the rate says so rather than dividing by a guess.

use super::{DeviceFilter, DeviceInfo, Inventory};
use crate::model::{Day, DeviceType, Generation, Region};
use rustc_hash::FxHashMap;

/// Which device attributes the groups are split by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DenomDims {
    pub region: bool,
    pub device_type: bool,
    pub generation: bool,
    pub model: bool,
    pub firmware: bool,
}

/// The device-attribute part of a group key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DenomKey {
    pub region: Option<Region>,
    pub device_type: Option<DeviceType>,
    pub generation: Option<Generation>,
    pub model: Option<u16>,
    pub firmware: Option<u16>,
}

impl DenomDims {
    pub fn key(&self, info: &DeviceInfo) -> DenomKey {
        DenomKey {
            region: self.region.then_some(info.region),
            device_type: self.device_type.then_some(info.device_type),
            generation: self.generation.then_some(info.generation),
            model: self.model.then_some(info.model),
            firmware: self.firmware.then_some(info.firmware),
        }
    }
}

/// Region, type and generation: the low 10 bits of a device's packed value.
const PLAIN_BITS: u64 = (1 << 10) - 1;

/// Devices counted by group: those counted throughout, and the change in count by day.
#[derive(Default)]
struct Hist {
    groups: FxHashMap<DenomKey, (i64, FxHashMap<Day, i64>)>,
    /// Devices without an install date, grouped by neither model nor firmware, counted by
    /// their packed region, type and generation first (`PLAIN_BITS`): one hash-map entry per
    /// device was a serial tenth of a second at the end of a 5,000,000-device run.
    plain: Vec<i64>,
}

impl Hist {
    fn merge(mut self, other: Hist) -> Hist {
        for (k, (always, days)) in other.groups {
            let e = self.groups.entry(k).or_default();
            e.0 += always;
            for (d, n) in days {
                *e.1.entry(d).or_default() += n;
            }
        }
        if self.plain.is_empty() {
            self.plain = other.plain;
        } else {
            for (a, b) in self.plain.iter_mut().zip(other.plain) {
                *a += b;
            }
        }
        self
    }
}

/// Counts the devices of one share of the device table (`DeviceTable::shares`).
fn count_devices(
    inv: &Inventory,
    dims: DenomDims,
    filter: &DeviceFilter,
    share: &[(u64, u64)],
) -> Hist {
    let mut h = Hist {
        groups: FxHashMap::default(),
        plain: vec![0; 1 << 10],
    };
    let by_version = !inv.history.is_empty() && (dims.firmware || filter.firmwares.is_some());
    for (id, v) in super::table::used(share) {
        let info = DeviceInfo::unpack(v);
        if by_version && let Some(t) = inv.history.devices.get(&id) {
            // A device that changed firmware counts on each version for its days on it.
            let segments = t.segments();
            for (k, &(start, firmware)) in segments.iter().enumerate() {
                let on = DeviceInfo { firmware, ..info };
                let end = segments.get(k + 1).and_then(|s| s.0);
                let from = match (info.installed, start) {
                    (Some(i), Some(s)) => Some(i.max(s)),
                    (i, s) => i.or(s),
                };
                if !filter.matches(&on) || from.zip(end).is_some_and(|(f, e)| f >= e) {
                    continue;
                }
                let e = h.groups.entry(dims.key(&on)).or_default();
                match from {
                    Some(d) => *e.1.entry(d).or_default() += 1,
                    None => e.0 += 1,
                }
                if let Some(d) = end {
                    *e.1.entry(d).or_default() -= 1;
                }
            }
            continue;
        }
        if !filter.matches(&info) {
            continue;
        }
        if info.installed.is_none() && !dims.model && !dims.firmware {
            h.plain[(v & PLAIN_BITS) as usize] += 1;
            continue;
        }
        let e = h.groups.entry(dims.key(&info)).or_default();
        match info.installed {
            Some(d) => *e.1.entry(d).or_default() += 1,
            None => e.0 += 1,
        }
    }
    h
}

#[derive(Clone, Debug)]
enum Series {
    /// Devices with no install date, then the cumulative change by day (sorted): installs add,
    /// a device leaving a version (a firmware change) takes away.
    Installs { always: i64, steps: Vec<(Day, i64)> },
    /// Snapshots (day, count), sorted; `None` day = undated constant.
    Snapshots {
        undated: Option<u64>,
        dated: Vec<(Day, u64)>,
    },
}

impl Series {
    fn at(&self, day: Day) -> Option<u64> {
        match self {
            Series::Installs { always, steps } => {
                let i = steps.partition_point(|s| s.0 <= day);
                let n = always + if i == 0 { 0 } else { steps[i - 1].1 };
                Some(n.max(0) as u64)
            }
            Series::Snapshots { undated, dated } => {
                let i = dated.partition_point(|s| s.0 <= day);
                if i > 0 {
                    Some(dated[i - 1].1)
                } else {
                    *undated
                }
            }
        }
    }
}

/// Denominators for one choice of dimensions.
#[derive(Clone, Debug)]
pub struct Denominators {
    dims: DenomDims,
    series: FxHashMap<DenomKey, Series>,
    /// Count tables cannot split by model or firmware.
    unsupported: bool,
}

impl Denominators {
    pub fn build(inv: &Inventory, dims: DenomDims) -> Denominators {
        Denominators::build_filtered(inv, dims, &DeviceFilter::default())
    }

    /// The denominators of the devices `filter` keeps (the other devices count nowhere).
    pub fn build_filtered(inv: &Inventory, dims: DenomDims, filter: &DeviceFilter) -> Denominators {
        let mut series = FxHashMap::default();
        if inv.is_count_table() {
            // Sum the rows of each coarse key per date; undated rows form a constant.
            let mut dated: FxHashMap<DenomKey, FxHashMap<Day, u64>> = FxHashMap::default();
            let mut undated: FxHashMap<DenomKey, u64> = FxHashMap::default();
            for r in &inv.counts {
                let info = DeviceInfo {
                    region: r.region,
                    device_type: r.device_type,
                    generation: r.generation,
                    model: 0,
                    firmware: 0,
                    installed: None,
                };
                if !filter.matches_attrs(&info) {
                    continue;
                }
                let k = dims.key(&info);
                match r.date {
                    Some(d) => *dated.entry(k).or_default().entry(d).or_default() += r.count,
                    None => *undated.entry(k).or_default() += r.count,
                }
            }
            let keys: Vec<DenomKey> = dated.keys().chain(undated.keys()).copied().collect();
            for k in keys {
                let mut d: Vec<(Day, u64)> = dated
                    .get(&k)
                    .map(|m| m.iter().map(|(a, b)| (*a, *b)).collect())
                    .unwrap_or_default();
                d.sort();
                series.insert(
                    k,
                    Series::Snapshots {
                        undated: undated.get(&k).copied(),
                        dated: d,
                    },
                );
            }
            return Denominators {
                dims,
                series,
                unsupported: dims.model || dims.firmware || filter.needs_models(),
            };
        }
        // Per group: devices counted throughout, and the change in count by day. The table is
        // read in shares on all cores: a serial pass over 5,000,000 devices was 30 ms at the end
        // of a run with one core idle.
        let threads = if inv.devices.len() < 1 << 20 {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
        };
        let mut hist = super::table::fork_join(inv.devices.shares(threads).collect(), |share| {
            count_devices(inv, dims, filter, share)
        })
        .into_iter()
        .fold(Hist::default(), Hist::merge);
        let plain = std::mem::take(&mut hist.plain);
        let mut hist = hist.groups;
        for (bits, &n) in plain.iter().enumerate() {
            if n > 0 {
                hist.entry(dims.key(&DeviceInfo::unpack(bits as u64)))
                    .or_default()
                    .0 += n;
            }
        }
        for (k, (always, days)) in hist {
            let mut steps: Vec<(Day, i64)> = days.into_iter().collect();
            steps.sort();
            let mut acc = 0;
            for s in &mut steps {
                acc += s.1;
                s.1 = acc;
            }
            series.insert(k, Series::Installs { always, steps });
        }
        Denominators {
            dims,
            series,
            unsupported: false,
        }
    }

    pub fn dims(&self) -> DenomDims {
        self.dims
    }

    /// The groups that have (or had) installed devices.
    pub fn keys(&self) -> impl Iterator<Item = &DenomKey> {
        self.series.keys()
    }

    /// Devices of the group installed on `day`; `None` when the inventory cannot say.
    pub fn installed(&self, key: &DenomKey, day: Day) -> Option<u64> {
        if self.unsupported {
            return None;
        }
        match self.series.get(key) {
            Some(s) => s.at(day),
            // A group the inventory has no devices of has an installed base of zero, unless
            // it is the Unknown bucket of devices missing from the inventory.
            None if key.region == Some(Region::Unknown)
                || key.device_type == Some(DeviceType::Unknown) =>
            {
                None
            }
            None => Some(0),
        }
    }

    /// Device-days of the group over `[from, to]`: the denominator of a rate over a period.
    pub fn device_days(&self, key: &DenomKey, from: Day, to: Day) -> Option<u64> {
        let mut total = 0;
        for d in from..=to {
            total += self.installed(key, d)?;
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{CountRow, DeviceTable};
    use crate::model::DeviceId;

    fn inv(devs: &[(u64, Region, Option<Day>)]) -> Inventory {
        let entries: Vec<(u64, u64)> = devs
            .iter()
            .map(|&(id, region, installed)| {
                let info = DeviceInfo {
                    region,
                    device_type: DeviceType::Esme,
                    generation: Generation::Smets2,
                    model: 0,
                    firmware: 0,
                    installed,
                };
                (DeviceId(id).0, info.pack())
            })
            .collect();
        Inventory {
            devices: DeviceTable::build(&entries).0,
            ..Default::default()
        }
    }

    #[test]
    fn installs_accumulate() {
        let i = inv(&[
            (1, Region::North, Some(10)),
            (2, Region::North, Some(12)),
            (3, Region::North, None),
            (4, Region::South, Some(11)),
        ]);
        let d = Denominators::build(
            &i,
            DenomDims {
                region: true,
                ..Default::default()
            },
        );
        let north = DenomKey {
            region: Some(Region::North),
            ..Default::default()
        };
        assert_eq!(d.installed(&north, 9), Some(1));
        assert_eq!(d.installed(&north, 10), Some(2));
        assert_eq!(d.installed(&north, 11), Some(2));
        assert_eq!(d.installed(&north, 12), Some(3));
        assert_eq!(d.device_days(&north, 10, 12), Some(2 + 2 + 3));
        let central = DenomKey {
            region: Some(Region::Central),
            ..Default::default()
        };
        assert_eq!(d.installed(&central, 12), Some(0));
        let unknown = DenomKey {
            region: Some(Region::Unknown),
            ..Default::default()
        };
        assert_eq!(d.installed(&unknown, 12), None);
        let all = Denominators::build(&i, DenomDims::default());
        assert_eq!(all.installed(&DenomKey::default(), 12), Some(4));
    }

    #[test]
    fn snapshots_step() {
        let row = |date, count| CountRow {
            date,
            region: Region::North,
            device_type: DeviceType::Esme,
            generation: Generation::Smets2,
            count,
        };
        let i = Inventory {
            counts: vec![row(Some(10), 100), row(Some(20), 150)],
            ..Default::default()
        };
        let d = Denominators::build(
            &i,
            DenomDims {
                region: true,
                ..Default::default()
            },
        );
        let k = DenomKey {
            region: Some(Region::North),
            ..Default::default()
        };
        assert_eq!(
            d.installed(&k, 9),
            None,
            "before the first snapshot the base is unknown"
        );
        assert_eq!(d.installed(&k, 15), Some(100));
        assert_eq!(d.installed(&k, 25), Some(150));
    }
}
