//! Comparing two Poisson rates, and controlling the false discoveries among many comparisons.
//!
//! Alerts of a group in a period are taken as Poisson with mean `rate x exposure` (exposure =
//! device-days). Given the total `n = a + b` of two periods, `a` is binomial with
//! `p0 = e1 / (e1 + e2)` when the two rates are equal: the classical conditional test, exact
//! (two-sided, by the probabilities no larger than the observed one) up to a few thousand
//! alerts and by the normal approximation with continuity correction above. The rate ratio's
//! 95% interval comes from the Clopper-Pearson interval of the binomial proportion (exact, also
//! when a count is 0), or from the log rate ratio's normal interval for large counts. Real
//! alert counts are over-dispersed (noisy devices): the test says what Poisson noise alone
//! would explain, a floor on the uncertainty, not its whole.
//!
//! Over many groups, a 5% test flags one group in twenty by chance: `benjamini_hochberg` turns
//! p-values into q-values, and a change is called beyond noise at a 5% false discovery rate.

use super::trend::normal_cdf;

/// The comparison of `a` events over exposure `e1` with `b` over `e2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateComparison {
    /// `(a / e1) / (b / e2)`; infinite when `b` is 0 and `a` is not, NaN when both are 0.
    pub ratio: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Two-sided p-value of equal rates.
    pub p: f64,
}

/// Above this many events, the normal approximations (exact sums would cost too much).
const EXACT_UP_TO: u64 = 3000;

pub fn compare_rates(a: u64, e1: f64, b: u64, e2: f64) -> Option<RateComparison> {
    if e1 <= 0.0 || e2 <= 0.0 {
        return None;
    }
    let n = a + b;
    let scale = e2 / e1;
    let ratio = if n == 0 {
        f64::NAN
    } else if b == 0 {
        f64::INFINITY
    } else {
        (a as f64 / e1) / (b as f64 / e2)
    };
    if n == 0 {
        return Some(RateComparison {
            ratio,
            ci_low: 0.0,
            ci_high: f64::INFINITY,
            p: 1.0,
        });
    }
    let p0 = e1 / (e1 + e2);
    let p = if n <= EXACT_UP_TO {
        exact_two_sided(a, n, p0)
    } else {
        let mean = n as f64 * p0;
        let sd = (mean * (1.0 - p0)).sqrt();
        let z = ((a as f64 - mean).abs() - 0.5).max(0.0) / sd;
        (2.0 * (1.0 - normal_cdf(z))).min(1.0)
    };
    let odds = |pi: f64| {
        if pi >= 1.0 {
            f64::INFINITY
        } else {
            pi / (1.0 - pi) * scale
        }
    };
    let (ci_low, ci_high) = if n <= EXACT_UP_TO || a == 0 || b == 0 {
        let (lo, hi) = clopper_pearson(a, n, 0.05);
        (odds(lo), odds(hi))
    } else {
        let se = (1.0 / a as f64 + 1.0 / b as f64).sqrt();
        (
            ratio * (-1.959964 * se).exp(),
            ratio * (1.959964 * se).exp(),
        )
    };
    Some(RateComparison {
        ratio,
        ci_low,
        ci_high,
        p,
    })
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut s = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        s += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}

/// ln P(X = k) for X ~ Binomial(n, p).
fn ln_pmf(k: u64, n: u64, p: f64) -> f64 {
    let (k, n) = (k as f64, n as f64);
    let choose = ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0);
    let lp = if k > 0.0 { k * p.ln() } else { 0.0 };
    let lq = if n - k > 0.0 {
        (n - k) * (1.0 - p).ln()
    } else {
        0.0
    };
    choose + lp + lq
}

/// The exact two-sided binomial p-value: the probability of outcomes no more likely than `a`.
fn exact_two_sided(a: u64, n: u64, p: f64) -> f64 {
    let observed = ln_pmf(a, n, p);
    let total: f64 = (0..=n)
        .map(|k| ln_pmf(k, n, p))
        .filter(|&l| l <= observed + 1e-7)
        .map(f64::exp)
        .sum();
    total.min(1.0)
}

/// P(X >= k) for X ~ Binomial(n, p).
fn upper_tail(k: u64, n: u64, p: f64) -> f64 {
    (k..=n).map(|j| ln_pmf(j, n, p).exp()).sum::<f64>().min(1.0)
}

/// The Clopper-Pearson interval for a proportion `k` of `n` at level `1 - alpha`.
fn clopper_pearson(k: u64, n: u64, alpha: f64) -> (f64, f64) {
    let half = alpha / 2.0;
    let nf = n as f64;
    let lo = if k == 0 {
        0.0
    } else if k == n {
        half.powf(1.0 / nf)
    } else {
        // The p at which seeing k or more has probability alpha/2 (rises with p).
        bisect(|p| upper_tail(k, n, p) - half)
    };
    let hi = if k == n {
        1.0
    } else if k == 0 {
        1.0 - half.powf(1.0 / nf)
    } else {
        // The p at which seeing k or fewer has probability alpha/2 (falls with p).
        bisect(|p| half - (1.0 - upper_tail(k + 1, n, p)))
    };
    (lo, hi)
}

/// The root in (0, 1) of an increasing function.
fn bisect(f: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Benjamini-Hochberg q-values, in the order of `p`: a change is a discovery at false
/// discovery rate `d` when its q-value is at most `d`.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.min(1.0);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_is_right_at_integers_and_a_half() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
    }

    #[test]
    fn equal_rates_are_not_flagged_and_doubled_rates_are() {
        // 20 events over 10 device-days against 10 over 10: ratio 2. Conditional test:
        // a = 20 of n = 30 at p0 = 0.5; two-sided exact p = 0.0987 (binomial tables).
        let c = compare_rates(20, 10.0, 10, 10.0).unwrap();
        assert!((c.ratio - 2.0).abs() < 1e-12);
        assert!((c.p - 0.0987).abs() < 5e-4, "{c:?}");
        assert!(
            c.ci_low < 1.0 && c.ci_high > 2.0,
            "the interval holds 1 and 2: {c:?}"
        );
        // Ten times the data: p tiny, interval excludes 1.
        let c = compare_rates(2000, 1000.0, 1000, 1000.0).unwrap();
        assert!(c.p < 1e-10 && c.ci_low > 1.8 && c.ci_high < 2.2, "{c:?}");
        // Same rate, different exposures: no signal.
        let c = compare_rates(300, 3000.0, 100, 1000.0).unwrap();
        assert!((c.ratio - 1.0).abs() < 1e-12 && c.p > 0.9, "{c:?}");
    }

    #[test]
    fn clopper_pearson_matches_known_values() {
        // 0 of 10: (0, 0.3085); 5 of 10: (0.1871, 0.8129); standard tables.
        let (lo, hi) = clopper_pearson(0, 10, 0.05);
        assert!(lo == 0.0 && (hi - 0.3085).abs() < 1e-4);
        let (lo, hi) = clopper_pearson(5, 10, 0.05);
        assert!((lo - 0.1871).abs() < 1e-4 && (hi - 0.8129).abs() < 1e-4);
        // A count of 0 in one period still has a finite upper bound on the ratio.
        let c = compare_rates(0, 100.0, 12, 100.0).unwrap();
        assert_eq!(c.ratio, 0.0);
        assert!(
            c.ci_high.is_finite() && c.ci_high < 0.5 && c.p < 0.001,
            "{c:?}"
        );
    }

    #[test]
    fn benjamini_hochberg_by_hand() {
        // m = 4: sorted 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.04, 0.04, 0.5.
        let q = benjamini_hochberg(&[0.03, 0.5, 0.01, 0.02]);
        let want = [0.04, 0.5, 0.04, 0.04];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
    }
}
