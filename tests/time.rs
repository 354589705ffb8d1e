//! Time: `--by hour` and `--tz` (days and hours cut in an IANA zone, shown with their offsets).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::io::Write;

/// One ESME alert every 15 minutes, UTC, over `[from, to)` (days as YYYY-MM-DD, UTC).
fn quarter_hourly(dir: &std::path::Path, days: &[&str]) -> std::path::PathBuf {
    let p = dir.join("alerts.csv");
    let mut f = std::fs::File::create(&p).unwrap();
    writeln!(f, "timestamp,device_id,alert_code").unwrap();
    for day in days {
        for h in 0..24 {
            for m in [0, 15, 30, 45] {
                writeln!(f, "{day}T{h:02}:{m:02}:00Z,00-DB-12-34-56-78-90-A0,81B8").unwrap();
            }
        }
    }
    p
}

fn hours_per_day(csv: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let day = line.split(',').next().unwrap().to_string();
        *out.entry(day).or_default() += 1;
    }
    out
}

#[test]
fn london_days_have_23_and_25_hours_when_the_clocks_change() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = quarter_hourly(
        dir.path(),
        &[
            "2024-03-30",
            "2024-03-31",
            "2024-04-01",
            "2024-10-26",
            "2024-10-27",
            "2024-10-28",
        ],
    );
    let inv = data("hand/inventory.csv");
    let r = run(&[
        "alerts",
        s(&alerts),
        "-i",
        s(&inv),
        "--by",
        "day,hour",
        "--tz",
        "Europe/London",
        "--since",
        "2024-03-31",
        "--until",
        "2024-10-27",
        "-f",
        "csv",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let hours = hours_per_day(&r.stdout);
    assert_eq!(hours["2024-03-31"], 23, "clocks go forward: {hours:?}");
    assert_eq!(hours["2024-10-27"], 25, "clocks go back: {hours:?}");
    assert_eq!(hours["2024-04-01"], 24);
    // The repeated hour is two rows, told apart by the offset; each hour holds 4 alerts.
    assert!(
        r.stdout.contains("2024-10-27,2024-10-27T01:00+01:00,4,"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2024-10-27,2024-10-27T01:00+00:00,4,"),
        "{}",
        r.stdout
    );
    // Rates per hour: 4 alerts on 1 installed device -> 4000 per 1,000 per hour.
    assert!(
        r.stdout
            .lines()
            .next()
            .unwrap()
            .ends_with("installed_devices,per_1000_per_hour")
    );
    assert!(r.stderr.contains("tz Europe/London"), "{}", r.stderr);
    // In UTC every day has 24 hours.
    let u = run(&[
        "alerts",
        s(&alerts),
        "-i",
        s(&inv),
        "--by",
        "day,hour",
        "-f",
        "csv",
    ]);
    assert!(hours_per_day(&u.stdout).values().all(|&n| n == 24));
}

#[test]
fn a_day_in_london_starts_an_hour_earlier_in_summer() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = quarter_hourly(dir.path(), &["2024-07-01", "2024-07-02"]);
    let inv = data("hand/inventory.csv");
    let r = run(&[
        "alerts",
        s(&alerts),
        "-i",
        s(&inv),
        "--by",
        "day",
        "--tz",
        "Europe/London",
        "-f",
        "json",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["filters"]["tz"], "Europe/London");
    let days: Vec<(String, u64)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["day"].as_str().unwrap().to_string(),
                r["alerts"].as_u64().unwrap(),
            )
        })
        .collect();
    // UTC 07-01 00:00..23:00 local is 01:00 on 07-01 to 00:00 on 07-02 (BST).
    assert_eq!(
        days,
        vec![
            ("2024-07-01".to_string(), 92),
            ("2024-07-02".to_string(), 96),
            ("2024-07-03".to_string(), 4)
        ]
    );
    let bad = run(&["alerts", s(&alerts), "-i", s(&inv), "--tz", "Mars/Olympus"]);
    assert_eq!(bad.status, 2);
    assert!(
        bad.stderr.contains("not an IANA time zone"),
        "{}",
        bad.stderr
    );
}
