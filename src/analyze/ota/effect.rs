//! Did the firmware help? A difference in differences per alert code, with devices as the
//! unit of its uncertainty.
//!
//! Who is compared (`Design`): the **treated** devices were upgraded during the period, with at
//! least one day on each side of their upgrade day (the day itself belongs to neither side);
//! the **control** devices were targeted and never activated anything; devices activated with
//! an unconfirmed version, or upgraded before the period, are left out. For each code:
//! - A, the treated devices' rate after their upgrade; B, their rate before it (pooled:
//!   alerts over device-days);
//! - the control's rate on each calendar day, averaged with the treated device-days after
//!   (C_after) and before (C_before) as weights: the control is read on the same days as the
//!   treated devices, so a calendar shock (a weekday, an incident) cancels out.
//!
//! The effect is (A / B) / (C_after / C_before) - 1, the change on upgraded devices beyond the
//! change anyway. Its 95% interval is a device-clustered bootstrap: treated and control
//! devices are resampled with replacement within their groups (a fixed seed: the same input
//! gives the same interval) and the ratio recomputed; the interval is the 2.5th and 97.5th
//! percentiles. Devices, not alerts, are the unit: a device raising a code a hundred times a
//! day is one draw, not a hundred. The control's calendar weights are held at their sample
//! values in the resamples (second order while the control's rate is steady).
//!
//! Checks beside it: the **pre-trend** compares the first and second half of each treated
//! device's pre-period with the control over the same days (the same ratio, its own
//! interval); **top1pct_share** is the share of the treated devices' alerts behind A and B
//! raised by the top 1% of them (the same for the control beside it): one device raising most
//! of them moves the ratio with its own day-to-day noise, which resampling devices cannot
//! see. The `Verdict` says what to make of it (`verdict`).
//!
//! Memory is bounded by devices x codes: one tap on the second read adds each alert of a
//! compared device into four numbers per (device, code), never keeping an alert.

use crate::analyze::alerts::{AlertQuery, CodeFilter, Tap, TapFactory};
use crate::analyze::reader::Reader;
use crate::analyze::stats::percentile;
use crate::model::firmware::Stage;
use crate::model::time::day_of;
use crate::model::{AlertCode, Day, Event};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Codes with fewer alerts on treated devices (before and after) than this are left out.
pub const MIN_ALERTS: u64 = 30;
/// Bootstrap resamples per analysis.
pub const REPLICATES: usize = 1000;
/// The bootstrap's seed: the same input always gives the same intervals.
pub const SEED: u64 = 0x0F1E_2D3C_4B5A_6978;
/// The top 1% of treated devices raising this share of the treated change or more: the
/// effect is "dominated by few devices".
pub const DOMINATED_SHARE: f64 = 0.5;
/// More resamples than this share with a rate at zero (no ratio): no interval.
const MAX_UNDEFINED: f64 = 0.025;

/// A targeted device's place in the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Running the target version from this day.
    Treated(Day),
    /// Never activated anything.
    Control,
    /// Neither (activated, version unconfirmed).
    Excluded,
}

/// What to make of one code's comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// The interval excludes no change, and does so after allowing for the number of codes
    /// compared (Bonferroni).
    Clear,
    /// The upgraded and control devices already moved apart before the upgrade.
    PreTrendsDiffer,
    /// The top 1% of upgraded (or control) devices raise `DOMINATED_SHARE` of their group's
    /// alerts of the code or more.
    Dominated,
    /// Anything else, including too little data for an interval.
    NoClear,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Clear => "clear effect",
            Verdict::NoClear => "no clear effect",
            Verdict::Dominated => "dominated by few devices",
            Verdict::PreTrendsDiffer => "pre-trends differ",
        }
    }
}

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
    /// The 95% bootstrap interval of `ratio()`.
    pub ci: Option<(f64, f64)>,
    /// The pre-period check: (B2 / B1) / (C_B2 / C_B1) - 1 and its 95% interval.
    pub pretrend: Option<f64>,
    pub pretrend_ci: Option<(f64, f64)>,
    /// The share of the treated devices' alerts of the code (after and before) raised by the
    /// top 1% of them; the same for the control devices' (calendar-weighted) alerts.
    pub top1pct_share: f64,
    pub control_top1pct_share: f64,
    /// Devices compared (the same for every code).
    pub treated: u64,
    pub control: u64,
    pub verdict: Verdict,
}

impl Effect {
    pub fn difference(&self) -> f64 {
        (self.a - self.b) - (self.c_after - self.c_before)
    }

    /// The relative change beyond the control's, or `None` when a rate is zero.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.a, self.b, self.c_after, self.c_before)
    }
}

fn ratio(a: f64, b: f64, ca: f64, cb: f64) -> Option<f64> {
    (a > 0.0 && b > 0.0 && ca > 0.0 && cb > 0.0).then(|| (a / b) / (ca / cb) - 1.0)
}

/// Sides of a comparison, the index of the four numbers kept per device and code.
const AFTER: usize = 0;
const BEFORE: usize = 1;
const BEFORE1: usize = 2;
const BEFORE2: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Slot {
    /// Index among the treated; its first day, the first day of its pre-period's second half,
    /// its upgrade day.
    Treated {
        index: u32,
        from: Day,
        mid: Day,
        up: Day,
    },
    Control {
        index: u32,
        from: Day,
    },
}

/// Who is compared over which days, and the calendar weights of the control.
#[derive(Debug)]
pub struct Design {
    first: Day,
    last: Day,
    slots: FxHashMap<u64, Slot>,
    /// Per treated device: device-days after, before, and in each half of the pre-period.
    days: Vec<[f64; 4]>,
    controls: usize,
    /// Per day of the period: each side's weight for a control alert that day (treated
    /// device-days on that side / control devices present, normalised over the days).
    omega: Vec<[f64; 4]>,
}

impl Design {
    /// `devices`: each targeted device's role and install day; the period is `[first, last]`.
    pub fn new(
        devices: impl IntoIterator<Item = (u64, Role, Option<Day>)>,
        first: Day,
        last: Day,
    ) -> Design {
        let n_days = (last - first + 1).max(0) as usize;
        // Difference arrays: treated per side and control devices present, per day.
        let mut w = vec![[0f64; 4]; n_days + 1];
        let mut nc = vec![0f64; n_days + 1];
        let at = |d: Day| (d - first) as usize;
        let mut slots = FxHashMap::default();
        let mut days = Vec::new();
        let mut controls = 0usize;
        let mut list: Vec<(u64, Role, Option<Day>)> = devices.into_iter().collect();
        list.sort_unstable_by_key(|x| x.0);
        for (id, role, installed) in list {
            let from = installed.map_or(first, |i| i.max(first));
            if from > last {
                continue;
            }
            match role {
                Role::Treated(up) if from < up && up < last => {
                    let mid = from + (up - from) / 2;
                    slots.insert(
                        id,
                        Slot::Treated {
                            index: days.len() as u32,
                            from,
                            mid,
                            up,
                        },
                    );
                    days.push([
                        (last - up) as f64,
                        (up - from) as f64,
                        (mid - from) as f64,
                        (up - mid) as f64,
                    ]);
                    for (side, (s, e)) in [
                        (AFTER, (up + 1, last + 1)),
                        (BEFORE, (from, up)),
                        (BEFORE1, (from, mid)),
                        (BEFORE2, (mid, up)),
                    ] {
                        if s < e {
                            w[at(s)][side] += 1.0;
                            w[at(e)][side] -= 1.0;
                        }
                    }
                }
                Role::Control => {
                    slots.insert(
                        id,
                        Slot::Control {
                            index: controls as u32,
                            from,
                        },
                    );
                    controls += 1;
                    nc[at(from)] += 1.0;
                    nc[at(last + 1)] -= 1.0;
                }
                _ => {}
            }
        }
        let mut omega = vec![[0f64; 4]; n_days];
        let (mut run_w, mut run_c) = ([0f64; 4], 0f64);
        let mut total = [0f64; 4];
        for d in 0..n_days {
            run_c += nc[d];
            for s in 0..4 {
                run_w[s] += w[d][s];
                if run_c > 0.0 {
                    omega[d][s] = run_w[s] / run_c;
                    total[s] += run_w[s];
                }
            }
        }
        for o in &mut omega {
            for s in 0..4 {
                if total[s] > 0.0 {
                    o[s] /= total[s];
                }
            }
        }
        Design {
            first,
            last,
            slots,
            days,
            controls,
            omega,
        }
    }

    pub fn treated(&self) -> usize {
        self.days.len()
    }

    pub fn controls(&self) -> usize {
        self.controls
    }

    /// Adds `count` alerts of a device on `day` into its four numbers (`None`: the device is
    /// not compared, or the day is on neither side).
    fn cell(&self, device: u64, day: Day) -> Option<(u32, bool, [f64; 4])> {
        if day < self.first || day > self.last {
            return None;
        }
        match *self.slots.get(&device)? {
            Slot::Treated {
                index,
                from,
                mid,
                up,
            } => {
                let mut v = [0.0; 4];
                if day > up {
                    v[AFTER] = 1.0;
                } else if day < up && day >= from {
                    v[BEFORE] = 1.0;
                    v[if day < mid { BEFORE1 } else { BEFORE2 }] = 1.0;
                } else {
                    return None;
                }
                Some((index, true, v))
            }
            Slot::Control { index, from } => {
                (day >= from).then(|| (index, false, self.omega[(day - self.first) as usize]))
            }
        }
    }
}

/// Per (compared device, code): the four numbers. Treated devices are keyed by their index,
/// control devices by theirs with the top bit set.
type Cells = FxHashMap<(u32, AlertCode), [f64; 4]>;
const CONTROL_BIT: u32 = 1 << 31;

/// Collects the compared devices' alerts (one tap per worker).
pub struct EffectTap {
    design: Arc<Design>,
    cells: Cells,
}

impl Tap for EffectTap {
    fn alert(&mut self, ev: &Event, code: AlertCode, _: Option<u64>, _: Day) {
        let Some(device) = ev.device else { return };
        if code.device_code().and_then(Stage::from_code).is_some() {
            return;
        }
        let Some((index, treated, v)) = self.design.cell(device.0, day_of(ev.ts)) else {
            return;
        };
        let key = (if treated { index } else { index | CONTROL_BIT }, code);
        let c = self.cells.entry(key).or_default();
        let n = ev.count as f64;
        for s in 0..4 {
            c[s] += v[s] * n;
        }
    }

    fn merge_from(&mut self, other: Box<dyn Tap>) {
        if let Ok(o) = other.into_any().downcast::<EffectTap>() {
            for (k, v) in o.cells {
                let c = self.cells.entry(k).or_default();
                for s in 0..4 {
                    c[s] += v[s];
                }
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// One code's numbers: per treated device (index, [after, before, before1, before2] alerts)
/// and per control device (index, the same four, weighted by the calendar).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CodeCells {
    pub treated: Vec<(u32, [f64; 4])>,
    pub control: Vec<(u32, [f64; 4])>,
}

impl CodeCells {
    fn treated_alerts(&self) -> (u64, u64) {
        let sum = |s: usize| self.treated.iter().map(|t| t.1[s]).sum::<f64>().round() as u64;
        (sum(AFTER), sum(BEFORE))
    }
}

/// The six rates (per device-day) of one code under device weights (`None`: every device
/// once): A, B, C_after, C_before and the pre-period's B1, B2, C_B1, C_B2.
fn rates(
    cells: &CodeCells,
    totals: &[f64; 4],
    wt: Option<&[u32]>,
    wc: Option<&[u32]>,
) -> ([f64; 4], [f64; 4]) {
    let (mut t, mut c) = ([0f64; 4], [0f64; 4]);
    for (i, v) in &cells.treated {
        let w = wt.map_or(1.0, |w| w[*i as usize] as f64);
        for s in 0..4 {
            t[s] += w * v[s];
        }
    }
    for (j, v) in &cells.control {
        let w = wc.map_or(1.0, |w| w[*j as usize] as f64);
        for s in 0..4 {
            c[s] += w * v[s];
        }
    }
    for s in 0..4 {
        t[s] = if totals[s] > 0.0 {
            t[s] / totals[s]
        } else {
            0.0
        };
    }
    (t, c)
}

fn effect_and_pretrend(t: &[f64; 4], c: &[f64; 4]) -> (Option<f64>, Option<f64>) {
    (
        ratio(t[AFTER], t[BEFORE], c[AFTER], c[BEFORE]),
        ratio(t[BEFORE2], t[BEFORE1], c[BEFORE2], c[BEFORE1]),
    )
}

/// A seeded splitmix64: small, fast, and the same on every machine.
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// How many times each of `n` items is drawn in `n` draws with replacement.
    pub fn resample(&mut self, n: usize, out: &mut Vec<u32>) {
        out.clear();
        out.resize(n, 0);
        for _ in 0..n {
            out[self.below(n)] += 1;
        }
    }
}

/// The 95% percentile interval of the finite `draws`, `None` when more than `MAX_UNDEFINED`
/// of the `replicates` had none.
fn interval(draws: &mut [f64], replicates: usize) -> Option<(f64, f64)> {
    if draws.is_empty() || (replicates - draws.len()) as f64 > MAX_UNDEFINED * replicates as f64 {
        return None;
    }
    draws.sort_by(f64::total_cmp);
    Some((percentile(draws, 0.025)?, percentile(draws, 0.975)?))
}

/// The share of a group's alerts behind the comparison raised by its top 1% of devices (at
/// least one): `cells` are the devices with alerts, each with its four numbers, of which the
/// after and before sides count; `devices` is the group's size (with or without alerts).
/// A device raising most of a group's alerts moves A and B (or the control's rates) with its
/// own day-to-day noise, which resampling devices cannot see: the interval is then too
/// narrow, and the verdict says so.
pub fn top1pct_share(cells: &[(u32, [f64; 4])], devices: usize) -> f64 {
    let mut c: Vec<f64> = cells.iter().map(|(_, v)| v[AFTER] + v[BEFORE]).collect();
    let total: f64 = c.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    c.sort_by(|a, b| b.total_cmp(a));
    let k = devices.div_ceil(100).max(1);
    c.iter().take(k).sum::<f64>() / total
}

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The verdict on one code of `codes` compared:
/// 1. the top 1% of treated (or control) devices raise `DOMINATED_SHARE` of their group's
///    alerts of the code or more: dominated;
/// 2. the pre-trend's 95% interval excludes 0: pre-trends differ;
/// 3. the effect's 95% interval excludes 0, and so does its interval widened for `codes`
///    comparisons at once (Bonferroni: the log ratio's standard error read from the 95%
///    interval's width, the normal quantile of 1 - 0.025 / codes): clear effect;
/// 4. otherwise (no interval included): no clear effect.
pub fn verdict(
    ratio: Option<f64>,
    ci: Option<(f64, f64)>,
    pretrend_ci: Option<(f64, f64)>,
    top1pct_share: f64,
    codes: usize,
) -> Verdict {
    if top1pct_share >= DOMINATED_SHARE {
        return Verdict::Dominated;
    }
    if pretrend_ci.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0) {
        return Verdict::PreTrendsDiffer;
    }
    let (Some(r), Some((lo, hi))) = (ratio, ci) else {
        return Verdict::NoClear;
    };
    if !(lo > 0.0 || hi < 0.0) || lo <= -1.0 {
        return Verdict::NoClear;
    }
    let z95 = normal_quantile(0.975);
    let se = ((1.0 + hi).ln() - (1.0 + lo).ln()) / (2.0 * z95);
    let z = normal_quantile(1.0 - 0.025 / codes.max(1) as f64);
    if se > 0.0 && (1.0 + r).ln().abs() >= z * se {
        Verdict::Clear
    } else {
        Verdict::NoClear
    }
}

/// Every code's comparison from the tap's cells, the rows `codes` keeps (see `worth_showing`),
/// each with its bootstrap intervals and verdict.
pub fn effects(design: &Design, cells: Cells, codes: Option<&CodeFilter>) -> Vec<Effect> {
    let mut per: BTreeMap<AlertCode, CodeCells> = BTreeMap::new();
    for ((i, code), v) in cells {
        let c = per.entry(code).or_default();
        if i & CONTROL_BIT != 0 {
            c.control.push((i & !CONTROL_BIT, v));
        } else {
            c.treated.push((i, v));
        }
    }
    let per: Vec<(AlertCode, CodeCells)> = per
        .into_iter()
        .filter(|(code, c)| {
            let (after, before) = c.treated_alerts();
            after + before >= MIN_ALERTS && codes.is_none_or(|f| f.matches(*code))
        })
        .map(|(code, mut c)| {
            c.treated.sort_unstable_by_key(|x| x.0);
            c.control.sort_unstable_by_key(|x| x.0);
            (code, c)
        })
        .collect();
    let totals = design.days.iter().fold([0f64; 4], |mut t, d| {
        for s in 0..4 {
            t[s] += d[s];
        }
        t
    });
    let draws = bootstrap(design, &per, REPLICATES, SEED);
    let m = per.len();
    let mut out: Vec<Effect> = per
        .iter()
        .zip(draws)
        .map(|((code, c), (mut eff, mut pre))| {
            let (t, cr) = rates(c, &totals, None, None);
            let (_, pretrend) = effect_and_pretrend(&t, &cr);
            let (alerts_after, alerts_before) = c.treated_alerts();
            let mut e = Effect {
                code: *code,
                alerts_after,
                alerts_before,
                a: t[AFTER] * 1000.0,
                b: t[BEFORE] * 1000.0,
                c_after: cr[AFTER] * 1000.0,
                c_before: cr[BEFORE] * 1000.0,
                ci: interval(&mut eff, REPLICATES),
                pretrend,
                pretrend_ci: interval(&mut pre, REPLICATES),
                top1pct_share: top1pct_share(&c.treated, design.treated()),
                control_top1pct_share: top1pct_share(&c.control, design.controls()),
                treated: design.treated() as u64,
                control: design.controls() as u64,
                verdict: Verdict::NoClear,
            };
            let share = e.top1pct_share.max(e.control_top1pct_share);
            e.verdict = verdict(e.ratio(), e.ci, e.pretrend_ci, share, m);
            e
        })
        .collect();
    sort_rows(&mut out);
    out
}

/// The bootstrap: per code, the finite resampled effects and pre-trends. Every code sees the
/// same resamples (one set of device weights per replicate), so a code's interval does not
/// depend on which other codes are compared.
pub fn bootstrap(
    design: &Design,
    per: &[(AlertCode, CodeCells)],
    replicates: usize,
    seed: u64,
) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut out: Vec<(Vec<f64>, Vec<f64>)> = per
        .iter()
        .map(|_| {
            (
                Vec::with_capacity(replicates),
                Vec::with_capacity(replicates),
            )
        })
        .collect();
    if design.treated() == 0 || design.controls() == 0 {
        return out;
    }
    let mut rng = SplitMix(seed);
    let (mut wt, mut wc) = (Vec::new(), Vec::new());
    for _ in 0..replicates {
        rng.resample(design.treated(), &mut wt);
        rng.resample(design.controls(), &mut wc);
        let mut totals = [0f64; 4];
        for (d, &w) in design.days.iter().zip(&wt) {
            for s in 0..4 {
                totals[s] += w as f64 * d[s];
            }
        }
        for ((_, c), (eff, pre)) in per.iter().zip(out.iter_mut()) {
            let (t, cr) = rates(c, &totals, Some(&wt), Some(&wc));
            let (e, p) = effect_and_pretrend(&t, &cr);
            eff.extend(e);
            pre.extend(p);
        }
    }
    out
}

/// Clear effects first, then the largest relative effect (no ratio counts as 0), ties by code.
fn sort_rows(rows: &mut [Effect]) {
    rows.sort_by(|a, b| {
        let size = |e: &Effect| e.ratio().map_or(0.0, f64::abs);
        (a.verdict != Verdict::Clear)
            .cmp(&(b.verdict != Verdict::Clear))
            .then(size(b).total_cmp(&size(a)))
            .then(a.code.cmp(&b.code))
    });
}

/// The effect of each code over the period of `design`: a second read of the alert inputs
/// through `EffectTap`. Firmware codes are left out (they follow the rollout by design), and
/// codes with fewer than `MIN_ALERTS` treated alerts; `codes` narrows the table.
pub fn firmware_effect(
    reader: &dyn Reader,
    design: Design,
    codes: Option<&CodeFilter>,
) -> Vec<Effect> {
    let design = Arc::new(design);
    let d = design.clone();
    let query = AlertQuery {
        by: vec![],
        distinct: false,
        tap: Some(TapFactory(Arc::new(move || {
            Box::new(EffectTap {
                design: d.clone(),
                cells: FxHashMap::default(),
            })
        }))),
        ..Default::default()
    };
    let mut answer = reader.answer_one(query);
    let cells = answer
        .tap_as::<EffectTap>()
        .map(|t| t.cells)
        .unwrap_or_default();
    effects(&design, cells, codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeviceId;

    const DAY: i64 = 86_400_000;
    const CODE: u16 = 0x81B8;

    /// Days 0..=9. Device 1 upgraded on day 4, device 2 on day 6, device 3 the control; each
    /// alert stands for ten (`count`), so the code has enough alerts to be shown.
    fn small() -> (Design, Cells) {
        let design = Design::new(
            [
                (1, Role::Treated(4), None),
                (2, Role::Treated(6), None),
                (3, Role::Control, None),
                (4, Role::Excluded, None),
            ],
            0,
            9,
        );
        let mut tap = EffectTap {
            design: Arc::new(design),
            cells: FxHashMap::default(),
        };
        for (dev, day) in [
            (1, 1),
            (1, 6),
            (1, 6),
            (2, 4),
            (2, 8),
            (3, 2),
            (3, 8),
            (4, 8),
        ] {
            let mut ev = Event::alert(
                day * DAY + 3_600_000,
                DeviceId(dev),
                AlertCode::device(CODE),
            );
            ev.count = 10;
            tap.alert(&ev, AlertCode::device(CODE), None, day as Day);
            // The upgrade day itself and firmware codes are on neither side.
            let fw = Event::alert(4 * DAY, DeviceId(1), AlertCode::device(0x8F43));
            tap.alert(&fw, AlertCode::device(0x8F43), None, 4);
        }
        let cells = tap.cells;
        (Arc::try_unwrap(tap.design).unwrap(), cells)
    }

    #[test]
    fn hand_computed_difference_in_differences_pretrend_and_share() {
        let (design, cells) = small();
        assert_eq!((design.treated(), design.controls()), (2, 1));
        let e = effects(&design, cells, None);
        assert_eq!(e.len(), 1);
        let e = e[0];
        // A = 30 alerts / 8 after-days (5 + 3); B = 20 / 10 before-days (4 + 6).
        assert_eq!((e.alerts_after, e.alerts_before), (30, 20));
        assert!((e.a - 3750.0).abs() < 1e-9 && (e.b - 2000.0).abs() < 1e-9);
        // Control: its day-8 alert weighted by the 2 treated after-days on day 8 of 8; its
        // day-2 alert by the 2 treated before-days on day 2 of 10.
        assert!((e.c_after - 2500.0).abs() < 1e-9, "{e:?}");
        assert!((e.c_before - 2000.0).abs() < 1e-9, "{e:?}");
        // (3.75 / 2) / (2.5 / 2) - 1 = 0.5.
        assert!((e.ratio().unwrap() - 0.5).abs() < 1e-12);
        // Pre-period halves: device 1 days 0-1 | 2-3, device 2 days 0-2 | 3-5. B1 = 10 / 5,
        // B2 = 10 / 5, the control's day 2 weighs 1 of 5 in each: no pre-trend.
        assert!(e.pretrend.unwrap().abs() < 1e-12);
        // Treated alerts after and before: device 1 raised 30 of 50; the top 1% of 2 devices
        // is one device. The control's one device raises all of its alerts.
        assert!((e.top1pct_share - 0.6).abs() < 1e-12);
        assert_eq!(e.control_top1pct_share, 1.0);
        assert_eq!(e.verdict, Verdict::Dominated);
    }

    #[test]
    fn the_bootstrap_resamples_devices_and_is_deterministic() {
        let (design, cells) = small();
        let e = effects(&design, cells.clone(), None)[0];
        // Two treated devices: resampled as (2, 0), (1, 1) or (0, 2). Only device 1: A =
        // 40/10, B = 20/8, so (4 / 2.5) / 1.25 - 1 = 0.28; both: 0.5; only device 2: A =
        // 20/6, B = 20/12, so 2 / 1.25 - 1 = 0.6. The one control is always drawn once.
        let mut per: BTreeMap<AlertCode, CodeCells> = BTreeMap::new();
        for ((i, code), v) in cells {
            let c = per.entry(code).or_default();
            if i & CONTROL_BIT != 0 {
                c.control.push((i & !CONTROL_BIT, v));
            } else {
                c.treated.push((i, v));
            }
        }
        for c in per.values_mut() {
            c.treated.sort_unstable_by_key(|x| x.0);
        }
        let per: Vec<(AlertCode, CodeCells)> = per.into_iter().collect();
        let draws = bootstrap(&design, &per, 400, SEED);
        let eff = &draws[0].0;
        assert_eq!(eff.len(), 400);
        let count = |x: f64| eff.iter().filter(|d| (*d - x).abs() < 1e-9).count();
        let (lo, mid, hi) = (count(0.28), count(0.5), count(0.6));
        assert_eq!(lo + mid + hi, 400, "{eff:?}");
        // Binomial(2, 1/2): about 100, 200, 100.
        assert!((60..140).contains(&lo) && (150..250).contains(&mid) && (60..140).contains(&hi));
        assert_eq!(
            bootstrap(&design, &per, 400, SEED),
            draws,
            "same seed, same draws"
        );
        assert_ne!(bootstrap(&design, &per, 400, SEED + 1), draws);
        // The interval is the 2.5th and 97.5th percentiles of the draws.
        let ci = e.ci.unwrap();
        assert!(
            (ci.0 - 0.28).abs() < 1e-9 && (ci.1 - 0.6).abs() < 1e-9,
            "{ci:?}"
        );
    }

    #[test]
    fn resample_counts_add_up_and_splitmix_is_fixed() {
        let mut r = SplitMix(1);
        let mut w = Vec::new();
        r.resample(50, &mut w);
        assert_eq!(w.iter().sum::<u32>(), 50);
        // splitmix64 of seed 0: the reference sequence's first value.
        assert_eq!(SplitMix(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn top1pct_share_by_hand() {
        let cells = vec![
            (0, [10.0, 0.0, 0.0, 0.0]),
            (1, [0.0, 5.0, 5.0, 0.0]),
            (2, [1.0, 0.0, 0.0, 0.0]),
            (3, [1.0, 1.0, 0.0, 1.0]),
            (4, [1.0, 0.0, 0.0, 0.0]),
            (5, [1.0, 0.0, 0.0, 0.0]),
        ];
        // 20 alerts after and before (the halves of the pre-period are not added again).
        // 200 devices: the top 1% is 2 devices, 15 of 20.
        assert!((top1pct_share(&cells, 200) - 0.75).abs() < 1e-12);
        // 100 (or fewer): one device, 10 of 20.
        assert!((top1pct_share(&cells, 100) - 0.5).abs() < 1e-12);
        assert!((top1pct_share(&cells, 3) - 0.5).abs() < 1e-12);
        // 301 devices: 4 of them, 18 of 20.
        assert!((top1pct_share(&cells, 301) - 0.9).abs() < 1e-12);
        assert_eq!(top1pct_share(&[], 100), 0.0);
    }

    #[test]
    fn verdict_rules() {
        let clear = (Some(-0.5), Some((-0.6, -0.4)));
        assert_eq!(verdict(clear.0, clear.1, None, 0.1, 1), Verdict::Clear);
        // A few devices dominate: whatever the interval says.
        assert_eq!(verdict(clear.0, clear.1, None, 0.5, 1), Verdict::Dominated);
        // The pre-trend's interval excludes 0.
        let pre = Some((0.01, 0.2));
        assert_eq!(
            verdict(clear.0, clear.1, pre, 0.1, 1),
            Verdict::PreTrendsDiffer
        );
        assert_eq!(
            verdict(clear.0, clear.1, Some((-0.1, 0.2)), 0.1, 1),
            Verdict::Clear
        );
        // The interval holds 0, or there is none.
        assert_eq!(
            verdict(Some(0.1), Some((-0.05, 0.3)), None, 0.1, 1),
            Verdict::NoClear
        );
        assert_eq!(verdict(Some(0.1), None, None, 0.1, 1), Verdict::NoClear);
        assert_eq!(verdict(None, None, None, 0.0, 1), Verdict::NoClear);
        // -10% in [-19%, -1%]: clear alone (|ln 0.9| = 0.105 >= 1.96 x 0.0512), not among 20
        // codes (3.02 x 0.0512 = 0.155).
        let weak = (Some(-0.1), Some((-0.19, -0.01)));
        assert_eq!(verdict(weak.0, weak.1, None, 0.1, 1), Verdict::Clear);
        assert_eq!(verdict(weak.0, weak.1, None, 0.1, 20), Verdict::NoClear);
        assert_eq!(Verdict::Clear.name(), "clear effect");
        assert_eq!(Verdict::PreTrendsDiffer.name(), "pre-trends differ");
    }

    #[test]
    fn normal_quantiles() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(1.0 - 0.025 / 20.0) - 3.023_341_1).abs() < 1e-6);
        assert!((normal_quantile(0.001) + 3.090_232_3).abs() < 1e-6);
    }

    #[test]
    fn codes_filter_and_minimum_alerts() {
        let (design, cells) = small();
        let only = CodeFilter {
            codes: vec![AlertCode::device(0x8F84)],
            categories: vec![],
        };
        assert!(effects(&design, cells.clone(), Some(&only)).is_empty());
        // The same alerts counted once each (5 treated alerts) are too few.
        let few: Cells = cells
            .into_iter()
            .map(|(k, v)| (k, v.map(|x| x / 10.0)))
            .collect();
        assert!(effects(&design, few, None).is_empty());
    }
}
