//! Device attributes that group alerts: CSP region, device type and generation.
//!
//! Each is a `u8`-sized enum so that it packs into inventory records and group keys.
//! Parsing is forgiving about case, spaces and common aliases seen in exports
//! (`4G North`/`north_4g`, `smets 1`/`1`/`S1`), and strict about everything else: an
//! unrecognised value is an error for the caller to report, never a silent `Unknown`.

macro_rules! small_enum {
    ($name:ident, $what:literal { $($var:ident = $text:literal),+ $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum $name { $($var),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn name(self) -> &'static str {
                match self { $($name::$var => $text),+ }
            }
            pub fn from_index(i: u8) -> $name {
                Self::ALL.get(i as usize).copied().unwrap_or(Self::ALL[Self::ALL.len() - 1])
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.name())
            }
        }

        /// Parses as `parse` does; the error lists the values there are.
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                $name::parse(s.as_bytes()).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
                    format!("`{s}` is not a {}; use one of: {}", $what, names.join(", "))
                })
            }
        }
    };
}

small_enum!(Region, "CSP region" {
    North = "North",
    Central = "Central",
    South = "South",
    North4G = "4G North",
    Central4G = "4G Central",
    South4G = "4G South",
    Smets1 = "SMETS1",
    Unknown = "Unknown",
});

small_enum!(DeviceType, "device type" {
    Esme = "ESME",
    Gsme = "GSME",
    Chf = "CHF",
    Gpf = "GPF",
    Ppmid = "PPMID",
    Ihd = "IHD",
    Hcalcs = "HCALCS",
    Cad = "CAD",
    Type2 = "Type2",
    Unknown = "Unknown",
});

small_enum!(Generation, "generation" {
    Smets1 = "SMETS1",
    Smets2 = "SMETS2",
    Unknown = "Unknown",
});

/// Lower-cases and drops spaces, `-` and `_`, into a small stack buffer.
fn squash(s: &[u8], buf: &mut [u8; 24]) -> Option<usize> {
    let mut n = 0;
    for &b in s.trim_ascii() {
        if b == b' ' || b == b'-' || b == b'_' {
            continue;
        }
        *buf.get_mut(n)? = b.to_ascii_lowercase();
        n += 1;
    }
    Some(n)
}

impl Region {
    pub fn parse(s: &[u8]) -> Option<Region> {
        // The canonical spellings first: inventories hold millions of them.
        match s {
            b"North" => return Some(Region::North),
            b"Central" => return Some(Region::Central),
            b"South" => return Some(Region::South),
            _ => {}
        }
        let mut buf = [0u8; 24];
        let n = squash(s, &mut buf)?;
        Some(match &buf[..n] {
            b"north" | b"n" | b"cspn" | b"cspnorth" => Region::North,
            b"central" | b"c" | b"cspc" | b"cspcentral" => Region::Central,
            b"south" | b"s" | b"csps" | b"cspsouth" => Region::South,
            b"4gnorth" | b"north4g" => Region::North4G,
            b"4gcentral" | b"central4g" => Region::Central4G,
            b"4gsouth" | b"south4g" => Region::South4G,
            b"smets1" | b"s1sp" | b"s1" => Region::Smets1,
            b"unknown" | b"" => Region::Unknown,
            _ => return None,
        })
    }
}

impl DeviceType {
    pub fn parse(s: &[u8]) -> Option<DeviceType> {
        match s {
            b"ESME" => return Some(DeviceType::Esme),
            b"GSME" => return Some(DeviceType::Gsme),
            b"CHF" => return Some(DeviceType::Chf),
            b"IHD" => return Some(DeviceType::Ihd),
            b"PPMID" => return Some(DeviceType::Ppmid),
            _ => {}
        }
        let mut buf = [0u8; 24];
        let n = squash(s, &mut buf)?;
        Some(match &buf[..n] {
            b"esme" | b"electricity" | b"elec" => DeviceType::Esme,
            b"gsme" | b"gas" => DeviceType::Gsme,
            b"chf" | b"commshub" | b"hub" | b"ch" => DeviceType::Chf,
            b"gpf" => DeviceType::Gpf,
            b"ppmid" => DeviceType::Ppmid,
            b"ihd" => DeviceType::Ihd,
            b"hcalcs" | b"alcs" => DeviceType::Hcalcs,
            b"cad" => DeviceType::Cad,
            b"type2" => DeviceType::Type2,
            b"unknown" | b"" => DeviceType::Unknown,
            _ => return None,
        })
    }
}

impl Generation {
    /// Accepts `SMETS1`, `smets 2`, `S1`, and the bare numbers `1`/`2` of a `smets` column.
    pub fn parse(s: &[u8]) -> Option<Generation> {
        match s {
            b"1" | b"SMETS1" => return Some(Generation::Smets1),
            b"2" | b"SMETS2" => return Some(Generation::Smets2),
            _ => {}
        }
        let mut buf = [0u8; 24];
        let n = squash(s, &mut buf)?;
        Some(match &buf[..n] {
            b"smets1" | b"s1" | b"1" | b"gen1" => Generation::Smets1,
            b"smets2" | b"s2" | b"2" | b"gen2" | b"smets2+" => Generation::Smets2,
            b"unknown" | b"" => Generation::Unknown,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_aliases() {
        for r in Region::ALL {
            assert_eq!(Region::parse(r.name().as_bytes()), Some(*r));
        }
        for t in DeviceType::ALL {
            assert_eq!(DeviceType::parse(t.name().as_bytes()), Some(*t));
        }
        for g in Generation::ALL {
            assert_eq!(Generation::parse(g.name().as_bytes()), Some(*g));
        }
        assert_eq!(Region::parse(b"4g-north"), Some(Region::North4G));
        assert_eq!(Region::parse(b" NORTH "), Some(Region::North));
        assert_eq!(Generation::parse(b"1"), Some(Generation::Smets1));
        assert_eq!(Generation::parse(b"smets 2"), Some(Generation::Smets2));
        assert_eq!(Region::parse(b"Mars"), None);
        assert_eq!(DeviceType::parse(b"toaster"), None);
        assert_eq!(Generation::parse(b"3"), None);
        assert_eq!("4G South".parse::<Region>(), Ok(Region::South4G));
        assert!(
            "Mars"
                .parse::<Region>()
                .unwrap_err()
                .contains("not a CSP region; use one of: North, Central")
        );
    }

    #[test]
    fn index_round_trip() {
        for (i, r) in Region::ALL.iter().enumerate() {
            assert_eq!(Region::from_index(i as u8), *r);
            assert_eq!(*r as u8 as usize, i);
        }
    }
}
