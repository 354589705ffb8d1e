//! Remediation what-if: which alerts would go if the devices a rule names stopped raising them.
//!
//! A rule is a comma-separated list of conditions, all of which must hold:
//! `model=EDMI-ES2,firmware=2.0.1,code=81B8`. Values within a condition are alternatives,
//! joined by `+` (`model=EDMI-ES2+ARO-AM2`). Conditions: `model`, `firmware`, `gen`, `region`,
//! `type`, `code` (codes the remediation stops; all codes when absent) and `devices=FILE` (a
//! list of device ids, one per line; a CSV whose first column is the id also works). Several
//! rules remediate the union of what they match.
//!
//! The fold splits every group by whether the alert matches (`GroupKey::class` 1), so one pass
//! gives the volume before (all) and after (all minus matched). This file holds the rules;
//! `before_after.rs` the folds and what they show before and after, per group and per label.

pub mod before_after;

use crate::inventory::{DeviceInfo, Inventory};
use crate::model::{AlertCode, DeviceId, DeviceType, Generation, Region};
use rustc_hash::FxHashSet;
use std::path::Path;

/// One rule: every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct DeviceRule {
    /// The rule as the user wrote it, for headings.
    pub text: String,
    models: Option<Vec<u16>>,
    firmwares: Option<Vec<u16>>,
    generations: Option<Vec<Generation>>,
    regions: Option<Vec<Region>>,
    device_types: Option<Vec<DeviceType>>,
    codes: Option<Vec<AlertCode>>,
    devices: Option<FxHashSet<u64>>,
}

impl DeviceRule {
    /// Parses a rule, resolving model and firmware names against the inventory (a name no
    /// device has matches nothing, and the caller is told so through `unknown_names`).
    pub fn parse(text: &str, inv: &Inventory) -> Result<(DeviceRule, Vec<String>), String> {
        let mut rule = DeviceRule {
            text: text.to_string(),
            ..DeviceRule::default()
        };
        let mut unknown = Vec::new();
        for cond in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (key, value) = cond.split_once('=').ok_or_else(|| {
                format!("`{cond}` is not a condition: write key=value, e.g. model=EDMI-ES2")
            })?;
            let values: Vec<&str> = value
                .split('+')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(format!("`{cond}` has no value"));
            }
            match key.trim().to_ascii_lowercase().as_str() {
                "model" => {
                    let ids = resolve(&values, |v| inv.model_id(v), &mut unknown);
                    rule.models = Some(ids);
                }
                "firmware" | "fw" | "firmware_version" => {
                    let ids = resolve(&values, |v| inv.firmware_id(v), &mut unknown);
                    rule.firmwares = Some(ids);
                }
                "gen" | "generation" => {
                    rule.generations = Some(parse_all(
                        &values,
                        |v| Generation::parse(v.as_bytes()),
                        "a generation",
                    )?)
                }
                "region" => {
                    rule.regions = Some(parse_all(
                        &values,
                        |v| Region::parse(v.as_bytes()),
                        "a CSP region",
                    )?)
                }
                "type" | "device_type" => {
                    rule.device_types = Some(parse_all(
                        &values,
                        |v| DeviceType::parse(v.as_bytes()),
                        "a device type",
                    )?)
                }
                "code" | "codes" => {
                    rule.codes = Some(parse_all(
                        &values,
                        |v| AlertCode::parse(v.as_bytes()),
                        "an alert code",
                    )?)
                }
                "devices" | "device" => {
                    let mut set = FxHashSet::default();
                    for v in &values {
                        set.extend(read_device_list(Path::new(v))?);
                    }
                    rule.devices = Some(set);
                }
                other => {
                    return Err(format!(
                        "`{other}` is not a rule condition; use model, firmware, gen, region, type, code or devices"
                    ));
                }
            }
        }
        if text.trim().is_empty() {
            return Err("the rule is empty; e.g. model=EDMI-ES2,firmware=2.0.1,code=81B8".into());
        }
        Ok((rule, unknown))
    }

    /// Whether this device (the rule ignores the codes) is one the rule touches.
    pub fn matches_device(&self, device: Option<u64>, info: &DeviceInfo) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(&info.model))
            && self
                .firmwares
                .as_ref()
                .is_none_or(|f| f.contains(&info.firmware))
            && self
                .generations
                .as_ref()
                .is_none_or(|g| g.contains(&info.generation))
            && self
                .regions
                .as_ref()
                .is_none_or(|r| r.contains(&info.region))
            && self
                .device_types
                .as_ref()
                .is_none_or(|t| t.contains(&info.device_type))
            && self
                .devices
                .as_ref()
                .is_none_or(|d| device.is_some_and(|x| d.contains(&x)))
    }

    #[inline]
    pub fn matches(&self, device: Option<u64>, info: &DeviceInfo, code: AlertCode) -> bool {
        self.codes.as_ref().is_none_or(|c| c.contains(&code)) && self.matches_device(device, info)
    }

    /// Whether the rule names devices by attributes the inventory must supply (all but `code`).
    pub fn needs_devices(&self) -> bool {
        self.models.is_some()
            || self.firmwares.is_some()
            || self.devices.is_some()
            || self.generations.is_some()
            || self.regions.is_some()
            || self.device_types.is_some()
    }
}

fn parse_all<T>(
    values: &[&str],
    f: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Vec<T>, String> {
    values
        .iter()
        .map(|v| f(v).ok_or_else(|| format!("`{v}` is not {what}")))
        .collect()
}

fn resolve(
    values: &[&str],
    id: impl Fn(&str) -> Option<u16>,
    unknown: &mut Vec<String>,
) -> Vec<u16> {
    values
        .iter()
        .filter_map(|v| {
            let found = id(v);
            if found.is_none() {
                unknown.push(v.to_string());
            }
            found
        })
        .collect()
}

/// Device ids from a file: one per line, or the first column of a CSV (a header is skipped).
fn read_device_list(path: &Path) -> Result<Vec<u64>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the device list {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let first = line
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        match DeviceId::parse(first.as_bytes()) {
            Some(d) => out.push(d.0),
            None if i == 0 => {} // a header
            None => {
                return Err(format!(
                    "{}:{}: `{first}` is not a device id (EUI-64)",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    Ok(out)
}

/// Several rules: an alert is remediated when any rule matches it.
#[derive(Clone, Debug, Default)]
pub struct Remediation {
    pub rules: Vec<DeviceRule>,
}

impl crate::analyze::alerts::Split for Remediation {
    fn class(
        &self,
        _: &crate::model::Event,
        device: Option<u64>,
        info: &DeviceInfo,
        code: AlertCode,
    ) -> u8 {
        u8::from(self.matches(device, info, code))
    }
}

impl Remediation {
    #[inline]
    pub fn matches(&self, device: Option<u64>, info: &DeviceInfo, code: AlertCode) -> bool {
        self.rules.iter().any(|r| r.matches(device, info, code))
    }

    pub fn matches_device(&self, device: Option<u64>, info: &DeviceInfo) -> bool {
        self.rules.iter().any(|r| r.matches_device(device, info))
    }

    pub fn describe(&self) -> String {
        self.rules
            .iter()
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join(" OR ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(model: u16, firmware: u16, generation: Generation) -> DeviceInfo {
        DeviceInfo {
            region: Region::North,
            device_type: DeviceType::Esme,
            generation,
            model,
            firmware,
            installed: None,
        }
    }

    #[test]
    fn conditions_all_hold_and_values_are_alternatives() {
        let mut inv = Inventory::with_models(&["EDMI-ES2", "ARO-AM2", "SEC-LIB110"]);
        inv.firmwares = vec!["".into(), "2.0.1".into(), "4.0.0".into()];
        let (r, unknown) =
            DeviceRule::parse("model=EDMI-ES2+ARO-AM2, firmware=2.0.1, code=81B8", &inv).unwrap();
        assert!(unknown.is_empty());
        let c81b8 = AlertCode::device(0x81B8);
        assert!(r.matches(None, &info(1, 1, Generation::Smets2), c81b8));
        assert!(r.matches(None, &info(2, 1, Generation::Smets2), c81b8));
        assert!(
            !r.matches(None, &info(3, 1, Generation::Smets2), c81b8),
            "other model"
        );
        assert!(
            !r.matches(None, &info(1, 2, Generation::Smets2), c81b8),
            "other firmware"
        );
        assert!(
            !r.matches(
                None,
                &info(1, 1, Generation::Smets2),
                AlertCode::device(0x8F35)
            ),
            "other code"
        );
        let (r, unknown) = DeviceRule::parse("model=NOPE", &inv).unwrap();
        assert_eq!(unknown, vec!["NOPE".to_string()]);
        assert!(!r.matches_device(None, &info(1, 1, Generation::Smets1)));
        let (r, _) = DeviceRule::parse("gen=SMETS1", &inv).unwrap();
        assert!(r.matches_device(None, &info(1, 1, Generation::Smets1)));
        assert!(!r.matches_device(None, &info(1, 1, Generation::Smets2)));
    }

    #[test]
    fn device_lists_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("list.csv");
        std::fs::write(
            &p,
            "device_id,note\n00-12-4B-00-00-00-00-01,x\n\n00124b0000000002\n",
        )
        .unwrap();
        let inv = Inventory::default();
        let (r, _) = DeviceRule::parse(&format!("devices={}", p.display()), &inv).unwrap();
        let any = info(0, 0, Generation::Smets2);
        assert!(r.matches_device(Some(0x0012_4B00_0000_0001), &any));
        assert!(!r.matches_device(Some(0x0012_4B00_0000_0003), &any));
        assert!(!r.matches_device(None, &any));
        std::fs::write(&p, "00-12-4B-00-00-00-00-01\nnot-an-id\n").unwrap();
        let e = DeviceRule::parse(&format!("devices={}", p.display()), &inv).unwrap_err();
        assert!(e.contains(":2:") && e.contains("not-an-id"), "{e}");
        assert!(
            DeviceRule::parse("colour=red", &inv)
                .unwrap_err()
                .contains("colour")
        );
        assert!(
            DeviceRule::parse("model", &inv)
                .unwrap_err()
                .contains("key=value")
        );
        assert!(
            DeviceRule::parse("code=XYZ", &inv)
                .unwrap_err()
                .contains("XYZ")
        );
    }
}
