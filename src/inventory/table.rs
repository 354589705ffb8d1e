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

/// The home slot of `key` in a table of `cap` slots (multiply-shift: any `cap` will do).
#[inline]
fn home_slot(key: u64, cap: usize) -> usize {
    ((mix(key) as u128 * cap as u128) >> 64) as usize
}

/// Buffers `DeviceTable::get_batch` reuses from batch to batch.
#[derive(Debug, Default)]
pub struct BatchScratch {
    /// Each key's home slot (`NO_HOME`: no key).
    homes: Vec<u32>,
    start: Vec<u32>,
    /// The lookups in home-slot order: (key, home, index in the batch).
    order: Vec<(u64, u32, u32)>,
}

/// The home of a batch entry without a key.
const NO_HOME: u32 = u32::MAX;

/// One thread's pairs sorted by bucket, and where each bucket starts.
type Bucketed = (Vec<(u64, u64)>, Vec<usize>);
/// One thread's insertions: placed, repeated, and the pairs that ran past its range.
type Inserted = (usize, usize, Vec<(u64, u64)>);

/// Asks the kernel to back a large, not yet touched table with 2 MiB pages. Lookups land on
/// random slots of a table of hundreds of MB; with 4 KiB pages nearly every one also misses
/// the TLB, which the prefetch cannot hide (measured: a third of the scan time at 5M devices).
/// A hint only: where transparent huge pages are off, nothing changes.
fn advise_huge_pages<T>(v: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = std::mem::size_of_val(v);
        if bytes < 4 * HUGE {
            return;
        }
        let start = v.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        let len = (start + bytes - aligned) / HUGE * HUGE;
        // SAFETY: madvise only changes how the kernel backs these pages, which lie inside `v`.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
}

/// Inserts into `slots` starting at index `i`, without wrapping: `Some(true)` if the key was
/// there (value replaced), `Some(false)` if newly placed, `None` if the probe ran off the end.
fn probe_insert(slots: &mut [(u64, u64)], mut i: usize, key: u64, value: u64) -> Option<bool> {
    while let Some(s) = slots.get_mut(i) {
        if s.1 & USED == 0 {
            *s = (key, value | USED);
            return Some(false);
        }
        if s.0 == key {
            s.1 = value | USED;
            return Some(true);
        }
        i += 1;
    }
    None
}

/// A table half built: its pairs copied out of the caller's pieces and sorted by bucket of
/// home slots.
///
/// Each thread sorts its share of the pairs into buckets of home slots (a counting sort,
/// stable), then (`build`) each thread inserts the buckets of one contiguous range of slots, so
/// the writes sweep memory instead of jumping and no two threads touch the same slot. A pair
/// whose probe runs past the end of its thread's range is set aside and inserted at the end,
/// in order; linear probing only needs "no empty slot between home and position", which any
/// insertion order keeps. A repeated id always falls in one bucket, whose pairs keep their
/// input order, so the later value wins.
///
/// Why two halves: the caller frees its own copy of the pairs between `new` and `build`, so
/// that copy and the table never hold memory at once (the reference job's peak went from 258
/// to 181 MiB). The table's 2 MiB pages may also take the pages just freed: on a virtual
/// machine whose free memory goes back to the host, a fresh 2 MiB page costs many times
/// what it costs to zero (`clear_page_erms` under `do_huge_pmd_wp_page`, up to a fifth of
/// the reference job's samples on a bad hour), and memory just freed is still backed. That
/// part is the host's to give: an inventory-only load took 0.91x the CPU after a pause, the
/// whole job the same time.
pub struct Staged {
    n: usize,
    cap: usize,
    buckets: usize,
    sorted: Vec<Bucketed>,
}

impl Staged {
    /// Sorts the pairs of `pieces` (taken in order) by bucket, on `threads` threads.
    pub fn new(pieces: &[&[(u64, u64)]], threads: usize) -> Staged {
        let n: usize = pieces.iter().map(|p| p.len()).sum();
        let cap = (n * 5 / 4).max(8);
        let threads = threads.clamp(1, 64);
        // Enough buckets to share the slots among the threads; few for a small table, whose
        // build would otherwise be mostly walking empty buckets.
        let buckets = (n / 64).max(threads).clamp(1, 4096);
        let bucket_of = |h: usize| h * buckets / cap;
        let home = |k: u64| home_slot(k, cap);
        // Split the pairs into `threads` runs of consecutive pieces, and bucket each run.
        let mut runs: Vec<Vec<&[(u64, u64)]>> = vec![Vec::new(); threads];
        let mut taken = 0usize;
        for p in pieces {
            let r = (taken * threads / n.max(1)).min(threads - 1);
            runs[r].push(p);
            taken += p.len();
        }
        let sorted: Vec<Bucketed> = fork_join(runs.iter().collect(), |run| {
            let mut start = vec![0usize; buckets + 1];
            for p in run {
                for &(k, _) in *p {
                    start[bucket_of(home(k)) + 1] += 1;
                }
            }
            for i in 1..=buckets {
                start[i] += start[i - 1];
            }
            let mut next = start.clone();
            let total = start[buckets];
            let mut out = vec![(0u64, 0u64); total];
            for p in run {
                for &(k, v) in *p {
                    let b = bucket_of(home(k));
                    out[next[b]] = (k, v);
                    next[b] += 1;
                }
            }
            (out, start)
        });
        Staged {
            n,
            cap,
            buckets,
            sorted,
        }
    }

    /// Inserts the sorted pairs into a new table on `threads` threads. Returns the table and
    /// the number of repeated ids.
    pub fn build(self, threads: usize) -> (DeviceTable, usize) {
        let Staged {
            n,
            cap,
            buckets,
            sorted,
        } = self;
        let threads = threads.clamp(1, 64);
        let home = |k: u64| home_slot(k, cap);
        let mut t = DeviceTable {
            slots: vec![(0, 0); cap],
            len: 0,
        };
        advise_huge_pages(&mut t.slots);
        // The threads insert the buckets of ranges of slots, taking the next range as they
        // finish one. Several ranges a thread, not one: a range's first touch of its pages
        // costs what the kernel and, on a virtual machine, the host charge for them, which
        // differs from range to range (fresh memory against memory just freed) by 10x.
        let parts = if threads == 1 {
            1
        } else {
            (threads * 8).min(buckets)
        };
        let first_slot = |b: usize| (b * cap).div_ceil(buckets);
        let mut ranges = Vec::with_capacity(parts);
        let mut rest: &mut [(u64, u64)] = &mut t.slots;
        let mut lo = 0;
        for p in 0..parts {
            let (b0, b1) = (p * buckets / parts, (p + 1) * buckets / parts);
            let hi = if p + 1 == parts { cap } else { first_slot(b1) };
            let (mine, tail) = rest.split_at_mut(hi - lo);
            ranges.push((b0, b1, lo, mine));
            rest = tail;
            lo = hi;
        }
        let sorted_ref = &sorted;
        let queue = std::sync::Mutex::new(ranges.into_iter().enumerate());
        let per_thread: Vec<Vec<(usize, Inserted)>> =
            fork_join((0..threads.min(parts)).collect(), |_| {
                let mut mine = Vec::new();
                loop {
                    let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                    let Some((at, (b0, b1, lo, slots))) = next else {
                        break;
                    };
                    let (mut len, mut repeated, mut spill) = (0, 0, Vec::new());
                    for b in b0..b1 {
                        for (out, start) in sorted_ref {
                            for &(k, v) in &out[start[b]..start[b + 1]] {
                                match probe_insert(slots, home(k) - lo, k, v) {
                                    Some(false) => len += 1,
                                    Some(true) => repeated += 1,
                                    None => spill.push((k, v)),
                                }
                            }
                        }
                    }
                    mine.push((at, (len, repeated, spill)));
                }
                mine
            });
        // The set-aside pairs go in by range, in order, whatever thread took the range.
        let mut done: Vec<(usize, Inserted)> = per_thread.into_iter().flatten().collect();
        done.sort_unstable_by_key(|(at, _)| *at);
        let done = done.into_iter().map(|(_, d)| d);
        drop_in_background(sorted, n * std::mem::size_of::<(u64, u64)>());
        let mut repeated = 0;
        for (len, rep, spill) in done {
            t.len += len;
            repeated += rep;
            for (k, v) in spill {
                if t.insert(k, v) {
                    repeated += 1;
                }
            }
        }
        (t, repeated)
    }
}

impl DeviceTable {
    /// Builds a table from (id, value) pairs; a repeated id keeps its last value. Returns the
    /// table and the number of repeated ids.
    pub fn build(entries: &[(u64, u64)]) -> (DeviceTable, usize) {
        Self::build_parallel(&[entries], 1)
    }

    /// Builds a table from pieces of (id, value) pairs taken in order, using `threads` threads.
    /// See `Staged` for the two halves, which a caller holding the pairs in memory of its own
    /// should run apart.
    pub fn build_parallel(pieces: &[&[(u64, u64)]], threads: usize) -> (DeviceTable, usize) {
        Staged::new(pieces, threads).build(threads)
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        home_slot(key, self.slots.len())
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
        if self.slots.is_empty() {
            return None;
        }
        self.get_from(key, self.home(key))
    }

    /// The lookup of `key` from its home slot `home` (the table is not empty).
    #[inline]
    fn get_from(&self, key: u64, home: usize) -> Option<u64> {
        let cap = self.slots.len();
        let mut i = home;
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

    /// Looks up every key of a batch (`None`: no key, no value) into `out`, in the order of
    /// their home slots rather than the order given. Lookups in random order land on random
    /// pages of a table of hundreds of MB, and on a virtual machine each such miss also walks
    /// the host's page tables; in slot order, neighbouring lookups share pages and the walks'
    /// entries stay in cache. A counting sort on the home slot's top bits is order enough.
    pub fn get_batch(
        &self,
        keys: &[Option<u64>],
        out: &mut Vec<Option<u64>>,
        s: &mut BatchScratch,
    ) {
        /// Buckets of the counting sort: the home slot's top 12 bits.
        const BUCKET_BITS: u32 = 12;
        const BUCKETS: usize = 1 << BUCKET_BITS;
        /// Lookups ahead of the current one whose slot is prefetched (8 and 64 measured no
        /// better than 32 on the reference job).
        const AHEAD: usize = 32;
        out.clear();
        out.resize(keys.len(), None);
        let cap = self.slots.len();
        if cap == 0 {
            return;
        }
        // Homes are kept as `u32` (a batch's scratch stays in L2); a table past that many
        // slots, far beyond any fleet, takes the lookups one by one.
        if cap >= NO_HOME as usize {
            for (o, k) in out.iter_mut().zip(keys) {
                *o = k.and_then(|k| self.get(k));
            }
            return;
        }
        // Every home is below `cap`, so it has at most `BUCKET_BITS` bits above `shift`.
        let shift = (usize::BITS - cap.leading_zeros()).saturating_sub(BUCKET_BITS);
        let bucket = |h: u32| (h as usize) >> shift;
        s.start.clear();
        s.start.resize(BUCKETS + 1, 0);
        s.homes.clear();
        for k in keys {
            let h = k.map_or(NO_HOME, |k| self.home(k) as u32);
            if h != NO_HOME {
                s.start[bucket(h) + 1] += 1;
            }
            s.homes.push(h);
        }
        for b in 0..BUCKETS {
            s.start[b + 1] += s.start[b];
        }
        // The lookups are copied out in slot order with their keys, so the probe below reads
        // them in sequence and only its answers land at scattered places.
        s.order.clear();
        s.order.resize(s.start[BUCKETS] as usize, (0, 0, 0));
        for (i, (&h, k)) in s.homes.iter().zip(keys).enumerate() {
            if let Some(k) = *k {
                let b = bucket(h);
                s.order[s.start[b] as usize] = (k, h, i as u32);
                s.start[b] += 1;
            }
        }
        for (n, &(k, h, i)) in s.order.iter().enumerate() {
            if let Some(&(_, ahead, _)) = s.order.get(n + AHEAD) {
                self.prefetch_slot(ahead as usize);
            }
            out[i as usize] = self.get_from(k, h as usize);
        }
    }

    /// Hints the CPU to fetch slot `i`.
    #[inline]
    fn prefetch_slot(&self, i: usize) {
        let p = &self.slots[i] as *const (u64, u64);
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
        used(&self.slots)
    }

    /// The slots in `n` shares of about equal size, to be read in parallel with `used`.
    pub(super) fn shares(&self, n: usize) -> impl Iterator<Item = &[(u64, u64)]> + '_ {
        self.slots
            .chunks(self.slots.len().div_ceil(n.max(1)).max(1))
    }
}

/// The (id, value) pairs held in some of a table's slots (`DeviceTable::shares`).
pub(super) fn used(slots: &[(u64, u64)]) -> impl Iterator<Item = (u64, u64)> + '_ {
    slots
        .iter()
        .filter(|s| s.1 & USED != 0)
        .map(|s| (s.0, s.1 & !USED))
}

/// Frees `value`, which holds `bytes` on the heap, on a thread of its own when that is much.
/// Freeing the inventory load's temporary arrays (160 MB for 5,000,000 devices) is unmapping
/// pages: about 30 ms on the calling thread with the other cores waiting for the scan to
/// start. On a thread of its own it overlaps the scan.
pub(super) fn drop_in_background<T: Send + 'static>(value: T, bytes: usize) {
    const LARGE: usize = 8 << 20;
    if bytes >= LARGE {
        // Two such threads a load, each ending as soon as it has freed.
        std::thread::spawn(move || drop(value));
    }
}

/// Runs `f` on each item, one scoped thread per item, or inline when there is one: a thread
/// costs more than building a small inventory takes.
pub(super) fn fork_join<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items.into_iter().map(|it| s.spawn(move || f(it))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn a_batch_finds_what_single_lookups_find() {
        let entries: Vec<(u64, u64)> = (0..50_000u64).map(|i| (i * 7919 + 3, i)).collect();
        let (t, _) = DeviceTable::build(&entries);
        let mut s = BatchScratch::default();
        let mut out = Vec::new();
        // Present, absent and missing keys, in an order unrelated to the slots; batches of
        // several sizes reuse the buffers.
        for n in [0usize, 1, 7, 4096, 20_000] {
            let keys: Vec<Option<u64>> = (0..n as u64)
                .map(|i| match i % 5 {
                    0 => None,
                    1 => Some(i * 31 + 1),
                    _ => Some(((i * 2_654_435_761) % 50_000) * 7919 + 3),
                })
                .collect();
            t.get_batch(&keys, &mut out, &mut s);
            let want: Vec<Option<u64>> = keys.iter().map(|k| k.and_then(|k| t.get(k))).collect();
            assert_eq!(out, want, "batch of {n}");
            assert!(n < 20 || out.iter().filter(|v| v.is_some()).count() > n / 2);
        }
        DeviceTable::default().get_batch(&[Some(1), None], &mut out, &mut s);
        assert_eq!(out, vec![None, None], "an empty table");
    }

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

    /// Enough pairs for many ranges a thread (ranges taken in any order), with repeated ids
    /// whose later value must win, and clusters that spill over the ranges' ends.
    #[test]
    fn a_parallel_build_over_many_ranges_keeps_the_last_value() {
        let entries: Vec<(u64, u64)> = (0..40_000u64)
            .map(|i| ((i * 2_654_435_761) % 25_000, i))
            .collect();
        let mut m = HashMap::new();
        entries.iter().for_each(|&(k, v)| {
            m.insert(k, v);
        });
        for threads in [2, 3] {
            let pieces = [&entries[..7_000], &entries[7_000..]];
            let (t, repeated) = DeviceTable::build_parallel(&pieces, threads);
            assert_eq!(repeated, 15_000);
            assert_eq!(t.len(), m.len());
            for (k, v) in &m {
                assert_eq!(t.get(*k), Some(*v), "{k}");
            }
            assert_eq!(t.get(25_001), None);
        }
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
            // The parallel build, over uneven pieces and thread counts, gives the same table.
            for threads in [2, 3, 5] {
                let cut = entries.len() / 3;
                let pieces = [&entries[..cut], &entries[cut..cut], &entries[cut..]];
                let (p, prep) = DeviceTable::build_parallel(&pieces, threads);
                prop_assert_eq!(prep, want_rep);
                prop_assert_eq!(p.len(), m.len());
                for k in 0..500u64 {
                    prop_assert_eq!(p.get(k), m.get(&k).copied());
                }
            }
            prop_assert_eq!(t.len(), m.len());
            for k in 0..500u64 {
                prop_assert_eq!(t.get(k), m.get(&k).copied());
            }
        }
    }
}
