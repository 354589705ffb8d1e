//! Explaining a flagged day: which cohorts (model, model and firmware, device type,
//! generation) carry the group's excess, and a one-line verdict over them.
//!
//! A cohort's excess is measured against its own trailing median, not as its part of the
//! day's alerts: a model that always raises half the group's alerts explains nothing by
//! raising half of a spike. Only cohorts that rose count, the five largest per dimension.

use super::DayCheck;
use crate::analyze::alerts::{AlertRow, Dim, GroupKey};
use crate::analyze::stats::median;
use crate::inventory::{Denominators, Inventory};
use crate::model::Day;
use rustc_hash::FxHashMap;

/// The cohort dimensions a spike is explained by, and their names in the output.
pub const COHORTS: &[(&str, &[Dim])] = &[
    ("model", &[Dim::Model]),
    ("model+firmware", &[Dim::Model, Dim::Firmware]),
    ("device type", &[Dim::DeviceType]),
    ("generation", &[Dim::Generation]),
];

/// A cohort's part in a spike.
#[derive(Clone, Debug)]
pub struct CohortShare {
    /// Which dimension: "model", "model+firmware", ...
    pub dimension: &'static str,
    pub name: String,
    /// Its alerts that day over its own median of the trailing window.
    pub excess: f64,
    /// Of the group's excess.
    pub share: f64,
    /// Of the group's installed devices that day, when known.
    pub fleet_share: Option<f64>,
}

/// What explaining a flagged day needs besides the day and the group's fold rows.
pub struct Context<'a> {
    pub by: &'a [Dim],
    pub first: Day,
    pub window: usize,
    /// The group's installed devices that day.
    pub installed: Option<u64>,
    /// Per cohort dimension (`COHORTS`), the installed devices of group x cohort.
    pub cohort_denoms: &'a [Denominators],
    pub inv: &'a Inventory,
}

/// Each cohort's excess on the flagged day over its own trailing median, as a share of the
/// group's excess; the largest few per cohort dimension.
pub fn cohorts(c: &DayCheck, rows: &[&AlertRow], at: &Context) -> Vec<CohortShare> {
    let Context {
        by,
        first,
        window,
        installed,
        cohort_denoms,
        inv,
    } = *at;
    let from = (c.day - window as Day).max(first);
    let span = (c.day - from + 1) as usize;
    let mut out = Vec::new();
    for (ci, (name, dims)) in COHORTS.iter().enumerate() {
        if dims.iter().all(|d| by.contains(d)) {
            continue; // the group already fixes this cohort
        }
        let keep: Vec<Dim> = by.iter().chain(dims.iter()).copied().collect();
        let mut per: FxHashMap<GroupKey, Vec<f64>> = FxHashMap::default();
        for r in rows {
            let day = r.key.day.unwrap_or(first);
            if day < from || day > c.day {
                continue;
            }
            let v = per
                .entry(r.key.project(&keep))
                .or_insert_with(|| vec![0.0; span]);
            v[(day - from) as usize] += r.alerts as f64;
        }
        let mut shares: Vec<CohortShare> = per
            .into_iter()
            .map(|(k, mut v)| {
                let today = v[span - 1];
                let mut history: Vec<f64> = v.drain(..span - 1).collect();
                let excess = today - median(&mut history);
                let fleet_share = installed.filter(|&n| n > 0).and_then(|n| {
                    cohort_denoms[ci]
                        .installed(&k.denom_key(), c.day)
                        .map(|m| m as f64 / n as f64)
                });
                let label = dims
                    .iter()
                    .map(|&d| attribute_name(d, &k, inv))
                    .collect::<Vec<_>>()
                    .join(" fw ");
                CohortShare {
                    dimension: name,
                    name: label,
                    excess,
                    share: if c.excess() > 0.0 {
                        excess / c.excess()
                    } else {
                        0.0
                    },
                    fleet_share,
                }
            })
            .filter(|s| s.excess > 0.0)
            .collect();
        shares.sort_by(|a, b| b.excess.total_cmp(&a.excess).then(a.name.cmp(&b.name)));
        shares.truncate(5);
        out.extend(shares);
    }
    out
}

/// The name of a cohort's device attribute, as the outputs show it; `(none)` when empty.
fn attribute_name(d: Dim, k: &GroupKey, inv: &Inventory) -> String {
    let name = match d {
        Dim::Model => k.model.map(|m| inv.model_name(m).to_string()),
        Dim::Firmware => k.firmware.map(|f| inv.firmware_name(f).to_string()),
        Dim::DeviceType => k.device_type.map(|t| t.name().to_string()),
        Dim::Generation => k.generation.map(|g| g.name().to_string()),
        _ => None,
    };
    name.filter(|n| !n.is_empty())
        .unwrap_or_else(|| "(none)".into())
}

/// One line for the analyst: is the excess one model or firmware (or a few), one device
/// type, or the whole group? A cohort set is "concentrated" when at most three cohorts carry
/// 80% of the excess on at most half that share of the group's devices.
pub fn verdict(cohorts: &[CohortShare]) -> String {
    let of = |dim: &str| -> Vec<&CohortShare> {
        cohorts.iter().filter(|c| c.dimension == dim).collect()
    };
    for (dim, what) in [
        ("model+firmware", "model and firmware"),
        ("model", "model"),
        ("device type", "device type"),
        ("comms hub model", "comms hub model"),
    ] {
        let list = of(dim);
        let mut share = 0.0;
        let mut fleet = Some(0.0);
        for (k, c) in list.iter().take(3).enumerate() {
            share += c.share;
            fleet = fleet.zip(c.fleet_share).map(|(a, b)| a + b);
            if share >= 0.8 {
                if fleet.is_some_and(|f| f > share / 2.0) {
                    break;
                }
                let names: Vec<&str> = list[..=k].iter().map(|c| c.name.as_str()).collect();
                let on = fleet
                    .map(|f| format!(" on {:.0}% of the devices", f * 100.0))
                    .unwrap_or_default();
                let what = if k == 0 {
                    what.to_string()
                } else {
                    format!("{} {what}s", k + 1)
                };
                return format!(
                    "{what}: {} carry {:.0}% of the excess{on}",
                    names.join(", "),
                    share * 100.0
                );
            }
        }
    }
    match of("model").first() {
        Some(c) => format!(
            "spread across models (largest {}: {:.0}% of the excess{})",
            c.name,
            c.share * 100.0,
            c.fleet_share
                .map(|f| format!(" on {:.0}% of the devices", f * 100.0))
                .unwrap_or_default()
        ),
        None => "spread: no cohort rose on its own".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(dimension: &'static str, name: &str, share: f64, fleet: f64) -> CohortShare {
        CohortShare {
            dimension,
            name: name.into(),
            excess: share * 100.0,
            share,
            fleet_share: Some(fleet),
        }
    }

    #[test]
    fn verdicts_name_a_concentrated_cohort_or_say_spread() {
        // Model A carries 90% of the excess on 10% of the devices: concentrated.
        let one = [share("model", "A", 0.9, 0.1), share("model", "B", 0.1, 0.9)];
        assert_eq!(
            verdict(&one),
            "model: A carry 90% of the excess on 10% of the devices"
        );
        // Two firmware cohorts reach 80% together, on 30% of the devices.
        let two = [
            share("model+firmware", "A fw 1", 0.5, 0.1),
            share("model+firmware", "B fw 2", 0.4, 0.2),
        ];
        assert_eq!(
            verdict(&two),
            "2 model and firmwares: A fw 1, B fw 2 carry 90% of the excess on 30% of the devices"
        );
        // 90% of the excess from 80% of the devices is the group, not a cohort.
        let spread = [share("model", "B", 0.9, 0.8)];
        assert_eq!(
            verdict(&spread),
            "spread across models (largest B: 90% of the excess on 80% of the devices)"
        );
        assert_eq!(verdict(&[]), "spread: no cohort rose on its own");
    }

    #[test]
    fn cohort_names_come_from_the_inventory() {
        let inv = Inventory::with_models(&["EDMI-ES2"]);
        let k = GroupKey {
            model: Some(1),
            ..Default::default()
        };
        assert_eq!(attribute_name(Dim::Model, &k, &inv), "EDMI-ES2");
        assert_eq!(attribute_name(Dim::Generation, &k, &inv), "(none)");
        let unnamed = GroupKey {
            model: Some(0),
            ..Default::default()
        };
        assert_eq!(attribute_name(Dim::Model, &unnamed, &inv), "(none)");
    }
}
