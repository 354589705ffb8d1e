//! Group numbers found by indexing instead of hashing, for the usual shapes of `alerts`
//! (grouped by any of day, region, device type, generation and code).
//!
//! A fold asks for the number of its group once per record. A hash map of packed 128-bit
//! keys answered with two cache misses (control bytes, then the key) into a table spread
//! over all days' groups. Here each day has a small table of its own, indexed by a number
//! given to each alert code on first sight and by the attributes; inputs come in time
//! order, so one day's table (a few KiB) serves thousands of records in a row.
//!
//! Keys it cannot place (an unusual shape, too many codes) are left to the hash map: the
//! caller falls back for exactly those keys, always the same ones, so no key has two numbers.

use super::group::{Dim, GroupKey};
use crate::model::{AlertCode, Day, DeviceType, Generation, Region};
use rustc_hash::FxHashMap;

/// Alert codes are below `3 << 16` (device codes, then DCC `N` and `AD` codes).
const CODE_SPACE: usize = 3 << 16;
/// Codes given a number; later ones use the hash map (a day table stays small).
const MAX_CODES: usize = 256;

/// Day tables and the code numbers behind them (see the module doc).
pub struct DenseGroups {
    /// 1 + the number of each alert code (by `AlertCode.0`); 0: none yet.
    code_no: Vec<u16>,
    /// Numbers given so far; number 0 stands for "not grouped by code".
    codes: usize,
    /// How many values each attribute takes in a key (1 when not grouped by it).
    sizes: [usize; 3],
    /// Slots per code in a day table.
    stride: usize,
    /// Table of each day (`None`: not grouped by day).
    day_no: FxHashMap<Option<Day>, usize>,
    /// Per day, 1 + the group number in each slot; 0: no group yet.
    tables: Vec<Vec<u32>>,
    /// The day looked up last and its table.
    last: Option<(Option<Day>, usize)>,
}

/// The parts of a key the index reads: for the shapes it serves, the key's other parts are
/// always `None`. A fold fills these for every record and builds the whole `GroupKey` only for
/// a new group (building and copying the whole key for every record cost a sixth of the fold).
#[derive(Clone, Copy, Debug)]
pub struct DenseKey {
    pub day: Option<Day>,
    pub region: Option<Region>,
    pub device_type: Option<DeviceType>,
    pub generation: Option<Generation>,
    pub code: Option<AlertCode>,
}

impl From<&GroupKey> for DenseKey {
    fn from(k: &GroupKey) -> DenseKey {
        DenseKey {
            day: k.day,
            region: k.region,
            device_type: k.device_type,
            generation: k.generation,
            code: k.code,
        }
    }
}

/// Where a key's group number lives: table and slot.
#[derive(Clone, Copy, Debug)]
pub struct Slot(usize, usize);

impl DenseGroups {
    /// An index for keys of these dimensions, if it can hold them: no split into classes,
    /// no labels, and only day, region, device type, generation and code.
    pub fn new(by: &[Dim], split: bool) -> Option<DenseGroups> {
        let plain = by.iter().all(|d| {
            matches!(
                d,
                Dim::Day | Dim::Region | Dim::DeviceType | Dim::Generation | Dim::Code
            )
        });
        if split || !plain {
            return None;
        }
        let size = |d: Dim, n: usize| if by.contains(&d) { n } else { 1 };
        let sizes = [
            size(Dim::Region, Region::ALL.len()),
            size(Dim::DeviceType, DeviceType::ALL.len()),
            size(Dim::Generation, Generation::ALL.len()),
        ];
        Some(DenseGroups {
            code_no: vec![0; CODE_SPACE],
            codes: 1,
            sizes,
            stride: sizes.iter().product(),
            day_no: FxHashMap::default(),
            tables: Vec::new(),
            last: None,
        })
    }

    /// The slot of a key and the group number in it (`None`: no group yet); `None` when the
    /// key is the hash map's to place.
    #[inline]
    pub fn find(&mut self, key: DenseKey) -> Option<(Slot, Option<u32>)> {
        let code = match key.code {
            None => 0,
            Some(c) => {
                let no = self.code_no.get_mut(c.0 as usize)?;
                if *no == 0 {
                    if self.codes == MAX_CODES {
                        return None;
                    }
                    *no = self.codes as u16 + 1;
                    self.codes += 1;
                }
                *no as usize - 1
            }
        };
        let attr = |v: Option<u8>, size: usize| match v {
            Some(i) if size > 1 => i as usize,
            _ => 0,
        };
        let [sr, st, sg] = self.sizes;
        let (r, t, g) = (
            attr(key.region.map(|r| r as u8), sr),
            attr(key.device_type.map(|t| t as u8), st),
            attr(key.generation.map(|g| g as u8), sg),
        );
        debug_assert!(r < sr && t < st && g < sg);
        let table = match self.last {
            Some((day, table)) if day == key.day => table,
            _ => {
                let next = self.tables.len();
                let table = *self.day_no.entry(key.day).or_insert(next);
                if table == next {
                    self.tables.push(Vec::new());
                }
                self.last = Some((key.day, table));
                table
            }
        };
        let pos = code * self.stride + (r * st + t) * sg + g;
        let slots = &mut self.tables[table];
        if pos >= slots.len() {
            slots.resize(self.codes * self.stride, 0);
        }
        let v = slots[pos];
        Some((Slot(table, pos), v.checked_sub(1)))
    }

    /// Records the group number of a slot `find` gave.
    #[inline]
    pub fn set(&mut self, Slot(table, pos): Slot, group: u32) {
        self.tables[table][pos] = group + 1;
    }
}
