//! Spike detection: days on which a group's alert rate departs from its own robust baseline.
//!
//! For each day the baseline is the median of the group's trailing window of daily rates (28
//! days by default), after dividing out the group's weekday pattern, so a Monday is compared
//! with Mondays' level and a quiet Sunday does not make Monday look like a spike. The spread
//! is the median absolute deviation (MAD) of the same window, floored by Poisson noise on the
//! expected count, so a group with a handful of alerts a day is not flagged for one extra.
//! Medians ignore the spikes themselves, so one incident does not raise the next day's bar.
//!
//! A day is flagged when all three hold: the robust z-score (excess over the spread) reaches
//! `threshold`, the count is at least `min_ratio` times the expected count, and the excess is
//! at least `min_excess` alerts. Only rises are flagged: the question is "what went wrong".
//!
//! This file judges one series. `find.rs` folds the alerts, rolls the fold up into the
//! groups' series and judges them; `explain.rs` names the cohorts that carry a flagged day's
//! excess and sums them up in a verdict; `hubs.rs` adds the comms-hub cohort from a second read.

pub mod explain;
pub mod find;
pub mod hubs;

use crate::analyze::stats::median;
use crate::model::Day;
use crate::model::time::weekday;

/// How sensitive detection is; the defaults are tuned on generated fleets (docs/investigation.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpikeParams {
    /// Trailing days the baseline is taken over.
    pub window: usize,
    /// Fewest trailing days needed before a day is judged at all.
    pub min_history: usize,
    /// Robust z-score a spike must reach.
    pub threshold: f64,
    /// Count over expected count a spike must reach.
    pub min_ratio: f64,
    /// Alerts above expected a spike must reach.
    pub min_excess: f64,
}

impl Default for SpikeParams {
    fn default() -> Self {
        SpikeParams {
            window: 28,
            min_history: 7,
            threshold: 5.0,
            min_ratio: 1.3,
            min_excess: 10.0,
        }
    }
}

/// One group's daily alerts over a period, with the installed base each day.
#[derive(Clone, Debug, PartialEq)]
pub struct DailySeries {
    pub first_day: Day,
    pub counts: Vec<f64>,
    /// Installed devices each day; `None` where unknown (then counts stand in for rates).
    pub installed: Vec<Option<u64>>,
}

impl DailySeries {
    pub fn new(first_day: Day, days: usize) -> DailySeries {
        DailySeries {
            first_day,
            counts: vec![0.0; days],
            installed: vec![None; days],
        }
    }

    /// Alerts per 1,000 installed devices on day index `i` (the count when the base is unknown).
    pub fn rate(&self, i: usize) -> f64 {
        match self.installed[i] {
            Some(n) if n > 0 => self.counts[i] * 1000.0 / n as f64,
            _ => self.counts[i],
        }
    }

    /// How many alerts a rate stands for on day `i` (the inverse of `rate`).
    fn count_of(&self, i: usize, rate: f64) -> f64 {
        match self.installed[i] {
            Some(n) if n > 0 => rate * n as f64 / 1000.0,
            _ => rate,
        }
    }
}

/// The verdict on one day of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DayCheck {
    pub day: Day,
    pub count: f64,
    pub rate: f64,
    /// Baseline rate for this weekday.
    pub baseline_rate: f64,
    /// Alerts the baseline expects.
    pub expected: f64,
    /// Spread in alerts (MAD or Poisson, whichever is larger).
    pub spread: f64,
    pub z: f64,
    pub flagged: bool,
}

impl DayCheck {
    pub fn excess(&self) -> f64 {
        self.count - self.expected
    }

    /// Count over expected count (infinite when nothing was expected).
    pub fn ratio(&self) -> f64 {
        if self.expected > 0.0 {
            self.count / self.expected
        } else {
            f64::INFINITY
        }
    }
}

/// Weekday factors of a series: the median rate on each weekday over the median of all days,
/// kept within [0.2, 5]; all 1 when the series is too short (under three weeks, so that a
/// single spike cannot be a weekday's median) or mostly zero.
pub fn weekday_factors(s: &DailySeries) -> [f64; 7] {
    let n = s.counts.len();
    let mut f = [1.0; 7];
    if n < 21 {
        return f;
    }
    let mut all: Vec<f64> = (0..n).map(|i| s.rate(i)).collect();
    let overall = median(&mut all);
    if overall <= 0.0 {
        return f;
    }
    for (w, slot) in f.iter_mut().enumerate() {
        let mut on: Vec<f64> = (0..n)
            .filter(|&i| weekday(s.first_day + i as Day) as usize == w)
            .map(|i| s.rate(i))
            .collect();
        *slot = (median(&mut on) / overall).clamp(0.2, 5.0);
    }
    f
}

/// Judges every day that has enough history.
pub fn check(s: &DailySeries, p: &SpikeParams) -> Vec<DayCheck> {
    let factors = weekday_factors(s);
    let factor = |i: usize| factors[weekday(s.first_day + i as Day) as usize];
    let mut out = Vec::new();
    let mut window: Vec<f64> = Vec::with_capacity(p.window);
    for t in 0..s.counts.len() {
        let from = t.saturating_sub(p.window);
        if t - from < p.min_history.max(1) {
            continue;
        }
        window.clear();
        window.extend((from..t).map(|i| s.rate(i) / factor(i)));
        let level = median(&mut window);
        for x in window.iter_mut() {
            *x = (*x - level).abs();
        }
        let mad = 1.4826 * median(&mut window);
        let baseline_rate = level * factor(t);
        let expected = s.count_of(t, baseline_rate);
        let spread = s.count_of(t, mad * factor(t)).max(expected.max(1.0).sqrt());
        let count = s.counts[t];
        let z = (count - expected) / spread;
        let excess = count - expected;
        let flagged = z >= p.threshold && count >= p.min_ratio * expected && excess >= p.min_excess;
        out.push(DayCheck {
            day: s.first_day + t as Day,
            count,
            rate: s.rate(t),
            baseline_rate,
            expected,
            spread,
            z,
            flagged,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::days_from_civil;

    /// 2024-01-01 is a Monday.
    fn monday() -> Day {
        days_from_civil(2024, 1, 1)
    }

    fn series(counts: &[f64], installed: u64) -> DailySeries {
        DailySeries {
            first_day: monday(),
            counts: counts.to_vec(),
            installed: vec![Some(installed); counts.len()],
        }
    }

    #[test]
    fn a_flat_series_with_one_jump_flags_the_jump_only() {
        // 20 alerts a day from 10,000 devices (2 per 1,000), then 100 on day 10.
        let mut c = vec![20.0; 14];
        c[10] = 100.0;
        let s = series(&c, 10_000);
        let checks = check(&s, &SpikeParams::default());
        // Days 7..13 are judged (7 days of history needed).
        assert_eq!(checks.len(), 7);
        let flagged: Vec<_> = checks.iter().filter(|c| c.flagged).collect();
        assert_eq!(flagged.len(), 1);
        let f = flagged[0];
        assert_eq!(f.day, monday() + 10);
        // Baseline: median 2.0 per 1,000, MAD 0 -> spread is Poisson, sqrt(20).
        assert_eq!(f.baseline_rate, 2.0);
        assert_eq!(f.expected, 20.0);
        assert!((f.spread - 20f64.sqrt()).abs() < 1e-12);
        assert!((f.z - 80.0 / 20f64.sqrt()).abs() < 1e-12);
        assert_eq!(f.ratio(), 5.0);
        // The jump does not raise the next days' baseline (medians).
        assert!(checks.iter().all(|c| c.expected == 20.0));
    }

    #[test]
    fn small_or_noisy_rises_are_not_flagged() {
        // A rise of 9 is under min_excess even at a high ratio.
        let mut c = vec![2.0; 10];
        c[9] = 11.0;
        assert!(
            check(&series(&c, 1000), &SpikeParams::default())
                .iter()
                .all(|c| !c.flagged)
        );
        // A noisy series (MAD large) swallows a rise that a flat one would flag.
        let noisy = [20.0, 60.0, 25.0, 55.0, 30.0, 50.0, 35.0, 45.0, 40.0, 85.0];
        let checks = check(&series(&noisy, 1000), &SpikeParams::default());
        let last = checks.last().unwrap();
        assert!(!last.flagged, "{last:?}");
        // MAD 10 -> spread 14.8; z = 45 / 14.8 ~ 3.
        assert!(
            (last.spread - 14.826).abs() < 1e-9 && last.z < 3.1,
            "{last:?}"
        );
        let mut flat = vec![40.0; 9];
        flat.push(85.0);
        let checks = check(&series(&flat, 1000), &SpikeParams::default());
        assert!(checks.last().unwrap().flagged);
        // Falls are never flagged.
        let mut c = vec![50.0; 10];
        c[9] = 0.0;
        assert!(
            check(&series(&c, 1000), &SpikeParams::default())
                .iter()
                .all(|c| !c.flagged)
        );
    }

    #[test]
    fn weekday_pattern_is_divided_out() {
        // Weekdays 100, weekends 20, for three weeks: the weekend drop and Monday's return are
        // the group's normal week, not spikes.
        let c: Vec<f64> = (0..21)
            .map(|i| if i % 7 >= 5 { 20.0 } else { 100.0 })
            .collect();
        let s = series(&c, 10_000);
        let f = weekday_factors(&s);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[5], 0.2);
        let checks = check(&s, &SpikeParams::default());
        assert!(checks.iter().all(|c| !c.flagged));
        let monday_check = checks.iter().find(|c| c.day == monday() + 14).unwrap();
        assert_eq!(monday_check.expected, 100.0);
        let sunday_check = checks.iter().find(|c| c.day == monday() + 13).unwrap();
        assert!((sunday_check.expected - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_code_that_appears_from_nothing_is_flagged() {
        let mut c = vec![0.0; 10];
        c[8] = 40.0;
        let checks = check(&series(&c, 1000), &SpikeParams::default());
        let f: Vec<_> = checks.iter().filter(|c| c.flagged).collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].expected, 0.0);
        assert_eq!(f[0].spread, 1.0);
        assert_eq!(f[0].ratio(), f64::INFINITY);
    }

    #[test]
    fn rates_follow_the_installed_base() {
        // The fleet doubles on day 8 and so do the alerts: the rate is flat, no spike.
        let mut s = series(&[10.0; 12], 1000);
        for i in 8..12 {
            s.counts[i] = 20.0;
            s.installed[i] = Some(2000);
        }
        let checks = check(&s, &SpikeParams::default());
        assert!(checks.iter().all(|c| !c.flagged));
        assert_eq!(checks.last().unwrap().expected, 20.0);
    }
}
