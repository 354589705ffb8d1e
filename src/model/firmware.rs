//! The stages of an over-the-air firmware update, as the DCC's lifecycle describes them, and
//! the device alerts that report each stage's outcome.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Service request 11.1 accepted and the image distributed to the hub (no device alert).
    Distribution,
    /// Hub to device: 8F8A success, 8F89 failure.
    Transfer,
    /// Device checks the image: 8F72 success, 8F1C failure.
    Verification,
    /// Future-dated activation (11.3): 8F66 actioned, 8F67 not actioned.
    Activation,
    /// 8F43: the executing firmware version changed, carrying the new version.
    Running,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Distribution => "distribution",
            Stage::Transfer => "transfer",
            Stage::Verification => "verification",
            Stage::Activation => "activation",
            Stage::Running => "running",
        }
    }
    pub fn service_request(self) -> &'static str {
        match self {
            Stage::Distribution | Stage::Transfer | Stage::Verification => "11.1",
            Stage::Activation | Stage::Running => "11.3",
        }
    }
    /// The device alert code reporting this stage's outcome.
    pub fn code(self, ok: bool) -> Option<u16> {
        match (self, ok) {
            (Stage::Distribution, _) => None,
            (Stage::Transfer, true) => Some(0x8F8A),
            (Stage::Transfer, false) => Some(0x8F89),
            (Stage::Verification, true) => Some(0x8F72),
            (Stage::Verification, false) => Some(0x8F1C),
            (Stage::Activation, true) => Some(0x8F66),
            (Stage::Activation, false) => Some(0x8F67),
            (Stage::Running, _) => Some(0x8F43),
        }
    }

    pub const ALL: [Stage; 5] = [
        Stage::Distribution,
        Stage::Transfer,
        Stage::Verification,
        Stage::Activation,
        Stage::Running,
    ];

    /// Parses a stage name as outcome records write it (`transfer`, `Verification`, ...).
    pub fn parse(s: &str) -> Option<Stage> {
        let s = s.trim();
        Stage::ALL
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(s))
            .or(match s.to_ascii_lowercase().as_str() {
                "delivery" | "delivered" => Some(Stage::Distribution),
                "transferred" => Some(Stage::Transfer),
                "verified" => Some(Stage::Verification),
                "activated" => Some(Stage::Activation),
                "firmware change" | "version change" => Some(Stage::Running),
                _ => None,
            })
    }

    /// The stage and outcome a firmware-family device alert reports (`8F43` is a success of
    /// `Running`), or `None` for other codes.
    pub fn from_code(code: u16) -> Option<(Stage, bool)> {
        Stage::ALL.into_iter().find_map(|st| {
            [true, false]
                .into_iter()
                .find(|&ok| st.code(ok) == Some(code) && (st != Stage::Running || ok))
                .map(|ok| (st, ok))
        })
    }
}

/// What a firmware alert's GBCS payload says (CCS08 transfer, CS06 activation): the response
/// code (0 success) and the image's 4-octet version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareResult {
    pub response_code: u8,
    pub version: [u8; 4],
}

impl FirmwareResult {
    /// The version as dotted decimal octets (`4.0.0.0`).
    pub fn version_text(&self) -> String {
        let v = self.version;
        format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3])
    }
}

/// The GBCS name of a firmware response code at a stage.
pub fn response_reason(stage: Stage, code: u8) -> &'static str {
    match (stage, code) {
        (_, 0) => "success",
        (Stage::Transfer, 1) => "image discarded",
        (Stage::Transfer, 2) => "hardware version mismatch",
        (Stage::Transfer, 3) => "file transfer failure",
        (Stage::Activation, 1) => "no image held",
        (Stage::Activation, 2) => "hash mismatch",
        (Stage::Activation, 3) => "activation failure",
        _ => "unknown response code",
    }
}

/// The 4 octets of a dotted version (`4.0.0` -> 4, 0, 0, 0), if it has that form.
pub fn version_octets(v: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let parts: Vec<&str> = v.trim().split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    for (i, p) in parts.iter().enumerate() {
        out[i] = p.parse().ok()?;
    }
    Some(out)
}

/// Whether two dotted versions are the same once trailing `.0` parts are dropped
/// (`4.0.0.0` from a payload is `4.0.0` in a campaign file).
pub fn same_version(a: &str, b: &str) -> bool {
    fn trim(s: &str) -> &str {
        let mut s = s.trim();
        while let Some(x) = s.strip_suffix(".0") {
            s = x;
        }
        s
    }
    trim(a).eq_ignore_ascii_case(trim(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        assert_eq!(Stage::from_code(0x8F8A), Some((Stage::Transfer, true)));
        assert_eq!(Stage::from_code(0x8F89), Some((Stage::Transfer, false)));
        assert_eq!(Stage::from_code(0x8F1C), Some((Stage::Verification, false)));
        assert_eq!(Stage::from_code(0x8F67), Some((Stage::Activation, false)));
        assert_eq!(Stage::from_code(0x8F43), Some((Stage::Running, true)));
        assert_eq!(Stage::from_code(0x81B8), None);
        for st in Stage::ALL {
            assert_eq!(Stage::parse(st.name()), Some(st));
        }
        assert_eq!(Stage::parse("Verified"), Some(Stage::Verification));
    }
}
