//! Did the firmware help? A difference in differences per alert code.
//!
//! Targeted devices fall in three classes each day: already upgraded (after), upgraded later
//! (before), never upgraded. For each code:
//! - A: the rate of upgraded devices after their upgrade, B: their rate before it;
//! - the control rate on each day is that of the devices of the same model not upgraded by
//!   then (before plus never), and C_after / C_before are its averages weighted by the
//!   device-days of A and B, so the control is read on the same calendar days and for the
//!   same models as the treated devices. (Without the model strata the control drifts as
//!   the rollout goes on: it ends up made of the models that could not take the image.)
//!
//! The effect is (A - B) - (C_after - C_before) per 1,000 device-days, and as a ratio
//! (A / B) / (C_after / C_before) - 1: how much more the code changed on upgraded devices
//! than it changed anyway. The upgrade day itself belongs to neither side.
//!
//! `firmware_effect` asks the reader for a second read, grouped by day, code and model and
//! split by upgrade day (the first read, the evidence, is what tells the upgrade days). The
//! firmware codes themselves are left out of the table: they follow the rollout by design.

use crate::analyze::alerts::{AlertQuery, AlertReport, CodeFilter, Dim};
use crate::analyze::change::{AFTER, BEFORE, ChangeSplit, NEVER, class_of};
use crate::analyze::reader::Reader;
use crate::model::firmware::Stage;
use crate::model::{AlertCode, Day, DeviceId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Codes with fewer alerts on upgraded devices (before and after) than this are left out.
pub const MIN_ALERTS: u64 = 30;

/// The comparison for one code.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Effect {
    pub code: AlertCode,
    pub alerts_after: u64,
    pub alerts_before: u64,
    /// Rates per 1,000 device-days.
    pub a: f64,
    pub b: f64,
    pub c_after: f64,
    pub c_before: f64,
}

impl Effect {
    pub fn difference(&self) -> f64 {
        (self.a - self.b) - (self.c_after - self.c_before)
    }

    /// The relative change beyond the control's, or `None` when a rate is zero.
    pub fn ratio(&self) -> Option<f64> {
        (self.b > 0.0 && self.c_after > 0.0 && self.c_before > 0.0)
            .then(|| (self.a / self.b) / (self.c_after / self.c_before) - 1.0)
    }
}

/// Device-days per model stratum, day and class over `[first, last]`: every targeted device
/// counts from its install day (or throughout), in the class it is in that day.
pub fn device_days(
    split: &ChangeSplit,
    stratum: impl Fn(u64) -> (u16, Option<Day>),
    first: Day,
    last: Day,
) -> BTreeMap<(u16, Day), [u64; 4]> {
    let mut out: BTreeMap<(u16, Day), [u64; 4]> = BTreeMap::new();
    for (&dev, up) in &split.changed {
        let (model, installed) = stratum(dev);
        let from = installed.map_or(first, |i| i.max(first));
        for d in from..=last {
            let class = class_of(*up, d);
            out.entry((model, d)).or_default()[class as usize] += 1;
        }
    }
    out
}

/// The effect per code from a fold grouped by day, code and model with the upgrade split.
pub fn effects(report: &AlertReport, days: &BTreeMap<(u16, Day), [u64; 4]>) -> Vec<Effect> {
    let mut per: BTreeMap<AlertCode, BTreeMap<(u16, Day), [u64; 4]>> = BTreeMap::new();
    for r in &report.rows {
        let (Some(code), Some(day), Some(class)) = (r.key.code, r.key.day, r.key.class) else {
            continue;
        };
        let model = r.key.model.unwrap_or(0);
        per.entry(code)
            .or_default()
            .entry((model, day))
            .or_default()[class as usize] += r.alerts;
    }
    let mut out = Vec::new();
    for (code, by_day) in per {
        let (mut aa, mut ab, mut na, mut nb) = (0u64, 0u64, 0u64, 0u64);
        let (mut ca, mut cb) = (0.0, 0.0);
        for (key, n) in days {
            let alerts = by_day.get(key).copied().unwrap_or([0; 4]);
            aa += alerts[AFTER as usize];
            ab += alerts[BEFORE as usize];
            na += n[AFTER as usize];
            nb += n[BEFORE as usize];
            let control_n = n[BEFORE as usize] + n[NEVER as usize];
            if control_n > 0 {
                let rc =
                    (alerts[BEFORE as usize] + alerts[NEVER as usize]) as f64 / control_n as f64;
                ca += n[AFTER as usize] as f64 * rc;
                cb += n[BEFORE as usize] as f64 * rc;
            }
        }
        if na == 0 || nb == 0 {
            continue;
        }
        let per_1000 = |x: f64, n: u64| x * 1000.0 / n as f64;
        out.push(Effect {
            code,
            alerts_after: aa,
            alerts_before: ab,
            a: per_1000(aa as f64, na),
            b: per_1000(ab as f64, nb),
            c_after: per_1000(ca, na),
            c_before: per_1000(cb, nb),
        });
    }
    out
}

/// The effect of each code over `period`, for the targeted devices of `upgrades`, as the
/// table shows it: see `worth_showing`.
pub fn firmware_effect(
    reader: &dyn Reader,
    upgrades: ChangeSplit,
    (first, last): (Day, Day),
    codes: Option<&CodeFilter>,
) -> Vec<Effect> {
    let split = Arc::new(upgrades);
    let query = AlertQuery {
        by: vec![Dim::Day, Dim::Code, Dim::Model],
        distinct: false,
        split: Some(split.clone()),
        ..Default::default()
    };
    let by_day = reader.answer_one(query).report;
    let inv = reader.inventory();
    let days = device_days(
        &split,
        |d| {
            inv.lookup(DeviceId(d))
                .map_or((0, None), |i| (i.model, i.installed))
        },
        first,
        last,
    );
    worth_showing(effects(&by_day, &days), codes)
}

/// The rows of the effect table: no firmware code, at least `MIN_ALERTS` alerts, only codes
/// `codes` keeps; the largest relative effect first (no ratio counts as 0), ties by code.
pub fn worth_showing(rows: Vec<Effect>, codes: Option<&CodeFilter>) -> Vec<Effect> {
    let mut rows: Vec<Effect> = rows
        .into_iter()
        .filter(|e| e.code.device_code().and_then(Stage::from_code).is_none())
        .filter(|e| e.alerts_after + e.alerts_before >= MIN_ALERTS)
        .filter(|e| codes.is_none_or(|f| f.matches(e.code)))
        .collect();
    rows.sort_by(|a, b| {
        let size = |e: &Effect| e.ratio().map_or(0.0, f64::abs);
        size(b).total_cmp(&size(a)).then(a.code.cmp(&b.code))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_days_by_class() {
        let mut changed = rustc_hash::FxHashMap::default();
        changed.insert(1, Some(10));
        changed.insert(2, None);
        let s = ChangeSplit { changed };
        let d = device_days(&s, |_| (0, None), 8, 12);
        // Device 1: before on 8, 9; upgrade day 10 outside; after on 11, 12. Device 2 never.
        assert_eq!(d[&(0, 8)], [0, 0, 1, 1]);
        assert_eq!(d[&(0, 10)], [1, 0, 0, 1]);
        assert_eq!(d[&(0, 12)], [0, 1, 0, 1]);
    }

    #[test]
    fn hand_computed_difference_in_differences() {
        // A = 5, B = 10, C_after = 8, C_before = 8 per 1,000: the firmware halved the code.
        let e = Effect {
            code: AlertCode::device(0x81B8),
            alerts_after: 5,
            alerts_before: 10,
            a: 5.0,
            b: 10.0,
            c_after: 8.0,
            c_before: 8.0,
        };
        assert_eq!(e.difference(), -5.0);
        assert_eq!(e.ratio(), Some(-0.5));
    }

    #[test]
    fn worth_showing_drops_firmware_codes_and_small_counts_and_sorts_by_size() {
        let e = |code: u16, n: u64, a: f64| Effect {
            code: AlertCode::device(code),
            alerts_after: n,
            alerts_before: n,
            a,
            b: 10.0,
            c_after: 8.0,
            c_before: 8.0,
        };
        let rows = vec![
            e(0x81B8, 20, 5.0),  // ratio -0.5
            e(0x8F43, 100, 1.0), // a firmware code
            e(0x8F35, 20, 12.0), // ratio +0.2
            e(0x8F84, 10, 0.0),  // 20 alerts: too few
        ];
        let codes: Vec<AlertCode> = worth_showing(rows.clone(), None)
            .iter()
            .map(|e| e.code)
            .collect();
        assert_eq!(
            codes,
            vec![AlertCode::device(0x81B8), AlertCode::device(0x8F35)]
        );
        let only = CodeFilter {
            codes: vec![AlertCode::device(0x8F35)],
            categories: vec![],
        };
        assert_eq!(worth_showing(rows, Some(&only)).len(), 1);
    }
}
