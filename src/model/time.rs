//! UTC timestamps as milliseconds since the Unix epoch, and calendar days.
//!
//! Parsing is hand-written on bytes (no allocation, no time-zone database): inputs are ISO 8601
//! date-times as DUIS and exports write them, `2024-03-01T12:00:00Z`, with `Z`, a `+hh:mm`/`-hhmm`
//! offset or none (taken as UTC), a `T` or a space between date and time, and any number of
//! fractional digits (kept to the millisecond). A bare date means midnight UTC. A leap second,
//! `23:59:60`, is read as `23:59:59` (UTC as computers keep it has no 61st second; reading it
//! as the next day's midnight would move the record to another day).
//!
//! Records must also fall in a plausible window (`check_window`): not before 2000-01-01 (no
//! smart meter spoke DUIS before it) and not more than a day after the run; both bounds can be
//! set (`set_window`). A record outside it is a reject, not a day in 0000 or 9999 that would
//! stretch every period and every denominator.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// Days since 1970-01-01 (UTC). 2024-01-01 is 19723.
pub type Day = i32;

const MS_PER_DAY: i64 = 86_400_000;

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// The (year, month, day) of a day number.
pub fn civil_from_days(z: Day) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day a timestamp falls on, in UTC.
#[inline]
pub fn day_of(ms: Millis) -> Day {
    ms.div_euclid(MS_PER_DAY) as Day
}

/// Midnight UTC at the start of a day.
pub fn day_start(day: Day) -> Millis {
    day as i64 * MS_PER_DAY
}

/// Day of the week, 0 = Monday .. 6 = Sunday.
pub fn weekday(day: Day) -> u32 {
    // 1970-01-01 was a Thursday (3).
    (day + 3).rem_euclid(7) as u32
}

#[inline]
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let (mut v, mut bad) = (0u32, false);
    for &b in part {
        let d = b.wrapping_sub(b'0');
        bad |= d > 9;
        v = v * 10 + d as u32;
    }
    (!bad).then_some(v)
}

/// Parses `YYYY-MM-DD` into a day number.
pub fn parse_date(s: &[u8]) -> Option<Day> {
    let s = s.trim_ascii();
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y as i32, m) {
        return None;
    }
    // DUIS writes xs:date values with a zone (`2025-12-28Z`); the zone of a date is ignored.
    match &s[10..] {
        b"" | b"Z" => {}
        rest if rest.len() == 6 && (rest[0] == b'+' || rest[0] == b'-') => {}
        _ => return None,
    }
    Some(days_from_civil(y as i32, m, d))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `days_from_civil` with a one-entry per-thread cache: records come in time order often enough
/// that most share the previous record's date.
#[inline]
fn cached_day(y: u32, m: u32, d: u32) -> Day {
    use std::cell::Cell;
    thread_local!(static LAST: Cell<(u32, Day)> = const { Cell::new((0, 0)) });
    let k = y << 9 | m << 5 | d;
    LAST.with(|c| {
        let (key, day) = c.get();
        if key == k {
            return day;
        }
        let day = days_from_civil(y as i32, m, d);
        c.set((k, day));
        day
    })
}

/// 2000-01-01T00:00:00Z: the default earliest plausible record time.
pub const EARLIEST_DEFAULT: Millis = 946_684_800_000;

static EARLIEST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(EARLIEST_DEFAULT);
/// `i64::MIN`: not set, a day after the run's start.
static LATEST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);

fn latest_default() -> Millis {
    static AT: std::sync::OnceLock<Millis> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0);
        now + MS_PER_DAY
    })
}

/// Sets the plausible window of record times for the process (`None`: the default bound).
/// `latest` is inclusive.
pub fn set_window(earliest: Option<Millis>, latest: Option<Millis>) {
    use std::sync::atomic::Ordering::Relaxed;
    EARLIEST.store(earliest.unwrap_or(EARLIEST_DEFAULT), Relaxed);
    LATEST.store(latest.unwrap_or(i64::MIN), Relaxed);
}

/// The plausible window: first and last millisecond accepted.
#[inline]
pub fn window() -> (Millis, Millis) {
    use std::sync::atomic::Ordering::Relaxed;
    let latest = match LATEST.load(Relaxed) {
        i64::MIN => latest_default(),
        l => l,
    };
    (EARLIEST.load(Relaxed), latest)
}

/// Whether a record time is inside the plausible window (see the module docs). Inlined where
/// the reason is not needed: `check_window` was a call a record, its `Result` returned through
/// memory (25 instructions on the CSV hot path, `callgrind`).
#[inline(always)]
pub fn in_window(ts: Millis) -> bool {
    let (earliest, latest) = window();
    ts >= earliest && ts <= latest
}

/// `Err(reason)` when a record time is outside the plausible window (see the module docs).
#[inline]
pub fn check_window(ts: Millis) -> Result<(), String> {
    if in_window(ts) {
        return Ok(());
    }
    let (earliest, latest) = window();
    Err(if ts < earliest {
        format!(
            "before {} (the earliest plausible time; set another with --earliest)",
            format_day(day_of(earliest))
        )
    } else {
        format!(
            "after {} (more than a day after the run, or after --latest)",
            format_timestamp(latest)
        )
    })
}

/// Parses an ISO 8601 date-time into UTC milliseconds. See the module docs for what is accepted.
///
/// Records come in time order, a few hundred a minute in a national feed, so most share the
/// previous record's minute: the usual `YYYY-MM-DDTHH:MM:SSZ` whose first 16 bytes equal the
/// last such time's (kept per thread) only has its seconds read. Any other text, or another
/// minute, is read in full (`parse_timestamp_in_full`); the answer is the same either way.
#[inline]
pub fn parse_timestamp(s: &[u8]) -> Option<Millis> {
    // The common case inline, the rest out of line: as one function the call and its frame
    // were a third of a timestamp's instructions.
    if let Some(head) = minute_of(s)
        && let Some((cached, start)) = MINUTE.get()
        && cached == head
    {
        let sec = digits(s, 17, 2)?;
        return (sec <= 60).then_some(start + sec.min(59) as Millis * 1000);
    }
    parse_timestamp_and_remember(s)
}

std::thread_local!(
    /// The minute of the last `YYYY-MM-DDTHH:MM:SSZ` read in full on this thread: its first 16
    /// bytes (`minute_of`) and its start.
    static MINUTE: std::cell::Cell<Option<(u128, Millis)>> = const { std::cell::Cell::new(None) }
);

/// `parse_timestamp` of a text that is not in the last minute: read in full, and its minute
/// remembered when it has the usual shape.
#[inline(never)]
fn parse_timestamp_and_remember(s: &[u8]) -> Option<Millis> {
    let s = s.trim_ascii();
    let ts = parse_timestamp_in_full(s)?;
    if let Some(head) = minute_of(s) {
        let sec = (ts / 1000).rem_euclid(60);
        MINUTE.set(Some((head, ts - sec * 1000)));
    }
    Some(ts)
}

/// The first 16 bytes of a 20-byte `YYYY-MM-DDTHH:MM:SSZ` (`Z` or `z`, `:` before the seconds)
/// as one integer: the text that fixes the minute. `None` for any other shape.
#[inline]
fn minute_of(s: &[u8]) -> Option<u128> {
    match s {
        [head @ .., b':', _, _, b'Z' | b'z'] if head.len() == 16 => {
            Some(u128::from_le_bytes(head.try_into().ok()?))
        }
        _ => None,
    }
}

/// Parses a timestamp without the minute cache (see `parse_timestamp`).
fn parse_timestamp_in_full(s: &[u8]) -> Option<Millis> {
    if s.len() == 10 {
        return parse_date(s).map(day_start);
    }
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if s[10] != b'T' && s[10] != b' ' && s[10] != b't' {
        return None;
    }
    let (y, mo, d) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    let (h, mi, sec) = (digits(s, 11, 2)?, digits(s, 14, 2)?, digits(s, 17, 2)?);
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y as i32, mo)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    let sec = sec.min(59);
    let mut i = 19;
    let mut ms = 0u32;
    if s.get(i) == Some(&b'.') || s.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        let mut scale = 100;
        while i < s.len() && s[i].is_ascii_digit() {
            ms += (s[i] - b'0') as u32 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_min: i64 = match &s[i..] {
        b"" | b"Z" | b"z" => 0,
        rest if rest[0] == b'+' || rest[0] == b'-' => {
            let sign = if rest[0] == b'-' { -1 } else { 1 };
            let (oh, om) = match rest.len() {
                6 if rest[3] == b':' => (digits(rest, 1, 2)?, digits(rest, 4, 2)?),
                5 => (digits(rest, 1, 2)?, digits(rest, 3, 2)?),
                3 => (digits(rest, 1, 2)?, 0),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh as i64 * 60 + om as i64)
        }
        _ => return None,
    };
    let day = cached_day(y, mo, d) as i64;
    let secs = day * 86_400 + h as i64 * 3600 + mi as i64 * 60 + sec as i64 - offset_min * 60;
    Some(secs * 1000 + ms as i64)
}

/// `YYYY-MM-DD` of a day.
pub fn format_day(day: Day) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a timestamp.
pub fn format_timestamp(ms: Millis) -> String {
    let day = day_of(ms);
    let rem = ms - day_start(day);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{}T{h:02}:{mi:02}:{s:02}.{milli:03}Z", format_day(day))
}

/// `YYYY-MM-DDTHH:MM:SSZ` into a fixed buffer (no allocation per record).
pub fn timestamp_bytes(ms: Millis) -> [u8; 20] {
    let day = day_of(ms);
    let (y, mo, d) = civil_from_days(day);
    let s = (ms - day_start(day)) / 1000;
    let mut b = *b"0000-00-00T00:00:00Z";
    let put = |b: &mut [u8; 20], at: usize, v: u32, n: usize| {
        let mut v = v;
        for i in (0..n).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut b, 0, y as u32, 4);
    put(&mut b, 5, mo, 2);
    put(&mut b, 8, d, 2);
    put(&mut b, 11, (s / 3600) as u32, 2);
    put(&mut b, 14, (s / 60 % 60) as u32, 2);
    put(&mut b, 17, (s % 60) as u32, 2);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timestamps_format_like_iso8601() {
        let ms = parse_timestamp(b"2024-02-29T23:59:58Z").unwrap();
        assert_eq!(&timestamp_bytes(ms), b"2024-02-29T23:59:58Z");
    }

    #[test]
    fn known_values() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 1, 1), 19723);
        assert_eq!(
            parse_timestamp(b"2024-01-01T00:00:00Z"),
            Some(19723 * MS_PER_DAY)
        );
        assert_eq!(
            parse_timestamp(b"2022-08-17T15:45:42.790Z"),
            Some(1_660_751_142_790)
        );
        // 2 fractional digits as in the DUIS request templates, 6 as in some exports.
        assert_eq!(
            parse_timestamp(b"2030-01-15T09:00:00.00Z"),
            parse_timestamp(b"2030-01-15T09:00:00Z")
        );
        assert_eq!(
            parse_timestamp(b"2024-01-01T00:00:00.123456Z"),
            Some(19723 * MS_PER_DAY + 123)
        );
        // Offsets move the instant; a timestamp near midnight changes day.
        assert_eq!(
            parse_timestamp(b"2024-01-01T00:30:00+01:00"),
            parse_timestamp(b"2023-12-31T23:30:00Z")
        );
        assert_eq!(
            parse_timestamp(b"2024-01-01T00:30:00-0130"),
            parse_timestamp(b"2024-01-01T02:00:00Z")
        );
        assert_eq!(
            parse_timestamp(b"2024-01-01 12:00:00"),
            parse_timestamp(b"2024-01-01T12:00:00Z")
        );
        assert_eq!(
            parse_timestamp(b"2024-02-29"),
            Some(days_from_civil(2024, 2, 29) as i64 * MS_PER_DAY)
        );
        assert_eq!(
            parse_date(b"2025-12-28Z"),
            Some(days_from_civil(2025, 12, 28))
        );
        assert_eq!(
            weekday(days_from_civil(2024, 1, 1)),
            0,
            "2024-01-01 was a Monday"
        );
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            &b""[..],
            b"2024-13-01T00:00:00Z",
            b"2023-02-29T00:00:00Z",
            b"2024-01-01T24:00:00Z",
            b"2024-01-01T00:00:00.Z",
            b"2024-01-01T00:00:00+25:00",
            b"2024-01-01X00:00:00Z",
            b"2024/01/01T00:00:00Z",
            b"2024-01-01T00:00:00Zjunk",
            b"yesterday",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        /// The minute cache never changes an answer: runs of times that share a minute, with
        /// single bytes damaged anywhere (seconds, separators, the minute's own text).
        #[test]
        fn the_minute_cache_answers_as_the_full_parse(
            steps in proptest::collection::vec((0i64..200, 0usize..24, any::<u8>(), any::<bool>()), 1..300),
            start in 0i64..4_000_000_000,
        ) {
            let mut t = start * 1000;
            for (advance, at, byte, damage) in steps {
                t += advance * 1000;
                let mut s = format_timestamp(t).into_bytes();
                s.drain(19..23); // `.mmm`: the usual `...:SSZ` shape
                if damage && at < s.len() {
                    s[at] = byte;
                }
                prop_assert_eq!(parse_timestamp(&s), parse_timestamp_in_full(s.trim_ascii()), "{:?}", String::from_utf8_lossy(&s));
            }
        }

        #[test]
        fn civil_round_trip(day in -200_000i32..200_000) {
            let (y, m, d) = civil_from_days(day);
            prop_assert_eq!(days_from_civil(y, m, d), day);
        }

        #[test]
        fn format_parse_round_trip(ms in 0i64..8_000_000_000_000) {
            let s = format_timestamp(ms);
            prop_assert_eq!(parse_timestamp(s.as_bytes()), Some(ms));
        }

        #[test]
        fn offsets_agree(ms in 0i64..4_000_000_000_000, off_min in -1439i64..=1439i64) {
            // The same instant written in local time with an offset parses to the same value.
            let local = ms - ms % 1000 + off_min * 60_000;
            let base = format_timestamp(local);
            let sign = if off_min < 0 { '-' } else { '+' };
            let a = off_min.abs();
            let s = format!("{}{}{:02}:{:02}", &base[..base.len() - 1], sign, a / 60, a % 60);
            prop_assert_eq!(parse_timestamp(s.as_bytes()), Some(ms - ms % 1000));
        }

        #[test]
        fn never_panics(s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_timestamp(&s);
        }
    }

    #[test]
    fn leap_second_is_the_last_second_of_its_minute() {
        assert_eq!(
            parse_timestamp(b"2016-12-31T23:59:60Z"),
            parse_timestamp(b"2016-12-31T23:59:59Z")
        );
    }

    #[test]
    fn the_plausible_window() {
        let (e, l) = window();
        assert_eq!(e, EARLIEST_DEFAULT);
        assert!(l > parse_timestamp(b"2026-01-01").unwrap());
        assert!(check_window(parse_timestamp(b"2000-01-01T00:00:00Z").unwrap()).is_ok());
        let r = check_window(parse_timestamp(b"1999-12-31T23:59:59Z").unwrap()).unwrap_err();
        assert!(r.contains("before 2000-01-01"), "{r}");
        let r = check_window(parse_timestamp(b"9999-12-31T00:00:00Z").unwrap()).unwrap_err();
        assert!(r.contains("more than a day after the run"), "{r}");
        assert!(check_window(parse_timestamp(b"0000-01-01T00:00:00Z").unwrap()).is_err());
    }
}
