//! End-to-end tests of the spurious-alert investigation: spikes, offenders, what-if and
//! reclassification labels, on hand-built fleets with hand-computed answers, and `spikes`
//! against the regional incident and OTA campaign the generator plants (the incident is the
//! first episode, the campaign's codes are known events; four seeds, one of them never looked
//! at while tuning).

mod common;
use common::*;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

type Row = HashMap<String, String>;

fn csv_rows(text: &str) -> Vec<Row> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let h = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            h.iter()
                .zip(rec.iter())
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        })
        .collect()
}

/// Device `i` of the hand fleet: 1,000 ESME in North, devices 0..100 model A (fw 1.0), the
/// rest model B (fw 2.0), all installed throughout.
fn dev(i: u32) -> String {
    format!("00-12-4B-00-00-00-{:02X}-{:02X}", i >> 8, i & 0xFF)
}

fn write_inventory(dir: &Path) {
    let mut inv = String::from("device_id,device_type,region,generation,model,firmware_version\n");
    for i in 0..1000 {
        let (m, f) = if i < 100 { ("A", "1.0") } else { ("B", "2.0") };
        writeln!(inv, "{},ESME,North,SMETS2,{m},{f}", dev(i)).unwrap();
    }
    std::fs::write(dir.join("inventory.csv"), inv).unwrap();
}

/// 14 days from Monday 2024-01-01 of 8F35: 20 a day from model B devices (one alert each,
/// different devices each day); on day 10 (2024-01-11) model A devices add 80.
fn write_spike_alerts(dir: &Path) {
    let mut a = String::from("timestamp,device_id,alert_code\n");
    for day in 0..14u32 {
        for k in 0..20 {
            let d = 100 + (day * 20 + k) % 900;
            writeln!(a, "2024-01-{:02}T10:{:02}:00Z,{},8F35", day + 1, k, dev(d)).unwrap();
        }
        if day == 10 {
            for k in 0..80 {
                writeln!(
                    a,
                    "2024-01-11T12:{:02}:{:02}Z,{},8F35",
                    k / 60,
                    k % 60,
                    dev(k)
                )
                .unwrap();
            }
        }
    }
    std::fs::write(dir.join("alerts.csv"), a).unwrap();
}

#[test]
fn spikes_finds_the_hand_built_spike_and_names_its_model() {
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path());
    write_spike_alerts(dir.path());
    let r = run_in(
        dir.path(),
        &[
            "spikes",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "-f",
            "csv",
            "--charts",
            "charts",
        ],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rows = csv_rows(&r.stdout);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    let s = &rows[0];
    // Baseline: 20 a day = 20 per 1,000; spread sqrt(20) (no day-to-day variation).
    assert_eq!(s["rank"], "1");
    assert_eq!(s["first_day"], "2024-01-11");
    assert_eq!(s["last_day"], "2024-01-11");
    assert_eq!(s["days"], "1");
    assert_eq!(s["region"], "North");
    assert_eq!(s["alert_code"], "8F35");
    assert_eq!(s["device_type"], "ESME");
    assert_eq!(s["alerts"], "100");
    assert_eq!(s["counted"], "100");
    assert_eq!(s["devices"], "100");
    assert_eq!(s["expected"], "20.0");
    assert_eq!(s["excess"], "80.0");
    assert_eq!(s["ratio"], "5.0");
    assert_eq!(s["peak_z"], format!("{:.1}", 80.0 / 20f64.sqrt()));
    assert_eq!(s["per_1000"], "100.0000");
    assert_eq!(s["baseline_per_1000"], "20.0000");
    assert_eq!(s["installed_devices"], "1000");
    assert_eq!(s["known_event"], "");
    assert_eq!(
        s["explanation"],
        "model and firmware: A fw 1.0 carry 100% of the excess on 10% of the devices"
    );
    assert!(
        r.stderr
            .contains("1 episodes (1 flagged days in 1 of 1 groups, 7 group-days judged)"),
        "{}",
        r.stderr
    );
    let charts: Vec<_> = std::fs::read_dir(dir.path().join("charts"))
        .unwrap()
        .collect();
    assert_eq!(charts.len(), 1);
}

#[test]
fn spikes_is_quiet_without_a_spike() {
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path());
    write_spike_alerts(dir.path());
    // The same alerts without day 10's extra 80.
    let text = std::fs::read_to_string(dir.path().join("alerts.csv")).unwrap();
    let calm: String = text
        .lines()
        .filter(|l| !l.starts_with("2024-01-11T12"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("alerts.csv"), calm).unwrap();
    let r = run_in(
        dir.path(),
        &["spikes", "alerts.csv", "-i", "inventory.csv", "-f", "json"],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["flagged"], 0);
    assert_eq!(v["episodes"].as_array().unwrap().len(), 0);
    assert_eq!(v["group_days_judged"], 7);
}

/// Consecutive flagged days of a group are one episode: the model A surge lasts three days.
#[test]
fn consecutive_flagged_days_are_one_episode() {
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path());
    write_spike_alerts(dir.path());
    let mut a = std::fs::read_to_string(dir.path().join("alerts.csv")).unwrap();
    for day in [12, 13] {
        for k in 0..80 {
            writeln!(
                a,
                "2024-01-{day}T12:{:02}:{:02}Z,{},8F35",
                k / 60,
                k % 60,
                dev(k)
            )
            .unwrap();
        }
    }
    std::fs::write(dir.path().join("alerts.csv"), a).unwrap();
    let r = run_in(
        dir.path(),
        &["spikes", "alerts.csv", "-i", "inventory.csv", "-f", "json"],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let e = v["episodes"].as_array().unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["first_day"], "2024-01-11");
    assert_eq!(e[0]["last_day"], "2024-01-13");
    assert_eq!(e[0]["days"], 3);
    // 3 x (20 + 80) alerts; each day expects 20 (the medians ignore the surge).
    assert_eq!(e[0]["alerts"], 300);
    assert_eq!(e[0]["expected"], 60.0);
    assert_eq!(e[0]["excess"], 240.0);
    // The same 80 model A devices each day, and 60 different model B devices.
    assert_eq!(e[0]["devices"], 140);
    // Every flagged day is in the JSON too.
    let flags = v["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 3);
    assert!(
        flags
            .iter()
            .all(|f| f["episode"] == "incident" && f["devices"] == 100)
    );
}

/// One chattering meter raising 80 alerts on a day does not make a spike: it counts for at
/// most --device-cap (3). Without the cap the same day is flagged.
#[test]
fn a_single_noisy_device_does_not_make_an_episode() {
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path());
    write_spike_alerts(dir.path());
    let text = std::fs::read_to_string(dir.path().join("alerts.csv")).unwrap();
    let mut a: String = text
        .lines()
        .filter(|l| !l.starts_with("2024-01-11T12"))
        .map(|l| format!("{l}\n"))
        .collect();
    for k in 0..80 {
        writeln!(
            a,
            "2024-01-11T12:{:02}:{:02}Z,{},8F35",
            k / 60,
            k % 60,
            dev(999)
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("alerts.csv"), a).unwrap();
    let args = ["spikes", "alerts.csv", "-i", "inventory.csv", "-f", "json"];
    let r = run_in(dir.path(), &args, None);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["params"]["device_cap"], 3);
    assert_eq!(v["flagged"], 0, "{}", r.stdout);
    assert_eq!(v["episodes"].as_array().unwrap().len(), 0);
    assert_eq!(v["alerts_over_device_cap"], 77);
    let uncapped = run_in(
        dir.path(),
        &[&args[..], &["--device-cap", "0"]].concat(),
        None,
    );
    let u: serde_json::Value = serde_json::from_str(&uncapped.stdout).unwrap();
    let e = u["episodes"].as_array().unwrap();
    assert_eq!(e.len(), 1, "{}", uncapped.stdout);
    assert_eq!(e[0]["first_day"], "2024-01-11");
    assert_eq!(e[0]["devices"], 21);
    // The help says what the cap is.
    let help = run(&["spikes", "--help"]);
    assert!(help.stdout.contains("--device-cap"), "{}", help.stdout);
    assert!(
        help.stdout.contains("--exclude-category"),
        "{}",
        help.stdout
    );
}

#[test]
fn excluded_codes_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path());
    write_spike_alerts(dir.path());
    for extra in [
        &["--exclude-codes", "8F35"][..],
        &["--exclude-category", "supply"],
    ] {
        let r = run_in(
            dir.path(),
            &[
                &["spikes", "alerts.csv", "-i", "inventory.csv", "-f", "json"][..],
                extra,
            ]
            .concat(),
            None,
        );
        assert_eq!(r.status, 0, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["groups"], 0, "{extra:?}");
        assert_eq!(v["excluded_alerts"], 14 * 20 + 80, "{extra:?}");
        assert!(r.stderr.contains("360 alerts not counted"), "{}", r.stderr);
    }
    let bad = run_in(
        dir.path(),
        &["spikes", "alerts.csv", "--exclude-category", "nonsense"],
        None,
    );
    assert_eq!(bad.status, 1);
    assert!(bad.stderr.contains("is not a category"), "{}", bad.stderr);
}

/// The firmware-family codes an OTA campaign raises.
const OTA_CODES: &[&str] = &["8F8A", "8F89", "8F72", "8F1C", "8F66", "8F67", "8F43"];

/// On generated fleets the planted incident (four codes in one region on one day) is the first
/// episode, its four codes the first four; with the campaign known (--campaign or --outcomes),
/// no episode of the campaign's codes during its run is ranked among the incidents. Seeds 1-3
/// were looked at while choosing the defaults; seed 7 never was.
#[test]
fn spikes_rank_the_planted_incident_first_and_the_campaign_apart() {
    let (mut found, mut planted, mut false_alarms) = (0, 0, 0);
    let mut report = String::new();
    for (seed, known) in [
        (1u64, "--campaign"),
        (2, "--outcomes"),
        (3, "--campaign"),
        (7, "--outcomes"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let truth = generate_fleet(dir.path(), seed);
        let inc = &truth["incident"];
        let codes: Vec<&str> = inc["records"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let file = if known == "--campaign" {
            "ota_campaign.csv"
        } else {
            "ota_outcomes.csv"
        };
        let args = [
            "spikes",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--top",
            "0",
            "-f",
            "json",
        ];
        let r = run_in(dir.path(), &[&args[..], &[known, file]].concat(), None);
        assert!(r.status == 0 || r.status == 3, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let episodes = v["episodes"].as_array().unwrap();
        let campaign = v["campaign_episodes"].as_array().unwrap();
        let is_incident = |e: &serde_json::Value| {
            e["first_day"] == inc["day"]
                && e["last_day"] == inc["day"]
                && e["region"] == inc["region"]
                && codes.contains(&e["alert_code"].as_str().unwrap())
        };
        // The incident is the first episode, and its codes the first four, each one day long.
        assert!(
            is_incident(&episodes[0]),
            "seed {seed}: {:?}",
            episodes.first()
        );
        let top: std::collections::BTreeSet<&str> = episodes[..codes.len()]
            .iter()
            .filter(|e| is_incident(e))
            .map(|e| e["alert_code"].as_str().unwrap())
            .collect();
        assert_eq!(top.len(), codes.len(), "seed {seed}: {top:?} vs {codes:?}");
        // A whole-region event, not one model's; its devices counted.
        for e in &episodes[..codes.len()] {
            assert!(
                e["explanation"]
                    .as_str()
                    .unwrap()
                    .starts_with("spread across models"),
                "{e}"
            );
            assert!(e["devices"].as_u64().unwrap() > 100, "{e}");
        }
        // The campaign: its run known, its codes' episodes during it apart from the incidents.
        let run = &v["campaigns"][0];
        assert_eq!(run["campaign"], truth["ota"]["campaign"], "seed {seed}");
        assert_eq!(run["first_day"], truth["ota"]["start"], "seed {seed}");
        let in_run = |e: &serde_json::Value| {
            e["first_day"].as_str() <= run["last_day"].as_str()
                && e["last_day"].as_str() >= run["first_day"].as_str()
        };
        assert!(!campaign.is_empty(), "seed {seed}");
        for e in campaign {
            assert!(
                OTA_CODES.contains(&e["alert_code"].as_str().unwrap()),
                "{e}"
            );
            assert!(in_run(e), "{e}");
            assert!(
                e["known_event"].as_str().unwrap().starts_with("campaign "),
                "{e}"
            );
        }
        assert!(
            !episodes
                .iter()
                .any(|e| OTA_CODES.contains(&e["alert_code"].as_str().unwrap()) && in_run(e)),
            "seed {seed}: a campaign episode ranked among the incidents"
        );
        let fa: Vec<String> = episodes[codes.len()..]
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    e["first_day"], e["region"], e["alert_code"], e["device_type"]
                )
            })
            .collect();
        found += top.len();
        planted += codes.len();
        false_alarms += fa.len();
        writeln!(
            report,
            "seed {seed} ({known}): incident {} {}: {}/{} codes ranked 1-{}; {} campaign episodes ({} days) apart; {} other episodes {fa:?}",
            inc["region"], inc["day"], top.len(), codes.len(), codes.len(),
            campaign.len(), campaign.iter().map(|e| e["days"].as_u64().unwrap()).sum::<u64>(),
            fa.len(),
        )
        .unwrap();
    }
    println!("{report}recall {found}/{planted}, {false_alarms} other episodes in 4 fleets");
    assert_eq!(found, planted, "{report}");
    assert!(false_alarms <= 4, "{report}");
    // Without the campaign known, its codes are ranked among the episodes (seed 1).
    let dir = tempfile::tempdir().unwrap();
    generate_fleet(dir.path(), 1);
    let r = run_in(
        dir.path(),
        &[
            "spikes",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--top",
            "0",
            "-f",
            "json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["campaign_episodes"].as_array().unwrap().is_empty());
    assert!(
        v["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| OTA_CODES.contains(&e["alert_code"].as_str().unwrap()))
    );
    // And --exclude-category firmware takes the firmware codes out instead.
    let x = run_in(
        dir.path(),
        &[
            "spikes",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--top",
            "0",
            "-f",
            "json",
            "--exclude-category",
            "firmware",
        ],
        None,
    );
    let xv: serde_json::Value = serde_json::from_str(&x.stdout).unwrap();
    assert!(xv["excluded_alerts"].as_u64().unwrap() > 0);
    assert!(xv["episodes"].as_array().unwrap().iter().all(|e| {
        let c = e["alert_code"].as_str().unwrap();
        !["8F8A", "8F89", "8F72", "8F1C", "8F43"].contains(&c)
    }));
}

/// The spike fixture plus a noisy device (999, model B) raising 50 alerts on 2024-01-04.
fn write_offender_alerts(dir: &Path) {
    write_spike_alerts(dir);
    let mut a = std::fs::read_to_string(dir.join("alerts.csv")).unwrap();
    for k in 0..50 {
        writeln!(
            a,
            "2024-01-04T{:02}:{:02}:00Z,{},8F35",
            k / 60 + 1,
            k % 60,
            dev(999)
        )
        .unwrap();
    }
    std::fs::write(dir.join("alerts.csv"), a).unwrap();
}

#[test]
fn offenders_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path());
    write_offender_alerts(dir.path());
    let args = [
        "offenders",
        "alerts.csv",
        "-i",
        "inventory.csv",
        "--code",
        "8F35",
    ];
    let j = run_in(
        dir.path(),
        &[&args[..], &["-f", "json", "--top", "3"]].concat(),
        None,
    );
    assert_eq!(j.status, 0, "{}", j.stderr);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    // 280 model-B alerts on 280 devices, 80 model-A alerts on 80 devices, 50 from device 999.
    assert_eq!(v["alerts"], 410);
    assert_eq!(v["alerting_devices"], 361);
    assert_eq!(v["installed_devices"], 1000);
    // Top 1% = ceil(3.61) = 4 devices: 50 + 3; top 10% = 37 devices: 50 + 36.
    assert_eq!(v["top_1pct_share"], 53.0 / 410.0);
    assert_eq!(v["top_10pct_share"], 86.0 / 410.0);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["device_id"], dev(999));
    assert_eq!(rows[0]["alerts"], 50);
    assert_eq!(rows[0]["model"], "B");
    let models = v["models"].as_array().unwrap();
    // B: 330 alerts over 900 devices x 14 days; A: 80 over 100 x 14.
    assert_eq!(models[0]["model"], "B");
    assert_eq!(models[0]["alerting_devices"], 281);
    assert_eq!(models[0]["alerts"], 330);
    assert_eq!(models[0]["per_1000_per_day"], 26.1905);
    assert_eq!(models[1]["model"], "A");
    assert_eq!(models[1]["installed_devices"], 100);
    assert_eq!(models[1]["per_1000_per_day"], 57.1429);
    // One day of model A alerts in 14 is not a trend; nor is B's flat 20 a day with one burst.
    assert!(
        models
            .iter()
            .all(|m| m["trend"].as_str().unwrap().starts_with("steady")),
        "{models:?}"
    );
    let c = run_in(
        dir.path(),
        &[&args[..], &["-f", "csv", "--show", "models"]].concat(),
        None,
    );
    assert!(c.stdout.starts_with("model,firmware_version,installed_devices,alerting_devices,alerts,share,per_1000_per_day,trend\nB,2.0,900,281,330,"), "{}", c.stdout);
    let t = run_in(dir.path(), &args, None);
    assert!(
        t.stdout.contains(
            "the top 1% of alerting devices raise 12.9% of the alerts, the top 10% 21.0%"
        ),
        "{}",
        t.stdout
    );
    let none = run_in(dir.path(), &["offenders", "alerts.csv"], None);
    assert_eq!(none.status, 1);
    assert!(none.stderr.contains("--codes 81B8"), "{}", none.stderr);
}

#[test]
fn whatif_remediation_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path());
    write_offender_alerts(dir.path());
    let r = run_in(
        dir.path(),
        &[
            "whatif",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--remediate",
            "model=A,code=8F35",
            "-f",
            "csv",
            "--chart",
            "wi.svg",
        ],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    // 410 alerts over 1,000 devices x 14 days; model A's 80 go.
    assert_eq!(
        r.stdout,
        "region,alerts_before,alerts_after,removed,change_pct,per_1000_before,per_1000_after,devices,devices_touched\n\
         North,410,330,80,-19.51,29.2857,23.5714,1000,100\n\
         all,410,330,80,-19.51,29.2857,23.5714,1000,100\n"
    );
    let svg = std::fs::read_to_string(dir.path().join("wi.svg")).unwrap();
    assert!(svg.contains("removed") && svg.contains("North"));
    // A device list, another code: nothing removed, two devices touched.
    std::fs::write(
        dir.path().join("list.txt"),
        format!("{}\n{}\n", dev(999), dev(5)),
    )
    .unwrap();
    let r = run_in(
        dir.path(),
        &[
            "whatif",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--remediate",
            "devices=list.txt",
            "-f",
            "json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let all = &v["remediation"]["rows"][1];
    // Device 999 raised 50 and device 5 one (a model A alert on 01-11).
    assert_eq!(
        (all["removed"].as_i64(), all["devices_touched"].as_i64()),
        (Some(51), Some(2))
    );
    let bad = run_in(
        dir.path(),
        &[
            "whatif",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--remediate",
            "colour=red",
        ],
        None,
    );
    assert_eq!(bad.status, 1);
    assert!(
        bad.stderr.contains("`colour` is not a rule condition"),
        "{}",
        bad.stderr
    );
}

#[test]
fn labels_group_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path());
    write_offender_alerts(dir.path());
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rule]]\ncode = \"8F35\"\nmodel = \"A\"\nlabel = \"firmware fault\"\ncategory = \"meter fault\"\n",
    )
    .unwrap();
    let r = run_in(
        dir.path(),
        &[
            "alerts",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--by",
            "label,category",
            "--labels",
            "rules.toml",
            "-f",
            "csv",
            "--no-distinct",
        ],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rows = csv_rows(&r.stdout);
    let official = catalogue_name("8F35");
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|x| {
            (
                x["label"].clone(),
                x["category"].clone(),
                x["alerts"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (official.clone(), "supply".to_string(), "330".to_string()),
            (
                "firmware fault".to_string(),
                "meter fault".to_string(),
                "80".to_string()
            ),
        ]
    );
    let w = run_in(
        dir.path(),
        &[
            "whatif",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--labels",
            "rules.toml",
            "-f",
            "csv",
        ],
        None,
    );
    assert_eq!(
        w.stdout,
        format!(
            "label,category,alerts_before,alerts_after,change\n{official},supply,410,330,-80\nfirmware fault,meter fault,0,80,80\n"
        )
    );
}

fn catalogue_name(code: &str) -> String {
    let r = run(&["codes", code]);
    let last = r.stdout.lines().last().unwrap().to_string();
    last.split_whitespace()
        .skip(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn offenders_and_whatif_find_the_planted_81b8_sources() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate_fleet(dir.path(), 4);
    let off = run_in(
        dir.path(),
        &[
            "offenders",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--code",
            "81B8",
            "-f",
            "json",
            "--top",
            "10",
        ],
        None,
    );
    assert!(off.status == 0 || off.status == 3, "{}", off.stderr);
    let v: serde_json::Value = serde_json::from_str(&off.stdout).unwrap();
    // Every noisy 81B8 device is among the top devices.
    let top: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device_id"].as_str().unwrap())
        .collect();
    for n in truth["noisy_devices"].as_array().unwrap() {
        if n["code"] == "81B8" {
            assert!(
                top.contains(&n["device_id"].as_str().unwrap()),
                "{n} not in {top:?}"
            );
        }
    }
    // The planted hot SMETS2 model and firmware (EDMI-ES2 2.0.1, ten times the base rate) has
    // a rate at least five times every other SMETS2 model's. (EDMI-ES2 4.0.0 is left out: the
    // inventory gives firmware at the end of the period, so the meters the campaign upgraded
    // from 2.0.1 bring their hot days before the upgrade with them.)
    let models = v["models"].as_array().unwrap();
    let rate = |m: &serde_json::Value| m["per_1000_per_day"].as_f64().unwrap_or(0.0);
    let hot = models
        .iter()
        .find(|m| m["model"] == "EDMI-ES2" && m["firmware_version"] == "2.0.1")
        .unwrap();
    for m in models.iter().filter(|m| {
        let name = m["model"].as_str().unwrap();
        !name.starts_with("S1-") && name != "(none)" && name != "EDMI-ES2"
    }) {
        assert!(rate(hot) > 5.0 * rate(m), "{hot} vs {m}");
    }
    // What-if removes exactly what offenders attributes to that model and firmware.
    let w = run_in(
        dir.path(),
        &[
            "whatif",
            "alerts.csv",
            "-i",
            "inventory.csv",
            "--codes",
            "81B8",
            "--remediate",
            "model=EDMI-ES2,firmware=2.0.1",
            "-f",
            "json",
        ],
        None,
    );
    let wv: serde_json::Value = serde_json::from_str(&w.stdout).unwrap();
    let rows = wv["remediation"]["rows"].as_array().unwrap();
    let all = rows.last().unwrap();
    assert_eq!(all["region"], "all");
    assert_eq!(all["removed"], hot["alerts"]);
    assert_eq!(all["alerts_before"], v["alerts"]);
}

/// Where the inventory links meters to hubs, a spike is also explained by hub model.
#[test]
fn spikes_name_the_hub_model_behind_the_excess() {
    let dir = tempfile::tempdir().unwrap();
    write_spike_alerts(dir.path());
    // The 1,000 meters of the hand fleet, devices 0-99 behind hub H1 (model HUB-A), the rest
    // behind H2 (HUB-B); the hubs themselves in the inventory too.
    let (h1, h2) = ("00-12-4B-FF-00-00-00-01", "00-12-4B-FF-00-00-00-02");
    let mut inv =
        String::from("device_id,device_type,region,generation,model,firmware_version,comms_hub\n");
    writeln!(inv, "{h1},CHF,North,SMETS2,HUB-A,1,").unwrap();
    writeln!(inv, "{h2},CHF,North,SMETS2,HUB-B,1,").unwrap();
    for i in 0..1000 {
        let (m, f, h) = if i < 100 {
            ("A", "1.0", h1)
        } else {
            ("B", "2.0", h2)
        };
        writeln!(inv, "{},ESME,North,SMETS2,{m},{f},{h}", dev(i)).unwrap();
    }
    std::fs::write(dir.path().join("inventory.csv"), inv).unwrap();
    let r = run_in(
        dir.path(),
        &["spikes", "alerts.csv", "-i", "inventory.csv", "-f", "json"],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let hubs: Vec<&serde_json::Value> = v["episodes"][0]["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["dimension"] == "comms hub model")
        .collect();
    // The 80 extra alerts all come from meters behind HUB-A, 10% of the linked meters.
    assert_eq!(hubs.len(), 1, "{hubs:?}");
    assert_eq!(hubs[0]["name"], "HUB-A");
    assert_eq!(hubs[0]["excess"], 80.0);
    assert_eq!(hubs[0]["share_of_excess"], 1.0);
    assert_eq!(hubs[0]["share_of_devices"], 0.1);
}
