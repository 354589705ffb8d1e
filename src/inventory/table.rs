//! A compact open-addressing hash table from device id (`u64`) to packed attributes (`u64`).
//!
//! One slot is 16 bytes, key and value side by side, so a lookup costs one cache miss. The
//! table has `n * 5 / 4` slots (not a power of two: the slot is picked by multiply-shift, which
//! needs none), so it holds a device in 20 bytes. Bit 63 of a value marks the slot used, which
//! leaves every `u64` free as a key. Linear probing; no deletion (inventories are load-once).

const USED: u64 = 1 << 63;

#[derive(Clone, Debug, Default)]
pub struct DeviceTable {
    slots: Vec<(u64, u64)>,
    len: usize,
}

#[inline]
fn mix(key: u64) -> u64 {
    let k = (key ^ (key >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (k ^ (k >> 32)).wrapping_mul(0x94D0_49BB_1331_11EB)
}

impl DeviceTable {
    /// Builds a table from (id, value) pairs; a repeated id keeps its last value. Returns the
    /// table and the number of repeated ids.
    pub fn build(entries: &[(u64, u64)]) -> (DeviceTable, usize) {
        let cap = (entries.len() * 5 / 4).max(8);
        let mut t = DeviceTable {
            slots: vec![(0, 0); cap],
            len: 0,
        };
        // Insert in order of home slot, bucketed, so writes sweep memory instead of jumping.
        const BUCKETS: usize = 4096;
        let mut counts = vec![0usize; BUCKETS + 1];
        let bucket_of = |h: usize| h * BUCKETS / cap;
        for &(k, _) in entries {
            counts[bucket_of(t.home(k)) + 1] += 1;
        }
        for i in 1..=BUCKETS {
            counts[i] += counts[i - 1];
        }
        let mut order = vec![0u32; entries.len()];
        for (i, &(k, _)) in entries.iter().enumerate() {
            let b = bucket_of(t.home(k));
            order[counts[b]] = i as u32;
            counts[b] += 1;
        }
        let mut repeated = 0;
        // Stable within a bucket, so the later of two repeats is inserted last and wins.
        for &i in &order {
            let (k, v) = entries[i as usize];
            if t.insert(k, v) {
                repeated += 1;
            }
        }
        (t, repeated)
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        ((mix(key) as u128 * self.slots.len() as u128) >> 64) as usize
    }

    /// Inserts or replaces; returns true if the key was already present.
    fn insert(&mut self, key: u64, value: u64) -> bool {
        let cap = self.slots.len();
        let mut i = self.home(key);
        loop {
            let s = &mut self.slots[i];
            if s.1 & USED == 0 {
                *s = (key, value | USED);
                self.len += 1;
                return false;
            }
            if s.0 == key {
                s.1 = value | USED;
                return true;
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    #[inline]
    pub fn get(&self, key: u64) -> Option<u64> {
        let cap = self.slots.len();
        if cap == 0 {
            return None;
        }
        let mut i = self.home(key);
        loop {
            let s = self.slots[i];
            if s.1 & USED == 0 {
                return None;
            }
            if s.0 == key {
                return Some(s.1 & !USED);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// Hints the CPU to fetch the slot a lookup of `key` will read first.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        if self.slots.is_empty() {
            return;
        }
        let p = &self.slots[self.home(key)] as *const (u64, u64);
        #[cfg(target_arch = "x86_64")]
        unsafe {
            // SAFETY: prefetching is a hint; `p` points into `self.slots`.
            std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the table.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<(u64, u64)>()
    }

    /// Every (id, value) pair, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.1 & USED != 0)
            .map(|s| (s.0, s.1 & !USED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn finds_what_was_inserted_and_nothing_else() {
        let entries: Vec<(u64, u64)> = (0..10_000u64).map(|i| (i * 7919, i)).collect();
        let (t, rep) = DeviceTable::build(&entries);
        assert_eq!(rep, 0);
        assert_eq!(t.len(), 10_000);
        for &(k, v) in &entries {
            assert_eq!(t.get(k), Some(v));
        }
        assert_eq!(t.get(1), None);
        assert!(t.heap_bytes() <= 10_000 * 20 + 16);
    }

    #[test]
    fn zero_and_max_are_ordinary_keys() {
        let (t, _) = DeviceTable::build(&[(0, 5), (u64::MAX, 6)]);
        assert_eq!(t.get(0), Some(5));
        assert_eq!(t.get(u64::MAX), Some(6));
    }

    proptest! {
        #[test]
        fn behaves_like_a_hashmap(entries in proptest::collection::vec((0u64..500, 0u64..1000), 0..300)) {
            let (t, rep) = DeviceTable::build(&entries);
            let mut m = HashMap::new();
            let mut want_rep = 0;
            for &(k, v) in &entries {
                if m.insert(k, v).is_some() { want_rep += 1; }
            }
            prop_assert_eq!(rep, want_rep);
            prop_assert_eq!(t.len(), m.len());
            for k in 0..500u64 {
                prop_assert_eq!(t.get(k), m.get(&k).copied());
            }
        }
    }
}
