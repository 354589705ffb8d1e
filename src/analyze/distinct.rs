//! Counting distinct alerting devices per group in bounded memory.
//!
//! Exact while a group has few devices (a list, then a small hash table, up to
//! `EXACT_LIMIT`), then a HyperLogLog sketch of 2,048 one-byte registers (standard error about
//! 2.3%). So a group costs at most a few KiB whatever the input size, small inputs (and
//! hand-counted tests) get exact answers, and every output says whether its figure is exact or
//! estimated.
//!
//! What a finished count says depends only on the set of ids inserted (exact below the limit,
//! else the registers' maximum over every id), never on the order or on how workers split
//! the input: the representations below are free to change for speed as long as that holds.

const LIST_LIMIT: usize = 32;
pub const EXACT_LIMIT: usize = 256;
const P: u32 = 11;
const M: usize = 1 << P;

/// 2^-r for every register value r (at most 64 - P + 1): a report has tens of thousands of
/// sketches of 2,048 registers to sum.
const INV_POW: [f64; 66] = {
    let mut t = [0.0; 66];
    let mut r = 0;
    while r < 66 {
        // The exponent field of 2^-r: exact, as `powi` gives it.
        t[r] = f64::from_bits(((1023 - r) as u64) << 52);
        r += 1;
    }
    t
};

#[derive(Clone, Debug)]
pub enum Distinct {
    List(Vec<u64>),
    Set(ExactSet),
    Sketch(Box<[u8; M]>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::List(Vec::new())
    }
}

/// Slots of a new exact set (it starts from a full list), and the most it grows to: a set
/// is at most three quarters full, so probes stay short.
const SET_FIRST: usize = 64;

/// Up to `EXACT_LIMIT + 1` ids in an open-addressing table (linear probing; 0 marks an empty
/// slot, so the id 0 is kept in a flag). It replaced an `FxHashSet`, which cost more per
/// insert and more to grow: on the reference job most records pass through this phase.
#[derive(Clone)]
pub struct ExactSet {
    slots: Box<[u64]>,
    len: u16,
    has_zero: bool,
}

impl std::fmt::Debug for ExactSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl ExactSet {
    fn new() -> ExactSet {
        ExactSet {
            slots: vec![0; SET_FIRST].into_boxed_slice(),
            len: 0,
            has_zero: false,
        }
    }

    /// Adds `id`; true if it was not there.
    #[inline]
    fn insert(&mut self, id: u64) -> bool {
        if id == 0 {
            let new = !self.has_zero;
            self.has_zero = true;
            self.len += new as u16;
            return new;
        }
        if (self.len as usize + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let placed = Self::place(&mut self.slots, id);
        self.len += placed as u16;
        placed
    }

    /// Puts `id` (not 0) in `slots` unless it is there; true if it was not.
    #[inline]
    fn place(slots: &mut [u64], id: u64) -> bool {
        let mask = slots.len() - 1;
        let mut i = (mix64(id) >> 32) as usize & mask;
        loop {
            let s = slots[i];
            if s == id {
                return false;
            }
            if s == 0 {
                slots[i] = id;
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let mut bigger = vec![0u64; self.slots.len() * 2].into_boxed_slice();
        for &x in self.slots.iter().filter(|&&x| x != 0) {
            Self::place(&mut bigger, x);
        }
        self.slots = bigger;
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let zero = self.has_zero.then_some(0);
        self.slots.iter().copied().filter(|&x| x != 0).chain(zero)
    }
}

/// A 64-bit mix of a device id (splitmix64 finaliser): uniform bits for the sketch.
#[inline]
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn sketch_add(regs: &mut [u8; M], id: u64) {
    let h = mix64(id);
    let idx = (h >> (64 - P)) as usize;
    let w = (h << P) | (1 << (P - 1));
    let rho = w.leading_zeros() as u8 + 1;
    if regs[idx] < rho {
        regs[idx] = rho;
    }
}

impl Distinct {
    #[inline]
    pub fn insert(&mut self, id: u64) {
        match self {
            Distinct::List(v) => {
                if !v.contains(&id) {
                    if v.len() < LIST_LIMIT {
                        v.push(id);
                    } else {
                        let mut s = ExactSet::new();
                        for &x in v.iter() {
                            s.insert(x);
                        }
                        s.insert(id);
                        *self = Distinct::Set(s);
                    }
                }
            }
            Distinct::Set(s) => {
                if s.insert(id) && s.len() > EXACT_LIMIT {
                    let mut regs = Box::new([0u8; M]);
                    for x in s.iter() {
                        sketch_add(&mut regs, x);
                    }
                    *self = Distinct::Sketch(regs);
                }
            }
            Distinct::Sketch(regs) => sketch_add(regs, id),
        }
    }

    pub fn is_exact(&self) -> bool {
        !matches!(self, Distinct::Sketch(_))
    }

    /// The count: exact, or the HyperLogLog estimate (with linear counting for small values).
    pub fn count(&self) -> u64 {
        match self {
            Distinct::List(v) => v.len() as u64,
            Distinct::Set(s) => s.len() as u64,
            Distinct::Sketch(regs) => {
                let m = M as f64;
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let sum: f64 = regs.iter().map(|&r| INV_POW[r as usize]).sum();
                let zeros = regs.iter().filter(|&&r| r == 0).count();
                let e = alpha * m * m / sum;
                let e = if e <= 2.5 * m && zeros > 0 {
                    m * (m / zeros as f64).ln()
                } else {
                    e
                };
                e.round() as u64
            }
        }
    }

    pub fn merge(&mut self, other: Distinct) {
        match other {
            Distinct::List(v) => v.into_iter().for_each(|x| self.insert(x)),
            Distinct::Set(s) => s.iter().for_each(|x| self.insert(x)),
            Distinct::Sketch(theirs) => {
                let mut mine = match std::mem::take(self) {
                    Distinct::Sketch(r) => r,
                    exact => {
                        let mut r = Box::new([0u8; M]);
                        match exact {
                            Distinct::List(v) => v.into_iter().for_each(|x| sketch_add(&mut r, x)),
                            Distinct::Set(s) => s.iter().for_each(|x| sketch_add(&mut r, x)),
                            Distinct::Sketch(_) => unreachable!(),
                        }
                        r
                    }
                };
                for (a, b) in mine.iter_mut().zip(theirs.iter()) {
                    *a = (*a).max(*b);
                }
                *self = Distinct::Sketch(mine);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a count must be for a set of ids: exact up to the limit, else the estimate of
    /// registers holding every id's maximum (the definition the representations must keep).
    fn reference(ids: &std::collections::BTreeSet<u64>) -> (bool, u64) {
        if ids.len() <= EXACT_LIMIT {
            return (true, ids.len() as u64);
        }
        let mut regs = Box::new([0u8; M]);
        ids.iter().for_each(|&x| sketch_add(&mut regs, x));
        (false, Distinct::Sketch(regs).count())
    }

    proptest! {
        /// Any order, any split over two workers, repeats and the id 0 included: the same
        /// figure as the definition.
        #[test]
        fn counts_depend_only_on_the_set(
            ids in proptest::collection::vec(prop_oneof![0u64..400, any::<u64>()], 0..700),
            cut in any::<proptest::sample::Index>(),
        ) {
            let set: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
            let want = reference(&set);
            let mut one = Distinct::default();
            ids.iter().for_each(|&x| one.insert(x));
            prop_assert_eq!((one.is_exact(), one.count()), want);
            let k = cut.index(ids.len() + 1);
            let (mut a, mut b) = (Distinct::default(), Distinct::default());
            ids[..k].iter().for_each(|&x| a.insert(x));
            ids[k..].iter().rev().for_each(|&x| b.insert(x));
            a.merge(b);
            prop_assert_eq!((a.is_exact(), a.count()), want);
        }
    }

    #[test]
    fn the_register_table_is_powers_of_two() {
        for (r, &v) in INV_POW.iter().enumerate() {
            assert_eq!(v, 2f64.powi(-(r as i32)), "2^-{r}");
        }
    }

    #[test]
    fn exact_below_the_limit() {
        let mut d = Distinct::default();
        for i in 0..200u64 {
            d.insert(i % 150);
        }
        assert!(d.is_exact());
        assert_eq!(d.count(), 150);
    }

    #[test]
    fn estimate_is_close_above_the_limit() {
        for n in [1_000u64, 10_000, 100_000] {
            let mut d = Distinct::default();
            for i in 0..n {
                d.insert(i * 0x1_0000_0001);
                d.insert(i * 0x1_0000_0001);
            }
            assert!(!d.is_exact());
            let err = (d.count() as f64 - n as f64).abs() / n as f64;
            assert!(err < 0.07, "n={n} estimate={} err={err}", d.count());
        }
    }

    #[test]
    fn merge_is_union() {
        let (mut a, mut b) = (Distinct::default(), Distinct::default());
        for i in 0..20 {
            a.insert(i);
            b.insert(i + 10);
        }
        a.merge(b);
        assert_eq!(a.count(), 30);
        assert!(a.is_exact());
        let mut big = Distinct::default();
        for i in 0..5000u64 {
            big.insert(i);
        }
        let mut small = Distinct::default();
        for i in 4990..5010u64 {
            small.insert(i);
        }
        small.merge(big);
        let err = (small.count() as f64 - 5010.0).abs() / 5010.0;
        assert!(err < 0.07);
    }
}
