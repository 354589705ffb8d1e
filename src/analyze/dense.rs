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
        self.find_indexed(
            key.day,
            key.code,
            key.region.map_or(0, |r| r as usize),
            key.device_type.map_or(0, |t| t as usize),
            key.generation.map_or(0, |g| g as usize),
        )
    }

    /// `find` for a key given as its day, code and attribute indices (`Region as usize` and
    /// so on; an attribute not grouped by is ignored). The fold calls this with the indices
    /// read straight from a device's packed inventory value: gathering them into a
    /// `DenseKey` or a `DeviceInfo` on the stack first made each record wait on store
    /// forwarding. The day and code of the record before, with its day table's slot in
    /// range, is the common case and stays inline; the rest is `find_new`.
    #[inline(always)]
    pub fn find_indexed(
        &mut self,
        day: Option<Day>,
        code: Option<AlertCode>,
        r: usize,
        t: usize,
        g: usize,
    ) -> Option<(Slot, Option<u32>)> {
        let [sr, st, sg] = self.sizes;
        let (r, t, g) = (
            if sr > 1 { r } else { 0 },
            if st > 1 { t } else { 0 },
            if sg > 1 { g } else { 0 },
        );
        debug_assert!(r < sr && t < st && g < sg);
        let no = match code {
            None => 1,
            Some(c) => *self.code_no.get(c.0 as usize)?,
        };
        if no != 0
            && let Some((last, table)) = self.last
            && last == day
        {
            let pos = (no as usize - 1) * self.stride + (r * st + t) * sg + g;
            if let Some(&v) = self.tables[table].get(pos) {
                return Some((Slot(table, pos), v.checked_sub(1)));
            }
        }
        self.find_new(day, code, r, t, g)
    }

    /// `find_indexed` for a code without a number yet, another day than the last one, or a
    /// slot past the end of its day table (a code numbered after the table was sized).
    #[cold]
    #[inline(never)]
    fn find_new(
        &mut self,
        day: Option<Day>,
        code: Option<AlertCode>,
        r: usize,
        t: usize,
        g: usize,
    ) -> Option<(Slot, Option<u32>)> {
        let code = match code {
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
        let [_, st, sg] = self.sizes;
        let table = match self.last {
            Some((last, table)) if last == day => table,
            _ => {
                let next = self.tables.len();
                let table = *self.day_no.entry(day).or_insert(next);
                if table == next {
                    self.tables.push(Vec::new());
                }
                self.last = Some((day, table));
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
