//! The report as a briefing, end to end on generated fleets: the findings name the planted
//! incident, every section a user asked for is there (and only those), every table shows its
//! CSV file's numbers, and `--compare` sets the periods of "What changed".

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// The findings, one sentence each, as the page shows them.
fn findings(html: &str) -> Vec<String> {
    let section = html
        .split("<section id=\"findings\">")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    section
        .split("<li>")
        .skip(1)
        .map(|li| html_text(li.split("</li>").next().unwrap()))
        .collect()
}

fn report(dir: &Path, extra: &[&str]) -> (Run, String) {
    let mut args = vec![
        "report",
        "alerts.csv",
        "-i",
        "inventory.csv",
        "--campaign",
        "ota_campaign.csv",
        "--outcomes",
        "ota_outcomes.csv",
        "--migration",
        "migration.csv",
        "--out",
        "report",
    ];
    args.extend(extra);
    let r = run_in(dir, &args, None);
    assert_eq!(r.status, 3, "{}", r.stderr); // the generator plants malformed records
    let html = std::fs::read_to_string(dir.join("report/report.html")).unwrap();
    (r, html)
}

/// The first spike finding names the planted incident: its region, its day and its codes.
fn assert_names_incident(truth: &Value, findings: &[String]) {
    let incident = &truth["incident"];
    let first = findings
        .iter()
        .find(|f| f.starts_with("Spike in"))
        .unwrap_or_else(|| panic!("no spike finding: {findings:#?}"));
    let region = incident["region"].as_str().unwrap();
    let day = incident["day"].as_str().unwrap();
    assert!(
        first.starts_with(&format!("Spike in {region} on {day}:")),
        "the first spike finding is not the planted incident ({region}, {day}): {first}"
    );
    let codes: Vec<&String> = incident["records"].as_object().unwrap().keys().collect();
    let named = codes.iter().filter(|c| first.contains(c.as_str())).count();
    assert!(named >= codes.len() - 1, "{codes:?} in {first}");
}

#[test]
fn the_briefing_names_the_planted_incident_and_every_table_shows_its_csv() {
    for seed in [11, 29] {
        let dir = tempfile::tempdir().unwrap();
        let truth = generate_fleet(dir.path(), seed);
        let (_, html) = report(dir.path(), &[]);
        let f = findings(&html);
        assert_names_incident(&truth, &f);
        // The campaign and the migration have their findings too.
        assert!(f.iter().any(|l| l.starts_with("OTA campaign ")), "{f:#?}");
        assert!(
            f.iter()
                .any(|l| l.starts_with("The failure that matters most")),
            "{f:#?}"
        );
        assert!(f.iter().any(|l| l.starts_with("SMETS1 ")), "{f:#?}");
        // Findings come first, then each section; no what-if without a rule.
        let at = |id: &str| html.find(&format!("<section id=\"{id}\">"));
        let order: Vec<usize> = [
            "findings",
            "rates",
            "spikes",
            "change",
            "offenders",
            "ota",
            "migration",
            "totals",
        ]
        .iter()
        .map(|id| at(id).unwrap_or_else(|| panic!("section {id} missing")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert!(at("whatif").is_none());
        // Internal columns stay in the CSV files; codes carry their names.
        assert!(!html.contains("data-column=\"alerting_devices_exact\""));
        assert!(html.contains("<span class=\"name\">"));
        let tables = assert_tables_match_csv(&html, &dir.path().join("report"));
        assert!(tables >= 12, "{tables} tables");
    }
}

#[test]
fn a_remediation_adds_the_what_if_section() {
    let dir = tempfile::tempdir().unwrap();
    generate_fleet(dir.path(), 5);
    let (_, html) = report(dir.path(), &["--remediate", "gen=SMETS1,code=81B8"]);
    assert!(html.contains("<section id=\"whatif\">"));
    assert!(html.contains("id=\"whatif\" data-csv=\"whatif.csv\""));
    assert_tables_match_csv(&html, &dir.path().join("report"));
}

#[test]
fn compare_sets_the_periods_of_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    generate_fleet(dir.path(), 5);
    let bad = run_in(
        dir.path(),
        &[
            "report",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--compare",
            "2024-01-01..2024-01-14",
            "--out",
            "r",
        ],
        None,
    );
    assert_ne!(bad.status, 0, "{}", bad.stderr);
    assert!(bad.stderr.contains("--since and --until"), "{}", bad.stderr);
    let (_, html) = report(
        dir.path(),
        &[
            "--since",
            "2024-02-01",
            "--until",
            "2024-02-14",
            "--compare",
            "2024-01-01..2024-01-14",
        ],
    );
    assert!(
        html.contains("Compared: 2024-02-01 to 2024-02-14 against 2024-01-01 to 2024-01-14."),
        "{}",
        &html[html.find("id=\"change\"").unwrap()..][..400]
    );
    // The comparison's counts are those of `alerts --compare` on the same periods.
    let r = run_in(
        dir.path(),
        &[
            "alerts",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--by",
            "code",
            "--since",
            "2024-02-01",
            "--until",
            "2024-02-14",
            "--compare",
            "2024-01-01..2024-01-14",
            "-f",
            "csv",
        ],
        None,
    );
    let mut want: Vec<String> = r.stdout.lines().skip(1).map(String::from).collect();
    let file = std::fs::read_to_string(dir.path().join("report/change_by_alert_code.csv")).unwrap();
    let mut got: Vec<String> = file.lines().skip(1).map(String::from).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
}
