//! Spike detection: days on which a group's alert count departs from its own robust baseline.
//!
//! Everything a day is judged by comes from the days before it (nothing from the day itself or
//! later): the weekday factors are medians over the trailing `weekday_window` days (56 by
//! default, and only once three weeks of history exist), and the baseline is the median of the
//! trailing `window` of daily rates (28 days by default) after dividing out those weekday
//! factors, so a Monday is compared with Mondays' level and a quiet Sunday does not make Monday
//! look like a spike. The spread is the median absolute deviation (MAD) of the same window,
//! floored by Poisson noise on the expected count, so a group with a handful of alerts a day
//! is not flagged for one extra. Medians ignore the spikes themselves, so one incident does not
//! raise the next day's bar.
//!
//! The counts judged are capped per device: a device counts at most `device_cap` alerts a day
//! (`find.rs` does the capping), so one chattering meter cannot make a spike on its own.
//!
//! A day is flagged when all three hold: the robust z-score (excess over the spread) reaches
//! `threshold`, the count is at least `min_ratio` times the expected count, and the excess is
//! at least `min_excess`. Only rises are flagged: the question is "what went wrong".
//!
//! This file judges one series. `find.rs` folds the alerts, rolls the fold up into the
//! groups' series, judges them and merges consecutive flagged days into episodes; `explain.rs`
//! names the cohorts that carry a flagged day's excess and sums them up in a verdict;
//! `hubs.rs` adds the comms-hub cohort from a second read; `known.rs` finds the runs of OTA
//! campaigns, whose own firmware codes are known events rather than incidents.

pub mod explain;
pub mod find;
pub mod hubs;
pub mod known;

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
    /// Most alerts one device counts for in a group on one day (0: no cap).
    pub device_cap: u32,
    /// Trailing days the weekday factors are taken over (at least 21 needed).
    pub weekday_window: usize,
}

impl Default for SpikeParams {
    fn default() -> Self {
        SpikeParams {
            window: 28,
            min_history: 7,
            threshold: 5.0,
            min_ratio: 1.3,
            min_excess: 10.0,
            device_cap: 3,
            weekday_window: 56,
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

/// Fewest days of history before weekday factors are estimated: three of each weekday, so a
/// single spike cannot be a weekday's median.
pub const WEEKDAY_HISTORY: usize = 21;

/// Smallest median daily count a group needs for weekday factors of its own. The median of
/// n Poisson counts of mean m is off by about 1.25 / sqrt(n m) of itself: at three weeks
/// (n = 3) and m = 50 that is 10%, about the size of a weekend dip; below it the factors would
/// add more noise than they take out.
pub const WEEKDAY_MIN_COUNT: f64 = 50.0;

/// Weekday factors from the days `from..to` of a series: the median rate on each weekday over
/// the median of all those days, kept within [0.2, 5]; all 1 when the span is under three
/// weeks, or the group's median daily count is under `WEEKDAY_MIN_COUNT`. `check` passes the
/// days before the day judged, never later ones.
pub fn weekday_factors(s: &DailySeries, from: usize, to: usize) -> [f64; 7] {
    let mut f = [1.0; 7];
    if to.saturating_sub(from) < WEEKDAY_HISTORY {
        return f;
    }
    let mut counts = s.counts[from..to].to_vec();
    if median(&mut counts) < WEEKDAY_MIN_COUNT {
        return f;
    }
    let mut all: Vec<f64> = (from..to).map(|i| s.rate(i)).collect();
    let overall = median(&mut all);
    if overall <= 0.0 {
        return f;
    }
    for (w, slot) in f.iter_mut().enumerate() {
        let mut on: Vec<f64> = (from..to)
            .filter(|&i| weekday(s.first_day + i as Day) as usize == w)
            .map(|i| s.rate(i))
            .collect();
        *slot = (median(&mut on) / overall).clamp(0.2, 5.0);
    }
    f
}

/// Judges every day that has enough history, from the days before it only.
pub fn check(s: &DailySeries, p: &SpikeParams) -> Vec<DayCheck> {
    let mut out = Vec::new();
    let mut window: Vec<f64> = Vec::with_capacity(p.window);
    for t in 0..s.counts.len() {
        let from = t.saturating_sub(p.window);
        if t - from < p.min_history.max(1) {
            continue;
        }
        let factors = weekday_factors(s, t.saturating_sub(p.weekday_window), t);
        let factor = |i: usize| factors[weekday(s.first_day + i as Day) as usize];
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
        // Weekdays 100, weekends 20, for five weeks: the weekend drop and Monday's return are
        // the group's normal week, not spikes.
        let c: Vec<f64> = (0..35)
            .map(|i| if i % 7 >= 5 { 20.0 } else { 100.0 })
            .collect();
        let s = series(&c, 10_000);
        let f = weekday_factors(&s, 0, 21);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[5], 0.2);
        // Under three weeks of history, or too few alerts to tell a pattern from noise: no
        // weekday adjustment.
        assert_eq!(weekday_factors(&s, 1, 21), [1.0; 7]);
        let small = series(&c.iter().map(|x| x / 4.0).collect::<Vec<_>>(), 10_000);
        assert_eq!(weekday_factors(&small, 0, 21), [1.0; 7]);
        let checks = check(&s, &SpikeParams::default());
        assert!(checks.iter().all(|c| !c.flagged));
        // Once three weeks are behind it, each day is compared with its own weekday.
        let monday_check = checks.iter().find(|c| c.day == monday() + 28).unwrap();
        assert_eq!(monday_check.expected, 100.0);
        let sunday_check = checks.iter().find(|c| c.day == monday() + 27).unwrap();
        assert!((sunday_check.expected - 20.0).abs() < 1e-9);
        // Before that the baseline is the plain trailing median (weekdays outnumber weekends).
        let early_sunday = checks.iter().find(|c| c.day == monday() + 13).unwrap();
        assert_eq!(early_sunday.expected, 100.0);
    }

    #[test]
    fn a_day_is_judged_from_earlier_days_only() {
        // Six weeks with a weekday pattern and some noise; day 30 is a Wednesday with a rise.
        let mut c: Vec<f64> = (0..42)
            .map(|i| {
                let base = if i % 7 >= 5 { 40.0 } else { 100.0 };
                base + ((i * 37) % 11) as f64
            })
            .collect();
        c[30] = 190.0;
        let p = SpikeParams::default();
        let before = check(&series(&c, 10_000), &p);
        let day30 = |checks: &[DayCheck]| *checks.iter().find(|x| x.day == monday() + 30).unwrap();
        assert!(day30(&before).flagged, "{:?}", day30(&before));
        // Whatever happens later (a month-long surge on Saturdays, a collapse on weekdays),
        // day 30's baseline, spread and verdict do not move.
        let mut later = c.clone();
        for (i, x) in later.iter_mut().enumerate().skip(31) {
            *x = if i % 7 == 5 { 5_000.0 } else { 0.0 };
        }
        let after = check(&series(&later, 10_000), &p);
        assert_eq!(day30(&before), day30(&after));
        // Nor does the day itself set its own bar: a larger count moves only z and the excess.
        let mut bigger = c.clone();
        bigger[30] = 1_000.0;
        let b = day30(&check(&series(&bigger, 10_000), &p));
        assert_eq!(
            (b.expected, b.spread),
            (day30(&before).expected, day30(&before).spread)
        );
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
