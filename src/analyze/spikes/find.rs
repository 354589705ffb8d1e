//! Finding spikes in the alerts: the days on which a group's alert rate rose well above its
//! own baseline, ranked by excess alerts, each explained by its cohorts.
//!
//! One fold serves both steps: it is taken by day, the group dimensions and the cohort
//! dimensions together, so the groups' daily series are its roll-up and a flagged day is
//! explained from the same rows, with no second read of the inputs.

use super::explain::{COHORTS, CohortShare, Context, cohorts, verdict};
use super::{DailySeries, DayCheck, SpikeParams, check};
use crate::analyze::alerts::{AlertQuery, AlertReport, AlertRow, Dim, GroupKey, denom_dims};
use crate::analyze::labels::Labels;
use crate::analyze::reader::Reader;
use crate::inventory::{Denominators, Inventory};
use crate::model::Day;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// One flagged day of one group.
pub struct Spike {
    pub group: GroupKey,
    pub check: DayCheck,
    pub installed: Option<u64>,
    pub cohorts: Vec<CohortShare>,
    pub verdict: String,
}

/// Everything found: the groups' series and the flagged days, ranked by excess.
pub struct Found {
    pub series: Vec<(GroupKey, DailySeries)>,
    pub spikes: Vec<Spike>,
    pub judged: usize,
    pub flagged_groups: usize,
}

/// The fold behind spikes: by day, the group dimensions and the cohort dimensions.
pub fn fold(reader: &dyn Reader, labels: &Arc<Labels>, by: &[Dim]) -> AlertReport {
    let mut dims = vec![Dim::Day];
    for &d in by.iter().chain(COHORTS.iter().flat_map(|c| c.1.iter())) {
        if !dims.contains(&d) {
            dims.push(d);
        }
    }
    let query = AlertQuery {
        by: dims,
        distinct: false,
        labels: labels.clone(),
        ..Default::default()
    };
    reader.answer_one(query).report
}

/// Rolls the fold up to the groups' daily series, judges them and explains the flagged days.
/// The installed bases count the devices of the report's selection only.
pub fn find(report: &AlertReport, inv: &Inventory, by: &[Dim], p: &SpikeParams) -> Found {
    let Some((first, last)) = report.period else {
        return Found {
            series: Vec::new(),
            spikes: Vec::new(),
            judged: 0,
            flagged_groups: 0,
        };
    };
    let devices = &report.scope.devices;
    let days = (last - first + 1) as usize;
    let denoms = Denominators::build_filtered(inv, denom_dims(by), devices);
    let mut groups: FxHashMap<GroupKey, (DailySeries, Vec<&AlertRow>)> = FxHashMap::default();
    for row in &report.rows {
        let Some(day) = row.key.day else { continue };
        let g = row.key.project(by);
        let (s, rows) = groups
            .entry(g)
            .or_insert_with(|| (DailySeries::new(first, days), Vec::new()));
        s.counts[(day - first) as usize] += row.alerts as f64;
        rows.push(row);
    }
    let mut series: Vec<(GroupKey, DailySeries, Vec<&AlertRow>)> = groups
        .into_iter()
        .map(|(g, (mut s, rows))| {
            let dk = g.denom_key();
            for (i, slot) in s.installed.iter_mut().enumerate() {
                *slot = denoms.installed(&dk, first + i as Day);
            }
            (g, s, rows)
        })
        .collect();
    series.sort_by_key(|x| x.0);
    // The installed base per group x cohort, built at the first flagged day (a pass over the
    // inventory per cohort dimension: not worth it when nothing is flagged).
    let mut cohort_denoms: Option<Vec<Denominators>> = None;
    let mut spikes = Vec::new();
    let mut judged = 0;
    let mut flagged_groups = 0;
    for (g, s, rows) in &series {
        let checks = check(s, p);
        judged += checks.len();
        let before = spikes.len();
        for c in checks.into_iter().filter(|c| c.flagged) {
            let t = (c.day - first) as usize;
            let cohort_denoms = cohort_denoms.get_or_insert_with(|| {
                COHORTS
                    .iter()
                    .map(|(_, dims)| {
                        let all: Vec<Dim> = by.iter().chain(dims.iter()).copied().collect();
                        Denominators::build_filtered(inv, denom_dims(&all), devices)
                    })
                    .collect()
            });
            let at = Context {
                by,
                first,
                window: p.window,
                installed: s.installed[t],
                cohort_denoms,
                inv,
            };
            let cohorts = cohorts(&c, rows, &at);
            let verdict = verdict(&cohorts);
            spikes.push(Spike {
                group: *g,
                check: c,
                installed: s.installed[t],
                cohorts,
                verdict,
            });
        }
        flagged_groups += usize::from(spikes.len() > before);
    }
    spikes.sort_by(|a, b| {
        b.check
            .excess()
            .total_cmp(&a.check.excess())
            .then(a.group.cmp(&b.group))
            .then(a.check.day.cmp(&b.check.day))
    });
    Found {
        series: series.into_iter().map(|(g, s, _)| (g, s)).collect(),
        spikes,
        judged,
        flagged_groups,
    }
}
