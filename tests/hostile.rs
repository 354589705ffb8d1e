//! Hostile and broken inputs as a user meets them: decompression bombs, implausible dates,
//! truncated gzip, CSV edge cases, symlink loops, FIFOs, stale rejects files. Every record is
//! accounted for and every failure names the file.

mod common;
use common::*;
use std::io::Write;
use std::path::Path;

const HEADER: &str = "timestamp,device_id,alert_code\n";

fn row(ts: &str, n: u32) -> String {
    format!(
        "{ts},00-DB-12-34-56-78-{:02X}-{:02X},8F35\n",
        n >> 8,
        n & 0xFF
    )
}

/// A compressed file whose first "line" is `zeros` bytes of zeros.
fn bomb(path: &Path, zeros: usize, zstd: bool) {
    let f = std::fs::File::create(path).unwrap();
    let mut w: Box<dyn Write> = if zstd {
        Box::new(
            zstd::stream::write::Encoder::new(f, 3)
                .unwrap()
                .auto_finish(),
        )
    } else {
        Box::new(flate2::write::GzEncoder::new(
            f,
            flate2::Compression::fast(),
        ))
    };
    let block = vec![0u8; 1 << 20];
    for _ in 0..zeros >> 20 {
        w.write_all(&block).unwrap();
    }
    w.write_all(b"\n").unwrap();
}

#[test]
fn a_decompression_bomb_fails_fast_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, zstd) in [("bomb.csv.gz", false), ("bomb.csv.zst", true)] {
        let p = dir.path().join(name);
        bomb(&p, 256 << 20, zstd);
        assert!(
            std::fs::metadata(&p).unwrap().len() < 8 << 20,
            "a small file"
        );
        let r = run(&["alerts", s(&p)]);
        assert_eq!(r.status, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "{name}: line 1: the header line is longer than 64 KiB"
            )),
            "{}",
            r.stderr
        );
    }
    // A good header, then a line of 300 MiB of zeros: the line is a reject, the source is
    // given up (binary data), the rows before it count.
    let p = dir.path().join("line-bomb.csv.zst");
    {
        let f = std::fs::File::create(&p).unwrap();
        let mut w = zstd::stream::write::Encoder::new(f, 3)
            .unwrap()
            .auto_finish();
        w.write_all(HEADER.as_bytes()).unwrap();
        w.write_all(row("2024-01-01T00:00:00Z", 1).as_bytes())
            .unwrap();
        let block = vec![0u8; 1 << 20];
        for _ in 0..300 {
            w.write_all(&block).unwrap();
        }
    }
    let r = run(&["alerts", s(&p), "--by", "code", "-f", "csv"]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("line 3: a record longer than 256 MiB with no end in sight"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("records read 2 = accepted 1"),
        "{}",
        r.stderr
    );
}

#[test]
fn implausible_dates_are_rejects_with_the_reason_and_the_window_can_be_moved() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = HEADER.to_string();
    for (i, ts) in [
        "2024-01-01T10:00:00Z",
        "0000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "9999-12-31T00:00:00Z",
        "2024-01-01T23:59:60Z",
    ]
    .iter()
    .enumerate()
    {
        csv.push_str(&row(ts, i as u32));
    }
    let p = dir.path().join("a.csv");
    std::fs::write(&p, &csv).unwrap();
    let r = run_in(
        dir.path(),
        &["alerts", s(&p), "--by", "day", "-f", "csv"],
        None,
    );
    assert_eq!(r.status, 3, "{}", r.stderr);
    // The leap second is the last second of 2024-01-01, not a record on the 2nd.
    assert!(r.stdout.contains("2024-01-01,2,"), "{}", r.stdout);
    assert!(!r.stdout.contains("2024-01-02"), "{}", r.stdout);
    let q = std::fs::read_to_string(dir.path().join("fleetwatch-rejects.jsonl")).unwrap();
    let reasons: Vec<serde_json::Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = reasons
        .iter()
        .map(|v| v["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5]);
    assert!(
        reasons[0]["reason"]
            .as_str()
            .unwrap()
            .contains("before 2000-01-01")
    );
    assert!(
        reasons[2]["reason"]
            .as_str()
            .unwrap()
            .contains("more than a day after the run")
    );
    // Moved: 1969 is in, 9999 still out.
    let r = run_in(
        dir.path(),
        &[
            "alerts",
            s(&p),
            "--by",
            "day",
            "-f",
            "csv",
            "--earliest",
            "1960-01-01",
        ],
        None,
    );
    assert!(
        r.stderr.contains("records read 5 = accepted 3"),
        "{}",
        r.stderr
    );
    // A clean run removes the earlier run's rejects file.
    let good = dir.path().join("good.csv");
    std::fs::write(&good, format!("{HEADER}{}", row("2024-01-01T10:00:00Z", 1))).unwrap();
    let r = run_in(dir.path(), &["alerts", s(&good)], None);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(!dir.path().join("fleetwatch-rejects.jsonl").exists());
}

#[test]
fn a_truncated_gzip_counts_what_it_read_and_rejects_the_cut_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = HEADER.to_string();
    for n in 0..20_000 {
        csv.push_str(&row("2024-01-01T10:00:00Z", n));
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(csv.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let cut = &gz[..gz.len() * 2 / 3];
    let p = dir.path().join("cut.csv.gz");
    std::fs::write(&p, cut).unwrap();
    let r = run_in(
        dir.path(),
        &["alerts", s(&p), "--by", "code", "-f", "csv"],
        None,
    );
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cut.csv.gz: read error: incomplete deflate stream"),
        "{}",
        r.stderr
    );
    // Every whole row decompressed before the cut is counted (about two thirds of 20,000),
    // and the row the cut went through is a reject.
    let totals = r
        .stderr
        .lines()
        .find(|l| l.starts_with("records read"))
        .unwrap();
    let nums: Vec<u64> = totals
        .split(|c: char| !c.is_ascii_digit() && c != ',')
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
        .map(|t| t.replace(',', "").parse().unwrap())
        .collect();
    let (read, accepted, rejected) = (nums[0], nums[1], nums[3]);
    assert!((12_000..20_000).contains(&accepted), "{totals}");
    assert_eq!((read, rejected), (accepted + 1, 1), "{totals}");
    let q = std::fs::read_to_string(dir.path().join("fleetwatch-rejects.jsonl")).unwrap();
    assert!(q.contains("cut short by the end of the stream"), "{q}");
}

#[test]
fn csv_quoted_line_breaks_and_duplicate_columns() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("q.csv");
    std::fs::write(
        &p,
        "timestamp,device_id,alert_code,note\n2024-01-01T10:00:00Z,00-DB-12-34-56-78-90-A0,8F35,\"first\nsecond, \"\"third\"\"\"\n2024-01-01T11:00:00Z,00-DB-12-34-56-78-90-A1,8F35,plain\n",
    )
    .unwrap();
    let r = run(&["alerts", s(&p), "--by", "code", "-f", "csv"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("records read 2 = accepted 2"),
        "{}",
        r.stderr
    );
    let d = dir.path().join("dup.csv");
    std::fs::write(
        &d,
        "timestamp,device_id,alert_code,device_id\n2024-01-01T10:00:00Z,00-DB-12-34-56-78-90-A0,8F35,x\n",
    )
    .unwrap();
    let r = run(&["alerts", s(&d)]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("dup.csv: line 1: the header names column `device_id` twice"),
        "{}",
        r.stderr
    );
}

#[test]
fn symlink_loops_are_read_once_and_fifos_in_a_directory_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("in");
    std::fs::create_dir(&a).unwrap();
    std::fs::write(
        a.join("x.csv"),
        format!("{HEADER}{}", row("2024-01-01T10:00:00Z", 1)),
    )
    .unwrap();
    std::os::unix::fs::symlink(&a, a.join("loop")).unwrap();
    std::os::unix::fs::symlink(a.join("x.csv"), a.join("y.csv")).unwrap();
    let fifo = a.join("z.fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: mkfifo(3) on a path in this test's own directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let r = run(&["alerts", s(&a), "--by", "code", "-f", "csv"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("records read 1 = accepted 1"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("z.fifo: not a regular file"),
        "{}",
        r.stderr
    );
    // Named on the command line, a FIFO is read.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            f.write_all(format!("{HEADER}{}", row("2024-01-01T10:00:00Z", 2)).as_bytes())
                .unwrap();
        })
    };
    let r = run(&["alerts", s(&fifo), "--by", "code", "-f", "csv"]);
    writer.join().unwrap();
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("records read 1 = accepted 1"),
        "{}",
        r.stderr
    );
}

/// Runs fleetwatch with stdout and stderr to files and returns (status, stderr, peak RSS in
/// MiB) of that process alone (`wait4`).
fn run_measured(dir: &Path, args: &[&str]) -> (i32, String, u64) {
    let err_path = dir.join("stderr.txt");
    // Reaped by `wait4` below (which also gives its peak memory), not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.txt")).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both out-pointers are valid for the call.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let stderr = std::fs::read_to_string(err_path).unwrap();
    (code, stderr, usage.ru_maxrss as u64 / 1024)
}

#[test]
fn a_feed_of_nothing_but_bad_rows_is_quarantined_in_bounded_memory() {
    // 150,000 rejected rows of 1,000 bytes, gzip-compressed to a few hundred KB: held in memory
    // they would take about 170 MB; past 8 MiB per thread they wait in temporary files.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv.gz");
    let rows = 150_000u64;
    {
        let f = std::fs::File::create(&p).unwrap();
        let mut w = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        w.write_all(HEADER.as_bytes()).unwrap();
        let pad = "x".repeat(960);
        for n in 0..rows {
            writeln!(w, "2024-01-01T00:00:00Z,not-a-device-{n:08},{pad}").unwrap();
        }
        w.finish().unwrap();
    }
    assert!(std::fs::metadata(&p).unwrap().len() < 4 << 20);
    let (status, stderr, rss_mib) = run_measured(
        dir.path(),
        &[
            "alerts",
            s(&p),
            "--by",
            "code",
            "-f",
            "csv",
            "--threads",
            "2",
        ],
    );
    assert_eq!(status, 3, "{stderr}");
    assert!(
        stderr.contains("records read 150,000 = accepted 0 + duplicates 0 + rejected 150,000"),
        "{stderr}"
    );
    // Every reject is in the quarantine file, once, in input order.
    let q = std::fs::File::open(dir.path().join("fleetwatch-rejects.jsonl")).unwrap();
    let mut lines = 0u64;
    for (i, l) in std::io::BufRead::lines(std::io::BufReader::new(q)).enumerate() {
        let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
        assert_eq!(v["line"], i as u64 + 2, "in input order");
        lines += 1;
    }
    assert_eq!(lines, rows);
    assert!(
        rss_mib < 100,
        "peak RSS {rss_mib} MiB: rejects must not be held in memory"
    );
}
