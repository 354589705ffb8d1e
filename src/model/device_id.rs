//! EUI-64 device identifiers, stored as `u64`.
//!
//! Accepted spellings: `00-DB-12-34-56-78-90-A0` (hyphens), `00:DB:...` (colons), and the
//! 16-digit form `00DB1234567890A0`, in any case. Displayed upper-case with hyphens, the
//! form DUIS uses.

use std::fmt;

/// An EUI-64 device id. The value is the 8 bytes read big-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub u64);

/// Value of each byte as a hex digit, or 0xFF. A table, so a 16-digit id parses without
/// branches: the values are OR-ed together and checked once at the end.
pub(crate) static HEX_VALUE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

impl DeviceId {
    /// Parses an EUI-64 from bytes, trimming surrounding ASCII whitespace.
    #[inline]
    pub fn parse(s: &[u8]) -> Option<DeviceId> {
        if let Ok(s) = <&[u8; 23]>::try_from(s)
            && let Some(id) = separated_words(s)
        {
            return Some(id);
        }
        Self::parse_bytewise(s)
    }

    /// `parse` a byte at a time, for every spelling (`separated_words` takes the common one).
    fn parse_bytewise(s: &[u8]) -> Option<DeviceId> {
        let s = s.trim_ascii();
        match s.len() {
            16 => {
                let (mut v, mut bad) = (0u64, 0u8);
                for &b in s {
                    let d = HEX_VALUE[b as usize];
                    bad |= d;
                    v = (v << 4) | (d & 15) as u64;
                }
                (bad < 16).then_some(DeviceId(v))
            }
            23 => {
                let sep = s[2];
                if sep != b'-' && sep != b':' {
                    return None;
                }
                let (mut v, mut bad, mut seps) = (0u64, 0u8, true);
                for i in 0..8 {
                    let p = i * 3;
                    if i > 0 {
                        seps &= s[p - 1] == sep;
                    }
                    let (hi, lo) = (HEX_VALUE[s[p] as usize], HEX_VALUE[s[p + 1] as usize]);
                    bad |= hi | lo;
                    v = (v << 8) | ((hi & 15) << 4 | (lo & 15)) as u64;
                }
                (seps && bad < 16).then_some(DeviceId(v))
            }
            _ => None,
        }
    }

    /// Writes the canonical form (`00-DB-12-34-56-78-90-A0`) into a fixed buffer, a byte's
    /// two digits at a time (the export writes one per row).
    #[inline]
    pub fn to_bytes(self) -> [u8; 23] {
        let mut out = [b'-'; 23];
        for (i, b) in self.0.to_be_bytes().into_iter().enumerate() {
            out[3 * i..3 * i + 2].copy_from_slice(&HEX_PAIRS[b as usize].to_le_bytes());
        }
        out
    }
}

/// `b` in each byte.
const fn bytes(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The separated spelling (`00-DB-12-34-56-78-90-A0`, or with colons) read as three
/// overlapping 8-byte words (SWAR); `None` for anything else, whitespace included, which
/// `parse_bytewise` then reads. Byte by byte, an id took about 150 instructions
/// (`callgrind`): with 25,000,000 ids in the reference job (alerts and inventory), a tenth of
/// its instructions.
///
/// The words start at bytes 0, 8 and 15: `HH-HH-HH`, `-HH-HH-H` and `HH-HH-HH` (the middle
/// word's last digit is the third's first). The separators are compared in place; the
/// sixteen digits are gathered into two words of eight, each checked and converted at once.
#[inline]
fn separated_words(s: &[u8; 23]) -> Option<DeviceId> {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let (a, b, c) = (word(0), word(8), word(15));
    let sep = s[2];
    if sep != b'-' && sep != b':' {
        return None;
    }
    // Where the separators lie in each word.
    const SEPS_AC: u64 = 0x0000_FF00_00FF_0000;
    const SEPS_B: u64 = 0x00FF_0000_FF00_00FF;
    let seps = bytes(sep);
    if (a ^ seps) & SEPS_AC | (c ^ seps) & SEPS_AC | (b ^ seps) & SEPS_B != 0 {
        return None;
    }
    // Digits 0-7 and 8-15, digit k in byte k.
    let high = a & 0xFFFF
        | (a >> 8) & 0xFFFF_0000
        | (a >> 16) & 0xFFFF_0000_0000
        | (b >> 8 & 0xFFFF) << 48;
    let low = (b >> 32) & 0xFFFF
        | (c & 0xFFFF) << 16
        | (c << 8) & 0xFFFF_0000_0000
        | c & 0xFFFF_0000_0000_0000;
    let (high, low) = (eight_digits(high)?, eight_digits(low)?);
    Some(DeviceId(u64::from(high) << 32 | u64::from(low)))
}

/// The value of eight hex digits in any case, the first in the low byte; `None` if a byte is
/// not a hex digit.
#[inline(always)]
fn eight_digits(x: u64) -> Option<u32> {
    // High bit of each byte of `v + (0x80 - lo)`: the byte is `lo` or more. A byte past 0x7F
    // may carry into the next, but is itself refused (`!x`), and one refused byte refuses all.
    let at_least = |v: u64, lo: u8| v.wrapping_add(bytes(0x80 - lo));
    let above = |v: u64, hi: u8| v.wrapping_add(bytes(0x7F - hi));
    let digit = at_least(x, b'0') & !above(x, b'9');
    // Letters in lower case: only `A`-`F` and `a`-`f` land on `a`-`f`.
    let y = x | bytes(0x20);
    let letter = at_least(y, b'a') & !above(y, b'f');
    if (digit | letter) & !x & bytes(0x80) != bytes(0x80) {
        return None;
    }
    let v = (x & bytes(0x0F)) + (letter >> 7 & bytes(0x01)) * 9;
    // Pairs of digits into bytes, pairs of bytes into halves, halves into the value.
    let v = (v << 4 | v >> 8) & 0x00FF_00FF_00FF_00FF;
    let v = (v | v >> 8) & 0x0000_FFFF_0000_FFFF;
    let v = (v | v >> 16) as u32;
    Some(v.swap_bytes())
}

/// Each byte's two hex digits, the first in the low byte (as they lie in memory).
pub(crate) const HEX_PAIRS: [u16; 256] = {
    let digits = b"0123456789ABCDEF";
    let mut t = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = digits[b >> 4] as u16 | (digits[b & 15] as u16) << 8;
        b += 1;
    }
    t
};

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        f.write_str(std::str::from_utf8(&b).expect("ascii"))
    }
}

impl std::str::FromStr for DeviceId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceId::parse(s.as_bytes()).ok_or_else(|| format!("`{s}` is not an EUI-64 device id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_all_spellings() {
        let want = Some(DeviceId(0x00DB_1234_5678_90A0));
        assert_eq!(DeviceId::parse(b"00-DB-12-34-56-78-90-A0"), want);
        assert_eq!(DeviceId::parse(b"00-db-12-34-56-78-90-a0"), want);
        assert_eq!(DeviceId::parse(b"00DB1234567890A0"), want);
        assert_eq!(DeviceId::parse(b"00:DB:12:34:56:78:90:A0"), want);
        assert_eq!(DeviceId::parse(b" 00db1234567890a0\r"), want);
        // 23 bytes but not the separated form: left to the byte-wise reading.
        assert_eq!(DeviceId::parse(b"   00DB1234567890A0    "), want);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b""[..],
            b"00-DB-12-34-56-78-90",
            b"00-DB-12-34-56-78-90-AG",
            b"00-DB-12:34-56-78-90-A0",
            b"00DB1234567890A",
            b"00DB1234567890A00",
            b"0x00DB1234567890A",
        ] {
            assert_eq!(
                DeviceId::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        /// The word-wise reading gives what the byte-wise one gives, or leaves the input to
        /// it: on ids in every case and separator, and on each one with a byte changed to
        /// any value (a digit, a separator, whitespace, a byte past 0x7F).
        #[test]
        fn separated_words_is_bytewise(v: u64, lower: bool, colons: bool, at in 0usize..24, to: u8) {
            let mut s = DeviceId(v).to_string();
            if lower {
                s = s.to_lowercase();
            }
            if colons {
                s = s.replace('-', ":");
            }
            let mut b: [u8; 23] = s.as_bytes().try_into().unwrap();
            prop_assert_eq!(separated_words(&b), Some(DeviceId(v)));
            if let Some(x) = b.get_mut(at) {
                *x = to;
            }
            let bytewise = DeviceId::parse_bytewise(&b);
            prop_assert_eq!(separated_words(&b), bytewise);
            prop_assert_eq!(DeviceId::parse(&b), bytewise);
        }

        #[test]
        fn display_round_trips(v: u64) {
            let id = DeviceId(v);
            let s = id.to_string();
            prop_assert_eq!(DeviceId::parse(s.as_bytes()), Some(id));
            prop_assert_eq!(DeviceId::parse(s.to_lowercase().as_bytes()), Some(id));
            prop_assert_eq!(DeviceId::parse(s.replace('-', "").as_bytes()), Some(id));
        }

        #[test]
        fn never_panics(s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = DeviceId::parse(&s);
        }
    }
}
