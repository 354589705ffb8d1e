//! What-if, before and after: the alerts and rate of each group (and of the whole selection)
//! before a remediation and after it, and the alerts of each label and category before and
//! after reclassification rules are replayed over history.
//!
//! "After" is never a second read: the remediation fold splits each group by whether the
//! rule matches the alert (`GroupKey::class` 1), so after = before minus the matched part, and
//! both rates share the group's device-days.

use super::Remediation;
use crate::analyze::alerts::{AlertQuery, AlertReport, Dim, GroupKey, Split, denom_dims};
use crate::analyze::labels::Labels;
use crate::inventory::{DenomDims, DenomKey, Denominators, DeviceInfo, Inventory};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A group's installed devices, and how many of them the remediation touches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    pub devices: u64,
    pub touched: u64,
}

/// One group's alerts before and after the remediation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeforeAfter {
    pub before: u64,
    /// The alerts the remediation matches: gone after it.
    pub removed: u64,
    /// Device-days over the period, the denominator of both rates, when known.
    pub device_days: Option<u64>,
    /// `None` when the inventory has no device of the group.
    pub devices: Option<Touched>,
}

impl BeforeAfter {
    pub fn after(&self) -> u64 {
        self.before - self.removed
    }
}

/// Per group (in group-key order) and over the whole selection.
#[derive(Clone, Debug, PartialEq)]
pub struct RemediationEffect {
    pub groups: Vec<(GroupKey, BeforeAfter)>,
    pub all: BeforeAfter,
}

/// One label and category whose alerts the rules change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelChange {
    pub label: String,
    pub category: String,
    pub before: u64,
    pub after: u64,
}

/// The fold of the before/after table: by `by`, each group split by whether `remediation`
/// matches (no split without one: the fold then gives the period and the totals).
pub fn remediation_query(by: &[Dim], remediation: Option<Arc<Remediation>>) -> AlertQuery {
    AlertQuery {
        by: by.to_vec(),
        split: remediation.map(|r| r as Arc<dyn Split>),
        distinct: false,
        ..Default::default()
    }
}

/// The folds of the label replay: by label and category, without rules and with `labels`.
pub fn relabel_queries(labels: &Arc<Labels>) -> [AlertQuery; 2] {
    [Arc::new(Labels::none()), labels.clone()].map(|labels| AlertQuery {
        by: vec![Dim::Label, Dim::Category],
        labels,
        distinct: false,
        ..Default::default()
    })
}

/// Installed devices per group, and how many of them the remediation touches.
fn matched_devices(
    inv: &Inventory,
    dims: DenomDims,
    rem: &Remediation,
) -> BTreeMap<DenomKey, Touched> {
    let mut out: BTreeMap<_, Touched> = BTreeMap::new();
    for (id, packed) in inv.devices.iter() {
        let info = DeviceInfo::unpack(packed);
        let e = out.entry(dims.key(&info)).or_default();
        e.devices += 1;
        e.touched += u64::from(rem.matches_device(Some(id), &info));
    }
    out
}

/// Per group of the split fold `r` (grouped by `by`) and overall: the alerts before and
/// after, and the devices the remediation touches. The overall device-days count the devices
/// of the report's selection only.
pub fn remediation_effect(
    r: &AlertReport,
    by: &[Dim],
    rem: &Remediation,
    inv: &Inventory,
) -> RemediationEffect {
    let devices = matched_devices(inv, denom_dims(by), rem);
    // Group rows by their key without the split flag.
    let mut groups: BTreeMap<GroupKey, BeforeAfter> = BTreeMap::new();
    for row in &r.rows {
        let k = GroupKey {
            class: None,
            ..row.key
        };
        let e = groups.entry(k).or_insert(BeforeAfter {
            before: 0,
            removed: 0,
            device_days: row.denominator,
            devices: devices.get(&k.denom_key()).copied(),
        });
        e.before += row.alerts;
        if row.key.class == Some(1) {
            e.removed += row.alerts;
        }
    }
    let fleet = matched_devices(inv, DenomDims::default(), rem)
        .values()
        .fold(Touched::default(), |a, v| Touched {
            devices: a.devices + v.devices,
            touched: a.touched + v.touched,
        });
    let all =
        BeforeAfter {
            before: groups.values().map(|g| g.before).sum(),
            removed: groups.values().map(|g| g.removed).sum(),
            device_days: r.period.and_then(|(a, b)| {
                Denominators::build_filtered(inv, DenomDims::default(), &r.scope.devices)
                    .device_days(&DenomKey::default(), a, b)
            }),
            devices: Some(fleet),
        };
    RemediationEffect {
        groups: groups.into_iter().collect(),
        all,
    }
}

/// Alerts per label and category without the rules (`before`) and with them (`after`): the
/// ones that change, the largest first.
pub fn label_changes(before: &AlertReport, after: &AlertReport) -> Vec<LabelChange> {
    let mut rows: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for (report, after_side) in [(before, false), (after, true)] {
        for row in &report.rows {
            let label = row
                .key
                .label
                .map(|l| report.labels.label_name(l))
                .unwrap_or_default();
            let cat = row
                .key
                .category
                .map(|c| report.labels.category_name(c).to_string())
                .unwrap_or_default();
            let e = rows.entry((label, cat)).or_default();
            if after_side {
                e.1 += row.alerts;
            } else {
                e.0 += row.alerts;
            }
        }
    }
    let mut changed: Vec<_> = rows.into_iter().filter(|(_, (b, a))| b != a).collect();
    changed.sort_by(|x, y| {
        (y.1.0.max(y.1.1))
            .cmp(&x.1.0.max(x.1.1))
            .then(x.0.cmp(&y.0))
    });
    changed
        .into_iter()
        .map(|((label, category), (before, after))| LabelChange {
            label,
            category,
            before,
            after,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::alerts::AlertRow;
    use crate::analyze::labels::LabelKey;

    fn row(key: GroupKey, alerts: u64) -> AlertRow {
        AlertRow {
            key,
            alerts,
            records: alerts,
            devices: 0,
            devices_exact: true,
            denominator: Some(1000),
            per_1000: None,
        }
    }

    fn by_label(counts: &[(u32, u64)]) -> AlertReport {
        let mut r = AlertReport::empty();
        r.rows = counts
            .iter()
            .map(|&(l, n)| {
                let key = GroupKey {
                    label: Some(LabelKey(l)),
                    ..Default::default()
                };
                row(key, n)
            })
            .collect();
        r
    }

    #[test]
    fn label_changes_keep_what_changed_largest_first() {
        let (x, y, z) = (0x8F01, 0x8F02, 0x8F03);
        let before = by_label(&[(x, 10), (y, 5)]);
        let after = by_label(&[(x, 4), (y, 5), (z, 6)]);
        let name = |l| before.labels.label_name(LabelKey(l));
        let changes = label_changes(&before, &after);
        let seen: Vec<(String, u64, u64)> = changes
            .iter()
            .map(|c| (c.label.clone(), c.before, c.after))
            .collect();
        // y is unchanged; x (10 at most) ranks above z (6 at most).
        assert_eq!(seen, vec![(name(x), 10, 4), (name(z), 0, 6)]);
    }

    #[test]
    fn after_is_before_minus_the_matched_split() {
        // One group split in two: 30 alerts the rule does not match, 10 it does.
        let mut r = AlertReport::empty();
        let k = GroupKey::default();
        r.rows = vec![
            row(
                GroupKey {
                    class: Some(0),
                    ..k
                },
                30,
            ),
            row(
                GroupKey {
                    class: Some(1),
                    ..k
                },
                10,
            ),
        ];
        let e = remediation_effect(&r, &[], &Remediation::default(), &Inventory::default());
        assert_eq!(e.groups.len(), 1);
        let g = e.groups[0].1;
        assert_eq!((g.before, g.removed, g.after()), (40, 10, 30));
        assert_eq!(g.device_days, Some(1000));
        assert_eq!((e.all.before, e.all.removed), (40, 10));
        assert_eq!(e.all.devices, Some(Touched::default()));
    }
}
