//! Aggregates of judged devices: the funnel per campaign x region x model x source version,
//! failures as a Pareto, time to upgrade, the devices that cannot be upgraded remotely, and
//! the cumulative upgrades per region and day. Every figure counts devices.

use super::device::{DeviceOutcome, Status};
use crate::model::firmware::Stage;
use crate::model::time::day_of;
use crate::model::{Day, Interner, Region};
use std::collections::BTreeMap;

/// Where a device sits in the breakdowns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cohort {
    pub campaign: u16,
    pub region: Region,
    /// Model name index (in the analysis' model interner).
    pub model: u16,
    /// Source version index (in the campaign's version interner).
    pub source: u16,
}

/// One targeted device, judged, and where it sits.
#[derive(Clone, Debug)]
pub struct JudgedDevice {
    pub id: u64,
    pub cohort: Cohort,
    pub outcome: DeviceOutcome,
}

/// A model's name when neither the campaign nor the inventory gives one. Guard rails group
/// models by name, so this is where a nameless model sorts among them.
pub const UNKNOWN_MODEL: &str = "(unknown)";

/// A model's name (`Cohort::model`), `UNKNOWN_MODEL` when it has none.
pub fn model_name(models: &Interner, m: u16) -> &str {
    match models.name(m) {
        "" => UNKNOWN_MODEL,
        s => s,
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Funnel {
    pub targeted: u64,
    pub delivered: u64,
    pub transferred: u64,
    pub verified: u64,
    pub activated: u64,
    pub running: u64,
    pub failed: u64,
    pub in_progress: u64,
    pub never_heard_from: u64,
    pub not_started: u64,
}

impl Funnel {
    pub fn add(&mut self, o: &DeviceOutcome) {
        self.targeted += 1;
        let r = |s: Stage| u64::from(o.reached[s as usize]);
        self.delivered += r(Stage::Distribution);
        self.transferred += r(Stage::Transfer);
        self.verified += r(Stage::Verification);
        self.activated += r(Stage::Activation);
        self.running += u64::from(o.status == Status::Upgraded);
        match o.status {
            Status::Upgraded => {}
            Status::Failed => self.failed += 1,
            Status::InProgress => self.in_progress += 1,
            Status::NeverHeardFrom => self.never_heard_from += 1,
            Status::NotStarted => self.not_started += 1,
        }
    }

    pub fn merge(&mut self, o: &Funnel) {
        self.targeted += o.targeted;
        self.delivered += o.delivered;
        self.transferred += o.transferred;
        self.verified += o.verified;
        self.activated += o.activated;
        self.running += o.running;
        self.failed += o.failed;
        self.in_progress += o.in_progress;
        self.never_heard_from += o.never_heard_from;
        self.not_started += o.not_started;
    }
}

/// A failure kind for the Pareto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FailureKey {
    pub stage: Stage,
    pub reason: u16,
    pub model: u16,
    pub region: Region,
}

/// Everything aggregated.
#[derive(Debug, Default)]
pub struct Aggregate {
    pub funnel: BTreeMap<Cohort, Funnel>,
    /// Devices affected per failure kind (a device failing the same way twice counts once).
    pub failures: BTreeMap<FailureKey, u64>,
    /// Per campaign: hours from first event to running the target version, sorted.
    pub hours_to_upgrade: BTreeMap<u16, Vec<f64>>,
    /// Per region: devices that started running the target version each day.
    pub upgrades_per_day: BTreeMap<Region, BTreeMap<Day, u64>>,
}

impl Aggregate {
    pub fn add(&mut self, c: Cohort, o: &DeviceOutcome) {
        self.funnel.entry(c).or_default().add(o);
        for &(stage, reason) in &o.failures {
            let k = FailureKey {
                stage,
                reason,
                model: c.model,
                region: c.region,
            };
            *self.failures.entry(k).or_default() += 1;
        }
        if let (Some(up), Some(first)) = (o.upgraded_at, o.first_seen) {
            self.hours_to_upgrade
                .entry(c.campaign)
                .or_default()
                .push((up - first) as f64 / 3_600_000.0);
            *self
                .upgrades_per_day
                .entry(c.region)
                .or_default()
                .entry(day_of(up))
                .or_default() += 1;
        }
    }

    /// Sorts the samples (call once, after the last `add`).
    pub fn finish(&mut self) {
        for v in self.hours_to_upgrade.values_mut() {
            v.sort_by(f64::total_cmp);
        }
    }

    /// The failure kinds, most devices first (ties in key order), each with the share of all
    /// failures it and the kinds before it account for.
    pub fn failure_pareto(&self) -> Vec<(FailureKey, u64, f64)> {
        let mut fl: Vec<(FailureKey, u64)> = self.failures.iter().map(|(k, n)| (*k, *n)).collect();
        fl.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: u64 = fl.iter().map(|x| x.1).sum();
        let mut cum = 0;
        fl.into_iter()
            .map(|(k, n)| {
                cum += n;
                (k, n, cum as f64 / total.max(1) as f64)
            })
            .collect()
    }

    /// The funnel summed over every cohort of a campaign.
    pub fn campaign_total(&self, campaign: u16) -> Funnel {
        let mut t = Funnel::default();
        for (_, f) in self.funnel.iter().filter(|(c, _)| c.campaign == campaign) {
            t.merge(f);
        }
        t
    }
}

/// Whether a device likely cannot be upgraded remotely: not upgraded, and it failed with a
/// hardware mismatch or failed `max_failures` attempts or more.
pub fn cannot_upgrade(
    o: &DeviceOutcome,
    hardware: impl Fn(u16) -> bool,
    max_failures: u32,
) -> bool {
    o.status != Status::Upgraded
        && (o.failures.iter().any(|&(_, r)| hardware(r))
            || o.failed_attempts >= max_failures.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::ota::device::judge;
    use crate::analyze::ota::events::FwEvent;
    use crate::analyze::stats::percentile;

    fn ev(h: i64, stage: Stage, ok: bool, attempt: u8, reason: u16) -> FwEvent {
        FwEvent {
            ts: h * 3_600_000,
            stage,
            ok,
            reason,
            version: if stage == Stage::Running { 1 } else { 0 },
            attempt,
            from_alert: false,
        }
    }

    #[test]
    fn funnel_counts_devices_and_failed_plus_upgraded_never_exceeds_targeted() {
        let cohort = Cohort {
            campaign: 0,
            region: Region::North,
            model: 1,
            source: 1,
        };
        let full = |a: u8, from: i64| -> Vec<FwEvent> {
            Stage::ALL
                .iter()
                .enumerate()
                .map(|(i, &s)| ev(from + i as i64, s, true, a, 0))
                .collect()
        };
        let mut devices = [
            full(1, 0),                                                        // clean
            [vec![ev(0, Stage::Transfer, false, 1, 2)], full(2, 48)].concat(), // retry, success
            vec![
                ev(0, Stage::Distribution, true, 1, 0),
                ev(1, Stage::Transfer, false, 1, 2),
                ev(80, Stage::Transfer, false, 2, 2),
            ],
            vec![ev(0, Stage::Distribution, true, 1, 0)], // never heard from
            vec![],                                       // not started
        ];
        let mut agg = Aggregate::default();
        for d in devices.iter_mut() {
            agg.add(cohort, &judge(d, 1));
        }
        agg.finish();
        let f = agg.funnel[&cohort];
        assert_eq!(
            f,
            Funnel {
                targeted: 5,
                delivered: 3 + 1,
                transferred: 2,
                verified: 2,
                activated: 2,
                running: 2,
                failed: 1,
                in_progress: 0,
                never_heard_from: 1,
                not_started: 1,
            }
        );
        assert!(f.failed + f.running <= f.targeted);
        // Transfer failures with reason 2: the retried device and the failing one, once each.
        let k = FailureKey {
            stage: Stage::Transfer,
            reason: 2,
            model: 1,
            region: Region::North,
        };
        assert_eq!(agg.failures[&k], 2);
        // Hours to upgrade: 4 (clean) and 52 (48 + 4 after the first event at hour 0).
        assert_eq!(agg.hours_to_upgrade[&0], vec![4.0, 52.0]);
        assert_eq!(percentile(&agg.hours_to_upgrade[&0], 0.5), Some(4.0));
        assert_eq!(percentile(&agg.hours_to_upgrade[&0], 0.9), Some(52.0));
    }

    #[test]
    fn failure_pareto_sorts_by_devices_and_accumulates_shares() {
        let key = |reason: u16| FailureKey {
            stage: Stage::Transfer,
            reason,
            model: 1,
            region: Region::North,
        };
        let mut agg = Aggregate::default();
        agg.failures.insert(key(1), 1);
        agg.failures.insert(key(2), 3);
        agg.failures.insert(key(3), 1);
        let p = agg.failure_pareto();
        assert_eq!(
            p,
            vec![(key(2), 3, 0.6), (key(1), 1, 0.8), (key(3), 1, 1.0)]
        );
        assert!(Aggregate::default().failure_pareto().is_empty());
    }

    #[test]
    fn a_device_past_its_failure_is_not_failed_and_its_failure_stays_in_the_pareto() {
        let cohort = Cohort {
            campaign: 0,
            region: Region::South,
            model: 1,
            source: 1,
        };
        // Alerts only: a transfer failure, then transfer and verification succeed and an
        // 8F43 without a version follows; beside it a device whose transfer failed for good.
        let alert = |h: i64, stage: Stage, ok: bool| FwEvent {
            attempt: 0,
            from_alert: true,
            version: 0,
            ..ev(h, stage, ok, 0, u16::from(!ok) * 4)
        };
        let mut agg = Aggregate::default();
        let mut retried = vec![
            alert(0, Stage::Transfer, false),
            alert(5, Stage::Transfer, true),
            alert(6, Stage::Verification, true),
            alert(24, Stage::Running, true),
        ];
        agg.add(cohort, &judge(&mut retried, 1));
        agg.add(
            cohort,
            &judge(&mut vec![alert(0, Stage::Transfer, false)], 1),
        );
        let f = agg.funnel[&cohort];
        assert_eq!((f.failed, f.in_progress, f.activated), (1, 1, 1));
        let p = agg.failure_pareto();
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].0.stage, p[0].0.reason, p[0].1),
            (Stage::Transfer, 4, 2)
        );
    }

    #[test]
    fn cannot_upgrade_rules() {
        let mut twice = vec![
            ev(1, Stage::Transfer, false, 1, 5),
            ev(90, Stage::Transfer, false, 2, 5),
        ];
        let o = judge(&mut twice, 1);
        assert!(cannot_upgrade(&o, |r| r == 5, 3), "hardware mismatch");
        assert!(
            !cannot_upgrade(&o, |_| false, 3),
            "two failures of three allowed"
        );
        assert!(cannot_upgrade(&o, |_| false, 2));
    }
}
