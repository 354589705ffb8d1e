//! Which devices a campaign targets, and the version it brings.
//!
//! From a campaign file (CSV: `campaign, device_id, model, source_version, target_version`;
//! only `device_id` and `target_version` are required, and one file may hold several
//! campaigns), or from a rule over the inventory (`--targets model=EDMI-ES2+SEC-LIB110,type=ESME`
//! with `--target-version`), or, when neither is given, from the devices the outcome records
//! name (then `--target-version` is required).

use crate::analyze::whatif::DeviceRule;
use crate::inventory::{DeviceInfo, Inventory};
use crate::model::DeviceId;
use crate::model::Interner;
use anyhow::{Context, Result, bail};
use rustc_hash::FxHashMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub campaign: u16,
    /// Source version (interned in `Campaigns::versions`; 0 unknown).
    pub source: u16,
    /// Model named by the campaign file (interned in `Campaigns::models`; 0: take the
    /// inventory's).
    pub model: u16,
}

#[derive(Clone, Debug, Default)]
pub struct Campaigns {
    pub names: Interner,
    /// Per campaign id, the target version (interned in `versions`).
    pub target_version: Vec<u16>,
    pub targets: FxHashMap<u64, Target>,
    pub versions: Interner,
    pub models: Interner,
}

impl Campaigns {
    fn campaign(&mut self, name: &str, target_version: &str) -> u16 {
        let id = self.names.id(name);
        let v = self.versions.id(target_version);
        if self.target_version.len() <= id as usize {
            self.target_version.resize(id as usize + 1, 0);
        }
        if self.target_version[id as usize] == 0 {
            self.target_version[id as usize] = v;
        }
        id
    }

    pub fn from_file(path: &Path) -> Result<Campaigns> {
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .with_context(|| format!("{}: cannot open the campaign file", path.display()))?;
        let h: Vec<String> = r
            .headers()?
            .iter()
            .map(|x| x.trim().to_ascii_lowercase())
            .collect();
        let col = |names: &[&str]| h.iter().position(|x| names.contains(&x.as_str()));
        let (Some(dev), Some(tv)) = (
            col(&["device_id", "device", "eui"]),
            col(&["target_version", "target", "to_version"]),
        ) else {
            bail!(
                "{}: the campaign file needs device_id and target_version columns (found: {})",
                path.display(),
                h.join(",")
            );
        };
        let (camp, model, source) = (
            col(&["campaign", "campaign_id"]),
            col(&["model"]),
            col(&["source_version", "from_version", "firmware_version"]),
        );
        let mut c = Campaigns::default();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.with_context(|| format!("{}:{}", path.display(), i + 2))?;
            let get = |j: Option<usize>| j.and_then(|j| rec.get(j)).unwrap_or("").trim();
            let id = DeviceId::parse(get(Some(dev)).as_bytes()).with_context(|| {
                format!(
                    "{}:{}: invalid device id `{}`",
                    path.display(),
                    i + 2,
                    get(Some(dev))
                )
            })?;
            let name = match get(camp) {
                "" => "campaign",
                n => n,
            };
            let campaign = c.campaign(name, get(Some(tv)));
            let t = Target {
                campaign,
                source: c.versions.id(get(source)),
                model: c.models.id(get(model)),
            };
            c.targets.insert(id.0, t);
        }
        Ok(c)
    }

    /// Every inventory device the rule matches, at its inventory firmware as source version.
    pub fn from_rule(
        rule: &DeviceRule,
        inv: &Inventory,
        name: &str,
        target_version: &str,
    ) -> Campaigns {
        let mut c = Campaigns::default();
        let campaign = c.campaign(name, target_version);
        for (id, packed) in inv.devices.iter() {
            let info = DeviceInfo::unpack(packed);
            if rule.matches_device(Some(id), &info) {
                let t = Target {
                    campaign,
                    source: c.versions.id(inv.firmware_name(info.firmware)),
                    model: 0,
                };
                c.targets.insert(id, t);
            }
        }
        c
    }

    /// The devices the outcome records name, each under the campaign its rows give.
    pub fn from_outcomes(o: &super::outcomes::Outcomes, target_version: &str) -> Campaigns {
        let mut c = Campaigns::default();
        for row in &o.rows {
            let name = match o.campaigns.name(row.campaign) {
                "" => "campaign",
                n => n,
            };
            let campaign = c.campaign(name, target_version);
            c.targets.entry(row.device).or_insert(Target {
                campaign,
                source: 0,
                model: 0,
            });
        }
        c
    }

    /// The campaign id of a name the outcome rows use, if this set has it.
    pub fn find(&self, name: &str) -> Option<u16> {
        self.names.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_file_with_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(
            &p,
            "Campaign,Device_ID,Model,Source_Version,Target_Version\nC1,00-12-4B-00-00-00-00-01,EDMI-ES2,2.0.1,4.0.0\nC2,00124B0000000002,,,5.0\n",
        )
        .unwrap();
        let c = Campaigns::from_file(&p).unwrap();
        assert_eq!(c.targets.len(), 2);
        let t = c.targets[&0x0012_4B00_0000_0001];
        assert_eq!(c.names.name(t.campaign), "C1");
        assert_eq!(c.versions.name(t.source), "2.0.1");
        assert_eq!(c.models.name(t.model), "EDMI-ES2");
        assert_eq!(
            c.versions.name(c.target_version[t.campaign as usize]),
            "4.0.0"
        );
        let t2 = c.targets[&0x0012_4B00_0000_0002];
        assert_eq!(
            c.versions.name(c.target_version[t2.campaign as usize]),
            "5.0"
        );
        std::fs::write(&p, "device_id\n00124B0000000002\n").unwrap();
        assert!(
            Campaigns::from_file(&p)
                .unwrap_err()
                .to_string()
                .contains("target_version")
        );
    }
}
