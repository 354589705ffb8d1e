//! A cohort's current pace and the range of its finish.
//!
//! The model (a quasi-Poisson rate with exposure): in week i a cohort migrates n_i devices over
//! e_i reported weekdays, with mean λ·e_i/5 and variance φ·λ·e_i/5, where the pace λ is
//! constant between detected pace changes (a regime) and the dispersion φ is common to the
//! cohort's regimes. The current pace is λ̂ = 5·Σn/Σe over the weeks since the last change
//! (at most `max_weeks` of them), so it never mixes the paces on both sides of a change. φ̂ is
//! Pearson's X² over every regime with a nonzero pace, divided by its degrees of freedom
//! Σ(weeks − 1); it is floored at 1 (at least Poisson noise: a scheduled programme can look
//! steadier than that over a few weeks, and a range from such luck would be too narrow).
//!
//! The R remaining devices take T̂ = R/λ̂ weeks. The range is T̂·exp(±t·s) with
//! s = √(φ·(1/N + 1/R)), N the devices migrated in the window and t the 95th percentile of
//! Student's t with X²'s degrees of freedom: a 90% prediction interval, on the log scale, for
//! the time to finish at a pace that stays what it has been since the last change. 1/N is the
//! pace's estimation error (one week since a change gives a wide range), 1/R the future weeks'
//! own variation. Without degrees of freedom (no regime has two reported weeks) there is no
//! range. What the range cannot hold: a change still to come.

/// One week of a cohort, as the forecast sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeekCount {
    pub migrated: u64,
    /// Weekdays of the week with a report (0 to 5).
    pub reported_weekdays: u32,
}

/// The pace since the last change, with what its spread needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Index of the window's first week.
    pub from: usize,
    /// Weeks in the window with a report.
    pub weeks: usize,
    /// Devices migrated in the window (N).
    pub migrated: u64,
    /// Devices a week (λ̂).
    pub per_week: f64,
    /// The dispersion used (φ̂ floored at 1).
    pub dispersion: f64,
    /// Degrees of freedom of φ̂.
    pub df: usize,
}

/// The pace of `weeks` since the last of the regime starts `starts` (the weeks of the
/// detected changes), at most `max_weeks` back; `None` when the window has no reported week.
pub fn pace(weeks: &[WeekCount], starts: &[usize], max_weeks: usize) -> Option<Pace> {
    let last_start = starts
        .iter()
        .copied()
        .filter(|&s| s < weeks.len())
        .max()
        .unwrap_or(0);
    let from = last_start.max(weeks.len().saturating_sub(max_weeks.max(1)));
    let (n, e, k) = totals(&weeks[from..]);
    if k == 0 {
        return None;
    }
    let (x2, df) = pearson(weeks, starts);
    let dispersion = if df > 0 {
        (x2 / df as f64).max(1.0)
    } else {
        1.0
    };
    Some(Pace {
        from,
        weeks: k,
        migrated: n,
        per_week: 5.0 * n as f64 / e as f64,
        dispersion,
        df,
    })
}

/// Devices, reported weekdays and reported weeks.
fn totals(weeks: &[WeekCount]) -> (u64, u64, usize) {
    weeks
        .iter()
        .filter(|w| w.reported_weekdays > 0)
        .fold((0, 0, 0), |(n, e, k), w| {
            (n + w.migrated, e + w.reported_weekdays as u64, k + 1)
        })
}

/// Pearson's X² around each regime's own pace, and its degrees of freedom; regimes with no
/// migration (before a start, after a stop) tell nothing about the spread and are left out.
pub fn pearson(weeks: &[WeekCount], starts: &[usize]) -> (f64, usize) {
    let mut bounds: Vec<usize> = starts
        .iter()
        .copied()
        .filter(|&s| s > 0 && s < weeks.len())
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.insert(0, 0);
    bounds.push(weeks.len());
    let (mut x2, mut df) = (0.0, 0);
    for r in bounds.windows(2) {
        let regime = &weeks[r[0]..r[1]];
        let (n, e, k) = totals(regime);
        if n == 0 {
            continue;
        }
        let per_day = n as f64 / e as f64;
        for w in regime.iter().filter(|w| w.reported_weekdays > 0) {
            let mu = per_day * w.reported_weekdays as f64;
            x2 += (w.migrated as f64 - mu).powi(2) / mu;
        }
        df += k - 1;
    }
    (x2, df)
}

impl Pace {
    /// t·√(φ·v), the half-width on the log scale; `None` without degrees of freedom.
    fn half_width(&self, v: f64) -> Option<f64> {
        (self.df > 0).then(|| t95(self.df) * (self.dispersion * v).sqrt())
    }

    /// The pace's 90% confidence interval, devices a week.
    pub fn interval(&self) -> Option<(f64, f64)> {
        if self.migrated == 0 {
            return None;
        }
        let h = self.half_width(1.0 / self.migrated as f64)?;
        Some((self.per_week * (-h).exp(), self.per_week * h.exp()))
    }

    /// Weeks to migrate `remaining` devices at this pace, and their 90% prediction range;
    /// `None` with nothing remaining or no pace.
    pub fn weeks_to(&self, remaining: u64) -> Option<(f64, Option<(f64, f64)>)> {
        if remaining == 0 || self.migrated == 0 {
            return None;
        }
        let t = remaining as f64 / self.per_week;
        let range = self
            .half_width(1.0 / self.migrated as f64 + 1.0 / remaining as f64)
            .map(|h| (t * (-h).exp(), t * h.exp()));
        Some((t, range))
    }
}

/// The 95th percentile of Student's t with `df` degrees of freedom (`df` ≥ 1): a table to 30,
/// then the Cornish-Fisher expansion (within 0.0001 of the exact value there).
pub fn t95(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        6.313752, 2.919986, 2.353363, 2.131847, 2.015048, 1.943180, 1.894579, 1.859548, 1.833113,
        1.812461, 1.795885, 1.782288, 1.770933, 1.761310, 1.753050, 1.745884, 1.739607, 1.734064,
        1.729133, 1.724718, 1.720743, 1.717144, 1.713872, 1.710882, 1.708141, 1.705618, 1.703288,
        1.701131, 1.699127, 1.697261,
    ];
    if (1..=30).contains(&df) {
        return TABLE[df - 1];
    }
    let (z, v) = (1.644_853_6_f64, df.max(1) as f64);
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weeks(v: &[(u64, u32)]) -> Vec<WeekCount> {
        v.iter()
            .map(|&(migrated, reported_weekdays)| WeekCount {
                migrated,
                reported_weekdays,
            })
            .collect()
    }

    #[test]
    fn the_pace_since_the_change_and_its_range_by_hand() {
        // Week 0 before the start; regime 1-2 at 30, 50 (pace 40: X² = 100/40 x 2 = 5);
        // regime 3-4 at 10, 30 (pace 20: X² = 100/20 x 2 = 10). X² = 15 on 2 df: φ = 7.5.
        let w = weeks(&[(0, 5), (30, 5), (50, 5), (10, 5), (30, 5)]);
        let p = pace(&w, &[1, 3], 8).unwrap();
        assert_eq!((p.from, p.weeks, p.migrated, p.per_week), (3, 2, 40, 20.0));
        assert_eq!((p.df, p.dispersion), (2, 7.5));
        // 160 remain: 8 weeks. s = √(7.5 x (1/40 + 1/160)) = √0.234375 = 0.484123;
        // t(0.95, 2) = 2.919986; exp(2.919986 x 0.484123) = 4.110860.
        let (t, range) = p.weeks_to(160).unwrap();
        let (lo, hi) = range.unwrap();
        assert_eq!(t, 8.0);
        assert!((lo - 8.0 / 4.110860).abs() < 1e-4, "{lo}");
        assert!((hi - 8.0 * 4.110860).abs() < 1e-3, "{hi}");
        // The pace's own interval: 20 x exp(∓2.919986 x √(7.5/40)) = 20 x exp(∓1.26439).
        let (plo, phi) = p.interval().unwrap();
        assert!(
            (plo - 5.64822).abs() < 1e-4 && (phi - 70.8187).abs() < 1e-3,
            "{plo} {phi}"
        );
    }

    #[test]
    fn a_short_week_counts_by_its_reported_days() {
        // 32 over 4 reported weekdays and 40 over 5: 8 a day, 40 a week, no spread (X² = 0,
        // so φ is floored at 1).
        let w = weeks(&[(40, 5), (32, 4)]);
        let p = pace(&w, &[], 8).unwrap();
        assert_eq!((p.per_week, p.df, p.dispersion), (40.0, 1, 1.0));
        // A week with no report at all is no week.
        let w = weeks(&[(40, 5), (0, 0)]);
        let p = pace(&w, &[], 8).unwrap();
        assert_eq!((p.weeks, p.per_week, p.df), (1, 40.0, 0));
        assert_eq!(p.weeks_to(80), Some((2.0, None)), "no df, no range");
    }

    #[test]
    fn one_week_since_the_change_gives_a_wide_range() {
        // Four steady weeks at 40 (X² = 0 on 3 df, φ = 1), then one week at 20.
        let w = weeks(&[(40, 5), (40, 5), (40, 5), (40, 5), (20, 5)]);
        let p = pace(&w, &[4], 8).unwrap();
        assert_eq!((p.from, p.per_week, p.df, p.dispersion), (4, 20.0, 3, 1.0));
        // 100 remain: 5 weeks; s = √(1/20 + 1/100) = 0.244949; t(0.95, 3) = 2.353363;
        // exp(0.576449) = 1.779716: 2.809 to 8.899 weeks, a factor of 3.17 from end to end.
        let (t, range) = p.weeks_to(100).unwrap();
        let (lo, hi) = range.unwrap();
        assert_eq!(t, 5.0);
        assert!((lo - 5.0 / 1.779716).abs() < 1e-4 && (hi - 5.0 * 1.779716).abs() < 1e-4);
        assert!(hi / lo > 3.0);
        // Read as one regime (no change detected), the five weeks mix both paces: 36 a week.
        let p = pace(&w, &[], 8).unwrap();
        assert_eq!(p.per_week, 36.0);
    }

    #[test]
    fn the_window_is_capped_without_a_change() {
        let w = weeks(&[(100, 5), (10, 5), (10, 5), (10, 5)]);
        let p = pace(&w, &[], 3).unwrap();
        assert_eq!((p.from, p.per_week), (1, 10.0));
        // A change inside the cap starts the window.
        let p = pace(&w, &[3], 3).unwrap();
        assert_eq!((p.from, p.weeks), (3, 1));
        assert_eq!(pace(&weeks(&[(0, 0)]), &[], 3), None);
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t95(1), 6.313752);
        assert_eq!(t95(30), 1.697261);
        assert!((t95(40) - 1.683851).abs() < 1e-4, "{}", t95(40));
        assert!((t95(120) - 1.657651).abs() < 1e-4, "{}", t95(120));
    }
}
