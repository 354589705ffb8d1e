//! Two periods side by side: each group's alerts and rate in the selected period and in a
//! comparison period, the change, and whether it is beyond what Poisson noise explains.
//!
//! Both reports come from one read of the inputs, grouped alike (never by day or hour: a
//! period is the unit). A group's exposure in a period is its device-days, so a region that
//! grew is compared on its rate, not its count. The test and interval are
//! `poisson::compare_rates`'; the call "beyond noise" controls the false discovery rate at 5%
//! over all the groups compared (Benjamini-Hochberg), so that a table of hundreds of groups
//! does not flag one in twenty by chance.

use super::alerts::{AlertReport, GroupKey, denom_dims};
use super::poisson::{benjamini_hochberg, compare_rates};
use crate::inventory::{Denominators, Inventory};
use crate::model::Day;
use rustc_hash::FxHashMap;

/// One group in both periods.
#[derive(Clone, Debug, PartialEq)]
pub struct ComparedGroup {
    pub key: GroupKey,
    pub alerts: u64,
    /// Device-days in the selected period (`None`: no installed base known).
    pub exposure: Option<u64>,
    pub per_1000: Option<f64>,
    pub base_alerts: u64,
    pub base_exposure: Option<u64>,
    pub base_per_1000: Option<f64>,
    /// Rate over the comparison's rate, minus 1 (-0.25: a quarter lower).
    pub change: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p: Option<f64>,
    /// Benjamini-Hochberg q-value over the groups with a test.
    pub q: Option<f64>,
    pub beyond_noise: bool,
}

/// The comparison of every group seen in either period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub period: Option<(Day, Day)>,
    pub base_period: Option<(Day, Day)>,
    pub groups: Vec<ComparedGroup>,
}

fn rate(alerts: u64, exposure: Option<u64>) -> Option<f64> {
    exposure
        .filter(|&e| e > 0)
        .map(|e| alerts as f64 * 1000.0 / e as f64)
}

/// The false discovery rate at which a change is called beyond noise.
pub const FDR: f64 = 0.05;

/// Joins the two reports (grouped alike, without day) group by group. A group with no alert
/// in one period has 0 alerts over its device-days there (from the inventory).
pub fn compare(current: &AlertReport, base: &AlertReport, inv: &Inventory) -> Comparison {
    let denoms = Denominators::build_filtered(inv, denom_dims(&current.by), &current.scope.devices);
    let exposure_in = |key: &GroupKey, period: Option<(Day, Day)>| {
        period.and_then(|(from, to)| denoms.device_days(&key.denom_key(), from, to))
    };
    let mut by_key: FxHashMap<GroupKey, (Option<usize>, Option<usize>)> = FxHashMap::default();
    for (i, r) in current.rows.iter().enumerate() {
        by_key.entry(r.key).or_default().0 = Some(i);
    }
    for (i, r) in base.rows.iter().enumerate() {
        by_key.entry(r.key).or_default().1 = Some(i);
    }
    let mut keys: Vec<GroupKey> = by_key.keys().copied().collect();
    keys.sort();
    let mut groups: Vec<ComparedGroup> = keys
        .into_iter()
        .map(|key| {
            let (c, b) = by_key[&key];
            let c = c.map(|i| &current.rows[i]);
            let b = b.map(|i| &base.rows[i]);
            let alerts = c.map_or(0, |r| r.alerts);
            let base_alerts = b.map_or(0, |r| r.alerts);
            let exposure = c.map_or_else(|| exposure_in(&key, current.period), |r| r.denominator);
            let base_exposure = b.map_or_else(|| exposure_in(&key, base.period), |r| r.denominator);
            let test = exposure
                .zip(base_exposure)
                .and_then(|(e1, e2)| compare_rates(alerts, e1 as f64, base_alerts, e2 as f64));
            ComparedGroup {
                key,
                alerts,
                exposure,
                per_1000: rate(alerts, exposure),
                base_alerts,
                base_exposure,
                base_per_1000: rate(base_alerts, base_exposure),
                change: test.map(|t| t.ratio - 1.0).filter(|x| x.is_finite()),
                ci_low: test.map(|t| t.ci_low - 1.0),
                ci_high: test.map(|t| t.ci_high - 1.0).filter(|x| x.is_finite()),
                p: test.map(|t| t.p),
                q: None,
                beyond_noise: false,
            }
        })
        .collect();
    let tested: Vec<usize> = (0..groups.len())
        .filter(|&i| groups[i].p.is_some())
        .collect();
    let p: Vec<f64> = tested.iter().map(|&i| groups[i].p.unwrap_or(1.0)).collect();
    for (&i, q) in tested.iter().zip(benjamini_hochberg(&p)) {
        groups[i].q = Some(q);
        groups[i].beyond_noise = q <= FDR;
    }
    Comparison {
        period: current.period,
        base_period: base.period,
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::alerts::AlertRow;
    use crate::model::Region;

    fn row(region: Region, alerts: u64, device_days: u64) -> AlertRow {
        AlertRow {
            key: GroupKey {
                region: Some(region),
                ..Default::default()
            },
            alerts,
            records: alerts,
            devices: 0,
            devices_exact: true,
            denominator: Some(device_days),
            per_1000: Some(alerts as f64 * 1000.0 / device_days as f64),
        }
    }

    fn report(rows: Vec<AlertRow>) -> AlertReport {
        AlertReport {
            rows,
            ..AlertReport::empty()
        }
    }

    #[test]
    fn rates_not_counts_are_compared() {
        // North: 400 alerts on 10,000 device-days now, 200 on 10,000 before: the rate
        // doubled, far beyond noise. South: 300 on 15,000 now against 200 on 10,000 before:
        // the count rose by half with the fleet, the rate did not move.
        let now = report(vec![
            row(Region::North, 400, 10_000),
            row(Region::South, 300, 15_000),
        ]);
        let before = report(vec![
            row(Region::North, 200, 10_000),
            row(Region::South, 200, 10_000),
        ]);
        let c = compare(&now, &before, &Inventory::default());
        let north = &c.groups[0];
        assert_eq!(north.key.region, Some(Region::North));
        assert!((north.change.unwrap() - 1.0).abs() < 1e-12, "+100%");
        assert!(north.beyond_noise && north.ci_low.unwrap() > 0.5);
        let south = &c.groups[1];
        assert!(south.change.unwrap().abs() < 1e-12);
        assert!(!south.beyond_noise && south.p.unwrap() > 0.9);
    }

    #[test]
    fn a_group_in_one_period_only_has_0_alerts_over_its_device_days() {
        use crate::inventory::{DeviceInfo, DeviceTable};
        use crate::model::{DeviceType, Generation};
        // Ten North devices installed throughout; 5 alerts now (days 10..=19), none before
        // (days 0..=9): 0 of 100 device-days against 5 of 100.
        let entries: Vec<(u64, u64)> = (1..=10u64)
            .map(|id| {
                let info = DeviceInfo {
                    region: Region::North,
                    device_type: DeviceType::Esme,
                    generation: Generation::Smets2,
                    model: 0,
                    firmware: 0,
                    installed: None,
                };
                (id, info.pack())
            })
            .collect();
        let inv = Inventory {
            devices: DeviceTable::build(&entries).0,
            ..Default::default()
        };
        let mut now = report(vec![row(Region::North, 5, 100)]);
        now.by = vec![crate::analyze::alerts::Dim::Region];
        now.period = Some((10, 19));
        let mut before = report(vec![]);
        before.by = now.by.clone();
        before.period = Some((0, 9));
        let c = compare(&now, &before, &inv);
        let g = &c.groups[0];
        assert_eq!((g.base_alerts, g.base_exposure), (0, Some(100)));
        assert_eq!(g.base_per_1000, Some(0.0));
        // 5 of 5 in the first period at p0 = 0.5: two-sided exact p = 2 / 32.
        assert!((g.p.unwrap() - 0.0625).abs() < 1e-9, "{g:?}");
        assert_eq!(g.change, None, "infinite: no alert before");
    }
}
