//! What a weekly briefing picks out of the analyses: the periods it sets side by side, and the
//! groups that rose or fell most beyond noise.
//!
//! The movers come from a [`Comparison`](super::compare::Comparison): a group is a mover only
//! when its change is beyond Poisson noise at the comparison's false discovery rate, so the
//! briefing never leads with a change a quiet week explains. Among those, the largest
//! relative changes come first; ties (and infinite changes from a zero base) fall back on the
//! alert count.

use super::compare::{ComparedGroup, Comparison};
use crate::model::Day;

/// The recent period and the one before it: the last `days` days of `period` and the `days`
/// before them; for a period shorter than two such spans, its second half and its first.
/// `None` for a period of one day.
pub fn recent_periods(period: (Day, Day), days: Day) -> Option<((Day, Day), (Day, Day))> {
    let (first, last) = period;
    let len = last - first + 1;
    if len < 2 {
        return None;
    }
    let span = days.min(len / 2).max(1);
    let now = (last - span + 1, last);
    let before = (now.0 - span, now.0 - 1);
    Some((now, before))
}

/// Which way a mover went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Rising,
    Falling,
}

/// The groups whose rate moved in `direction` beyond noise, with at least `min_alerts` alerts in
/// the two periods together, largest change first; at most `n`.
pub fn movers(
    c: &Comparison,
    direction: Direction,
    min_alerts: u64,
    n: usize,
) -> Vec<&ComparedGroup> {
    let mut out: Vec<&ComparedGroup> = c
        .groups
        .iter()
        .filter(|g| g.beyond_noise && g.alerts + g.base_alerts >= min_alerts)
        .filter(|g| match (direction, g.change) {
            (Direction::Rising, Some(ch)) => ch > 0.0,
            (Direction::Falling, Some(ch)) => ch < 0.0,
            _ => false,
        })
        .collect();
    out.sort_by(|a, b| {
        let (x, y) = (a.change.unwrap_or(0.0), b.change.unwrap_or(0.0));
        let order = match direction {
            Direction::Rising => y.total_cmp(&x),
            Direction::Falling => x.total_cmp(&y),
        };
        order.then((b.alerts + b.base_alerts).cmp(&(a.alerts + a.base_alerts)))
    });
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::alerts::GroupKey;

    fn group(alerts: u64, base: u64, change: f64, beyond: bool) -> ComparedGroup {
        ComparedGroup {
            key: GroupKey::default(),
            alerts,
            exposure: Some(1000),
            per_1000: None,
            base_alerts: base,
            base_exposure: Some(1000),
            base_per_1000: None,
            change: Some(change),
            ci_low: None,
            ci_high: None,
            p: None,
            q: None,
            beyond_noise: beyond,
        }
    }

    #[test]
    fn the_recent_week_and_the_week_before() {
        assert_eq!(recent_periods((0, 59), 7), Some(((53, 59), (46, 52))));
        // Ten days: the last five against the five before.
        assert_eq!(recent_periods((10, 19), 7), Some(((15, 19), (10, 14))));
        assert_eq!(recent_periods((3, 4), 7), Some(((4, 4), (3, 3))));
        assert_eq!(recent_periods((3, 3), 7), None);
    }

    #[test]
    fn movers_are_beyond_noise_and_largest_first() {
        let c = Comparison {
            period: None,
            base_period: None,
            groups: vec![
                group(200, 100, 1.0, true),
                group(30, 10, 2.0, true),
                group(900, 100, 8.0, false), // noise: never a mover
                group(5, 1, 4.0, true),      // too few alerts
                group(50, 100, -0.5, true),
                group(10, 100, -0.9, true),
            ],
        };
        let rising: Vec<f64> = movers(&c, Direction::Rising, 20, 5)
            .iter()
            .map(|g| g.change.unwrap())
            .collect();
        assert_eq!(rising, vec![2.0, 1.0]);
        let falling: Vec<f64> = movers(&c, Direction::Falling, 20, 1)
            .iter()
            .map(|g| g.change.unwrap())
            .collect();
        assert_eq!(falling, vec![-0.9]);
    }
}
