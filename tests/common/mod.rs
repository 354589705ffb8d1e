//! A tiny harness: run the built binary in a temp dir and capture what it printed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fleetwatch"))
}

pub fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

/// `../shared/realdata`, which every development and CI machine has beside the project.
pub fn realdata(p: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    assert!(
        root.is_dir(),
        "{} is missing: the real DUIS/GBCS test data must sit beside the project",
        root.display()
    );
    root.join(p)
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn fleetwatch");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().unwrap();
        s.write_all(input).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub fn run(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), args, None)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The first of `names` found on PATH.
pub fn tool(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|t| {
        std::env::split_paths(&path)
            .map(|d| d.join(t))
            .find(|f| f.is_file())
    })
}

/// An external tool a test needs. Under `CI=true` a missing tool is a failure; elsewhere the
/// caller skips, saying so.
pub fn required_tool(names: &[&str], package: &str) -> Option<PathBuf> {
    let found = tool(names);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing (apt-get install {package})",
            names[0]
        );
        eprintln!(
            "SKIPPED: {} is not installed (apt-get install {package}); CI fails instead",
            names[0]
        );
    }
    found
}

/// A real-shaped GBCS alert (signed DLMS, 2024-01-01 01:00:00) from `device` with `code`,
/// as base64: the payload DUIS fixtures carry.
pub fn gbcs_alert_b64(device: u64, code: u16) -> String {
    let mut body = vec![0x0F, 0, 0, 0, 1, 0x00, 0x02, 0x02, 0x12];
    body.extend_from_slice(&code.to_be_bytes());
    body.extend_from_slice(&[0x09, 0x0C, 0x07, 0xE8, 1, 1, 1, 1, 0, 0, 0, 0x80, 0, 0xFF]);
    let mut m = vec![0xDF, 0x09, 0x03];
    m.extend_from_slice(&1u64.to_be_bytes());
    m.push(0x08);
    m.extend_from_slice(&device.to_be_bytes());
    m.push(0x08);
    m.extend_from_slice(&[
        0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00, 0x00, 0x02, 0x10, 0x01,
    ]);
    m.push(body.len() as u8);
    m.extend_from_slice(&body);
    m.push(0x00);
    base64(&m)
}

pub fn base64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &x)| a | (x as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

pub const CHROMIUM: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Runs headless Chromium on a URL (as root, offline, a fresh profile); returns (DOM after
/// the scripts ran, stderr). `extra` adds flags such as `--dump-dom` or `--screenshot=...`.
pub fn browse_url(url: &str, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(tool(&CHROMIUM).expect("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Generates a 20,000-device, 60-day fleet into `dir`; returns its truth.json.
pub fn generate_fleet(dir: &Path, seed: u64) -> serde_json::Value {
    generate_fleet_as(dir, seed, "csv")
}

/// `generate_fleet` with the alerts in `format` (csv, jsonl, duis).
pub fn generate_fleet_as(dir: &Path, seed: u64, format: &str) -> serde_json::Value {
    let seed = seed.to_string();
    let args = [
        "generate",
        "--devices",
        "20000",
        "--days",
        "60",
        "--seed",
        &seed,
        "--format",
        format,
        "--out",
        ".",
    ];
    let r = run_in(dir, &args, None);
    assert_eq!(r.status, 0, "{}", r.stderr);
    serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap()
}

/// The text of an HTML fragment: tags dropped, entities the report writes decoded.
pub fn html_text(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Checks every table of a report page against the CSV file it names (`data-csv`, in `dir`):
/// row for row, each column shown holds its CSV cell, numbers rounded for reading (thousands
/// separators; fractions in per cent; `_pct` columns already per cent), and text as written
/// (a code may carry its name after it). Returns how many tables were checked.
pub fn assert_tables_match_csv(html: &str, dir: &Path) -> usize {
    let mut checked = 0;
    for chunk in html.split("<table class=\"sortable\"").skip(1) {
        let table = chunk.split("</table>").next().unwrap();
        let attr = |name: &str| -> String {
            let start = table.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            table[start..start + table[start..].find('"').unwrap()].to_string()
        };
        let (id, file) = (attr("id"), attr("data-csv"));
        let columns: Vec<String> = table
            .split("data-column=\"")
            .skip(1)
            .map(|c| c[..c.find('"').unwrap()].to_string())
            .collect();
        let csv_text = std::fs::read_to_string(dir.join(&file)).unwrap();
        let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
        let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
        let records: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
        let body = table.split("<tbody>").nth(1).unwrap();
        let rows: Vec<Vec<String>> = body
            .split("<tr>")
            .skip(1)
            .map(|r| {
                r.split("<td")
                    .skip(1)
                    .map(|c| html_text(&c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()]))
                    .collect()
            })
            .collect();
        assert!(
            rows.len() == records.len()
                || (rows.len() < records.len() && chunk.contains("The first")),
            "{id}: {} rows shown of {} in {file}, and no note says so",
            rows.len(),
            records.len()
        );
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.len(), columns.len(), "{id} row {i}");
            for (shown, column) in row.iter().zip(&columns) {
                let j = header
                    .iter()
                    .position(|h| h == column)
                    .unwrap_or_else(|| panic!("{id}: column {column} is not in {file}"));
                let want = &records[i][j];
                let plain = shown.replace(',', "");
                let (number, scale) = match plain.strip_suffix('%') {
                    Some(p) if column.ends_with("_pct") => (p.to_string(), 1.0),
                    Some(p) => (p.to_string(), 100.0),
                    None => (plain.clone(), 1.0),
                };
                match (want.parse::<f64>(), number.parse::<f64>()) {
                    (Ok(w), Ok(v)) if w.is_finite() => {
                        let decimals = number.split('.').nth(1).map_or(0, str::len) as i32;
                        let tolerance = 0.5 * 10f64.powi(-decimals) + 1e-9;
                        assert!(
                            (v - w * scale).abs() <= tolerance,
                            "{id} row {i} column {column}: page shows {shown}, {file} holds {want}"
                        );
                    }
                    _ => assert!(
                        shown.starts_with(want),
                        "{id} row {i} column {column}: page shows {shown:?}, {file} holds {want:?}"
                    ),
                }
            }
        }
        checked += 1;
    }
    checked
}
