//! End-to-end tests of `fleetwatch migration` (and the report's migration section): a
//! hand-written log with hand-computed weeks, and the generator's planted migration.

mod common;
use common::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

fn dev(i: u32) -> String {
    format!("00-1A-8C-00-00-00-{:02X}-{:02X}", i >> 8, i & 0xFF)
}

/// Two weeks of FOC from Monday 2024-01-01, by hand:
/// week 1: devices 0-11 migrate Mon, Tue, Thu, Fri (3 a day; Wednesday has no report at all);
///         device 12 fails ("device not responding") on Monday.
/// week 2: devices 12-14 migrate on Monday; 0-7 are commissioned Tuesday; Wednesday to Friday
///         have rows (commissioning of 8-9 Wed, a failure of 15 Thu, 10 Fri).
/// One row is repeated, one names an unknown event.
fn write_log(dir: &Path) {
    let mut l = String::from("timestamp,device_id,cohort,event,reason\n");
    for (k, day) in [1, 2, 4, 5].iter().enumerate() {
        for j in 0..3 {
            writeln!(
                l,
                "2024-01-{day:02}T10:0{j}:00Z,{},FOC,migrated,",
                dev(k as u32 * 3 + j)
            )
            .unwrap();
        }
    }
    writeln!(
        l,
        "2024-01-01T11:00:00Z,{},foc,failed,device not responding",
        dev(12)
    )
    .unwrap();
    for d in 12..15 {
        writeln!(l, "2024-01-08T10:00:00Z,{},FOC,migrated,", dev(d)).unwrap();
    }
    writeln!(l, "2024-01-08T10:00:00Z,{},FOC,migrated,", dev(14)).unwrap(); // repeated
    for d in 0..8 {
        writeln!(l, "2024-01-09T09:00:00Z,{},FOC,commissioned,", dev(d)).unwrap();
    }
    for d in 8..10 {
        writeln!(l, "2024-01-10T09:00:00Z,{},FOC,operated,", dev(d)).unwrap();
    }
    writeln!(
        l,
        "2024-01-11T11:00:00Z,{},FOC,failed,hub unreachable",
        dev(15)
    )
    .unwrap();
    writeln!(l, "2024-01-12T09:00:00Z,{},FOC,commissioned,", dev(10)).unwrap();
    writeln!(l, "2024-01-12T09:00:00Z,{},FOC,exploded,", dev(11)).unwrap(); // reject
    std::fs::write(dir.join("migration.csv"), l).unwrap();
}

#[test]
fn hand_written_log_gives_the_hand_computed_weeks() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let r = run_in(
        dir.path(),
        &["migration", "migration.csv", "-f", "csv"],
        None,
    );
    assert_eq!(r.status, 3, "{}", r.stderr);
    // Week 1: 12 migrated over 4 reported weekdays -> pace 15. Week 2: 3 migrated over 5 -> 3,
    // an -80% change. Backlog: 12, then 15 - 11 commissioned = 4.
    assert_eq!(
        r.stdout,
        "cohort,week,migrated,commissioned,failed,cum_migrated,cum_commissioned,backlog,pace_per_week,pace_change\n\
         FOC,2024-01-01,12,0,1,12,0,12,15.0,\n\
         FOC,2024-01-08,3,11,1,15,11,4,3.0,-80%\n"
    );
    assert!(
        r.stderr
            .contains("migration log rows read 30 = accepted 28 + duplicates 1 + rejected 1"),
        "{}",
        r.stderr
    );
    let q = std::fs::read_to_string(dir.path().join("fleetwatch-rejects.jsonl")).unwrap();
    assert!(
        q.contains("unknown event `exploded`") && q.contains("migration.csv"),
        "{q}"
    );
    let j = run_in(
        dir.path(),
        &["migration", "migration.csv", "-f", "json"],
        None,
    );
    let v: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["reporting_gaps"][0]["day"], "2024-01-03");
    assert_eq!(v["reporting_gaps"].as_array().unwrap().len(), 1);
    let reasons: Vec<(&str, i64)> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["reason"].as_str().unwrap(),
                f["devices"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![("device not responding", 1), ("hub unreachable", 1)]
    );
    // Without an inventory and cohort sizes there is no forecast, and the output says why.
    assert_eq!(
        v["outlook"][0]["forecast_finish"],
        "n/a (needs --inventory and --cohort-size)"
    );
}

#[test]
fn the_planted_migration_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate_fleet(dir.path(), 6);
    let t = &truth["migration"];
    let mut args: Vec<String> = [
        "migration",
        "migration.csv",
        "-i",
        "inventory.csv",
        "-f",
        "json",
        "--out",
        "mig",
        "--until",
        "2024-02-29",
    ]
    .map(String::from)
    .to_vec();
    for c in t["cohorts"].as_array().unwrap() {
        args.push("--cohort-size".into());
        args.push(format!(
            "{}={}",
            c["cohort"].as_str().unwrap(),
            c["devices"]
        ));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_in(dir.path(), &argv, None);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    // Reporting gaps are the planted missing days (the generated period ends on 2024-02-29).
    let gaps: Vec<&str> = v["reporting_gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["day"].as_str().unwrap())
        .collect();
    let missing: Vec<&str> = t["missing_report_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(gaps, missing);
    // Remaining devices per cohort are the truth's, and stalled cohorts are those whose quota
    // ended with devices left.
    let outlook = v["outlook"].as_array().unwrap();
    for c in t["cohorts"].as_array().unwrap() {
        let o = outlook.iter().find(|o| o["cohort"] == c["cohort"]).unwrap();
        assert_eq!(o["remaining"], c["not_migrated_at_end"], "{o}");
        let quota = c["weekly_quota"].as_array().unwrap();
        let quota_ended = quota.last().unwrap() == 0 && quota.iter().any(|q| q.as_i64() > Some(0));
        let left =
            c["not_migrated_at_end"].as_f64().unwrap() > 0.01 * c["devices"].as_f64().unwrap();
        assert_eq!(o["status"] == "stalled", quota_ended && left, "{o} {c}");
    }
    // The pacing cut is flagged in its week, and FOC's pace changes nowhere else but its start.
    let cut = &t["pacing_cut"];
    let foc: Vec<&Value> = v["pace_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cohort"] == cut["cohort"])
        .collect();
    let cut_row = foc
        .iter()
        .find(|c| c["week"] == cut["from_week"])
        .expect("the pacing cut is flagged");
    let ratio = cut_row["pace_after"].as_f64().unwrap() / cut_row["pace_before"].as_f64().unwrap();
    let planted = cut["premises_per_week_after"].as_f64().unwrap()
        / cut["premises_per_week_before"].as_f64().unwrap();
    assert!((ratio - planted).abs() < 0.15, "{cut_row} vs {planted}");
    assert_eq!(foc.len(), 2, "{foc:?}");
    assert_eq!(foc[0]["change"], "started");
    // Migrations the log shows never exceed the truth's; the difference is what fell on the
    // missing days.
    let weekly = v["weekly"].as_array().unwrap();
    let mut short = 0;
    for c in t["cohorts"].as_array().unwrap() {
        let last = weekly.iter().rfind(|w| w["cohort"] == c["cohort"]).unwrap();
        let shown = last["cum_migrated"].as_i64().unwrap();
        let planted = c["migrated_in_period"].as_i64().unwrap();
        assert!(shown <= planted, "{last} vs {c}");
        short += planted - shown;
    }
    assert!(short <= t["events_on_missing_days"].as_i64().unwrap());
    for f in [
        "weekly.csv",
        "outlook.csv",
        "migration_cumulative.png",
        "migration_pace.svg",
    ] {
        assert!(dir.path().join("mig").join(f).is_file(), "{f}");
    }
}

#[test]
fn the_report_carries_the_migration_charts_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    generate_fleet(dir.path(), 7);
    let r = run_in(
        dir.path(),
        &[
            "report",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--migration",
            "migration.csv",
            "--out",
            "report",
        ],
        None,
    );
    assert_eq!(r.status, 3, "{}", r.stderr); // the generator plants malformed alert records
    let html = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    assert_eq!(html.matches("<figure><svg").count(), 6);
    assert!(html.contains("id=\"migration_weekly\"") && html.contains("id=\"migration_outlook\""));
    let csv_rows = std::fs::read_to_string(dir.path().join("report/migration_weekly.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    let table = &html[html.find("id=\"migration_weekly\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(
        table.matches("<tr>").count() - 1,
        csv_rows,
        "the HTML table holds the CSV's rows"
    );
    if required_tool(&CHROMIUM, "chromium").is_none() {
        return;
    }
    let page = format!("file://{}", dir.path().join("report/report.html").display());
    let (dom, _) = browse_url(&page, &["--dump-dom"]);
    assert!(
        dom.contains("data-visible-charts=\"6\""),
        "all six charts visible: {}",
        &dom[..dom.len().min(400)]
    );
}
