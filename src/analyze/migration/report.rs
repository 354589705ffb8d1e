//! A migration report: the logs read and analysed week by week (`weekly.rs`), with what the
//! summary states about each cohort, and, given the alert inputs, each cohort's alert rate
//! before and after its devices migrated.
//!
//! The decision a reader would not guess: the alert rates count the device-days of the
//! devices the log shows migrated, from the first to the last day of the alerts and the log
//! together, whatever the user's device filters (the alerts follow them, these devices do
//! not); a device's migration day belongs to neither side.

use super::log::{Log, MigrationEvent, Migrations};
use super::outlook::Outlook;
use super::weekly::{Analysis, PaceParams, analyse};
use crate::analyze::alerts::{AlertQuery, AlertReport};
use crate::analyze::change::{AFTER, BEFORE, ChangeSplit};
use crate::analyze::reader::Reader;
use crate::model::Interner;
use crate::model::time::day_of;
use crate::source::{Input, InputError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything the migration analysis found.
#[derive(Debug)]
pub struct MigrationReport {
    pub log: Log,
    pub analysis: Analysis,
    /// Whether the inventory gave the migrations before the log (and so the remaining devices).
    pub with_inventory: bool,
    /// Per cohort, when the alert inputs were read.
    pub alert_rates: Option<Vec<CohortRates>>,
}

/// Reads the logs in order; the rejects of `logs[i]` point at source `first_source + i`.
pub fn read_logs(logs: &[Input], first_source: usize) -> Result<Log, InputError> {
    let mut log = Log::default();
    for (i, input) in logs.iter().enumerate() {
        log.read(input, first_source + i)?;
    }
    Ok(log)
}

/// A cohort size that is not `COHORT=DEVICES`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CohortSizeError {
    #[error("`{0}`: write COHORT=DEVICES, e.g. FOC=3132")]
    Form(String),
    #[error("`{given}`: `{number}` is not a number")]
    Number { given: String, number: String },
}

/// `FOC=3132` -> the cohort's canonical name and its devices.
pub fn parse_cohort_size(s: &str) -> Result<(String, u64), CohortSizeError> {
    let Some((name, n)) = s.split_once('=') else {
        return Err(CohortSizeError::Form(s.to_string()));
    };
    let n: u64 = n.trim().parse().map_err(|_| CohortSizeError::Number {
        given: s.to_string(),
        number: n.to_string(),
    })?;
    Ok((super::cohort_name(name), n))
}

/// Cohort sizes by cohort id (a cohort the log does not name is added to `cohorts`).
pub fn cohort_sizes(
    sizes: &[String],
    cohorts: &mut Interner,
) -> Result<BTreeMap<u16, u64>, CohortSizeError> {
    let mut out = BTreeMap::new();
    for s in sizes {
        let (name, n) = parse_cohort_size(s)?;
        out.insert(cohorts.id(&name), n);
    }
    Ok(out)
}

impl MigrationReport {
    /// Analyses a log; `migrations` (from the inventory) gives the migrations before it.
    pub fn analyse(
        log: Log,
        migrations: Option<&Migrations>,
        sizes: &BTreeMap<u16, u64>,
        params: &PaceParams,
    ) -> MigrationReport {
        let analysis = analyse(&log, migrations, sizes, params);
        MigrationReport {
            log,
            analysis,
            with_inventory: migrations.is_some(),
            alert_rates: None,
        }
    }
}

/// Where a cohort stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CohortStatus {
    Stalled,
    /// No device left, or at most 1% of the cohort.
    Complete,
    Migrating,
}

impl CohortStatus {
    pub fn of(o: &Outlook) -> CohortStatus {
        if o.stalled {
            CohortStatus::Stalled
        } else if o.remaining == Some(0)
            || o.remaining
                .is_some_and(|r| o.size.is_some_and(|s| r as f64 <= 0.01 * s as f64))
        {
            CohortStatus::Complete
        } else {
            CohortStatus::Migrating
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CohortStatus::Stalled => "stalled",
            CohortStatus::Complete => "complete",
            CohortStatus::Migrating => "migrating",
        }
    }
}

/// A cohort at the end of the log, as the summary states it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    pub cohort: u16,
    pub migrated: u64,
    pub commissioned: u64,
    pub backlog: u64,
    /// Missing report days the backlog carries, and the devices they are estimated to add.
    pub backlog_missing_days: u32,
    pub backlog_excess: f64,
    /// Failed attempts over the whole log.
    pub failed: u64,
}

/// Every cohort with a week, from its last week.
pub fn standings(a: &Analysis) -> Vec<Standing> {
    a.cohorts
        .iter()
        .filter_map(|(&cohort, weeks)| {
            let w = weeks.last()?;
            Some(Standing {
                cohort,
                migrated: w.cum_migrated,
                commissioned: w.cum_commissioned,
                backlog: w.backlog,
                backlog_missing_days: w.backlog_missing_days,
                backlog_excess: w.backlog_excess,
                failed: weeks.iter().map(|w| w.failed).sum(),
            })
        })
        .collect()
}

/// One cohort's alerts and device-days before and after its devices' migration days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CohortRates {
    pub cohort: u16,
    pub devices: usize,
    pub alerts_before: u64,
    pub device_days_before: u64,
    pub alerts_after: u64,
    pub device_days_after: u64,
}

impl CohortRates {
    pub fn per_1000_before(&self) -> Option<f64> {
        per_1000(self.alerts_before, self.device_days_before)
    }

    pub fn per_1000_after(&self) -> Option<f64> {
        per_1000(self.alerts_after, self.device_days_after)
    }
}

/// Alerts per 1,000 device-days; `None` with no alert or no device-day (SMETS1 meters join
/// the DCC's alert traffic when they migrate, so "before" is usually empty).
fn per_1000(alerts: u64, days: u64) -> Option<f64> {
    (alerts != 0 && days != 0).then(|| alerts as f64 * 1000.0 / days as f64)
}

/// Each cohort's alert rates (devices migrated in the log), from one read of the alerts;
/// returns them with the first query's report (the read's totals and rejects).
pub fn alert_rates(m: &MigrationReport, reader: &dyn Reader) -> (Vec<CohortRates>, AlertReport) {
    let a = &m.analysis;
    let mut per_cohort: BTreeMap<u16, ChangeSplit> = BTreeMap::new();
    for r in m
        .log
        .rows
        .iter()
        .filter(|r| r.event == MigrationEvent::Migrated)
    {
        let e = per_cohort
            .entry(r.cohort)
            .or_default()
            .changed
            .entry(r.device)
            .or_insert(Some(day_of(r.ts)));
        *e = (*e).min(Some(day_of(r.ts)));
    }
    let cohorts: Vec<(u16, Arc<ChangeSplit>)> = per_cohort
        .into_iter()
        .map(|(c, s)| (c, Arc::new(s)))
        .collect();
    let mut queries: Vec<AlertQuery> = cohorts
        .iter()
        .map(|(_, s)| AlertQuery {
            by: vec![],
            distinct: false,
            split: Some(s.clone()),
            ..Default::default()
        })
        .collect();
    if queries.is_empty() {
        // Still read the alerts once, so that their totals and rejects are reported.
        queries.push(AlertQuery {
            by: vec![],
            distinct: false,
            ..Default::default()
        });
    }
    let reports: Vec<AlertReport> = reader
        .answer(&queries)
        .into_iter()
        .map(|a| a.report)
        .collect();
    let (first, last) = reports
        .first()
        .and_then(|r| r.period)
        .map_or((a.first_day, a.last_day), |(f, l)| {
            (f.min(a.first_day), l.max(a.last_day))
        });
    let mut rates = Vec::new();
    for ((c, split), r) in cohorts.iter().zip(&reports) {
        let alerts = |class: u8| -> u64 {
            r.rows
                .iter()
                .filter(|x| x.key.class == Some(class))
                .map(|x| x.alerts)
                .sum()
        };
        let (mut before, mut after) = (0u64, 0u64);
        for day in split.changed.values().flatten() {
            before += (day - first).max(0) as u64;
            after += (last - day).max(0) as u64;
        }
        rates.push(CohortRates {
            cohort: *c,
            devices: split.changed.len(),
            alerts_before: alerts(BEFORE),
            device_days_before: before,
            alerts_after: alerts(AFTER),
            device_days_after: after,
        });
    }
    let first_report = reports
        .into_iter()
        .next()
        .unwrap_or_else(AlertReport::empty);
    (rates, first_report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::migration::weekly::Week;

    #[test]
    fn cohort_sizes_parse_and_intern() {
        assert_eq!(
            parse_cohort_size("moc_secure= 50"),
            Ok(("MOC Secure".into(), 50))
        );
        assert_eq!(
            parse_cohort_size("FOC").unwrap_err().to_string(),
            "`FOC`: write COHORT=DEVICES, e.g. FOC=3132"
        );
        assert_eq!(
            parse_cohort_size("FOC=x").unwrap_err().to_string(),
            "`FOC=x`: `x` is not a number"
        );
        let mut cohorts = Interner::default();
        let sizes = cohort_sizes(&["Pilot=3".into()], &mut cohorts).unwrap();
        assert_eq!(sizes[&cohorts.get("Pilot").unwrap()], 3);
    }

    #[test]
    fn statuses_standings_and_rates() {
        let outlook = |remaining: Option<u64>, stalled: bool| Outlook {
            cohort: 1,
            size: Some(1000),
            size_from: crate::analyze::migration::outlook::SizeFrom::Given,
            migrated: 0,
            remaining,
            pace: None,
            pace_since: None,
            peak_pace: 0.0,
            stalled,
            finish: None,
            finish_low: None,
            finish_high: None,
        };
        assert_eq!(
            CohortStatus::of(&outlook(Some(5), true)),
            CohortStatus::Stalled
        );
        assert_eq!(
            CohortStatus::of(&outlook(Some(10), false)),
            CohortStatus::Complete
        );
        assert_eq!(
            CohortStatus::of(&outlook(Some(11), false)),
            CohortStatus::Migrating
        );
        assert_eq!(
            CohortStatus::of(&outlook(None, false)),
            CohortStatus::Migrating
        );
        let mut a = Analysis::default();
        let week = |failed: u64, cum: u64| Week {
            failed,
            cum_migrated: cum,
            ..Default::default()
        };
        a.cohorts.insert(2, vec![week(1, 5), week(2, 9)]);
        a.cohorts.insert(3, vec![]);
        let s = standings(&a);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].cohort, s[0].migrated, s[0].failed), (2, 9, 3));
        let r = CohortRates {
            cohort: 2,
            devices: 1,
            alerts_before: 0,
            device_days_before: 10,
            alerts_after: 3,
            device_days_after: 1000,
        };
        assert_eq!((r.per_1000_before(), r.per_1000_after()), (None, Some(3.0)));
    }
}
