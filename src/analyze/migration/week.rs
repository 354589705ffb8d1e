//! One week of a cohort's migration (`Week`, a row of the weekly series) and the settings of
//! the pace analysis (`PaceParams`): what `weekly.rs` computes and `outlook.rs` reads.

use crate::model::Day;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaceParams {
    pub min_change: f64,
    pub min_pace: f64,
    /// The forecast's pace is measured since the last pace change, over at most this many
    /// weeks.
    pub recent_weeks: usize,
    /// The first day of the period (default: the day of the log's first row); rows before it
    /// are left out.
    pub since: Option<Day>,
    /// The last day of the period (default: the day of the log's last row); rows after it are
    /// left out, and a report missing at the very end of the period is a gap too.
    pub until: Option<Day>,
}

impl Default for PaceParams {
    fn default() -> Self {
        PaceParams {
            min_change: 0.4,
            min_pace: 10.0,
            recent_weeks: 8,
            since: None,
            until: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Week {
    /// The Monday.
    pub start: Day,
    pub migrated: u64,
    pub commissioned: u64,
    pub failed: u64,
    pub cum_migrated: u64,
    pub cum_commissioned: u64,
    pub backlog: u64,
    /// Devices a week at this week's pace (per reported weekday x 5); `None` with no report.
    pub pace: Option<f64>,
    /// Weekdays of the week with a report (0 to 5).
    pub reported_weekdays: u32,
    /// Weekdays of the week with no report at all.
    pub missing_days: u32,
    /// Missing report weekdays up to the week's end: the backlog carries every device
    /// commissioned on one of them (its row is missing), so it is overstated from the first on.
    pub backlog_missing_days: u32,
    /// The estimated overstatement: on each missing day to date, the cohort's commissions per
    /// reported day of that day's week (at most the backlog).
    pub backlog_excess: f64,
}
