//! The distinct values of a name column (model, firmware version), numbered as first seen.
//!
//! Every per-device inventory row looks up two names. With a hash map of byte strings each
//! lookup hashed the bytes and called `memcmp` on the match: a seventh of the whole load at
//! 5 million devices. Names are short (`EDMI-IH3`, `2.0.1`), so a name of up to 15 bytes is
//! looked up by its bytes packed into one integer, read with one fixed-size load from the row
//! around it; only longer names take the byte-string map.

use rustc_hash::FxHashMap;

/// The most names a column may hold: numbers are `u16`, and 0 stands for "none given".
const MAX_NAMES: usize = 65_535;

/// One column's names and their numbers (1, 2, ... in order of first sight; 0 is the empty
/// value).
#[derive(Default)]
pub(super) struct Names {
    /// Name `i` has number `i + 1`.
    pub list: Vec<Vec<u8>>,
    /// Names of up to 15 bytes, by `pack`.
    short: ShortNames,
    /// Longer names.
    long: FxHashMap<Vec<u8>, u16>,
}

impl Names {
    /// The number of `v`, which lies inside `row` (the bytes around it let the packing read a
    /// fixed 16 bytes). Fails past 65,535 distinct names.
    ///
    /// A name already seen and short enough to pack is found inline; the rest (a new name, a
    /// long one) goes out of line: as one call it spent a fifth of its instructions on the call.
    #[inline(always)]
    pub fn number_in(&mut self, v: &[u8], row: &[u8]) -> Result<u16, String> {
        if v.is_empty() {
            return Ok(0);
        }
        let key = pack(v, row);
        if let Some(i) = key.and_then(|key| self.short.get(key)) {
            return Ok(i);
        }
        self.number_new_or_long(v, key)
    }

    /// `number_in` of a name not in the short table: a long name (`key` is `None`), or a new
    /// short one.
    #[inline(never)]
    fn number_new_or_long(&mut self, v: &[u8], key: Option<u128>) -> Result<u16, String> {
        match key {
            Some(key) => {
                let i = self.add(v)?;
                self.short.insert(key, i);
                Ok(i)
            }
            None => match self.long.get(v) {
                Some(&i) => Ok(i),
                None => {
                    let i = self.add(v)?;
                    self.long.insert(v.to_vec(), i);
                    Ok(i)
                }
            },
        }
    }

    /// The number of `v`, wherever it lies.
    pub fn number(&mut self, v: &[u8]) -> Result<u16, String> {
        self.number_in(v, v)
    }

    fn add(&mut self, v: &[u8]) -> Result<u16, String> {
        if self.list.len() >= MAX_NAMES {
            return Err("more than 65,535 distinct values in one column".into());
        }
        self.list.push(v.to_vec());
        Ok(self.list.len() as u16)
    }
}

/// Packed names and their numbers, in an open-addressing table: a lookup is one multiply and,
/// nearly always, one compare (a general hash map spent as long hashing the key and probing its
/// control bytes as the rest of a row's parse).
#[derive(Default)]
struct ShortNames {
    /// A power of two slots, at most half full; key 0 (no packed name has it) is empty.
    slots: Vec<(u128, u16)>,
    len: usize,
}

impl ShortNames {
    #[inline]
    fn slot(&self, key: u128) -> usize {
        let h = ((key as u64) ^ (key >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & (self.slots.len() - 1)
    }

    #[inline]
    fn get(&self, key: u128) -> Option<u16> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.slot(key);
        loop {
            match self.slots[i] {
                (0, _) => return None,
                (k, v) if k == key => return Some(v),
                _ => i = (i + 1) & (self.slots.len() - 1),
            }
        }
    }

    /// Adds a key not yet in the table.
    fn insert(&mut self, key: u128, value: u16) {
        if (self.len + 1) * 2 > self.slots.len() {
            let size = (self.slots.len() * 2).max(64);
            let old = std::mem::replace(&mut self.slots, vec![(0, 0); size]);
            for (k, v) in old.into_iter().filter(|s| s.0 != 0) {
                self.place(k, v);
            }
        }
        self.place(key, value);
        self.len += 1;
    }

    fn place(&mut self, key: u128, value: u16) {
        let mut i = self.slot(key);
        while self.slots[i].0 != 0 {
            i = (i + 1) & (self.slots.len() - 1);
        }
        self.slots[i] = (key, value);
    }
}

/// `v` (1 to 15 bytes) as one integer: its bytes, little-endian, and its length in the top
/// byte, so two names pack equal exactly when they are equal. Read as 16 bytes of `row`
/// starting at `v` or ending with it, whichever `row` holds, then masked or shifted; copied
/// only when `row` is shorter than 16 bytes. `None` for longer names, or when `v` is not
/// inside `row`.
#[inline]
fn pack(v: &[u8], row: &[u8]) -> Option<u128> {
    let n = v.len();
    if n == 0 || n > 15 {
        return None;
    }
    let start = (v.as_ptr() as usize).wrapping_sub(row.as_ptr() as usize);
    let end = start.checked_add(n)?;
    if end > row.len() {
        return None;
    }
    let bits = if let Some(b) = row.get(start..start + 16) {
        u128::from_le_bytes(b.try_into().ok()?) & ((1u128 << (8 * n)) - 1)
    } else if end >= 16 {
        u128::from_le_bytes(row[end - 16..end].try_into().ok()?) >> (8 * (16 - n))
    } else {
        let mut b = [0u8; 16];
        b[..n].copy_from_slice(v);
        u128::from_le_bytes(b)
    };
    Some(bits | (n as u128) << 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_packs_the_same_wherever_it_lies() {
        let want = pack(b"EDMI-IH3", b"EDMI-IH3").unwrap();
        for row in [
            &b"EDMI-IH3,2.0.1,2024-01-01,and more after it"[..],
            b"00-DB-12-5A-17-C0-FF-EE,IHD,South,2,EDMI-IH3",
            b"x,EDMI-IH3,y",
        ] {
            let at = memchr::memmem::find(row, b"EDMI-IH3").unwrap();
            assert_eq!(pack(&row[at..at + 8], row), Some(want));
        }
        assert_ne!(pack(b"EDMI-IH3", b"EDMI-IH3"), pack(b"EDMI-IH", b"EDMI-IH"));
        assert_ne!(pack(b"a\0", b"a\0"), pack(b"a", b"a"));
        assert_eq!(pack(b"sixteen-bytes-xx", b"sixteen-bytes-xx"), None);
        assert_eq!(pack(b"elsewhere", b"a row"), None);
    }

    #[test]
    fn too_many_names_is_an_error() {
        let mut n = Names::default();
        for i in 0..MAX_NAMES {
            assert_eq!(n.number(format!("m{i}").as_bytes()), Ok(i as u16 + 1));
        }
        assert_eq!(n.number(b"m7"), Ok(8));
        assert!(n.number(b"one more").unwrap_err().contains("65,535"));
    }

    proptest::proptest! {
        /// Numbers as a map of byte strings gives them, for names of every length (short and
        /// long, with NUL bytes) at every place in rows of every length.
        #[test]
        fn numbers_names_as_a_byte_string_map_does(
            rows in proptest::collection::vec(
                (proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', 0u8, b',']), 0..40),
                 0usize..40, 0usize..20),
                1..200),
        ) {
            let mut names = Names::default();
            let mut oracle: FxHashMap<Vec<u8>, u16> = FxHashMap::default();
            for (row, at, len) in rows {
                let at = at.min(row.len());
                let v = &row[at..(at + len).min(row.len())];
                let want = if v.is_empty() {
                    0
                } else {
                    let next = oracle.len() as u16 + 1;
                    *oracle.entry(v.to_vec()).or_insert(next)
                };
                proptest::prop_assert_eq!(names.number_in(v, &row), Ok(want));
                proptest::prop_assert_eq!(names.number(v), Ok(want));
            }
        }
    }
}
