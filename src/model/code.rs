//! Alert codes: 16-bit device codes (`81B8`) and DCC codes (`N1`..`N999`, `AD1`).
//!
//! Both kinds live in one `u32` so that a group key stays a small integer: the high half is the
//! kind (0 device, 1 DCC `N`, 2 DCC `AD`), the low half the number.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlertCode(pub u32);

const KIND_DCC_N: u32 = 1 << 16;
const KIND_DCC_AD: u32 = 2 << 16;

impl AlertCode {
    /// Every code fits in this many low bits: the kind (0-2) above a 16-bit number.
    pub const MAX_BITS: u32 = 18;

    pub const fn device(code: u16) -> AlertCode {
        AlertCode(code as u32)
    }

    /// True for codes raised by devices (4 hex digits), false for DCC alert codes.
    pub fn is_device(self) -> bool {
        self.0 >> 16 == 0
    }

    pub fn device_code(self) -> Option<u16> {
        self.is_device().then_some(self.0 as u16)
    }

    /// Parses `81B8` / `81b8` / `0x81B8` as a device code, `N24`/`AD1` as DCC codes.
    #[inline]
    pub fn parse(s: &[u8]) -> Option<AlertCode> {
        let s = s.trim_ascii();
        let s = s
            .strip_prefix(b"0x")
            .or_else(|| s.strip_prefix(b"0X"))
            .unwrap_or(s);
        if s.len() == 4 {
            let (mut v, mut bad) = (0u32, 0u8);
            for &b in s {
                let d = super::device_id::HEX_VALUE[b as usize];
                bad |= d;
                v = (v << 4) | (d & 15) as u32;
            }
            if bad < 16 {
                return Some(AlertCode(v));
            }
        }
        let (kind, digits) = match s {
            [b'N' | b'n', rest @ ..] => (KIND_DCC_N, rest),
            [b'A' | b'a', b'D' | b'd', rest @ ..] => (KIND_DCC_AD, rest),
            _ => return None,
        };
        if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = digits.iter().fold(0u32, |a, &b| a * 10 + (b - b'0') as u32);
        if n == 0 {
            return None;
        }
        Some(AlertCode(kind | n))
    }
}

impl fmt::Display for AlertCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 & !0xFFFF {
            0 => write!(f, "{:04X}", self.0),
            KIND_DCC_N => write!(f, "N{}", self.0 & 0xFFFF),
            _ => write!(f, "AD{}", self.0 & 0xFFFF),
        }
    }
}

impl std::str::FromStr for AlertCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertCode::parse(s.as_bytes()).ok_or_else(|| {
            format!(
                "`{s}` is not an alert code (expected 4 hex digits like 81B8, or N1..N999, AD1)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_displays() {
        assert_eq!(AlertCode::parse(b"81B8"), Some(AlertCode::device(0x81B8)));
        assert_eq!(AlertCode::parse(b"81b8"), Some(AlertCode::device(0x81B8)));
        assert_eq!(AlertCode::parse(b"0x8F35"), Some(AlertCode::device(0x8F35)));
        for s in ["N1", "N24", "N65", "N999", "AD1", "8F85", "0001"] {
            assert_eq!(AlertCode::parse(s.as_bytes()).unwrap().to_string(), s);
        }
        assert_eq!(AlertCode::parse(b"n24").unwrap().to_string(), "N24");
        assert!(AlertCode::parse(b"N24").map(|c| !c.is_device()).unwrap());
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            &b""[..],
            b"81B",
            b"81B8A",
            b"ZZZZ",
            b"N",
            b"N0",
            b"N12345",
            b"AD",
            b"X1",
            b"8 B8",
        ] {
            assert_eq!(
                AlertCode::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #[test]
        fn device_codes_round_trip(v: u16) {
            let c = AlertCode::device(v);
            prop_assert_eq!(AlertCode::parse(c.to_string().as_bytes()), Some(c));
        }

        /// Whatever parses fits in `MAX_BITS` (the export's rows keep a code in 24 bits).
        #[test]
        fn every_code_fits_in_max_bits(s in "(0x)?[0-9A-Fa-f]{4}|[Nn][0-9]{1,4}|[Aa][Dd][0-9]{1,4}") {
            if let Some(c) = AlertCode::parse(s.as_bytes()) {
                prop_assert!(c.0 < 1 << AlertCode::MAX_BITS, "{} is {:#x}", s, c.0);
            }
        }
    }
}
