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

/// Each byte's two hex digits, the first in the low byte (as they lie in memory).
const HEX_PAIRS: [u16; 256] = {
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
