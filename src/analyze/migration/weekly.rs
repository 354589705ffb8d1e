//! The migration log, week by week and cohort by cohort.
//!
//! Weeks start on Monday. Counts are devices: a device's first `migrated` event, its first
//! `commissioned` event, and failed attempts. The backlog at a week's end is the devices the
//! log shows migrated but not yet operated by a supplier (a device commissioned without a
//! migration row, migrated before the log or on a day whose report is missing, counts as
//! operated and never in the backlog). A device commissioned on a day whose report is missing
//! stays in the backlog for good: from the first missing day on, each week carries the missing
//! days to date and an estimate of that excess (the cohort's commissions per reported day of
//! each missing day's week).
//!
//! The pace is migrations per reported weekday times five: a week whose reports are missing on
//! a day is not mistaken for a slowdown. A pace change is a week whose pace differs from the
//! median of the three weeks before (since the last change) by at least `min_change` (40%)
//! and `min_pace` devices a week. Reporting gaps are weekdays between the first and last day
//! of the log with no row at all. The outlook of each cohort is `outlook.rs`'s.

use super::log::{Log, MigrationEvent, Migrations};
use super::outlook::{CohortLog, Outlook, outlook};
pub use super::week::{PaceParams, Week};
use crate::analyze::stats::median;
use crate::model::Day;
use crate::model::time::{day_of, weekday};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq)]
pub struct PaceChange {
    pub cohort: u16,
    pub week: Day,
    pub before: f64,
    pub after: f64,
}

impl PaceChange {
    pub fn describe(&self) -> String {
        if self.before <= 0.0 {
            "started".into()
        } else if self.after <= 0.0 {
            "stopped".into()
        } else {
            format!("{:+.0}%", (self.after / self.before - 1.0) * 100.0)
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub first_day: Day,
    pub last_day: Day,
    pub weeks: Vec<Day>,
    /// Per cohort id, its weeks (aligned with `weeks`).
    pub cohorts: BTreeMap<u16, Vec<Week>>,
    /// Devices that failed, per cohort and reason.
    pub failures: BTreeMap<(u16, u16), u64>,
    pub gaps: Vec<Day>,
    pub changes: Vec<PaceChange>,
    pub outlook: Vec<Outlook>,
}

fn monday(d: Day) -> Day {
    d - weekday(d) as Day
}

/// Analyses a log. `inventory` (optional) gives migrations before the log; `sizes` the
/// cohorts' device counts (for the remaining devices and the forecast).
pub fn analyse(
    log: &Log,
    inventory: Option<&Migrations>,
    sizes: &BTreeMap<u16, u64>,
    p: &PaceParams,
) -> Analysis {
    let in_period = |d: Day| p.since.is_none_or(|s| d >= s) && p.until.is_none_or(|u| d <= u);
    let log_rows: Vec<&super::log::LogRow> = log
        .rows
        .iter()
        .filter(|r| in_period(day_of(r.ts)))
        .collect();
    let Some(first) = log_rows.iter().map(|r| day_of(r.ts)).min() else {
        return Analysis::default();
    };
    let last = log_rows.iter().map(|r| day_of(r.ts)).max().unwrap_or(first);
    let last = p.until.unwrap_or(last);
    let weeks: Vec<Day> = (monday(first)..=last).step_by(7).collect();
    let week_of = |d: Day| ((monday(d) - monday(first)) / 7) as usize;
    // Reported weekdays per week, and the gaps.
    let reported: BTreeSet<Day> = log_rows.iter().map(|r| day_of(r.ts)).collect();
    let gaps: Vec<Day> = (first..=last)
        .filter(|&d| weekday(d) < 5 && !reported.contains(&d))
        .collect();
    let mut reported_weekdays = vec![0u32; weeks.len()];
    let mut reported_days = vec![0u32; weeks.len()];
    for &d in &reported {
        reported_days[week_of(d)] += 1;
        if weekday(d) < 5 {
            reported_weekdays[week_of(d)] += 1;
        }
    }
    let mut missing = vec![0u32; weeks.len()];
    for &d in &gaps {
        missing[week_of(d)] += 1;
    }
    // First migration and commissioning per device, failures per event.
    let mut rows: Vec<super::log::LogRow> = log_rows.into_iter().cloned().collect();
    rows.sort_by_key(|r| (r.ts, r.device, r.event));
    let mut migrated: FxHashMap<u64, (u16, Day)> = FxHashMap::default();
    let mut commissioned: FxHashMap<u64, (u16, Day)> = FxHashMap::default();
    let mut cohort_ids: BTreeSet<u16> = BTreeSet::new();
    let mut counts: BTreeMap<u16, Vec<Week>> = BTreeMap::new();
    let mut failures: BTreeMap<(u16, u16), FxHashMap<u64, ()>> = BTreeMap::new();
    for r in &rows {
        cohort_ids.insert(r.cohort);
        let w = counts.entry(r.cohort).or_insert_with(|| {
            weeks
                .iter()
                .map(|&start| Week {
                    start,
                    ..Week::default()
                })
                .collect()
        });
        let day = day_of(r.ts);
        match r.event {
            MigrationEvent::Migrated => {
                if migrated.insert(r.device, (r.cohort, day)).is_none() {
                    w[week_of(day)].migrated += 1;
                } else {
                    migrated.entry(r.device).and_modify(|m| m.1 = m.1.min(day));
                }
            }
            MigrationEvent::Commissioned => {
                if commissioned.insert(r.device, (r.cohort, day)).is_none() {
                    w[week_of(day)].commissioned += 1;
                }
            }
            MigrationEvent::Failed => {
                w[week_of(day)].failed += 1;
                failures
                    .entry((r.cohort, r.reason))
                    .or_default()
                    .insert(r.device, ());
            }
        }
    }
    // The backlog: +1 the week a device migrated, -1 the week it was commissioned.
    let mut backlog_delta: BTreeMap<u16, Vec<i64>> = BTreeMap::new();
    for (dev, &(c, day)) in &migrated {
        let v = backlog_delta
            .entry(c)
            .or_insert_with(|| vec![0; weeks.len()]);
        v[week_of(day)] += 1;
        if let Some(&(_, cd)) = commissioned.get(dev) {
            v[week_of(cd.max(day))] -= 1;
        }
    }
    for (c, v) in &mut counts {
        let (mut cm, mut cc, mut backlog) = (0, 0, 0i64);
        let delta = backlog_delta.get(c);
        // Commissions per reported day, for a week with no report at all.
        let all_days: u32 = reported_days.iter().sum();
        let overall = v.iter().map(|w| w.commissioned).sum::<u64>() as f64 / all_days.max(1) as f64;
        let (mut missing_to_date, mut excess) = (0, 0.0);
        for (i, w) in v.iter_mut().enumerate() {
            cm += w.migrated;
            cc += w.commissioned;
            backlog += delta.map_or(0, |d| d[i]);
            w.cum_migrated = cm;
            w.cum_commissioned = cc;
            w.backlog = backlog.max(0) as u64;
            w.reported_weekdays = reported_weekdays[i];
            w.pace = (reported_weekdays[i] > 0)
                .then(|| w.migrated as f64 * 5.0 / reported_weekdays[i] as f64);
            let per_day = if reported_days[i] > 0 {
                w.commissioned as f64 / reported_days[i] as f64
            } else {
                overall
            };
            missing_to_date += missing[i];
            excess += missing[i] as f64 * per_day;
            w.missing_days = missing[i];
            w.backlog_missing_days = missing_to_date;
            // Never more than the backlog itself.
            w.backlog_excess = excess.min(w.backlog as f64);
        }
    }
    // Pace changes.
    let mut changes = Vec::new();
    let mut change_weeks: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (&c, v) in &counts {
        let paces: Vec<Option<f64>> = v.iter().map(|w| w.pace).collect();
        // A change starts a new regime: later weeks are compared with it, not with the weeks
        // before it (else one cut would be flagged again until it fills the window).
        let mut regime = 0;
        for i in 1..paces.len() {
            let Some(now) = paces[i] else { continue };
            let from = i.saturating_sub(3).max(regime);
            let mut before: Vec<f64> = paces[from..i].iter().flatten().copied().collect();
            if before.is_empty() {
                continue;
            }
            let m = median(&mut before);
            let diff = now - m;
            let big = if m > 0.0 {
                diff.abs() / m >= p.min_change
            } else {
                now > 0.0
            };
            if big && diff.abs() >= p.min_pace {
                changes.push(PaceChange {
                    cohort: c,
                    week: v[i].start,
                    before: m,
                    after: now,
                });
                change_weeks.entry(c).or_default().push(i);
                regime = i;
            }
        }
    }
    // Outlook per cohort: the devices the log shows migrated (or operated), its weeks, its
    // changes.
    let mut log_devices: BTreeMap<u16, FxHashSet<u64>> = BTreeMap::new();
    for (&id, &(c, _)) in migrated.iter().chain(commissioned.iter()) {
        log_devices.entry(c).or_default().insert(id);
    }
    let outlook = cohort_ids
        .iter()
        .map(|&c| {
            let cohort = CohortLog {
                cohort: c,
                weeks: &counts[&c],
                changes: change_weeks.get(&c).map_or(&[], Vec::as_slice),
                devices: log_devices.get(&c).cloned().unwrap_or_default(),
            };
            outlook(&cohort, inventory, sizes.get(&c).copied(), last, p)
        })
        .collect();
    Analysis {
        first_day: first,
        last_day: last,
        weeks,
        cohorts: counts,
        failures: failures
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect(),
        gaps,
        changes,
        outlook,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::migration::log::LogRow;
    use crate::model::time::days_from_civil;

    /// 2024-01-01 is a Monday.
    fn at(day: i32, hour: i64) -> i64 {
        (days_from_civil(2024, 1, 1) + day) as i64 * 86_400_000 + hour * 3_600_000
    }

    fn log(rows: &[(i32, u64, MigrationEvent)]) -> Log {
        let mut l = Log::default();
        let c = l.cohorts.id("FOC");
        for &(day, device, event) in rows {
            l.rows.push(LogRow {
                ts: at(day, 10),
                device,
                cohort: c,
                event,
                reason: 0,
            });
        }
        l
    }

    #[test]
    fn weekly_counts_backlog_gaps_and_pace_by_hand() {
        use MigrationEvent::*;
        // Week 1 (Mon 1st-Fri 5th): 20 devices migrate, 4 a day; Wednesday (3rd) has no report.
        // Week 2: 10 migrate on Monday; 18 of week 1's are commissioned Tuesday to Thursday;
        // Friday has no report.
        let mut rows = Vec::new();
        for (i, day) in [0, 1, 3, 4].iter().enumerate() {
            for k in 0..5 {
                rows.push((*day, (i * 5 + k) as u64, Migrated));
            }
        }
        for k in 0..10 {
            rows.push((7, 100 + k, Migrated));
        }
        for d in 0..18u64 {
            rows.push((8 + (d % 3) as i32, d, Commissioned));
        }
        rows.push((9, 100, Failed));
        let a = analyse(&log(&rows), None, &BTreeMap::new(), &PaceParams::default());
        let foc = &a.cohorts[&4];
        assert_eq!(a.weeks.len(), 2);
        assert_eq!((foc[0].migrated, foc[1].migrated), (20, 10));
        assert_eq!((foc[0].commissioned, foc[1].commissioned), (0, 18));
        assert_eq!((foc[1].cum_migrated, foc[1].cum_commissioned), (30, 18));
        assert_eq!((foc[0].backlog, foc[1].backlog), (20, 12));
        assert_eq!(foc[1].failed, 1);
        // Wednesday the 3rd is a gap; week 1's pace is 20 over 4 reported days = 25 a week.
        assert_eq!(a.gaps, vec![days_from_civil(2024, 1, 3)]);
        assert_eq!(foc[0].pace, Some(25.0));
        // Week 2 reports Monday to Thursday: 10 / 4 x 5 = 12.5, a -50% change.
        assert_eq!(foc[1].pace, Some(12.5));
        assert_eq!(a.changes.len(), 1);
        assert_eq!(a.changes[0].describe(), "-50%");
        assert_eq!(a.failures[&(4, 0)], 1);
    }

    #[test]
    fn backlogs_carry_the_missing_days() {
        use MigrationEvent::*;
        // Week 1: devices 0-9 migrate Monday; 0-3 are commissioned Tuesday, 4-5 Thursday, 8
        // Friday; Wednesday has no report (say 6 and 7 were commissioned then). Week 2: one
        // migration on Monday.
        let mut rows: Vec<(i32, u64, MigrationEvent)> = (0..10).map(|d| (0, d, Migrated)).collect();
        rows.extend((0..4).map(|d| (1, d, Commissioned)));
        rows.extend((4..6).map(|d| (3, d, Commissioned)));
        rows.push((4, 8, Commissioned));
        rows.push((7, 20, Migrated));
        let a = analyse(&log(&rows), None, &BTreeMap::new(), &PaceParams::default());
        let foc = &a.cohorts[&4];
        // Backlog 3 (6, 7, 9; truly 1). 7 commissions over 4 reported days: 1.75 a day, one
        // missing day: about 1.75 too many, in week 1 and every week after.
        assert_eq!((foc[0].backlog, foc[1].backlog), (3, 4));
        assert_eq!((foc[0].missing_days, foc[1].missing_days), (1, 0));
        assert_eq!(
            (foc[0].backlog_missing_days, foc[1].backlog_missing_days),
            (1, 1)
        );
        assert_eq!((foc[0].backlog_excess, foc[1].backlog_excess), (1.75, 1.75));
        assert_eq!((foc[0].reported_weekdays, foc[1].reported_weekdays), (4, 1));
    }

    #[test]
    fn outlook_forecast_and_stall() {
        use MigrationEvent::*;
        // 10 a week for three weeks, every weekday reported.
        let mut rows = Vec::new();
        for d in 0..19 {
            if weekday(days_from_civil(2024, 1, 1) + d) < 5 {
                rows.push((d, 1000 + d as u64 * 10, Migrated));
                rows.push((d, 1001 + d as u64 * 10, Migrated));
            }
        }
        let l = log(&rows);
        let mut inv = Migrations::default();
        for i in 0..70 {
            inv.insert(i, (4, Some(days_from_civil(2023, 6, 1))));
        }
        let sizes: BTreeMap<u16, u64> = [(4u16, 200u64)].into();
        let a = analyse(&l, Some(&inv), &sizes, &PaceParams::default());
        let o = &a.outlook[0];
        // 70 before the log, 30 in it: 100 remain, at 10 a week: 70 days after the last day.
        assert_eq!((o.migrated, o.remaining), (100, Some(100)));
        assert_eq!(o.pace_per_week(), 10.0);
        assert_eq!(o.pace_since, Some(days_from_civil(2024, 1, 1)));
        assert!(!o.stalled);
        assert_eq!(o.finish, Some(a.last_day + 70));
        // Three steady weeks: X² = 0 on 2 df, so φ = 1; s = √(1/30 + 1/100) = 0.208167,
        // t(0.95, 2) = 2.919986, exp(0.607845) = 1.836467: 10 weeks / 1.836467 = 38.12 days
        // (39), 10 weeks x 1.836467 = 128.55 days (129).
        assert_eq!(o.finish_low, Some(a.last_day + 39));
        assert_eq!(o.finish_high, Some(a.last_day + 129));
        // The same, with two silent weeks at the end (commissioning only): stalled, no forecast.
        let mut rows2 = rows.clone();
        for d in [21, 28] {
            rows2.push((d, 1000, Commissioned));
        }
        let a = analyse(&log(&rows2), Some(&inv), &sizes, &PaceParams::default());
        assert!(a.outlook[0].stalled);
        assert_eq!(a.outlook[0].finish, None);
        assert!(a.changes.iter().any(|c| c.describe() == "stopped"));
    }
}
