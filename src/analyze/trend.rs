//! Is a daily series at a steady state? The Mann-Kendall trend test with Sen's slope.
//!
//! Both are rank-based, so a few extreme days (an incident) neither create nor hide a trend,
//! and no distribution is assumed. Days are treated as independent; a strong weekly pattern
//! or day-to-day persistence makes the test somewhat too eager, which is why a trend is also
//! given as a size (change per week relative to the median level) to judge it by.

use super::stats::median;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    pub days: usize,
    /// Mann-Kendall S: concordant minus discordant pairs.
    pub s: i64,
    /// Normal score of S (continuity-corrected, ties accounted for).
    pub z: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Sen's slope: the median of the pairwise slopes, per day.
    pub slope_per_day: f64,
    /// The median level, to read the slope against.
    pub level: f64,
}

impl Trend {
    /// Sen's slope over a week as a fraction of the median level (0 when the level is 0).
    pub fn weekly_change(&self) -> f64 {
        if self.level > 0.0 {
            self.slope_per_day * 7.0 / self.level
        } else {
            0.0
        }
    }

    /// "steady", "rising" or "falling" at the 5% level.
    pub fn verdict(&self) -> &'static str {
        if self.days < 8 {
            "too short to tell"
        } else if self.p >= 0.05 {
            "steady"
        } else if self.s > 0 {
            "rising"
        } else {
            "falling"
        }
    }

    /// `steady (p=0.41)` or `rising 3.2%/week (p<0.001)`.
    pub fn describe(&self) -> String {
        let p = if self.p < 0.001 {
            "p<0.001".to_string()
        } else {
            format!("p={:.3}", self.p)
        };
        match self.verdict() {
            "steady" => format!("steady ({p})"),
            v @ ("rising" | "falling") if self.level > 0.0 => {
                format!("{v} {:+.1}%/week ({p})", self.weekly_change() * 100.0)
            }
            v @ ("rising" | "falling") => format!("{v} from a median of 0 ({p})"),
            v => v.to_string(),
        }
    }
}

/// The standard normal CDF (Abramowitz and Stegun 7.1.26 for erf; error below 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

pub fn mann_kendall(x: &[f64]) -> Trend {
    let n = x.len();
    let mut s: i64 = 0;
    let mut slopes = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let d = x[j] - x[i];
            s += (d > 0.0) as i64 - (d < 0.0) as i64;
            slopes.push(d / (j - i) as f64);
        }
    }
    // Variance with the tie correction: groups of equal values.
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && sorted[j + 1] == sorted[i] {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j + 1;
    }
    let nf = n as f64;
    let var = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    let z = if var <= 0.0 || s == 0 {
        0.0
    } else if s > 0 {
        (s - 1) as f64 / var.sqrt()
    } else {
        (s + 1) as f64 / var.sqrt()
    };
    let p = 2.0 * (1.0 - normal_cdf(z.abs()));
    let mut levels = x.to_vec();
    Trend {
        days: n,
        s,
        z,
        p,
        slope_per_day: median(&mut slopes),
        level: median(&mut levels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_small_series() {
        // 1, 3, 2, 4: pairs (1,3)+ (1,2)+ (1,4)+ (3,2)- (3,4)+ (2,4)+ -> S = 4.
        // Var = 4*3*13/18 = 8.667; z = 3/sqrt(8.667) = 1.019.
        let t = mann_kendall(&[1.0, 3.0, 2.0, 4.0]);
        assert_eq!(t.s, 4);
        assert!((t.z - 3.0 / (4.0f64 * 3.0 * 13.0 / 18.0).sqrt()).abs() < 1e-12);
        // Slopes: 2, 0.5, 1, -1, 0.5, 2 -> median (0.5 + 1) / 2 = 0.75.
        assert_eq!(t.slope_per_day, 0.75);
        assert_eq!(t.level, 2.5);
        assert_eq!(t.verdict(), "too short to tell");
    }

    #[test]
    fn steady_rising_and_ties() {
        let flat: Vec<f64> = (0..60)
            .map(|i| 100.0 + [3.0, -2.0, 1.0, -1.0, 0.0][i % 5])
            .collect();
        let t = mann_kendall(&flat);
        assert_eq!(t.verdict(), "steady", "{t:?}");
        let rising: Vec<f64> = (0..60)
            .map(|i| 100.0 + i as f64 + [3.0, -2.0, 1.0][i % 3])
            .collect();
        let t = mann_kendall(&rising);
        assert_eq!(t.verdict(), "rising");
        assert!(t.p < 1e-6);
        assert!((t.slope_per_day - 1.0).abs() < 0.05);
        assert!(t.describe().starts_with("rising +"));
        // All equal: no pair differs, S = 0, variance 0 after ties.
        let t = mann_kendall(&[5.0; 20]);
        assert_eq!((t.s, t.z), (0, 0.0));
        assert!(t.p > 0.999_999);
        assert_eq!(t.verdict(), "steady");
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }
}
