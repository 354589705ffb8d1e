//! The clock days and hours are cut by: UTC (the default), or an IANA time zone such as
//! `Europe/London` (`--tz`), so that a day is the analyst's day and an incident's hours read as
//! the operations room saw them.
//!
//! A zone's UTC offsets are looked up once, when the clock is made, as a table of transitions
//! (from the embedded time zone database, so no machine's zoneinfo is needed); a timestamp's
//! local time is then a binary search and an addition, cheap enough for the fold's hot loop.
//! An hour bucket is an absolute hour (hours since 1970 UTC), shown as local time with its offset,
//! so the day clocks go back has 25 distinct hours and the day they go forward 23.

use super::time::{Day, Millis, day_of, format_day};

const HOUR_MS: i64 = 3_600_000;

/// Hours since 1970-01-01T00:00Z: an hour bucket.
pub type Hour = i32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    /// `UTC` or the zone's IANA name.
    name: String,
    /// (UTC millisecond from which it holds, offset in milliseconds), sorted; empty for UTC.
    offsets: Vec<(Millis, i64)>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::utc()
    }
}

impl Clock {
    pub fn utc() -> Clock {
        Clock {
            name: "UTC".into(),
            offsets: Vec::new(),
        }
    }

    /// The clock of an IANA time zone; the error names the zone and says what is expected.
    pub fn zone(name: &str) -> Result<Clock, String> {
        if name.eq_ignore_ascii_case("utc") || name == "Z" {
            return Ok(Clock::utc());
        }
        let tz = jiff::tz::TimeZone::get(name)
            .map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Europe/London, UTC)"))?;
        // From 1990 (before any smart-meter data) to 2100, every change of offset.
        let start = jiff::Timestamp::from_second(631_152_000).expect("1990 is a valid time");
        let end = 4_102_444_800_000i64; // 2100-01-01
        let mut offsets = vec![(i64::MIN, tz.to_offset(start).seconds() as i64 * 1000)];
        for t in tz.following(start) {
            let at = t.timestamp().as_millisecond();
            if at >= end {
                break;
            }
            offsets.push((at, t.offset().seconds() as i64 * 1000));
        }
        Ok(Clock {
            name: tz.iana_name().unwrap_or(name).to_string(),
            offsets,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_utc(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The offset from UTC at `ts`, in milliseconds.
    #[inline]
    pub fn offset(&self, ts: Millis) -> i64 {
        if self.offsets.is_empty() {
            return 0;
        }
        let i = self.offsets.partition_point(|o| o.0 <= ts);
        self.offsets[i.max(1) - 1].1
    }

    /// The local day of `ts`.
    #[inline]
    pub fn day(&self, ts: Millis) -> Day {
        if self.offsets.is_empty() {
            day_of(ts)
        } else {
            day_of(ts + self.offset(ts))
        }
    }

    /// The hour bucket of `ts` (absolute: the same in every zone).
    #[inline]
    pub fn hour(&self, ts: Millis) -> Hour {
        ts.div_euclid(HOUR_MS) as Hour
    }

    /// An hour bucket as local time with its offset: `2024-10-27T01:00+01:00`.
    pub fn format_hour(&self, hour: Hour) -> String {
        let ts = hour as i64 * HOUR_MS;
        let offset = self.offset(ts);
        let local = ts + offset;
        let day = day_of(local);
        let h = (local - day as i64 * 86_400_000) / HOUR_MS;
        let m = offset.abs() / 60_000;
        let sign = if offset < 0 { '-' } else { '+' };
        format!(
            "{}T{h:02}:00{sign}{:02}:{:02}",
            format_day(day),
            m / 60,
            m % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::{day_start, parse_date};

    fn hours_of_day(clock: &Clock, date: &str) -> usize {
        // Every UTC hour from two days before to two days after; count those on the local day.
        let day = parse_date(date.as_bytes()).unwrap();
        let from = day_start(day - 2) / HOUR_MS;
        let to = day_start(day + 2) / HOUR_MS;
        (from..to)
            .filter(|&h| clock.day(h * HOUR_MS) == day)
            .count()
    }

    #[test]
    fn london_has_23_and_25_hour_days() {
        let london = Clock::zone("Europe/London").unwrap();
        assert_eq!(hours_of_day(&london, "2024-03-31"), 23, "clocks go forward");
        assert_eq!(hours_of_day(&london, "2024-10-27"), 25, "clocks go back");
        assert_eq!(hours_of_day(&london, "2024-06-01"), 24);
        assert_eq!(hours_of_day(&Clock::utc(), "2024-03-31"), 24);
    }

    #[test]
    fn local_days_and_hours_with_offsets() {
        let london = Clock::zone("Europe/London").unwrap();
        // 2024-07-01T23:30Z is 00:30 on 2 July in London (BST, +01:00).
        let ts = day_start(parse_date(b"2024-07-01").unwrap()) + 23 * HOUR_MS + 1_800_000;
        assert_eq!(format_day(london.day(ts)), "2024-07-02");
        assert_eq!(format_day(Clock::utc().day(ts)), "2024-07-01");
        assert_eq!(
            london.format_hour(london.hour(ts)),
            "2024-07-02T00:00+01:00"
        );
        // The hour repeated when clocks go back is two buckets, told apart by the offset.
        let back = day_start(parse_date(b"2024-10-27").unwrap());
        assert_eq!(
            london.format_hour(london.hour(back)),
            "2024-10-27T01:00+01:00"
        );
        assert_eq!(
            london.format_hour(london.hour(back + HOUR_MS)),
            "2024-10-27T01:00+00:00"
        );
        assert_eq!(Clock::utc().format_hour(0), "1970-01-01T00:00+00:00");
    }

    #[test]
    fn unknown_zones_are_errors() {
        assert!(
            Clock::zone("Mars/Olympus")
                .unwrap_err()
                .contains("not an IANA time zone")
        );
        assert!(Clock::zone("utc").unwrap().is_utc());
    }
}
