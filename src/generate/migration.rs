//! The SMETS1 migration plan: which first-generation premises migrate on which day, in cohorts
//! with weekly pacing, with failures, retries, supplier commissioning, a pacing cut after the
//! incident, and days whose report is missing from the log.

use super::fleet::{Cohort, Fleet, NOT_MIGRATED};
use super::rng::Rng;
use crate::model::time::{day_of, day_start, format_day, weekday};
use crate::model::{Day, Millis};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationStep {
    Migrated,
    Commissioned,
    Failed,
}

impl MigrationStep {
    pub fn name(self) -> &'static str {
        match self {
            MigrationStep::Migrated => "migrated",
            MigrationStep::Commissioned => "commissioned",
            MigrationStep::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct MigrationEvent {
    pub ts: Millis,
    pub device: u32,
    pub step: MigrationStep,
    pub reason: &'static str,
}

const FAILURE_REASONS: &[(&str, f64)] = &[
    ("device not responding", 0.4),
    ("security credentials update failed", 0.25),
    ("firmware version not on the CPL", 0.2),
    ("communications hub unreachable", 0.15),
];

#[derive(Clone, Debug, Default, Serialize)]
pub struct CohortTruth {
    pub cohort: String,
    /// Premises in the cohort (each holds an ESME and most a GSME).
    pub premises: usize,
    pub devices: usize,
    pub migrated_before_period: usize,
    /// Devices migrated during the period (whether or not their report day is missing).
    pub migrated_in_period: usize,
    pub commissioned_in_period: usize,
    /// Failed migration attempts (device events) during the period.
    pub failed_attempts: usize,
    /// Migrated but not yet commissioned at the end of the period.
    pub backlog_at_end: usize,
    /// Never migrated by the end of the period (not in the inventory).
    pub not_migrated_at_end: usize,
    /// Planned premises per week, from the first week of the period.
    pub weekly_quota: Vec<usize>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PacingCut {
    pub cohort: String,
    /// Monday of the first week at the reduced pace.
    pub from_week: String,
    pub premises_per_week_before: usize,
    pub premises_per_week_after: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MigrationTruth {
    pub cohorts: Vec<CohortTruth>,
    pub pacing_cut: PacingCut,
    /// Weekdays whose report is missing: the log has no row dated on them.
    pub missing_report_days: Vec<String>,
    /// Events that happened on a missing day (and so are absent from the log).
    pub events_on_missing_days: usize,
    pub log_rows: usize,
}

pub struct MigrationPlan {
    /// Events of the period in time order, those of missing report days included (the writer
    /// leaves those out).
    pub events: Vec<MigrationEvent>,
    pub missing_days: Vec<Day>,
    pub truth: MigrationTruth,
}

/// Share of each cohort migrated before the period starts, and how the rest is paced.
fn quota(cohort: Cohort, premises: usize, weeks: usize, cut_week: usize) -> (usize, Vec<usize>) {
    let spread = |n: usize, from: usize, to: usize| -> Vec<usize> {
        let to = to.clamp(from + 1, weeks.max(from + 1));
        let mut q = vec![0; weeks];
        let k = to - from;
        for (i, slot) in q.iter_mut().enumerate().take(to.min(weeks)).skip(from) {
            *slot = n / k + usize::from(i - from < n % k);
        }
        q
    };
    match cohort {
        Cohort::Ioc => {
            let before = premises * 9 / 10;
            (before, spread(premises - before, 0, 2))
        }
        Cohort::Moc => {
            let before = premises * 6 / 10;
            (before, spread((premises - before) * 7 / 10, 0, weeks / 2))
        }
        Cohort::MocSecure => {
            let before = premises * 3 / 10;
            (
                before,
                spread((premises - before) * 6 / 10, 1, weeks * 7 / 10),
            )
        }
        Cohort::Foc => {
            let pace = (premises * 6 / 10 / weeks.max(1)).max(1);
            let q = (0..weeks)
                .map(|w| match w {
                    0 => 0,
                    w if w >= cut_week => pace * 2 / 5,
                    _ => pace,
                })
                .collect();
            (0, q)
        }
    }
}

fn at(rng: &mut Rng, day: Day, from_hour: i64, to_hour: i64) -> Millis {
    day_start(day) + rng.range(from_hour * 3600, to_hour * 3600 - 1) * 1000
}

/// Plans the migration of every SMETS1 premises and sets its devices' `installed` day.
pub fn plan(fleet: &mut Fleet, seed: u64, incident_day: Day) -> MigrationPlan {
    let mut rng = Rng::fork(seed, "migration");
    let (start, end) = (fleet.start, fleet.end());
    let weeks = (fleet.days as usize).div_ceil(7).max(1);
    let cut_week = (((incident_day - start) / 7 + 1) as usize)
        .min(weeks - 1)
        .max(1);
    // Premises of each cohort, in fleet order, with their devices.
    let mut by_cohort: BTreeMap<Cohort, Vec<Vec<u32>>> = BTreeMap::new();
    let mut last_premises = u32::MAX;
    for (i, d) in fleet.devices.iter().enumerate() {
        if let Some(c) = d.cohort {
            let list = by_cohort.entry(c).or_default();
            if d.premises != last_premises {
                list.push(Vec::new());
                last_premises = d.premises;
            }
            list.last_mut().unwrap().push(i as u32);
        }
    }
    let mut events = Vec::new();
    let mut truth = MigrationTruth::default();
    for (&cohort, premises) in &by_cohort {
        let (before, weekly) = quota(cohort, premises.len(), weeks, cut_week);
        let mut ct = CohortTruth {
            cohort: cohort.name().into(),
            premises: premises.len(),
            devices: premises.iter().map(|p| p.len()).sum(),
            weekly_quota: weekly.clone(),
            ..Default::default()
        };
        if cohort == Cohort::Foc {
            let pace = weekly.get(1).copied().unwrap_or(0);
            truth.pacing_cut = PacingCut {
                cohort: cohort.name().into(),
                from_week: format_day(start + 7 * cut_week as Day),
                premises_per_week_before: pace,
                premises_per_week_after: weekly.get(cut_week).copied().unwrap_or(0),
            };
        }
        let mut next = premises.iter();
        for p in next.by_ref().take(before) {
            let day = start - rng.range(7, 400) as Day;
            for &d in p {
                fleet.devices[d as usize].installed = day;
            }
            ct.migrated_before_period += p.len();
        }
        for (w, &n) in weekly.iter().enumerate() {
            for p in next.by_ref().take(n) {
                // Migrations run on weekdays.
                let mut day = start + 7 * w as Day + rng.range(0, 4) as Day;
                while weekday(day) > 4 {
                    day += 1;
                }
                let mut attempts = 0;
                let migrated = loop {
                    if day >= end {
                        break None;
                    }
                    attempts += 1;
                    if rng.chance(0.04) && attempts < 3 {
                        let w: Vec<f64> = FAILURE_REASONS.iter().map(|r| r.1).collect();
                        let reason = FAILURE_REASONS[rng.weighted(&w)].0;
                        let ts = at(&mut rng, day, 8, 18);
                        for &d in p {
                            events.push(MigrationEvent {
                                ts,
                                device: d,
                                step: MigrationStep::Failed,
                                reason,
                            });
                            ct.failed_attempts += 1;
                        }
                        if rng.chance(0.3) {
                            break None; // given up for now
                        }
                        day += rng.range(7, 14) as Day;
                        continue;
                    }
                    break Some(day);
                };
                let Some(day) = migrated else {
                    ct.not_migrated_at_end += p.len();
                    continue;
                };
                let ts = at(&mut rng, day, 8, 18);
                let commissioned = rng
                    .chance(0.92)
                    .then(|| day + rng.range(1, 10) as Day)
                    .filter(|&c| c < end);
                let cts = commissioned.map(|c| at(&mut rng, c, 7, 20));
                for &d in p {
                    fleet.devices[d as usize].installed = day;
                    events.push(MigrationEvent {
                        ts,
                        device: d,
                        step: MigrationStep::Migrated,
                        reason: "",
                    });
                    ct.migrated_in_period += 1;
                    match cts {
                        Some(t) => {
                            events.push(MigrationEvent {
                                ts: t,
                                device: d,
                                step: MigrationStep::Commissioned,
                                reason: "",
                            });
                            ct.commissioned_in_period += 1;
                        }
                        None => ct.backlog_at_end += 1,
                    }
                }
            }
        }
        for p in next {
            for &d in p {
                fleet.devices[d as usize].installed = NOT_MIGRATED;
            }
            ct.not_migrated_at_end += p.len();
        }
        truth.cohorts.push(ct);
    }
    events.sort_by_key(|e| (e.ts, e.device, e.step as u8));
    // Three weekdays after the first week whose report never arrives.
    let mut missing: Vec<Day> = Vec::new();
    let candidates: Vec<Day> = (start + 7..end).filter(|&d| weekday(d) < 5).collect();
    while missing.len() < 3.min(candidates.len()) {
        let d = candidates[rng.below(candidates.len() as u64) as usize];
        if !missing.contains(&d) {
            missing.push(d);
        }
    }
    missing.sort_unstable();
    truth.events_on_missing_days = events
        .iter()
        .filter(|e| missing.contains(&day_of(e.ts)))
        .count();
    truth.log_rows = events.len() - truth.events_on_missing_days;
    truth.missing_report_days = missing.iter().map(|&d| format_day(d)).collect();
    MigrationPlan {
        events,
        missing_days: missing,
        truth,
    }
}
