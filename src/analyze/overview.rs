//! A first look at a run, as the demo gives it: each region's typical daily rate and the day
//! furthest above it, and each generation's most frequent code with its share.
//!
//! "Typical" here is the upper median (the higher of the two middle values for an even
//! count), not `stats::median`'s mean of the two: the demo has always said it so, and its
//! figures stay the same.

use super::alerts::AlertReport;
use crate::model::{AlertCode, Day};
use std::collections::BTreeMap;

/// A region's median daily rate (alerts per 1,000 devices).
#[derive(Clone, Debug, PartialEq)]
pub struct RegionRate {
    pub region: String,
    pub median: f64,
}

/// The day whose rate stands furthest above its region's median.
#[derive(Clone, Debug, PartialEq)]
pub struct Departure {
    pub region: String,
    pub day: Day,
    pub rate: f64,
    pub median: f64,
    /// `rate / median`.
    pub times: f64,
}

/// A generation's most frequent code.
#[derive(Clone, Debug, PartialEq)]
pub struct TopCode {
    pub generation: String,
    /// `None` when none of the generation's rows has an alert.
    pub code: Option<AlertCode>,
    pub alerts: u64,
    /// The generation's alerts, every code.
    pub total: u64,
}

/// The upper median; 0 for no values. Sorts `v`.
fn upper_median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Per region (by name), its median daily rate; and the largest departure, from a report
/// grouped by day and region.
pub fn region_rates(by_day_region: &AlertReport) -> (Vec<RegionRate>, Option<Departure>) {
    let mut by_region: BTreeMap<String, Vec<(Day, f64)>> = BTreeMap::new();
    for r in &by_day_region.rows {
        if let (Some(day), Some(region), Some(rate)) = (r.key.day, r.key.region, r.per_1000) {
            by_region
                .entry(region.name().to_string())
                .or_default()
                .push((day, rate));
        }
    }
    let mut rates = Vec::new();
    let mut worst: Option<Departure> = None;
    for (region, days) in by_region {
        let mut values: Vec<f64> = days.iter().map(|d| d.1).collect();
        let median = upper_median(&mut values);
        for &(day, rate) in &days {
            let times = rate / median.max(1e-9);
            if worst.as_ref().is_none_or(|w| times > w.times) {
                worst = Some(Departure {
                    region: region.clone(),
                    day,
                    rate,
                    median,
                    times,
                });
            }
        }
        rates.push(RegionRate { region, median });
    }
    (rates, worst)
}

/// Per generation (by name), its top code, from a report grouped by generation and code.
pub fn top_codes(by_gen_code: &AlertReport) -> Vec<TopCode> {
    let mut top: BTreeMap<String, TopCode> = BTreeMap::new();
    for r in &by_gen_code.rows {
        if let (Some(g), Some(c)) = (r.key.generation, r.key.code) {
            let e = top.entry(g.name().to_string()).or_insert_with(|| TopCode {
                generation: g.name().to_string(),
                code: None,
                alerts: 0,
                total: 0,
            });
            e.total += r.alerts;
            if r.alerts > e.alerts {
                e.alerts = r.alerts;
                e.code = Some(c);
            }
        }
    }
    top.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::alerts::{AlertRow, GroupKey};
    use crate::model::{Generation, Region};

    #[test]
    fn the_upper_median_takes_the_higher_middle_value() {
        assert_eq!(upper_median(&mut []), 0.0);
        assert_eq!(upper_median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(upper_median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
    }

    fn row(key: GroupKey, alerts: u64, per_1000: Option<f64>) -> AlertRow {
        AlertRow {
            key,
            alerts,
            records: alerts,
            devices: 0,
            devices_exact: false,
            denominator: None,
            per_1000,
        }
    }

    #[test]
    fn medians_departures_and_top_codes() {
        let mut r = AlertReport::empty();
        for (day, rate) in [(1, 1.0), (2, 2.0), (3, 8.0), (4, 3.0)] {
            let key = GroupKey {
                day: Some(day),
                region: Some(Region::North),
                ..Default::default()
            };
            r.rows.push(row(key, 1, Some(rate)));
        }
        let (rates, worst) = region_rates(&r);
        assert_eq!(rates[0].median, 3.0);
        let w = worst.unwrap();
        assert_eq!((w.region.as_str(), w.day, w.rate), ("North", 3, 8.0));
        let mut g = AlertReport::empty();
        for (code, n) in [(0x81B8, 5), (0x8F35, 7)] {
            let key = GroupKey {
                generation: Some(Generation::Smets2),
                code: Some(AlertCode::device(code)),
                ..Default::default()
            };
            g.rows.push(row(key, n, None));
        }
        let top = top_codes(&g);
        assert_eq!(top[0].code, Some(AlertCode::device(0x8F35)));
        assert_eq!((top[0].alerts, top[0].total), (7, 12));
    }

    #[test]
    fn empty_reports_give_nothing() {
        let (rates, worst) = region_rates(&AlertReport::empty());
        assert!(rates.is_empty() && worst.is_none());
        assert!(top_codes(&AlertReport::empty()).is_empty());
    }
}
