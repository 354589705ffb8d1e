//! End-to-end tests of `fleetwatch alerts` on the hand-counted fixtures.
//!
//! The fixtures (tests/data/hand) hold nine records; counted by hand with the inventory:
//!   2024-01-01 North ESME SMETS2 81B8: A0 at 08:00 and 09:00 (the 08:00 repeat is a duplicate)
//!              -> 2 alerts, 1 device, installed 1 (A5 arrives 01-03) -> 2000 per 1,000
//!   2024-01-01 North GSME SMETS2 8F35: A1 at 10:00+01:00 -> 1, 1, 1 -> 1000
//!   2024-01-01 South ESME SMETS1 81B8: A2 at 2024-01-02T00:30+01:00 = 01-01 23:30Z -> 1 alert;
//!              installed on 01-01 is A3 only (no install date; A2 arrives 01-02) -> 1000
//!   2024-01-02 South ESME SMETS1 81B8: A3 twice, once throttled x3 -> 4 alerts, 2 records,
//!              1 device, installed 2 -> 2000
//!   2024-01-02 4G Central CHF SMETS2 N24: DCC alert naming hub A4 -> 1000
//!   2024-01-02 Unknown 8F85: device ..FF is not in the inventory, code not in the catalogue:
//!              kept, labelled, rate n/a.
//! Totals: read 9 = accepted 8 + duplicates 1 + rejected 0; 10 alerts.

mod common;
use common::*;
use std::io::Write;

fn expected_csv() -> String {
    std::fs::read_to_string(data("hand/expected.csv")).unwrap()
}

fn alerts_csv(input: &str) -> Run {
    let inv = data("hand/inventory.csv");
    run(&["alerts", input, "--inventory", s(&inv), "--format", "csv"])
}

#[test]
fn every_format_gives_the_hand_counted_answer() {
    for f in ["alerts.csv", "alerts.jsonl", "alerts.xml"] {
        let r = alerts_csv(s(&data(&format!("hand/{f}"))));
        assert_eq!(r.status, 0, "{f}: {}", r.stderr);
        assert_eq!(r.stdout, expected_csv(), "{f}");
        assert!(
            r.stderr
                .contains("records read 9 = accepted 8 + duplicates 1 + rejected 0"),
            "{f}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("8 alert records (10 alerts)"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("1 alert records from 1 devices not in the inventory"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn golden_table_and_json() {
    let inv = data("hand/inventory.csv");
    let xml = data("hand/alerts.xml");
    let t = run(&["alerts", s(&xml), "-i", s(&inv)]);
    assert_eq!(
        t.stdout,
        std::fs::read_to_string(data("hand/expected.txt")).unwrap()
    );
    let j = run(&["alerts", s(&xml), "-i", s(&inv), "-f", "json"]);
    assert_eq!(
        j.stdout,
        std::fs::read_to_string(data("hand/expected.json")).unwrap()
    );
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["totals"]["read"], 9);
    assert_eq!(v["totals"]["duplicates"], 1);
}

/// `--no-distinct` drops the two distinct-device columns and nothing else.
#[test]
fn no_distinct_keeps_counts_and_rates() {
    let inv = data("hand/inventory.csv");
    let xml = data("hand/alerts.xml");
    let r = run(&[
        "alerts",
        s(&xml),
        "-i",
        s(&inv),
        "-f",
        "csv",
        "--no-distinct",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let without_devices: String = expected_csv()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            let at = f.len() - 4;
            f.drain(at..at + 2);
            f.join(",") + "\n"
        })
        .collect();
    assert!(without_devices.starts_with("day,region,device_type,generation,alert_code,alerts,records,installed_devices,per_1000_per_day\n"), "{without_devices}");
    assert_eq!(r.stdout, without_devices);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_multi_member_zstd_stdin_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read(data("hand/alerts.csv")).unwrap();
    // Two gzip members back to back, split mid-file on a line boundary (as `cat a.gz b.gz`).
    let cut = csv
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(4)
        .unwrap()
        .0
        + 1;
    let mut two = gzip(&csv[..cut]);
    two.extend(gzip(&csv[cut..]));
    // A misleading name: the content decides.
    std::fs::write(dir.path().join("alerts.dat"), &two).unwrap();
    let r = alerts_csv(s(&dir.path().join("alerts.dat")));
    assert_eq!(r.stdout, expected_csv(), "{}", r.stderr);

    let xml = std::fs::read(data("hand/alerts.xml")).unwrap();
    let z = zstd::encode_all(&xml[..], 3).unwrap();
    std::fs::write(dir.path().join("alerts.xml.zst"), &z).unwrap();
    let r = alerts_csv(s(&dir.path().join("alerts.xml.zst")));
    assert_eq!(r.stdout, expected_csv(), "{}", r.stderr);

    let inv = data("hand/inventory.csv");
    let r = run_in(
        dir.path(),
        &["alerts", "-", "-i", s(&inv), "-f", "csv"],
        Some(&std::fs::read(data("hand/alerts.jsonl")).unwrap()),
    );
    assert_eq!(r.stdout, expected_csv(), "{}", r.stderr);

    // A directory tree: the records split across nested files in different formats.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&csv).unwrap().lines().collect();
    std::fs::write(
        tree.join("one.csv"),
        format!("{}\n{}\n", lines[0], lines[1..5].join("\n")),
    )
    .unwrap();
    std::fs::write(
        tree.join("a/b/two.csv.gz"),
        gzip(format!("{}\n{}\n", lines[0], lines[5..].join("\n")).as_bytes()),
    )
    .unwrap();
    let r = alerts_csv(s(&tree));
    assert_eq!(r.stdout, expected_csv(), "{}", r.stderr);
}

#[test]
fn a_duplicate_split_across_workers_is_counted_once() {
    // Many copies of the hand file: every record but the first copy of each is a duplicate,
    // wherever the chunks and threads put them.
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(data("hand/alerts.csv")).unwrap();
    for i in 0..4 {
        std::fs::write(dir.path().join(format!("copy{i}.csv")), &csv).unwrap();
    }
    let inv = data("hand/inventory.csv");
    let r = run(&[
        "alerts",
        s(dir.path()),
        "-i",
        s(&inv),
        "-f",
        "csv",
        "--threads",
        "4",
    ]);
    assert_eq!(r.stdout, expected_csv(), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("records read 36 = accepted 8 + duplicates 28 + rejected 0"),
        "{}",
        r.stderr
    );
}

#[test]
fn filters_and_grouping() {
    let inv = data("hand/inventory.csv");
    let csv = data("hand/alerts.csv");
    let r = run(&[
        "alerts",
        s(&csv),
        "-i",
        s(&inv),
        "-f",
        "csv",
        "--by",
        "region",
        "--codes",
        "81B8",
        "--since",
        "2024-01-02",
    ]);
    // Only A3's records on 01-02 remain: 4 alerts; South has 2 devices on 01-02 -> 2 device-days.
    assert_eq!(
        r.stdout,
        "region,alerts,records,alerting_devices,alerting_devices_exact,device_days,per_1000_per_day\nSouth,4,2,1,true,2,2000\n"
    );
    // Filters apply before duplicate detection: the repeated 01-01 record is simply out of scope.
    assert!(
        r.stderr
            .contains("records read 9 = accepted 9 + duplicates 0"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("7 outside the filters"), "{}", r.stderr);
    let r = run(&[
        "alerts",
        s(&csv),
        "-i",
        s(&inv),
        "-f",
        "csv",
        "--by",
        "category",
        "--dedup",
        "off",
    ]);
    assert_eq!(
        r.stdout,
        "category,alerts,records,alerting_devices,alerting_devices_exact,device_days,per_1000_per_day\n\
         supply,1,1,1,true,9,111.11111111111111\n\
         tamper,8,6,3,true,9,888.8888888888889\n\
         dcc,1,1,1,true,9,111.11111111111111\n\
         unknown,1,1,1,true,9,111.11111111111111\n",
        "no dedup: 81B8 is 6 records, 8 alerts; ungrouped by region, the denominator is the fleet's \
         device-days (4 devices on 01-01 + 5 on 01-02 = 9); {}",
        r.stderr
    );
}

#[test]
fn exit_statuses() {
    let inv = data("hand/inventory.csv");
    assert_eq!(
        run(&["alerts", "/nonexistent/file.csv", "-i", s(&inv)]).status,
        1
    );
    assert_eq!(run(&["alerts", "--by", "colour", s(&inv)]).status, 2);
    assert_eq!(run(&["codes", "81B8"]).status, 0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "timestamp,device_id,alert_code\n2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,ZZZZ\n",
    )
    .unwrap();
    let r = run_in(dir.path(), &["alerts", "a.csv", "-i", s(&inv)], None);
    assert_eq!(r.status, 3, "{}", r.stderr);
    let q = std::fs::read_to_string(dir.path().join("fleetwatch-rejects.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(q.lines().next().unwrap()).unwrap();
    assert_eq!(v["source"], "a.csv");
    assert_eq!(v["line"], 2);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("invalid alert code `ZZZZ`")
    );
    assert_eq!(
        v["raw"],
        "2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,ZZZZ"
    );
}

#[test]
fn codes_explains() {
    let r = run(&["codes", "81b8"]);
    assert!(
        r.stdout.contains("81B8")
            && r.stdout.contains("Incorrect Polarity")
            && r.stdout.contains("tamper"),
        "{}",
        r.stdout
    );
    let r = run(&["codes", "8F86"]);
    assert!(r.stdout.contains("unknown code"), "{}", r.stdout);
    let r = run(&["codes", "polarity"]);
    assert!(r.stdout.contains("81B8"));
    let r = run(&["codes", "no-such-word"]);
    assert_eq!(r.status, 1);
}

#[test]
fn unknown_device_duplicates_across_workers_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        std::fs::write(
            dir.path().join(format!("c{i}.csv")),
            "timestamp,device_id,alert_code,message_id\n2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-FF,81B8,m1\n",
        )
        .unwrap();
    }
    let inv = data("hand/inventory.csv");
    let r = run(&["alerts", s(dir.path()), "-i", s(&inv), "--threads", "3"]);
    assert!(
        r.stderr
            .contains("records read 3 = accepted 1 + duplicates 2 + rejected 0"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("1 alert records from 1 devices not in the inventory"),
        "{}",
        r.stderr
    );
}

#[test]
fn zeros_fill_every_day_a_group_had_installed_devices() {
    let inv = data("hand/inventory.csv");
    let xml = data("hand/alerts.xml");
    let r = run(&[
        "alerts",
        s(&xml),
        "-i",
        s(&inv),
        "--by",
        "day,region",
        "--zeros",
        "-f",
        "csv",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // North had no alert on 01-02 (A0, A1 installed) and 4G Central none on 01-01 (A4
    // installed): rows of 0; Unknown has no installed base, so no zero row for it.
    assert_eq!(
        r.stdout,
        "day,region,alerts,records,alerting_devices,alerting_devices_exact,installed_devices,per_1000_per_day\n\
         2024-01-01,North,3,3,2,true,2,1500\n\
         2024-01-01,South,1,1,1,true,1,1000\n\
         2024-01-01,4G Central,0,0,0,true,1,0\n\
         2024-01-02,North,0,0,0,true,2,0\n\
         2024-01-02,South,4,2,1,true,2,2000\n\
         2024-01-02,4G Central,1,1,1,true,1,1000\n\
         2024-01-02,Unknown,1,1,1,true,,\n"
    );
}

#[test]
fn an_empty_input_warns_and_says_so_in_json() {
    let inv = data("hand/inventory.csv");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let r = run(&["alerts", s(&empty), "-i", s(&inv), "-f", "json"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning: no records were read"),
        "{}",
        r.stderr
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["warning"], "no records were read: the inputs are empty");
    // Records, but none in the selection.
    let xml = data("hand/alerts.xml");
    let r = run(&["alerts", s(&xml), "-i", s(&inv), "--codes", "8F3F"]);
    assert!(
        r.stderr
            .contains("warning: no alert records in the selection"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_alert_file_given_as_the_inventory_is_an_error() {
    let xml = data("hand/alerts.xml");
    let csv = data("hand/alerts.csv");
    let r = run(&["alerts", s(&xml), "-i", s(&csv)]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("at least one of region, device_type, generation")
            && r.stderr.contains("looks like an alert file"),
        "{}",
        r.stderr
    );
}

/// Two periods side by side, counted by hand on the fixture: 2024-01-02 against 2024-01-01.
///   North: 0 alerts on A0, A1 (2 device-days) against 3 on the same 2 -> -100%; exact
///     conditional test: 0 of 3 at p0 = 2/4 gives p = 2 x 0.125 = 0.25; the Clopper-Pearson
///     upper bound of the share, 1 - 0.025^(1/3) = 0.7076, gives a ratio of at most 2.42.
///   South: 4 alerts on 2 device-days (A2 from 01-02, A3) against 1 on 1 (A3): +100%, p = 1.
///   4G Central: 1 against 0 (A4 both days); Unknown: no installed base, no test.
///   q-values (Benjamini-Hochberg over 3 tests): 0.25 x 3 = 0.75, 1, 1: nothing beyond noise.
#[test]
fn compare_two_periods_by_hand() {
    let inv = data("hand/inventory.csv");
    let xml = data("hand/alerts.xml");
    let r = run(&[
        "alerts",
        s(&xml),
        "-i",
        s(&inv),
        "--by",
        "region",
        "--since",
        "2024-01-02",
        "--until",
        "2024-01-02",
        "--compare",
        "2024-01-01..2024-01-01",
        "-f",
        "csv",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rows: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        rows[0],
        "region,alerts,device_days,per_1000_per_day,compare_alerts,compare_device_days,compare_per_1000_per_day,change,change_ci_low,change_ci_high,p_value,q_value,beyond_noise"
    );
    assert!(
        rows[1].starts_with("North,0,2,0.000000,3,2,1500.000000,-1.000000,-1.000000,1.4199"),
        "{}",
        rows[1]
    );
    assert!(rows[1].ends_with(",0.250000,0.750000,no"), "{}", rows[1]);
    assert!(
        rows[2].starts_with("South,4,2,2000.000000,1,1,1000.000000,1.000000,"),
        "{}",
        rows[2]
    );
    assert!(rows[2].ends_with(",1.000000,1.000000,no"), "{}", rows[2]);
    assert!(rows[3].starts_with("4G Central,1,1,1000.000000,0,1,0.000000,,"));
    assert_eq!(rows[4], "Unknown,1,,,0,,,,,,,,no");
    // Periods are the unit: a day grouping is refused, and the selected period is required.
    let by_day = run(&[
        "alerts",
        s(&xml),
        "-i",
        s(&inv),
        "--compare",
        "2024-01-01..2024-01-01",
    ]);
    assert_eq!(by_day.status, 1);
    assert!(
        by_day.stderr.contains("without day or hour"),
        "{}",
        by_day.stderr
    );
}

/// The consumer's view has no authentication: an open address needs --insecure, and nothing
/// is created before the refusal.
#[test]
fn consume_refuses_an_open_listen_address_without_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let r = run(&[
        "consume",
        "--brokers",
        "127.0.0.1:1",
        "--topic",
        "alerts",
        "--group",
        "g",
        "--data",
        s(&data),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_ne!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("refusing --listen 0.0.0.0:0"),
        "{}",
        r.stderr
    );
    assert!(!data.exists());
}
