//! The synthetic fleet generator: determinism, committed samples reproduced, counts in the
//! files equal to `truth.json`, fleetwatch's own decoders reading the output back with only the
//! planted rejects, and the DUIS XML valid against the DUIS 5.4 schema.

mod common;
use common::*;
use fleetwatch::render::thousands;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn generate(dir: &Path, format: &str, extra: &[&str]) -> Value {
    let out = dir.join(format);
    let mut args = vec![
        "generate",
        "--devices",
        "1500",
        "--days",
        "21",
        "--seed",
        "9",
        "--malformed",
        "0.004",
        "--format",
        format,
        "--out",
        s(&out),
    ];
    args.extend_from_slice(extra);
    let r = run_in(dir, &args, None);
    assert_eq!(r.status, 0, "{}", r.stderr);
    truth(&out)
}

fn truth(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The totals line fleetwatch must print for a generated stream, from its truth counts.
fn totals_line(c: &Value) -> String {
    format!(
        "records read {} = accepted {} + duplicates {} + rejected {}",
        thousands(c["alert_records_written"].as_u64().unwrap()),
        thousands(c["accepted_records"].as_u64().unwrap()),
        thousands(c["duplicates"].as_u64().unwrap()),
        thousands(c["malformed"].as_u64().unwrap()),
    )
}

fn rows(p: &Path) -> u64 {
    std::fs::read_to_string(p).unwrap().lines().count() as u64 - 1
}

#[test]
fn same_seed_same_bytes_and_another_seed_differs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    generate(a.path(), "duis", &["--gzip"]);
    generate(b.path(), "duis", &["--gzip"]);
    let (fa, fb) = (files(&a.path().join("duis")), files(&b.path().join("duis")));
    assert_eq!(fa.len(), 6);
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{}",
            x.display()
        );
    }
    let c = tempfile::tempdir().unwrap();
    let r = run_in(
        c.path(),
        &[
            "generate",
            "--devices",
            "1500",
            "--days",
            "21",
            "--seed",
            "10",
            "--out",
            "x",
        ],
        None,
    );
    assert_eq!(r.status, 0);
    assert_ne!(
        std::fs::read(c.path().join("x/inventory.csv")).unwrap(),
        std::fs::read(a.path().join("duis/inventory.csv")).unwrap()
    );
}

#[test]
fn committed_samples_are_reproduced_from_their_recorded_settings() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let t = truth(&samples);
    let g = &t["generator"];
    let dir = tempfile::tempdir().unwrap();
    for (format, alerts) in [
        ("csv", "alerts.csv"),
        ("jsonl", "alerts.jsonl"),
        ("duis", "alerts.xml"),
    ] {
        let out = dir.path().join(format);
        let r = run_in(
            dir.path(),
            &[
                "generate",
                "--devices",
                &g["devices"].to_string(),
                "--days",
                &g["days"].to_string(),
                "--seed",
                &g["seed"].to_string(),
                "--start",
                g["start"].as_str().unwrap(),
                "--malformed",
                &g["malformed_rate"].to_string(),
                "--duplicates",
                &g["duplicate_rate"].to_string(),
                "--format",
                format,
                "--out",
                s(&out),
            ],
            None,
        );
        assert_eq!(r.status, 0, "{}", r.stderr);
        let mut names = vec![alerts];
        if format == "csv" {
            names.extend([
                "inventory.csv",
                "ota_campaign.csv",
                "ota_outcomes.csv",
                "migration.csv",
                "truth.json",
            ]);
        }
        for n in names {
            assert!(
                std::fs::read(out.join(n)).unwrap() == std::fs::read(samples.join(n)).unwrap(),
                "samples/{n} differs from what the generator now writes: run `sh samples/generate.sh`"
            );
        }
    }
}

#[test]
fn counts_in_the_files_equal_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let t = generate(dir.path(), "csv", &[]);
    let d = dir.path().join("csv");
    let c = &t["counts"];
    assert_eq!(
        rows(&d.join("alerts.csv")),
        c["alert_records_written"].as_u64().unwrap()
    );
    assert_eq!(
        c["alert_records_written"].as_u64().unwrap(),
        c["accepted_records"].as_u64().unwrap()
            + c["duplicates"].as_u64().unwrap()
            + c["malformed"].as_u64().unwrap()
    );
    assert_eq!(
        rows(&d.join("inventory.csv")),
        c["inventory_devices"].as_u64().unwrap()
    );
    assert_eq!(
        rows(&d.join("ota_outcomes.csv")),
        t["ota"]["outcome_rows"].as_u64().unwrap()
    );
    assert_eq!(
        rows(&d.join("ota_campaign.csv")),
        t["ota"]["targeted"].as_u64().unwrap()
    );
    assert_eq!(
        rows(&d.join("migration.csv")),
        t["migration"]["log_rows"].as_u64().unwrap()
    );
    // No migration row is dated on a day whose report is missing.
    let log = std::fs::read_to_string(d.join("migration.csv")).unwrap();
    for day in t["migration"]["missing_report_days"].as_array().unwrap() {
        assert!(
            !log.contains(&format!("\n{}T", day.as_str().unwrap())),
            "{day}"
        );
    }
    let by_day: u64 = c["records_by_day"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_day, c["accepted_records"].as_u64().unwrap());
    // Planted facts are present: the incident touched hubs, noisy devices are noisy.
    assert!(
        t["incident"]["hubs"].as_u64().unwrap() > 10,
        "{}",
        t["incident"]
    );
    let noisy = &t["noisy_devices"][0];
    let id = noisy["device_id"].as_str().unwrap();
    let alerts = std::fs::read_to_string(d.join("alerts.csv")).unwrap();
    let n = alerts.lines().filter(|l| l.contains(id)).count() as u64;
    assert!(
        n >= noisy["records"].as_u64().unwrap(),
        "{n} lines for {id}"
    );
    assert!(t["ota"]["upgraded"].as_u64().unwrap() > 0);
    assert!(t["ota"]["hardware_mismatch_devices"].as_u64().unwrap() > 0);
}

#[test]
fn fleetwatch_reads_every_format_back_with_only_the_planted_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let mut answers = Vec::new();
    for (format, file) in [
        ("csv", "alerts.csv"),
        ("jsonl", "alerts.jsonl"),
        ("duis", "alerts.xml"),
    ] {
        let t = generate(dir.path(), format, &[]);
        let d = dir.path().join(format);
        let c = &t["counts"];
        let r = run_in(
            &d,
            &[
                "alerts",
                file,
                "--inventory",
                "inventory.csv",
                "--by",
                "region,code",
                "--format",
                "csv",
            ],
            None,
        );
        assert_eq!(r.status, 3, "{}", r.stderr); // completed, with (planted) rejects
        let want = totals_line(c);
        assert!(
            r.stderr.contains(&want),
            "{format}: want `{want}` in\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!(
                "({} alerts)",
                thousands(c["alert_occurrences"].as_u64().unwrap())
            )),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!(
                "{} alert records from {} devices not in the inventory",
                thousands(c["unknown_device_records"].as_u64().unwrap()),
                c["unknown_devices"]
            )),
            "{}",
            r.stderr
        );
        answers.push(r.stdout);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
}

#[test]
fn generated_duis_xml_is_valid_against_the_duis_schema() {
    if required_tool(&["xmllint"], "libxml2-utils").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = generate(dir.path(), "duis", &[]);
    // The schemas are read from ../shared/realdata (never copied into the project); a temp
    // copy renames them because xmllint cannot follow an import whose file name has spaces.
    let xsd = realdata("dccboxed-signing-tool/src/main/resources");
    let sdir = dir.path().join("xsd");
    std::fs::create_dir_all(&sdir).unwrap();
    let duis = std::fs::read_to_string(xsd.join("DUIS Schema V5.4.xsd"))
        .unwrap()
        .replace(
            "schemaLocation=\"MMC Schema V5.4.xsd\"",
            "schemaLocation=\"mmc.xsd\"",
        );
    std::fs::write(sdir.join("duis.xsd"), duis).unwrap();
    std::fs::copy(xsd.join("MMC Schema V5.4.xsd"), sdir.join("mmc.xsd")).unwrap();
    std::fs::copy(
        xsd.join("xmldsig-core-schema.xsd"),
        sdir.join("xmldsig-core-schema.xsd"),
    )
    .unwrap();
    for f in ["XMLSchema.dtd", "datatypes.dtd"] {
        let _ = std::fs::copy(xsd.join(f), sdir.join(f));
    }
    // One file per document, validated in batches.
    let text = std::fs::read_to_string(dir.path().join("duis/alerts.xml")).unwrap();
    let docs: Vec<&str> = text.split("<?xml ").skip(1).collect();
    assert_eq!(
        docs.len() as u64,
        t["counts"]["alert_records_written"].as_u64().unwrap()
    );
    let ddir = dir.path().join("docs");
    std::fs::create_dir_all(&ddir).unwrap();
    let paths: Vec<PathBuf> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = ddir.join(format!("{i:06}.xml"));
            std::fs::write(&p, format!("<?xml {d}")).unwrap();
            p
        })
        .collect();
    let mut invalid = 0;
    for batch in paths.chunks(2000) {
        let out = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(sdir.join("duis.xsd"))
            .args(batch)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("failed to compile"), "{err}");
        invalid += err
            .lines()
            .filter(|l| l.ends_with("fails to validate"))
            .count();
        // Documents that are not even well-formed (the truncated ones) are parser errors.
        invalid += batch
            .iter()
            .filter(|p| {
                err.contains(&format!("{}:", p.display()))
                    && !err.contains(&format!("{} fails", p.display()))
                    && !err.contains(&format!("{} validates", p.display()))
            })
            .count();
        let valid = err.lines().filter(|l| l.ends_with(" validates")).count();
        assert!(valid > 0, "{err}");
    }
    assert_eq!(
        invalid as u64,
        t["counts"]["malformed"].as_u64().unwrap(),
        "only the planted malformed documents are invalid"
    );
}

#[test]
fn demo_runs_and_finds_the_planted_incident() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        &[
            "demo",
            "--devices",
            "30000",
            "--days",
            "28",
            "--seed",
            "5",
            "--out",
            "d",
        ],
        None,
    );
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let t = truth(&dir.path().join("d"));
    let want = format!(
        "biggest departure: {} on {}",
        t["incident"]["region"].as_str().unwrap(),
        t["incident"]["day"].as_str().unwrap()
    );
    assert!(r.stdout.contains(&want), "want `{want}` in\n{}", r.stdout);
    assert!(
        r.stdout.contains("top code on SMETS1: 81B8"),
        "{}",
        r.stdout
    );
    for f in [
        "alerts_by_day_region.csv",
        "alerts_by_generation_code.csv",
        "rejects.jsonl",
    ] {
        assert!(dir.path().join("d").join(f).is_file(), "{f}");
    }
    let c = &t["counts"];
    assert!(r.stdout.contains(&totals_line(c)), "{}", r.stdout);
}
