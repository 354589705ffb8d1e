//! Firmware as of the day: alerts credited to the version their device ran when it raised
//! them, and installed bases counting each device's days on each version.
//!
//! Hand fixture (tests/data/hand) plus tests/data/firmware: A3 ran 1.9.0 until 2024-01-02
//! 12:30Z, then 2.0.1 (the inventory's, end-of-period, version). 81B8 per version over
//! 2024-01-01..02:
//!   1.2.0: A0's 2 alerts; A0 on both days (A5 arrives 01-03) = 2 device-days -> 1000
//!   1.9.0: A3's alert at 12:00:00.250 on 01-02 = 1; A3 (no install date) on 1.9.0 on 01-01
//!          only (the change day belongs to the new version) = 1 device-day -> 1000
//!   2.0.1: A2's 1 + A3's 3 at 13:00 = 4; A2 from 01-02 and A3 on 01-02 = 2 -> 2000
//! Without the evidence, 2.0.1 takes all 5 over 3 device-days (A2 01-02, A3 both days).

mod common;
use common::*;
use std::collections::BTreeMap;

fn by_firmware(extra: &[&str]) -> (BTreeMap<String, Vec<String>>, Run) {
    let inv = data("hand/inventory.csv");
    let xml = data("hand/alerts.xml");
    let mut args = vec![
        "alerts",
        s(&xml),
        "-i",
        s(&inv),
        "--by",
        "firmware",
        "--codes",
        "81B8",
        "-f",
        "csv",
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    let rows = r
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<String> = l.split(',').map(String::from).collect();
            (f[0].clone(), f[1..].to_vec())
        })
        .collect();
    (rows, r)
}

#[test]
fn alerts_before_an_upgrade_are_credited_to_the_version_run_then() {
    let outcomes = data("firmware/outcomes.csv");
    let campaign = data("firmware/campaign.csv");
    let (rows, r) = by_firmware(&["--outcomes", s(&outcomes), "--campaign", s(&campaign)]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // alerts, records, alerting devices, exact, device-days, rate
    let row = |v: &str| rows.get(v).map(|x| x.join(",")).unwrap_or_default();
    assert_eq!(row("1.2.0"), "2,2,1,true,2,1000");
    assert_eq!(row("1.9.0"), "1,1,1,true,1,1000");
    assert_eq!(row("2.0.1"), "4,2,2,true,2,2000");
    assert!(
        r.stderr
            .contains("firmware history: 1 devices changed version"),
        "{}",
        r.stderr
    );
}

#[test]
fn without_evidence_the_inventory_version_holds_throughout() {
    let (rows, r) = by_firmware(&[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(rows["2.0.1"][..5].join(","), "5,3,2,true,3");
    assert!(!rows.contains_key("1.9.0"));
}

#[test]
fn a_firmware_filter_follows_the_history() {
    let outcomes = data("firmware/outcomes.csv");
    let campaign = data("firmware/campaign.csv");
    let inv = data("hand/inventory.csv");
    let xml = data("hand/alerts.xml");
    let r = run(&[
        "alerts",
        s(&xml),
        "-i",
        s(&inv),
        "--by",
        "region",
        "--firmware",
        "1.9.0",
        "--outcomes",
        s(&outcomes),
        "--campaign",
        s(&campaign),
        "-f",
        "csv",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // Only A3's alert before its upgrade, over its one day on 1.9.0.
    assert_eq!(r.stdout.lines().nth(1), Some("South,1,1,1,true,1,1000"));
}
