//! The shared filters (`--since/--until`, `--codes`, `--region`, `--type`, `--gen`, `--model`,
//! `--firmware`) on the hand-counted fixture (tests/data/hand, counted in tests/cli.rs), and on
//! every analysis command.
//!
//! Hand counts with the filters (device-days over 2024-01-01..02, installs from the inventory):
//!   --region North: A0 81B8 x2 and A1 8F35 = 3 alerts; North devices installed: A0, A1 on both
//!     days (A5 arrives 01-03) = 4 device-days -> 750 per 1,000 per day.
//!   --type ESME --gen SMETS1: A2 and A3 (South) = 1 + 4 = 5 alerts; installed: A3 on 01-01,
//!     A2 and A3 on 01-02 = 3 device-days -> 1666.67.
//!   --model EDMI-ES10A: A0's 2 alerts; A0 on both days (A5 from 01-03) = 2 -> 1000.
//!   --since 2024-01-02 --region South: A3's 4 alerts on 01-02; installed 2 -> 2000.

mod common;
use common::*;

fn hand(extra: &[&str]) -> Run {
    let inv = data("hand/inventory.csv");
    let xml = data("hand/alerts.xml");
    let mut args = vec!["alerts", s(&xml), "-i", s(&inv)];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_region_filter_narrows_alerts_and_installed_base_alike() {
    let r = hand(&["--by", "region", "--region", "North", "-f", "csv"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "region,alerts,records,alerting_devices,alerting_devices_exact,device_days,per_1000_per_day\n\
         North,3,3,2,true,4,750\n"
    );
    assert!(r.stderr.contains("selection: region North"), "{}", r.stderr);
    // Every record is still accounted for: the other regions are "outside the filters".
    assert!(
        r.stderr
            .contains("records read 9 = accepted 8 + duplicates 1 + rejected 0"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("5 outside the filters"), "{}", r.stderr);
}

#[test]
fn type_and_generation_filters_combine() {
    let r = hand(&[
        "--by", "region", "--type", "ESME", "--gen", "SMETS1", "-f", "csv",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let row = r.stdout.lines().nth(1).unwrap();
    assert!(row.starts_with("South,5,3,2,true,3,1666.66"), "{row}");
}

#[test]
fn a_model_filter_uses_the_model_installed_base() {
    let r = hand(&["--by", "model", "--model", "EDMI-ES10A", "-f", "csv"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().nth(1).unwrap(),
        "EDMI-ES10A,2,2,1,true,2,1000"
    );
}

#[test]
fn period_and_region_filters_by_day() {
    let r = hand(&[
        "--by",
        "day,region",
        "--since",
        "2024-01-02",
        "--region",
        "South",
        "-f",
        "csv",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().skip(1).collect::<Vec<_>>(),
        vec!["2024-01-02,South,4,2,1,true,2,2000"]
    );
}

#[test]
fn the_filters_are_shown_in_the_table_and_the_json() {
    let t = hand(&[
        "--by",
        "region",
        "--region",
        "North,South",
        "--codes",
        "81B8",
    ]);
    assert_eq!(t.status, 0, "{}", t.stderr);
    assert!(
        t.stdout
            .starts_with("selection: codes 81B8, region North,South\n"),
        "{}",
        t.stdout
    );
    let j = hand(&["--by", "region", "--firmware", "2.0.1", "-f", "json"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["filters"]["firmware"], "2.0.1");
    assert_eq!(v["rows"][0]["region"], "South");
    assert_eq!(v["rows"][0]["alerts"], 5);
}

#[test]
fn an_unknown_model_or_region_is_an_error_that_lists_the_choices() {
    let r = hand(&["--model", "EDMI"]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no device in the inventory has model `EDMI`")
            && r.stderr.contains("EDMI-ES10A"),
        "{}",
        r.stderr
    );
    let r = hand(&["--region", "Mars"]);
    assert_eq!(r.status, 2, "a region that does not exist is a usage error");
    assert!(r.stderr.contains("North, Central, South"), "{}", r.stderr);
}

/// Every analysis command takes the same filters and says what it selected.
#[test]
fn every_analysis_command_takes_the_shared_filters() {
    let dir = tempfile::tempdir().unwrap();
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let p = |f: &str| samples.join(f).display().to_string();
    let (alerts, inv) = (p("alerts.csv"), p("inventory.csv"));
    let out = |f: &str| dir.path().join(f).display().to_string();
    let filters = [
        "--since",
        "2024-01-03",
        "--until",
        "2024-01-20",
        "--region",
        "North,Central,South",
        "--type",
        "ESME",
        "--gen",
        "SMETS2",
    ];
    let commands: Vec<Vec<String>> = vec![
        vec!["alerts".into(), alerts.clone()],
        vec![
            "chart".into(),
            "rate".into(),
            alerts.clone(),
            "--out".into(),
            out("c.png"),
        ],
        vec![
            "report".into(),
            alerts.clone(),
            "--out".into(),
            out("report"),
        ],
        vec!["spikes".into(), alerts.clone()],
        vec![
            "offenders".into(),
            alerts.clone(),
            "--codes".into(),
            "8F84".into(),
        ],
        vec![
            "whatif".into(),
            alerts.clone(),
            "--remediate".into(),
            "code=8F84".into(),
        ],
        vec![
            "ota".into(),
            alerts.clone(),
            "--campaign".into(),
            p("ota_campaign.csv"),
        ],
        vec![
            "migration".into(),
            p("migration.csv"),
            "--alerts".into(),
            alerts.clone(),
        ],
    ];
    let rejects = out("rejects.jsonl");
    for c in commands {
        let mut args: Vec<&str> = c.iter().map(String::as_str).collect();
        args.extend(["-i", &inv]);
        args.extend(filters);
        args.extend(["--rejects", &rejects]);
        let r = run_in(dir.path(), &args, None);
        assert!(
            r.status == 0 || r.status == 3,
            "{}: exit {}\n{}",
            c[0],
            r.status,
            r.stderr
        );
        assert!(
            r.stderr
                .contains("selection: since 2024-01-03, until 2024-01-20, ")
                && r.stderr
                    .contains("region North,Central,South, type ESME, gen SMETS2"),
            "{}: {}",
            c[0],
            r.stderr
        );
    }
}
