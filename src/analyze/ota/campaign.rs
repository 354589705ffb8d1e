//! Which devices a campaign targets, and the version it brings.
//!
//! From a campaign file (CSV: `campaign, device_id, model, source_version, target_version`;
//! only `device_id` and `target_version` are required, and one file may hold several
//! campaigns), or from a rule over the inventory (`--targets model=EDMI-ES2+SEC-LIB110,type=ESME`
//! with `--target-version`), or, when neither is given, from the devices the outcome records
//! name (then `--target-version` is required). `CampaignSpec` says which of the three, and
//! `Campaigns::resolve` turns it into the targeted devices, narrowed by the user's device
//! filters: an explicit target version overrides every campaign's, a file's included.

use super::outcomes::Outcomes;
use crate::analyze::whatif::DeviceRule;
use crate::inventory::{DeviceFilter, DeviceInfo, Inventory};
use crate::model::DeviceId;
use crate::model::Interner;
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};

/// Where the targeted devices come from.
#[derive(Clone, Debug)]
pub enum CampaignSpec {
    /// A campaign file; `target_version`, when given, overrides the file's.
    File {
        path: PathBuf,
        target_version: Option<String>,
    },
    /// Every inventory device a rule matches, under one campaign `name`.
    Rule {
        rule: DeviceRule,
        name: String,
        target_version: String,
    },
    /// The devices the outcome records name.
    Outcomes { target_version: String },
}

impl CampaignSpec {
    fn target_version(&self) -> Option<&str> {
        match self {
            CampaignSpec::File { target_version, .. } => target_version.as_deref(),
            CampaignSpec::Rule { target_version, .. }
            | CampaignSpec::Outcomes { target_version } => Some(target_version),
        }
    }
}

/// Why the targeted devices could not be known. Each names the file and line it is about.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{path}: cannot open the campaign file")]
    Open {
        path: String,
        #[source]
        source: csv::Error,
    },
    /// The header could not be read (the error says why; it names no file).
    #[error(transparent)]
    Header(csv::Error),
    #[error(
        "{path}: the campaign file needs device_id and target_version columns (found: {found})"
    )]
    Columns { path: String, found: String },
    #[error("{path}:{line}")]
    Record {
        path: String,
        line: usize,
        #[source]
        source: csv::Error,
    },
    #[error("{path}:{line}: invalid device id `{id}`")]
    DeviceId {
        path: String,
        line: usize,
        id: String,
    },
    #[error("the campaign targets no device")]
    NoTargets,
}

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

    /// The targeted devices `spec` names, narrowed to those `devices` keeps. `outcomes` are
    /// the outcome records (the targets of `CampaignSpec::Outcomes`).
    pub fn resolve(
        spec: &CampaignSpec,
        outcomes: &Outcomes,
        inv: &Inventory,
        devices: &DeviceFilter,
    ) -> Result<Campaigns, CampaignError> {
        let mut c = match spec {
            CampaignSpec::File { path, .. } => Campaigns::from_file(path)?,
            CampaignSpec::Rule {
                rule,
                name,
                target_version,
            } => Campaigns::from_rule(rule, inv, name, target_version),
            CampaignSpec::Outcomes { target_version } => {
                Campaigns::from_outcomes(outcomes, target_version)
            }
        };
        if let Some(v) = spec.target_version() {
            // Every slot, the unused 0 included: the evidence maps each slot's version.
            let id = c.versions.id(v);
            c.target_version.iter_mut().for_each(|t| *t = id);
        }
        if !devices.is_all() {
            c.targets.retain(|&id, _| {
                inv.lookup(DeviceId(id))
                    .is_some_and(|i| devices.matches(&i))
            });
        }
        if c.targets.is_empty() {
            return Err(CampaignError::NoTargets);
        }
        Ok(c)
    }

    /// The number of campaigns (names, the unnamed slot 0 aside).
    pub fn count(&self) -> usize {
        self.names.names.len() - 1
    }

    pub fn from_file(path: &Path) -> Result<Campaigns, CampaignError> {
        let shown = || path.display().to_string();
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(|source| CampaignError::Open {
                path: shown(),
                source,
            })?;
        let h: Vec<String> = r
            .headers()
            .map_err(CampaignError::Header)?
            .iter()
            .map(|x| x.trim().to_ascii_lowercase())
            .collect();
        let col = |names: &[&str]| h.iter().position(|x| names.contains(&x.as_str()));
        let (Some(dev), Some(tv)) = (
            col(&["device_id", "device", "eui"]),
            col(&["target_version", "target", "to_version"]),
        ) else {
            return Err(CampaignError::Columns {
                path: shown(),
                found: h.join(","),
            });
        };
        let (camp, model, source) = (
            col(&["campaign", "campaign_id"]),
            col(&["model"]),
            col(&["source_version", "from_version", "firmware_version"]),
        );
        let mut c = Campaigns::default();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.map_err(|source| CampaignError::Record {
                path: shown(),
                line: i + 2,
                source,
            })?;
            let get = |j: Option<usize>| j.and_then(|j| rec.get(j)).unwrap_or("").trim();
            let id = DeviceId::parse(get(Some(dev)).as_bytes()).ok_or_else(|| {
                CampaignError::DeviceId {
                    path: shown(),
                    line: i + 2,
                    id: get(Some(dev)).to_string(),
                }
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
    pub fn from_outcomes(o: &Outcomes, target_version: &str) -> Campaigns {
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
        assert!(matches!(
            Campaigns::from_file(&p),
            Err(CampaignError::Columns { .. })
        ));
        assert!(
            Campaigns::from_file(&p)
                .unwrap_err()
                .to_string()
                .contains("target_version")
        );
    }

    #[test]
    fn resolve_overrides_the_version_and_follows_the_device_filter() {
        let mut outcomes = Outcomes::default();
        outcomes.rows.push(super::super::outcomes::Outcome {
            device: 7,
            campaign: 0,
            event: super::super::events::FwEvent {
                ts: 0,
                stage: crate::model::firmware::Stage::Distribution,
                ok: true,
                reason: 0,
                version: 0,
                attempt: 1,
                from_alert: false,
            },
        });
        let spec = CampaignSpec::Outcomes {
            target_version: "2.0".into(),
        };
        let inv = Inventory::default();
        let all = DeviceFilter::default();
        let c = Campaigns::resolve(&spec, &outcomes, &inv, &all).unwrap();
        assert_eq!(c.count(), 1);
        assert_eq!(c.names.name(c.targets[&7].campaign), "campaign");
        assert!(
            c.target_version
                .iter()
                .all(|&v| c.versions.name(v) == "2.0")
        );
        // A device filter keeps only inventory devices it matches: none here.
        let north = DeviceFilter {
            regions: vec![crate::model::Region::North],
            ..Default::default()
        };
        assert!(matches!(
            Campaigns::resolve(&spec, &outcomes, &inv, &north),
            Err(CampaignError::NoTargets)
        ));
    }
}
