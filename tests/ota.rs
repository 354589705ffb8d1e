//! End-to-end tests of `fleetwatch ota`: hand-built per-device event sequences with a
//! hand-computed funnel, and the generator's planted campaign.

mod common;
use common::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

fn dev(i: u32) -> String {
    format!("00-12-4B-00-00-00-00-{i:02X}")
}

/// Eight ESMEs in North, model M1 at 1.0 (M2 for device 2), targeted by campaign C to 2.0.
fn write_fleet(dir: &Path) {
    let mut inv = String::from("device_id,device_type,region,generation,model,firmware_version\n");
    let mut camp = String::from("campaign,device_id,model,source_version,target_version\n");
    for i in 1..=8 {
        let model = if i == 2 { "M2" } else { "M1" };
        writeln!(inv, "{},ESME,North,SMETS2,{model},1.0", dev(i)).unwrap();
        writeln!(camp, "C,{},{model},1.0,2.0", dev(i)).unwrap();
    }
    std::fs::write(dir.join("inventory.csv"), inv).unwrap();
    std::fs::write(dir.join("campaign.csv"), camp).unwrap();
}

#[allow(clippy::too_many_arguments)] // one outcome row, every column spelled out
fn row(
    day: u32,
    hour: u32,
    d: u32,
    stage: &str,
    outcome: &str,
    reason: &str,
    version: &str,
    attempt: u32,
) -> String {
    format!(
        "2024-01-{day:02}T{hour:02}:00:00Z,{},C,11.1,{stage},{outcome},{reason},{version},{attempt},\n",
        dev(d)
    )
}

fn clean(day: u32, d: u32, attempt: u32) -> String {
    [
        row(day, 1, d, "distribution", "success", "", "", attempt),
        row(day, 3, d, "transfer", "success", "", "", attempt),
        row(day, 4, d, "verification", "success", "", "", attempt),
        row(day + 1, 2, d, "activation", "success", "", "", attempt),
        row(day + 1, 3, d, "running", "success", "", "2.0", attempt),
    ]
    .concat()
}

/// The sequences, one device each:
/// 1 clean success; 2 hardware mismatch twice; 3 transfer failure, then success on retry;
/// 4 clean success delivered in reverse order; 5 clean success with every row twice;
/// 6 distributed, never heard from; 7 nothing; 8 activation failure (no image held).
fn write_outcomes(dir: &Path) {
    let mut o = String::from(
        "timestamp,device_id,campaign,service_request,stage,outcome,reason,firmware_version,attempt,message_id\n",
    );
    o += &clean(10, 1, 1);
    o += &row(10, 1, 2, "distribution", "success", "", "", 1);
    o += &row(
        10,
        3,
        2,
        "transfer",
        "failure",
        "hardware version mismatch",
        "",
        1,
    );
    o += &row(14, 1, 2, "distribution", "success", "", "", 2);
    o += &row(
        14,
        3,
        2,
        "transfer",
        "failure",
        "hardware version mismatch",
        "",
        2,
    );
    o += &row(10, 1, 3, "distribution", "success", "", "", 1);
    o += &row(
        10,
        3,
        3,
        "transfer",
        "failure",
        "file transfer failure",
        "",
        1,
    );
    o += &clean(15, 3, 2);
    let c4 = clean(11, 4, 1);
    for l in c4.lines().rev() {
        o += l;
        o += "\n";
    }
    let c5 = clean(12, 5, 1);
    o += &c5;
    o += &c5;
    o += &row(12, 1, 6, "distribution", "success", "", "", 1);
    o += &row(13, 1, 8, "distribution", "success", "", "", 1);
    o += &row(13, 3, 8, "transfer", "success", "", "", 1);
    o += &row(13, 4, 8, "verification", "success", "", "", 1);
    o += &row(14, 2, 8, "activation", "failure", "no image held", "", 1);
    std::fs::write(dir.join("outcomes.csv"), o).unwrap();
}

fn ota_json(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "ota",
        "-i",
        "inventory.csv",
        "--campaign",
        "campaign.csv",
        "--outcomes",
        "outcomes.csv",
        "-f",
        "json",
        "--guard-min-devices",
        "1",
    ];
    args.extend_from_slice(extra);
    let r = run_in(dir, &args, None);
    assert_eq!(r.status, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn hand_built_sequences_give_the_hand_computed_funnel() {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path());
    write_outcomes(dir.path());
    let v = ota_json(dir.path(), &["--out", "out"]);
    let f = v["funnel"].as_array().unwrap();
    // M1 (devices 1, 3-8) and M2 (device 2), both North at 1.0.
    let m1 = f.iter().find(|r| r["model"] == "M1").unwrap();
    let want = serde_json::json!({
        "campaign": "C", "region": "North", "model": "M1", "source_version": "1.0",
        // delivered: 1, 3, 4, 5, 6, 8; transferred/verified: 1, 3, 4, 5, 8; activated and
        // running: 1, 3, 4, 5. Failed: 8 (activation). Never heard from: 6. Not started: 7.
        "targeted": 7, "delivered": 6, "transferred": 5, "verified": 5, "activated": 4,
        "running_target": 4, "failed": 1, "in_progress": 0, "never_heard_from": 1, "not_started": 1,
    });
    assert_eq!(m1, &want);
    let m2 = f.iter().find(|r| r["model"] == "M2").unwrap();
    assert_eq!(
        (
            m2["targeted"].as_i64(),
            m2["failed"].as_i64(),
            m2["transferred"].as_i64()
        ),
        (Some(1), Some(1), Some(0))
    );
    // Failures by devices: device 2's mismatch twice is one device.
    let fl = v["failures"].as_array().unwrap();
    let hw = fl
        .iter()
        .find(|r| r["reason"] == "hardware version mismatch")
        .unwrap();
    assert_eq!(hw["devices"], 1);
    assert_eq!(fl.len(), 3, "{fl:?}");
    // Cannot be upgraded remotely: device 2 (hardware), attempts 2, last seen 2024-01-14.
    let cu = v["cannot_upgrade"].as_array().unwrap();
    assert_eq!(cu.len(), 1);
    assert_eq!(cu[0]["device_id"], dev(2));
    assert_eq!(cu[0]["attempts"], 2);
    assert_eq!(cu[0]["failed_attempts"], 2);
    assert_eq!(cu[0]["last_seen"], "2024-01-14T03:00:00.000Z");
    // Device 3 is upgraded with one failed attempt: with --max-failures 1 it is still not
    // listed (it runs the target), device 8 (one failure) is.
    let v1 = ota_json(dir.path(), &["--max-failures", "1"]);
    let ids: Vec<&str> = v1["cannot_upgrade"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![dev(2).as_str(), dev(8).as_str()]);
    // Time to upgrade: 26 hours for every upgraded device, except device 3 (from 10th 01:00
    // to 16th 03:00 = 146 hours): median 26 h = 1.1 days, p90 146 h = 6.1 days.
    let s = v["summary"].as_array().unwrap();
    assert!(s[0].as_str().unwrap().starts_with("C to 2.0: 8 targeted, 4 running it (50.0%), 2 failed and not upgraded, 0 in progress, 1 never heard from, 1 not started"), "{s:?}");
    assert_eq!(
        s[1],
        "  time to upgrade (first event to running it): median 1.1 days, p90 6.1 days, p99 6.1 days"
    );
    // Guard rails (minimum 1 device, threshold 0.2): M2 fails 1 of 1 (Wilson lower 0.21).
    let g = v["guard_rails"].as_array().unwrap();
    let m2g = g
        .iter()
        .find(|r| r["group"] == "model" && r["value"] == "M2")
        .unwrap();
    assert_eq!(m2g["tripped_on"], "2024-01-10");
    // The CSVs and the chart are written.
    for f in [
        "funnel.csv",
        "failures.csv",
        "cannot_upgrade.csv",
        "guard_rails.csv",
        "upgraded_per_region.png",
    ] {
        assert!(dir.path().join("out").join(f).is_file(), "{f}");
    }
}

#[test]
fn alerts_are_evidence_and_the_running_version_needs_proof() {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path());
    // Device 7, alerts only: transfer, verification, activation, and an 8F43 with no version.
    let mut a = String::from("timestamp,device_id,alert_code\n");
    for (h, code) in [(1, "8F8A"), (2, "8F72"), (3, "8F66"), (4, "8F43")] {
        writeln!(a, "2024-01-20T{h:02}:00:00Z,{},{code}", dev(7)).unwrap();
    }
    // Device 6, a transfer failure by alert only.
    writeln!(a, "2024-01-20T05:00:00Z,{},8F89", dev(6)).unwrap();
    std::fs::write(dir.path().join("alerts.csv"), a).unwrap();
    let r = run_in(
        dir.path(),
        &[
            "ota",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--campaign",
            "campaign.csv",
            "-f",
            "json",
        ],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let m1 = v["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "M1")
        .unwrap()
        .clone();
    // Device 7 reached activation (delivery implied), but no version was seen: not upgraded.
    assert_eq!(
        (
            m1["activated"].as_i64(),
            m1["running_target"].as_i64(),
            m1["in_progress"].as_i64()
        ),
        (Some(1), Some(0), Some(1))
    );
    assert_eq!(
        (m1["failed"].as_i64(), m1["not_started"].as_i64()),
        (Some(1), Some(5))
    );
    assert!(
        r.stderr
            .contains("records read 5 = accepted 5 + duplicates 0 + rejected 0"),
        "{}",
        r.stderr
    );
}

/// The device, from alerts alone: 8F89 (transfer failed), then 8F8A and 8F72, and
/// the next day an 8F43. It is not failed: in progress while the 8F43 carries no version,
/// upgraded once a running record gives the target; its failed attempt stays in the Pareto.
#[test]
fn a_retry_that_succeeded_is_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path());
    let mut a = String::from("timestamp,device_id,alert_code\n");
    for (day, h, code) in [
        (20, 5, "8F89"),
        (20, 9, "8F8A"),
        (20, 10, "8F72"),
        (21, 2, "8F43"),
    ] {
        writeln!(a, "2024-01-{day}T{h:02}:00:00Z,{},{code}", dev(5)).unwrap();
    }
    // Device 6 fails its transfer and nothing follows: failed.
    writeln!(a, "2024-01-20T05:00:00Z,{},8F89", dev(6)).unwrap();
    std::fs::write(dir.path().join("alerts.csv"), a).unwrap();
    let run = |extra: &[&str]| -> Value {
        let mut args = vec![
            "ota",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--campaign",
            "campaign.csv",
            "-f",
            "json",
        ];
        args.extend_from_slice(extra);
        let r = run_in(dir.path(), &args, None);
        assert_eq!(r.status, 0, "{}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    };
    let m1 = |v: &Value| -> Value {
        v["funnel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["model"] == "M1")
            .unwrap()
            .clone()
    };
    let transfer_failures = |v: &Value| -> i64 {
        v["failures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["stage"] == "transfer")
            .map(|r| r["devices"].as_i64().unwrap())
            .sum()
    };
    let v = run(&[]);
    let f = m1(&v);
    assert_eq!(
        (
            f["failed"].as_i64(),
            f["in_progress"].as_i64(),
            f["running_target"].as_i64(),
            f["activated"].as_i64()
        ),
        (Some(1), Some(1), Some(0), Some(1)),
        "{f}"
    );
    // Both devices' transfer failures are in the Pareto.
    assert_eq!(transfer_failures(&v), 2);
    // A running record with the target version: device 5 is upgraded.
    std::fs::write(
        dir.path().join("outcomes.csv"),
        format!(
            "timestamp,device_id,campaign,stage,outcome,firmware_version,attempt\n2024-01-21T02:00:00Z,{},C,running,success,2.0,2\n",
            dev(5)
        ),
    )
    .unwrap();
    let v = run(&["--outcomes", "outcomes.csv"]);
    let f = m1(&v);
    assert_eq!(
        (
            f["failed"].as_i64(),
            f["in_progress"].as_i64(),
            f["running_target"].as_i64()
        ),
        (Some(1), Some(0), Some(1)),
        "{f}"
    );
}

#[test]
fn bad_outcome_rows_are_quarantined_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path());
    write_outcomes(dir.path());
    let mut o = std::fs::read_to_string(dir.path().join("outcomes.csv")).unwrap();
    o += "2024-01-20T01:00:00Z,not-a-device,C,11.1,transfer,success,,,1,\n";
    o += "yesterday,00-12-4B-00-00-00-00-01,C,11.1,transfer,success,,,1,\n";
    std::fs::write(dir.path().join("outcomes.csv"), &o).unwrap();
    let r = run_in(
        dir.path(),
        &[
            "ota",
            "-i",
            "inventory.csv",
            "--campaign",
            "campaign.csv",
            "--outcomes",
            "outcomes.csv",
        ],
        None,
    );
    assert_eq!(r.status, 3, "{}", r.stderr);
    // Every row is accounted for: device 5's five repeated rows are duplicates, the two bad rows rejects.
    let rows = o.lines().count() as u64 - 1;
    assert!(
        r.stderr.contains(&format!(
            "outcome records read {rows} = accepted {} + duplicates 5 + rejected 2",
            rows - 7
        )),
        "{}",
        r.stderr
    );
    let q = std::fs::read_to_string(dir.path().join("fleetwatch-rejects.jsonl")).unwrap();
    assert_eq!(q.lines().count(), 2);
    assert!(
        q.contains("invalid device id `not-a-device`") && q.contains("outcomes.csv"),
        "{q}"
    );
}

#[test]
fn the_planted_campaign_is_measured_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate_fleet(dir.path(), 5);
    let t = &truth["ota"];
    let r = run_in(
        dir.path(),
        &[
            "ota",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--campaign",
            "ota_campaign.csv",
            "--outcomes",
            "ota_outcomes.csv",
            "-f",
            "json",
        ],
        None,
    );
    assert!(r.status == 0 || r.status == 3, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let sum = |k: &str| -> i64 {
        v["funnel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[k].as_i64().unwrap())
            .sum()
    };
    assert_eq!(sum("targeted"), t["targeted"].as_i64().unwrap());
    assert_eq!(sum("running_target"), t["upgraded"].as_i64().unwrap());
    assert_eq!(sum("failed"), t["failed_not_upgraded"].as_i64().unwrap());
    assert_eq!(
        sum("never_heard_from"),
        t["never_heard_from"].as_i64().unwrap()
    );
    assert!(sum("failed") + sum("running_target") <= sum("targeted"));
    // The outcome file's planted repeats are duplicates.
    assert!(
        r.stderr
            .contains(&format!("+ duplicates {} +", t["duplicated_rows"])),
        "{}",
        r.stderr
    );
    // Every device that cannot be upgraded: the mismatched model's failures plus those that
    // used every attempt.
    let cu = v["cannot_upgrade"].as_array().unwrap();
    let hw = t["hardware_mismatch_model"].as_str().unwrap();
    let max = t["max_attempts"].as_i64().unwrap();
    let at_max = cu
        .iter()
        .filter(|r| r["failed_attempts"].as_i64() == Some(max))
        .count() as i64;
    assert_eq!(at_max, t["max_attempts_reached"].as_i64().unwrap());
    assert!(
        cu.iter()
            .all(|r| r["model"] == hw || r["failed_attempts"].as_i64() == Some(max))
    );
    // Guard rails: the mismatched model trips, the others do not.
    let g = v["guard_rails"].as_array().unwrap();
    for m in t["target_models"].as_array().unwrap() {
        let row = g
            .iter()
            .find(|r| r["group"] == "model" && r["value"] == *m)
            .unwrap();
        assert_eq!(row["tripped_on"] != "", m == hw, "{row}");
    }
    // The firmware halves 81B8 on upgraded meters: the difference in differences finds it.
    let code = t["firmware_effect"]["code"].as_str().unwrap();
    let e = v["firmware_effect"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert_code"] == code)
        .unwrap();
    let rel = e["relative_effect"].as_f64().unwrap();
    let want = t["firmware_effect"]["factor"].as_f64().unwrap() - 1.0;
    assert!((rel - want).abs() < 0.15, "{e}");
}

/// The firmware effect on fresh fleets (seeds chosen before looking at their results): the
/// planted effect lies inside its 95% interval, and no code without a planted effect is
/// called a clear effect. Every row carries its interval and a verdict.
#[test]
fn the_planted_firmware_effect_lies_in_its_interval_and_nothing_else_is_clear() {
    for seed in [11, 23] {
        let dir = tempfile::tempdir().unwrap();
        let truth = generate_fleet(dir.path(), seed);
        let t = &truth["ota"]["firmware_effect"];
        let planted = t["code"].as_str().unwrap();
        let want = t["factor"].as_f64().unwrap() - 1.0;
        let r = run_in(
            dir.path(),
            &[
                "ota",
                "alerts.csv",
                "-i",
                "inventory.csv",
                "--campaign",
                "ota_campaign.csv",
                "--outcomes",
                "ota_outcomes.csv",
                "-f",
                "json",
                "--out",
                "o",
            ],
            None,
        );
        // 3: the generator plants rejects in the alerts.
        assert!(r.status == 0 || r.status == 3, "{}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        let rows = v["firmware_effect"].as_array().unwrap();
        assert!(rows.len() >= 3, "seed {seed}: {rows:?}");
        for row in rows {
            let verdict = row["verdict"].as_str().unwrap();
            assert!(
                [
                    "clear effect",
                    "no clear effect",
                    "dominated by few devices",
                    "pre-trends differ"
                ]
                .contains(&verdict),
                "{row}"
            );
            // Never a bare percentage: the interval is beside it.
            assert!(row["effect"].as_str().unwrap().contains('['), "{row}");
            if row["alert_code"] == planted {
                let (lo, hi) = (
                    row["ci_low"].as_f64().unwrap(),
                    row["ci_high"].as_f64().unwrap(),
                );
                assert!(lo <= want && want <= hi, "seed {seed}: {row}");
                assert!(lo <= row["relative_effect"].as_f64().unwrap());
            } else {
                assert_ne!(verdict, "clear effect", "seed {seed}: {row}");
            }
            let share = row["top1pct_share"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&share), "{row}");
        }
        // The chart: PNG and SVG beside the tables, one interval line (stroke 3, horizontal)
        // per code with an interval, and "no interval" written for each code without one.
        let out = dir.path().join("o");
        assert!(out.join("firmware_effect.png").is_file());
        let svg = std::fs::read_to_string(out.join("firmware_effect.svg")).unwrap();
        let intervals = svg
            .split("<polyline")
            .skip(1)
            .filter(|p| p.contains("stroke-width=\"3\""))
            .filter(|p| {
                let pts: Vec<&str> = p
                    .split("points=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .collect();
                pts.len() == 2 && pts[0].split(',').nth(1) == pts[1].split(',').nth(1)
            })
            .count();
        let with_ci = rows.iter().filter(|r| r["ci_low"].is_f64()).count();
        assert!(with_ci >= 3, "seed {seed}");
        assert_eq!(
            intervals, with_ci,
            "seed {seed}: one interval line per code"
        );
        assert_eq!(
            svg.matches("\nno interval\n").count(),
            rows.len() - with_ci,
            "seed {seed}"
        );
        for row in rows {
            let code = row["alert_code"].as_str().unwrap();
            assert!(svg.contains(&format!("\n{code} ")), "seed {seed}: {code}");
        }
        // The noisy meter (a planted device raising 8F84 hundreds of times a day) is among
        // the upgraded devices: the verdict says the comparison rests on a few devices.
        let noisy = &truth["noisy_devices"][0];
        let id = noisy["device_id"].as_str().unwrap();
        let campaign = std::fs::read_to_string(dir.path().join("ota_campaign.csv")).unwrap();
        let inventory = std::fs::read_to_string(dir.path().join("inventory.csv")).unwrap();
        let target = truth["ota"]["target_version"].as_str().unwrap();
        let upgraded = inventory
            .lines()
            .any(|l| l.starts_with(id) && l.contains(&format!(",{target},")));
        if noisy["code"] == "8F84" && campaign.contains(id) && upgraded {
            let row = rows.iter().find(|r| r["alert_code"] == "8F84").unwrap();
            assert_eq!(
                row["verdict"], "dominated by few devices",
                "seed {seed}: {row}"
            );
        }
    }
}

/// DUIS alerts alone (no outcome records): the GBCS payloads give the failure reasons and the
/// version each 8F43 reports, so the upgrades and the hardware mismatches are found from the
/// alert stream itself.
#[test]
fn duis_payloads_alone_give_upgrades_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate_fleet_as(dir.path(), 5, "duis");
    let t = &truth["ota"];
    let r = run_in(
        dir.path(),
        &[
            "ota",
            "alerts.xml",
            "-i",
            "inventory.csv",
            "--campaign",
            "ota_campaign.csv",
            "-f",
            "json",
        ],
        None,
    );
    assert!(r.status == 0 || r.status == 3, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let sum = |k: &str| -> i64 {
        v["funnel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[k].as_i64().unwrap())
            .sum()
    };
    // Every device whose 8F43 carried the target version is upgraded, as planted.
    assert_eq!(sum("running_target"), t["upgraded"].as_i64().unwrap());
    // The mismatched model's transfer failures carry their reason in the payload.
    let hw = t["hardware_mismatch_model"].as_str().unwrap();
    let fl = v["failures"].as_array().unwrap();
    let row = fl
        .iter()
        .find(|f| f["model"] == hw && f["reason"] == "hardware version mismatch")
        .expect("the mismatch is named");
    assert_eq!(row["stage"], "transfer");
    let cu = v["cannot_upgrade"].as_array().unwrap();
    assert!(
        cu.iter()
            .filter(|c| c["model"] == hw)
            .all(|c| c["last_reason"] == "hardware version mismatch")
    );
    assert!(cu.iter().any(|c| c["model"] == hw));
}
