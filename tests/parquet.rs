//! The Parquet hand-off: `fleetwatch export` and `alerts --format parquet` read back by DuckDB
//! and Spark (the Python tools .ci/run installs, found through FLEETWATCH_PY) to the numbers
//! fleetwatch gives, timestamps as UTC, files that appear only whole, re-runs that replace
//! their own files.
//!
//! Outside CI, a test whose Python tool is missing says so loudly and passes; under CI=true a
//! missing tool is a failure.

mod common;
use common::*;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python with `module` installed: FLEETWATCH_PY, else the venv .ci/run makes.
fn python_with(module: &str) -> Option<PathBuf> {
    let py = std::env::var_os("FLEETWATCH_PY")
        .map(PathBuf::from)
        .or_else(|| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-python/bin/python");
            p.is_file().then_some(p)
        });
    let ok = py.as_ref().is_some_and(|py| {
        Command::new(py)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if ok {
        return py;
    }
    let why = format!(
        "no Python with `{module}` (FLEETWATCH_PY={:?}): run .ci/run, or python3 -m venv target/ci-python && target/ci-python/bin/pip install -r .ci/requirements.txt",
        std::env::var_os("FLEETWATCH_PY")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {why} !!!!!!!!\n");
    None
}

fn python(py: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A generated fleet (CSV alerts, throttled counts, duplicates, malformed records).
fn fleet(dir: &Path, devices: &str, days: &str) -> PathBuf {
    let out = dir.join("fleet");
    let r = run_in(
        dir,
        &[
            "generate",
            "--devices",
            devices,
            "--days",
            days,
            "--seed",
            "5",
            "--out",
            s(&out),
        ],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    out
}

fn export(dir: &Path, fleet: &Path, lake: &Path, extra: &[&str]) -> Run {
    let alerts = fleet.join("alerts.csv");
    let inv = fleet.join("inventory.csv");
    let mut args = vec!["export", s(&alerts), "-i", s(&inv), "--out", s(lake)];
    args.extend_from_slice(extra);
    let r = run_in(dir, &args, None);
    assert!(r.status == 0 || r.status == 3, "{}", r.stderr);
    r
}

/// fleetwatch's own table, as CSV rows keyed by the first `keys` columns.
fn alerts_csv(dir: &Path, fleet: &Path, by: &str) -> Vec<BTreeMap<String, String>> {
    let alerts = fleet.join("alerts.csv");
    let inv = fleet.join("inventory.csv");
    let r = run_in(
        dir,
        &[
            "alerts",
            s(&alerts),
            "-i",
            s(&inv),
            "--by",
            by,
            "--format",
            "csv",
        ],
        None,
    );
    assert!(r.status == 0 || r.status == 3, "{}", r.stderr);
    read_csv(r.stdout.as_bytes())
}

fn read_csv(text: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut rd = csv::Reader::from_reader(text);
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    rd.records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out)
            } else {
                out.push(p)
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

fn hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

/// Rows of a Parquet file, read with the parquet crate (panics on a partial file).
fn parquet_rows(p: &Path) -> i64 {
    let f = std::fs::File::open(p).unwrap();
    let r = SerializedFileReader::new(f).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    r.metadata().file_metadata().num_rows()
}

/// (visible files, their rows) under `dir`.
fn visible_rows(dir: &Path) -> (usize, i64) {
    let v: Vec<PathBuf> = files(dir).into_iter().filter(|p| !hidden(p)).collect();
    (v.len(), v.iter().map(|p| parquet_rows(p)).sum())
}

fn accepted(stderr: &str) -> i64 {
    let l = stderr
        .lines()
        .find(|l| l.contains("accepted:"))
        .unwrap_or_else(|| panic!("no totals in {stderr}"));
    let n = l.split("accepted:").nth(1).unwrap().trim();
    n.split_whitespace()
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

const DUCKDB_READ: &str = r#"
import duckdb, json, sys
lake = sys.argv[1]
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
ev = f"read_parquet('{lake}/events/**/*.parquet', hive_partitioning=true)"
groups = con.execute(f"""SELECT CAST(day AS VARCHAR), region, device_type, generation, alert_code,
    sum(alerts), count(*), count(DISTINCT device_id) FROM {ev} GROUP BY ALL""").fetchall()
types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {ev})").fetchall())
wrong_day = con.execute(f"SELECT count(*) FROM {ev} WHERE CAST(timezone('UTC', ts) AS DATE) <> day").fetchone()[0]
first = con.execute(f"""SELECT strftime(timezone('UTC', min(ts)), '%Y-%m-%dT%H:%M:%SZ') FROM {ev}
    WHERE device_id = ? AND alert_code = ?""", [sys.argv[2], sys.argv[3]]).fetchone()[0]
daily = con.execute(f"""SELECT CAST(day AS VARCHAR), region, device_type, generation, alert_code, alerts,
    records, alerting_devices, installed_devices, per_1000_per_day
    FROM read_parquet('{lake}/daily/**/*.parquet', hive_partitioning=true)""").fetchall()
inv = con.execute(f"""SELECT count(*), count(install_date), count(comms_hub), count(cohort)
    FROM read_parquet('{lake}/inventory/*.parquet')""").fetchone()
print(json.dumps({"groups": groups, "types": types, "wrong_day": wrong_day, "first": first,
                  "daily": daily, "inventory": inv}, default=str))
"#;

fn key5(r: &BTreeMap<String, String>) -> String {
    ["day", "region", "device_type", "generation", "alert_code"]
        .map(|k| r[k].as_str())
        .join("|")
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        (None, None) => true,
        _ => false,
    }
}

#[test]
fn duckdb_reads_the_export_with_fleetwatchs_counts_rates_and_utc_times() {
    let Some(py) = python_with("duckdb") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path(), "3000", "21");
    let lake = dir.path().join("lake");
    let r = export(dir.path(), &fleet, &lake, &[]);
    let want = alerts_csv(dir.path(), &fleet, "day,region,type,gen,code");
    assert!(want.len() > 200, "a fleet with many groups");

    // The earliest time of the first record's device and code, from the CSV itself.
    let text = std::fs::read_to_string(fleet.join("alerts.csv")).unwrap();
    let first: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let (device, code) = (first[1], first[2]);
    let earliest = text
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > 2 && f[1] == device && f[2] == code && f[0].len() == 20)
        .map(|f| f[0].to_string())
        .min()
        .unwrap();

    let got: Value =
        serde_json::from_str(&python(&py, DUCKDB_READ, &[s(&lake), device, code])).unwrap();
    // Types: a UTC timestamp, signed integers, strings.
    let types = &got["types"];
    assert_eq!(types["ts"], "TIMESTAMP WITH TIME ZONE", "{types}");
    assert_eq!(types["alerts"], "INTEGER");
    assert_eq!(types["message_id"], "BIGINT");
    assert_eq!(types["device_id"], "VARCHAR");
    assert_eq!(types["day"], "DATE", "the day partition reads as a date");
    assert_eq!(
        got["wrong_day"], 0,
        "every event sits in its UTC day's partition"
    );
    assert_eq!(
        got["first"],
        earliest.as_str(),
        "ts is the record's UTC time"
    );

    // The events, grouped in DuckDB, give fleetwatch's counts.
    let events: BTreeMap<String, (u64, u64, u64)> = got["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let k: Vec<&str> = (0..5).map(|i| g[i].as_str().unwrap_or("")).collect();
            let n = |i: usize| num(&g[i]).unwrap() as u64;
            (k.join("|"), (n(5), n(6), n(7)))
        })
        .collect();
    assert_eq!(events.len(), want.len(), "the same groups");
    let total: u64 = events.values().map(|v| v.1).sum();
    assert_eq!(
        total as i64,
        accepted(&r.stderr),
        "one row per accepted record"
    );
    for w in &want {
        let e = events
            .get(&key5(w))
            .unwrap_or_else(|| panic!("no group {}", key5(w)));
        assert_eq!(e.0.to_string(), w["alerts"], "alerts of {}", key5(w));
        assert_eq!(e.1.to_string(), w["records"], "records of {}", key5(w));
        if w["alerting_devices_exact"] == "true" {
            assert_eq!(
                e.2.to_string(),
                w["alerting_devices"],
                "devices of {}",
                key5(w)
            );
        }
    }
    // The daily table is fleetwatch's table, rates and installed bases included.
    let daily = got["daily"].as_array().unwrap();
    assert_eq!(daily.len(), want.len());
    let by_key: BTreeMap<String, &Value> = daily
        .iter()
        .map(|g| {
            let k: Vec<&str> = (0..5).map(|i| g[i].as_str().unwrap_or("")).collect();
            (k.join("|"), g)
        })
        .collect();
    for w in &want {
        let d = by_key[&key5(w)];
        assert_eq!(num(&d[5]).unwrap().to_string(), w["alerts"]);
        assert_eq!(
            num(&d[8]).map(|v| v.to_string()).unwrap_or_default(),
            w["installed_devices"]
        );
        assert!(
            close(num(&d[9]), w["per_1000_per_day"].parse().ok()),
            "rate of {}: {} vs {}",
            key5(w),
            d[9],
            w["per_1000_per_day"]
        );
    }
    // The inventory: every device, with install dates, hubs and cohorts where the file has them.
    let devices = std::fs::read_to_string(fleet.join("inventory.csv"))
        .unwrap()
        .lines()
        .count() as u64
        - 1;
    let inv = &got["inventory"];
    assert_eq!(num(&inv[0]).unwrap() as u64, devices);
    assert_eq!(num(&inv[1]).unwrap() as u64, devices, "install dates");
    assert!(num(&inv[2]).unwrap() > 0.0, "comms hubs");
    assert!(num(&inv[3]).unwrap() > 0.0, "cohorts");
}

const SPARK_READ: &str = r#"
import glob, sys
sys.path.insert(0, sys.argv[1])
import fleet_rates
fleet_rates.main(["--events", sys.argv[2], "--inventory", sys.argv[3], "--out", sys.argv[4], "--master", "local[2]"])
[f] = glob.glob(sys.argv[4] + "/part-*.csv")
print(open(f).read(), end="")
"#;

#[test]
fn the_spark_job_on_local_2_gives_fleetwatchs_rates() {
    let Some(py) = python_with("pyspark") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path(), "1500", "10");
    let lake = dir.path().join("lake");
    export(dir.path(), &fleet, &lake, &[]);
    let spark_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("spark");
    let out = dir.path().join("rates");
    let csv = python(
        &py,
        SPARK_READ,
        &[
            s(&spark_dir),
            s(&lake.join("events")),
            s(&lake.join("inventory")),
            s(&out),
        ],
    );
    let got = read_csv(csv.as_bytes());
    let want = alerts_csv(dir.path(), &fleet, "day,region,code");
    assert_eq!(
        got.first().map(|r| r.keys().cloned().collect::<Vec<_>>()),
        Some(
            [
                "alert_code",
                "alerts",
                "day",
                "installed_devices",
                "per_1000_per_day",
                "region"
            ]
            .map(String::from)
            .to_vec()
        )
    );
    let key =
        |r: &BTreeMap<String, String>| format!("{}|{}|{}", r["day"], r["region"], r["alert_code"]);
    let got: BTreeMap<String, &BTreeMap<String, String>> =
        got.iter().map(|r| (key(r), r)).collect();
    assert_eq!(got.len(), want.len(), "the same groups");
    for w in &want {
        let g = got
            .get(&key(w))
            .unwrap_or_else(|| panic!("Spark has no {}", key(w)));
        assert_eq!(g["alerts"], w["alerts"], "{}", key(w));
        assert_eq!(g["installed_devices"], w["installed_devices"], "{}", key(w));
        assert!(
            close(
                g["per_1000_per_day"].parse().ok(),
                w["per_1000_per_day"].parse().ok()
            ),
            "{}: {} vs {}",
            key(w),
            g["per_1000_per_day"],
            w["per_1000_per_day"]
        );
    }
}

#[test]
fn events_are_utc_microsecond_timestamps_with_signed_integers_and_dictionaries() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path(), "500", "3");
    let lake = dir.path().join("lake");
    export(dir.path(), &fleet, &lake, &[]);
    let f = files(&lake.join("events"))
        .into_iter()
        .find(|p| !hidden(p))
        .unwrap();
    let rel = f.strip_prefix(&lake).unwrap().display().to_string();
    let parts: Vec<&str> = rel.split('/').collect();
    assert_eq!(parts[0], "events");
    assert!(
        parts[1].starts_with("day=2024-01-0") && parts[2].starts_with("region="),
        "{rel}"
    );
    assert!(
        parts[3].starts_with("part-") && parts[3].ends_with(".parquet"),
        "{rel}"
    );
    let r = SerializedFileReader::new(std::fs::File::open(&f).unwrap()).unwrap();
    let schema = r.metadata().file_metadata().schema_descr();
    let col = |name: &str| {
        (0..schema.num_columns())
            .map(|i| schema.column(i))
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    assert!(
        (0..schema.num_columns()).all(|i| !["day", "region"].contains(&schema.column(i).name())),
        "partition columns stay out of the files"
    );
    let ts = format!("{:?}", col("ts").logical_type_ref());
    assert!(
        ts.contains("is_adjusted_to_u_t_c: true") && ts.contains("MICROS"),
        "{ts}"
    );
    use parquet::basic::Type;
    assert_eq!(col("alerts").physical_type(), Type::INT32);
    assert_eq!(col("message_id").physical_type(), Type::INT64);
    assert!(
        col("alerts").converted_type() == parquet::basic::ConvertedType::NONE
            || format!("{:?}", col("alerts").logical_type_ref()).contains("is_signed: true")
    );
    let rg = r.metadata().row_group(0);
    for c in rg.columns() {
        assert_eq!(c.compression(), parquet::basic::Compression::SNAPPY);
        let name = c.column_descr().name();
        let dict = c.dictionary_page_offset().is_some();
        if ["alert_code", "device_type", "generation", "model", "source"].contains(&name) {
            assert!(dict, "{name} is dictionary-encoded");
        }
        if ["ts", "device_id"].contains(&name) {
            assert!(!dict, "{name} is plain");
        }
    }
}

#[test]
fn a_rerun_replaces_its_own_files_and_another_export_adds_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path(), "800", "6");
    let lake = dir.path().join("lake");
    let first = export(dir.path(), &fleet, &lake, &["--row-group", "50"]);
    let n = accepted(&first.stderr);
    let (files1, rows1) = visible_rows(&lake.join("events"));
    assert_eq!(rows1, n);
    assert!(files1 > 10, "small row groups make many files");
    // The same inputs again, with other workers and file sizes: the same rows, not twice.
    let again = export(
        dir.path(),
        &fleet,
        &lake,
        &["--row-group", "70", "--threads", "1"],
    );
    assert!(again.stderr.contains("replacing"), "{}", again.stderr);
    assert_eq!(visible_rows(&lake.join("events")).1, n);
    assert_eq!(
        visible_rows(&lake.join("daily")).1,
        alerts_csv(dir.path(), &fleet, "day,region,type,gen,code").len() as i64
    );
    // Another feed (a copy of the file under another name) adds its rows.
    let other = dir.path().join("feed2");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(fleet.join("alerts.csv"), other.join("alerts.csv")).unwrap();
    std::fs::copy(fleet.join("inventory.csv"), other.join("inventory.csv")).unwrap();
    export(dir.path(), &other, &lake, &[]);
    assert_eq!(visible_rows(&lake.join("events")).1, 2 * n);
    assert!(
        files(&lake)
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".tmp"))
    );
    assert_eq!(
        visible_rows(&lake.join("inventory")).0,
        1,
        "one inventory file"
    );
}

#[test]
fn alerts_format_parquet_partitions_by_day_and_region() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path(), "800", "5");
    let out = dir.path().join("table");
    let alerts = fleet.join("alerts.csv");
    let inv = fleet.join("inventory.csv");
    let args = |by: &'static str, out: &Path| {
        let r = run_in(
            dir.path(),
            &[
                "alerts",
                s(&alerts),
                "-i",
                s(&inv),
                "--by",
                by,
                "--format",
                "parquet",
                "--out",
                s(out),
            ],
            None,
        );
        assert!(r.status == 0 || r.status == 3, "{}", r.stderr);
        r
    };
    args("day,region,code", &out);
    let want = alerts_csv(dir.path(), &fleet, "day,region,code");
    assert_eq!(visible_rows(&out).1, want.len() as i64);
    let days: std::collections::BTreeSet<String> = want.iter().map(|r| r["day"].clone()).collect();
    let dirs: std::collections::BTreeSet<String> = files(&out)
        .iter()
        .map(|p| {
            p.strip_prefix(&out)
                .unwrap()
                .iter()
                .next()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(dirs, days.iter().map(|d| format!("day={d}")).collect());
    // Without day: partitioned by region only; without either: one file at the root.
    let by_code = dir.path().join("by_code");
    args("code", &by_code);
    let f = files(&by_code);
    assert_eq!(f.len(), 1);
    assert!(f[0].parent() == Some(by_code.as_path()));
    // --out without parquet, parquet without --out: usage errors.
    let r = run_in(
        dir.path(),
        &["alerts", s(&alerts), "--format", "parquet"],
        None,
    );
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("--out DIR"), "{}", r.stderr);
    let r = run_in(
        dir.path(),
        &["spikes", s(&alerts), "--format", "parquet"],
        None,
    );
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("alerts --format parquet"), "{}", r.stderr);
}

#[test]
fn a_killed_export_leaves_no_partial_file_visible() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path(), "2000", "3");
    // A bigger input: 600,000 rows of the fleet's devices (no message ids: none are duplicates).
    let inv_text = std::fs::read_to_string(fleet.join("inventory.csv")).unwrap();
    let ids: Vec<&str> = inv_text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let mut big = String::from("timestamp,device_id,alert_code\n");
    for i in 0..600_000usize {
        let day = 1 + i % 28;
        let (h, m) = (i / 60 % 24, i % 60);
        big.push_str(&format!(
            "2024-02-{day:02}T{h:02}:{m:02}:00Z,{},8F35\n",
            ids[i * 7919 % ids.len()]
        ));
    }
    let input = dir.path().join("big.csv");
    std::fs::write(&input, big).unwrap();
    let lake = dir.path().join("lake");
    let inv = fleet.join("inventory.csv");
    let args = [
        "export",
        s(&input),
        "-i",
        s(&inv),
        "--out",
        s(&lake),
        "--row-group",
        "200",
        "--buffer-rows",
        "20000",
    ];
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has written some files (under their temporary names).
    let t0 = std::time::Instant::now();
    while !files(&lake).iter().any(|p| hidden(p)) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export ended before it could be killed"
        );
        assert!(t0.elapsed().as_secs() < 120, "no file written");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed mid-run");
    let after = files(&lake);
    assert!(after.iter().any(|p| hidden(p)), "files were being written");
    for p in after.iter().filter(|p| !hidden(p)) {
        parquet_rows(p); // a visible file reads whole
    }
    assert_eq!(
        visible_rows(&lake).0,
        0,
        "nothing visible before the run completes"
    );
    // The run again to its end: every row once, the killed run's temporary files gone.
    let r = run_in(dir.path(), &args, None);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(visible_rows(&lake.join("events")).1, 600_000);
    assert!(
        files(&lake).iter().all(|p| !hidden(p)),
        "temporary files cleaned"
    );
}
