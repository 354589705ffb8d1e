//! Where each cohort stands at the end of the log: its size, the devices migrated and
//! remaining, its pace since the last change and the range of its finish (`forecast.rs`), and
//! whether it has stalled.
//!
//! The decision a reader would not guess: without `--cohort-size`, a cohort's size comes from
//! the inventory only when the inventory lists a device of the cohort with no migration date
//! (a register of the cohort, migrated or not); its size is then the devices it lists plus
//! those only the log names. The DCC's own inventory lists migrated meters alone: counting
//! them would call every cohort complete, so such a cohort's size stays unknown, and says why.

use super::forecast::{Pace, WeekCount, pace};
use super::log::Migrations;
use super::week::{PaceParams, Week};
use crate::model::Day;
use rustc_hash::FxHashSet;

/// Where a cohort's size came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeFrom {
    /// `--cohort-size`.
    Given,
    /// The inventory's devices of the cohort (it lists unmigrated ones), and the log's.
    Inventory,
    /// Unknown: no inventory.
    NoInventory,
    /// Unknown: the inventory lists only migrated devices of the cohort.
    OnlyMigrated,
}

/// Where a cohort stands at the end of the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Outlook {
    pub cohort: u16,
    /// Devices in the cohort, when known.
    pub size: Option<u64>,
    pub size_from: SizeFrom,
    /// Devices migrated by the end (the inventory's migrations before the log, plus the log's).
    pub migrated: u64,
    /// Devices left (needs the inventory and the size).
    pub remaining: Option<u64>,
    /// The pace since the last change (at most `PaceParams::recent_weeks`).
    pub pace: Option<Pace>,
    /// The Monday of the pace's first week.
    pub pace_since: Option<Day>,
    pub peak_pace: f64,
    pub stalled: bool,
    /// The day the cohort finishes at its pace, and the 90% range around it (`None` past a
    /// century, or without the degrees of freedom for a range).
    pub finish: Option<Day>,
    pub finish_low: Option<Day>,
    pub finish_high: Option<Day>,
}

impl Outlook {
    /// Devices a week since the last change (0 without a reported week).
    pub fn pace_per_week(&self) -> f64 {
        self.pace.map_or(0.0, |p| p.per_week)
    }
}

/// What the log says about one cohort.
pub struct CohortLog<'a> {
    pub cohort: u16,
    pub weeks: &'a [Week],
    /// Indexes of the weeks of its pace changes.
    pub changes: &'a [usize],
    /// Devices the log shows migrated or operated.
    pub devices: FxHashSet<u64>,
}

/// A forecast further than a century is no date.
const HORIZON_DAYS: f64 = 36_525.0;

fn day_after(last: Day, weeks: f64) -> Option<Day> {
    let days = (weeks * 7.0).ceil();
    (days <= HORIZON_DAYS).then(|| last + days as Day)
}

/// The outlook of a cohort whose log ends on `last`; `given` is its `--cohort-size`.
pub fn outlook(
    log: &CohortLog,
    inventory: Option<&Migrations>,
    given: Option<u64>,
    last: Day,
    p: &PaceParams,
) -> Outlook {
    let c = log.cohort;
    let paces: Vec<f64> = log.weeks.iter().filter_map(|w| w.pace).collect();
    let peak = paces.iter().copied().fold(0.0, f64::max);
    let (migrated, size, size_from) = match inventory {
        None => (
            log.weeks.last().map_or(0, |w| w.cum_migrated),
            given,
            if given.is_some() {
                SizeFrom::Given
            } else {
                SizeFrom::NoInventory
            },
        ),
        Some(inv) => {
            let mut migrated = log.devices.clone();
            let mut listed = log.devices.clone();
            let mut register = false;
            for (&id, &(_, day)) in inv.iter().filter(|(_, (ic, _))| *ic == c) {
                listed.insert(id);
                match day {
                    Some(d) if d <= last => {
                        migrated.insert(id);
                    }
                    None => register = true,
                    Some(_) => {}
                }
            }
            let (size, from) = match given {
                Some(s) => (Some(s), SizeFrom::Given),
                None if register => (Some(listed.len() as u64), SizeFrom::Inventory),
                None => (None, SizeFrom::OnlyMigrated),
            };
            (migrated.len() as u64, size, from)
        }
    };
    let remaining = size
        .filter(|_| inventory.is_some())
        .map(|s| s.saturating_sub(migrated));
    let nearly_done = match (remaining, size) {
        (Some(r), Some(s)) => r as f64 <= 0.01 * s as f64,
        _ => false,
    };
    let last_two: Vec<f64> = paces.iter().rev().take(2).copied().collect();
    let stalled = !nearly_done && peak >= p.min_pace && last_two.iter().all(|&x| x < 0.1 * peak);
    let counts: Vec<WeekCount> = log
        .weeks
        .iter()
        .map(|w| WeekCount {
            migrated: w.migrated,
            reported_weekdays: w.reported_weekdays,
        })
        .collect();
    let pace = pace(&counts, log.changes, p.recent_weeks);
    let forecast = match (remaining, pace) {
        (Some(r), Some(pc)) if !stalled => pc.weeks_to(r),
        _ => None,
    };
    let range = forecast.and_then(|f| f.1);
    Outlook {
        cohort: c,
        size,
        size_from,
        migrated,
        remaining,
        pace,
        pace_since: pace.and_then(|pc| log.weeks.get(pc.from)).map(|w| w.start),
        peak_pace: peak,
        stalled,
        finish: forecast.and_then(|f| day_after(last, f.0)),
        finish_low: range.and_then(|r| day_after(last, r.0)),
        finish_high: range.and_then(|r| day_after(last, r.1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::days_from_civil;

    fn week(start: Day, migrated: u64, cum_migrated: u64) -> Week {
        Week {
            start,
            migrated,
            cum_migrated,
            reported_weekdays: 5,
            pace: Some(migrated as f64),
            ..Default::default()
        }
    }

    #[test]
    fn sizes_come_from_an_inventory_that_lists_unmigrated_devices() {
        let d0 = days_from_civil(2024, 1, 1);
        let weeks = vec![week(d0, 10, 10), week(d0 + 7, 10, 20)];
        let log = CohortLog {
            cohort: 4,
            weeks: &weeks,
            changes: &[],
            devices: (100..120).collect(),
        };
        let last = d0 + 11;
        // FOC in the inventory: 30 migrated before the log, 5 of the log's, 40 with no date,
        // 2 migrated after the period; and one device of another cohort.
        let mut inv = Migrations::default();
        for i in 0..30 {
            inv.insert(i, (4, Some(d0 - 100)));
        }
        for i in 100..105 {
            inv.insert(i, (4, Some(d0 + 1)));
        }
        for i in 200..240 {
            inv.insert(i, (4, None));
        }
        for i in 300..302 {
            inv.insert(i, (4, Some(last + 3)));
        }
        inv.insert(400, (1, None));
        let p = PaceParams::default();
        let o = outlook(&log, Some(&inv), None, last, &p);
        // Listed: 30 + 5 + 40 + 2 = 77, and the 15 log devices the inventory lacks: 92.
        // Migrated: 30 + the log's 20 = 50; 42 remain (40 undated, 2 migrated later).
        assert_eq!(
            (o.size, o.size_from, o.migrated, o.remaining),
            (Some(92), SizeFrom::Inventory, 50, Some(42))
        );
        // 10 a week over two weeks: 4.2 weeks = 29.4 days.
        assert_eq!(o.pace_per_week(), 10.0);
        assert_eq!(o.finish, Some(last + 30));
        // --cohort-size overrides the inventory.
        let o = outlook(&log, Some(&inv), Some(1000), last, &p);
        assert_eq!(
            (o.size, o.size_from, o.remaining),
            (Some(1000), SizeFrom::Given, Some(950))
        );
        // An inventory of migrated devices alone gives no size, hence no forecast.
        inv.retain(|_, (_, d)| d.is_some());
        let o = outlook(&log, Some(&inv), None, last, &p);
        assert_eq!(
            (o.size, o.size_from, o.remaining, o.finish),
            (None, SizeFrom::OnlyMigrated, None, None)
        );
        // Without an inventory the devices migrated before the log are unknown.
        let o = outlook(&log, None, Some(1000), last, &p);
        assert_eq!(
            (o.migrated, o.remaining, o.size_from),
            (20, None, SizeFrom::Given)
        );
    }
}
