//! Guard rails: stop a rollout in a region or model whose failure rate is too high, without
//! stopping it for a handful of early failures in a small group.
//!
//! A device "finishes" a first attempt on the day of its first failure (a failure) or of its
//! first activation or upgrade (a success). Day by day, per group, the failure rate among
//! finished devices is bounded below by the Wilson score interval (95%); the guard rail trips
//! on the first day that lower bound exceeds the threshold, once at least `min_devices` have
//! finished (the bound alone lets a single early failure trip a 20% rail: 1 of 1 gives 0.21). Replaying a finished campaign this
//! way shows the day each guard rail would have stopped it.

use super::device::DeviceOutcome;
use super::funnel::{JudgedDevice, model_name};
use crate::analyze::stats::wilson_lower;
use crate::model::time::day_of;
use crate::model::{Day, Interner};
use std::collections::BTreeMap;

/// One group's replay.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardResult {
    pub finished: u64,
    pub failed: u64,
    pub lower_bound: f64,
    /// The first day the bound crossed the threshold, with the counts then.
    pub tripped: Option<(Day, u64, u64)>,
}

impl GuardResult {
    /// The failure rate of the finished devices (0 when none finished).
    pub fn failure_rate(&self) -> f64 {
        self.failed as f64 / self.finished.max(1) as f64
    }
}

/// The day a device finished its first attempt, and whether that attempt failed: its first
/// failure or its first activation (or upgrade), whichever came first.
pub fn first_finish(o: &DeviceOutcome) -> Option<(Day, bool)> {
    match (o.first_failure_at, o.first_activated_at) {
        (Some(f), Some(a)) if a < f => Some((day_of(a), false)),
        (Some(f), _) => Some((day_of(f), true)),
        (None, Some(a)) => Some((day_of(a), false)),
        (None, None) => None,
    }
}

/// Which breakdown a guard rail watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardGroup {
    Region,
    Model,
}

impl GuardGroup {
    pub fn name(self) -> &'static str {
        match self {
            GuardGroup::Region => "region",
            GuardGroup::Model => "model",
        }
    }
}

/// One guard rail's replay: a region or a model (by name).
#[derive(Clone, Debug)]
pub struct GuardRow {
    pub group: GuardGroup,
    pub value: String,
    pub result: GuardResult,
}

/// Replays one group: `finishes` is (day, failed) per finished device, in any order.
pub fn replay(finishes: &mut [(Day, bool)], threshold: f64, min_devices: u64) -> GuardResult {
    finishes.sort();
    let (mut n, mut f) = (0u64, 0u64);
    let mut tripped = None;
    let mut i = 0;
    while i < finishes.len() {
        let day = finishes[i].0;
        while i < finishes.len() && finishes[i].0 == day {
            n += 1;
            f += u64::from(finishes[i].1);
            i += 1;
        }
        if tripped.is_none() && n >= min_devices && wilson_lower(f, n, 1.96) > threshold {
            tripped = Some((day, n, f));
        }
    }
    GuardResult {
        finished: n,
        failed: f,
        lower_bound: wilson_lower(f, n, 1.96),
        tripped,
    }
}

/// Replays every group of a breakdown.
pub fn replay_all<K: Ord + Clone>(
    groups: BTreeMap<K, Vec<(Day, bool)>>,
    threshold: f64,
    min_devices: u64,
) -> Vec<(K, GuardResult)> {
    groups
        .into_iter()
        .map(|(k, mut v)| (k, replay(&mut v, threshold, min_devices)))
        .collect()
}

/// The guard rails replayed per region, then per model (each by name).
pub fn guard_rails(
    judged: &[JudgedDevice],
    models: &Interner,
    threshold: f64,
    min_devices: u64,
) -> Vec<GuardRow> {
    let mut per_region: BTreeMap<String, Vec<(Day, bool)>> = BTreeMap::new();
    let mut per_model: BTreeMap<String, Vec<(Day, bool)>> = BTreeMap::new();
    for j in judged {
        if let Some(f) = first_finish(&j.outcome) {
            per_region
                .entry(j.cohort.region.name().to_string())
                .or_default()
                .push(f);
            per_model
                .entry(model_name(models, j.cohort.model).to_string())
                .or_default()
                .push(f);
        }
    }
    let mut rows = Vec::new();
    for (group, groups) in [
        (GuardGroup::Region, per_region),
        (GuardGroup::Model, per_model),
    ] {
        for (value, result) in replay_all(groups, threshold, min_devices) {
            rows.push(GuardRow {
                group,
                value,
                result,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handful_of_early_failures_does_not_trip_but_a_bad_group_does() {
        // Day 0: 2 of 3 fail (lower bound ~0.21 < 0.3); then 100 successes: never trips.
        let mut small: Vec<(Day, bool)> = vec![(0, true), (0, true), (0, false)];
        small.extend((0..100).map(|_| (1, false)));
        let r = replay(&mut small, 0.3, 1);
        assert_eq!(r.tripped, None);
        assert_eq!((r.finished, r.failed), (103, 2));
        // Every device fails, 3 a day: 3 of 3 gives 0.44 > 0.3 on the first day.
        let mut bad: Vec<(Day, bool)> = (0..5).flat_map(|d| [(d, true); 3]).collect();
        let r = replay(&mut bad, 0.3, 1);
        assert_eq!(r.tripped, Some((0, 3, 3)));
        // A minimum sample holds it until 9 devices have finished (day 2).
        assert_eq!(replay(&mut bad, 0.3, 9).tripped, Some((2, 9, 9)));
        // One failure of one clears a 20% bar on the bound alone: the minimum stops that.
        let mut one = vec![(0, true)];
        assert!(replay(&mut one, 0.2, 1).tripped.is_some());
        assert!(replay(&mut one, 0.2, 30).tripped.is_none());
        // A higher bar (0.6) takes more evidence: 6 of 6 (lower 0.61; 3 of 3 gives 0.44).
        let r = replay(&mut bad, 0.6, 1);
        assert_eq!(r.tripped.map(|t| t.0), Some(1));
    }

    #[test]
    fn the_first_attempt_ends_at_the_earlier_of_failure_and_activation() {
        use crate::analyze::ota::device::judge;
        use crate::analyze::ota::events::FwEvent;
        use crate::model::firmware::Stage;
        let day = 86_400_000;
        let ev = |ts: i64, stage: Stage, ok: bool| FwEvent {
            ts,
            stage,
            ok,
            reason: 0,
            version: 0,
            attempt: 0,
            from_alert: false,
        };
        let mut failed_first = vec![
            ev(day, Stage::Transfer, false),
            ev(3 * day, Stage::Activation, true),
        ];
        assert_eq!(first_finish(&judge(&mut failed_first, 1)), Some((1, true)));
        let mut activated_first = vec![
            ev(2 * day, Stage::Activation, true),
            ev(5 * day, Stage::Transfer, false),
        ];
        assert_eq!(
            first_finish(&judge(&mut activated_first, 1)),
            Some((2, false))
        );
        assert_eq!(first_finish(&judge(&mut vec![], 1)), None);
        let g = GuardResult {
            finished: 4,
            failed: 1,
            lower_bound: 0.0,
            tripped: None,
        };
        assert_eq!(g.failure_rate(), 0.25);
    }
}
