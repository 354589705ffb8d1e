//! The receiver's log on a bad day: a real full file system (a small tmpfs), a damaged segment,
//! a crafted one. Every acknowledged message must be there after the episode and a restart, and
//! the batch commands must say where a log is damaged.

mod common;
use common::*;
use fleetwatch::model::DeviceId;
use fleetwatch::source::segment::{LOG_MAGIC, frame_header, segment_name};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data", s(data)])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            assert!(Instant::now() < deadline, "the server did not start");
            let line = lines.next().expect("the server exited").unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(a) = line.strip_prefix("listening on http://") {
                break a.parse().unwrap();
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{l}\n"));
            }
        });
        Server {
            child,
            addr,
            stderr: log,
        }
    }

    fn stop(mut self) -> (i32, String) {
        // SAFETY: kill(2) on a child process this test started.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(r, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not stop in time");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        (code, self.stderr.lock().unwrap().clone())
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn summary(addr: SocketAddr) -> serde_json::Value {
    let (status, _, body) = http(addr, "GET", "/api/summary", b"");
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

fn device(n: u32) -> u64 {
    0x00DB_1200_0000_0000u64 | n as u64
}

/// A device alert from a device of its own, with a unique message id.
fn unique_doc(n: u32) -> String {
    let id = DeviceId(device(n)).to_string();
    format!(
        "<?xml version=\"1.0\"?>\n<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.4\"><sr:Header>\
         <sr:ResponseID>{id}:90-B3-D5-1F-30-01-00-00:{n}</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode>\
         <sr:ResponseDateTime>2024-01-01T01:00:00Z</sr:ResponseDateTime></sr:Header><sr:Body><sr:DeviceAlertMessage>\
         <sr:AlertCode>8F35</sr:AlertCode><sr:GBCSPayload>{}</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body></sr:Response>\n",
        gbcs_alert_b64(device(n), 0x8F35)
    )
}

/// Alerts per device in a batch run over `dir` (`--by device`), and the run.
fn per_device(dir: &Path) -> (std::collections::HashMap<String, u64>, Run) {
    let r = run(&[
        "alerts",
        s(dir),
        "--by",
        "device",
        "-f",
        "csv",
        "--no-distinct",
    ]);
    let mut m = std::collections::HashMap::new();
    for line in r.stdout.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        m.insert(f[0].to_string(), f[1].parse::<u64>().unwrap());
    }
    (m, r)
}

/// A tmpfs of `size`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(at)])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_answers_503_loses_nothing_acknowledged_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("fs"), "1m") else {
        // CI runs as root, where a tmpfs can be mounted: there the test must run.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot mount a tmpfs under CI (the test needs root)"
        );
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    // Most of the file system taken by a file that will be deleted to free space.
    let filler = fs.0.join("filler");
    std::fs::write(&filler, vec![7u8; 640 << 10]).unwrap();
    let data_dir = fs.0.join("rx");
    // Small segments, so the log rolls over while the disk fills.
    let srv = Server::start(&data_dir, &["--segment-bytes", "32768"]);
    let mut acked = Vec::new();
    let mut n = 0u32;
    let mut full = 0;
    while full < 20 {
        assert!(n < 5000, "the disk never filled");
        let (status, head, body) = http(srv.addr, "POST", "/alerts", unique_doc(n).as_bytes());
        match status {
            200 => {
                assert!(body.contains("\"accepted\":1"), "{body}");
                acked.push(n);
            }
            503 => {
                assert!(body.contains("the disk is full"), "{body}");
                assert!(
                    head.to_ascii_lowercase().contains("retry-after: 1"),
                    "{head}"
                );
                full += 1;
            }
            other => panic!("status {other} while the disk fills: {head}\n{body}"),
        }
        n += 1;
    }
    let (status, _, metrics) = http(srv.addr, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(metrics.contains("fleetwatch_disk_full 1"), "{metrics}");
    assert_eq!(http(srv.addr, "GET", "/healthz", b"").0, 200);
    assert!(acked.len() > 50, "{} acknowledged", acked.len());
    // Space returns: the receiver takes messages again by itself.
    std::fs::remove_file(&filler).unwrap();
    for k in 0..50 {
        let (status, _, body) = http(srv.addr, "POST", "/alerts", unique_doc(n).as_bytes());
        assert_eq!(status, 200, "message {k} after space returned: {body}");
        acked.push(n);
        n += 1;
    }
    let (code, log) = srv.stop();
    assert_eq!(code, 0, "{log}");
    // Restart: every acknowledged message is there, nothing torn or damaged.
    let srv = Server::start(&data_dir, &[]);
    let v = summary(srv.addr);
    assert_eq!(v["accepted_messages"].as_u64(), Some(acked.len() as u64));
    assert_eq!(v["torn_records_cut"].as_u64(), Some(0));
    assert_eq!(v["damaged_log_bytes"].as_u64(), Some(0));
    let (_, log) = srv.stop();
    assert!(!log.contains("damaged"), "{log}");
    let segments = std::fs::read_dir(&data_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".fwlog")
        })
        .count();
    assert!(segments > 1, "the log rolled over ({segments} segment)");
    // The batch command reads every acknowledged message exactly once, and exits 0.
    let (counts, r) = per_device(&data_dir);
    assert_eq!(r.status, 0, "{}", r.stderr);
    for a in &acked {
        assert_eq!(
            counts.get(&DeviceId(device(*a)).to_string()),
            Some(&1),
            "acknowledged message {a}"
        );
    }
    assert_eq!(counts.len(), acked.len());
}

fn framed(bodies: &[String]) -> Vec<u8> {
    let mut v = Vec::new();
    for b in bodies {
        v.extend_from_slice(&frame_header(b.as_bytes()));
        v.extend_from_slice(b.as_bytes());
    }
    v
}

#[test]
fn a_damaged_log_fails_the_batch_run_naming_the_offset_and_keeps_every_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let rx = dir.path().join("rx");
    std::fs::create_dir(&rx).unwrap();
    // Segment 1: three records, the second with a bad checksum, then two more.
    let docs: Vec<String> = (0..5).map(unique_doc).collect();
    let mut seg = LOG_MAGIC.to_vec();
    seg.extend(framed(&docs[..1]));
    let bad = seg.len();
    let mut second = framed(&docs[1..2]);
    second[40] ^= 0x01;
    seg.extend(second);
    seg.extend(framed(&docs[2..]));
    std::fs::write(rx.join(segment_name(1)), &seg).unwrap();
    // Segment 2: a crafted record claiming 4 GiB, then a good one.
    let mut crafted = LOG_MAGIC.to_vec();
    crafted.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
    crafted.extend(vec![b'<'; 700]);
    crafted.extend(framed(&[unique_doc(9)]));
    std::fs::write(rx.join(segment_name(2)), &crafted).unwrap();
    let (counts, r) = per_device(&rx);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(r.stderr.contains("damaged fleetwatch log"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("at byte {bad}")), "{}", r.stderr);
    assert!(r.stderr.contains("at byte 4"), "{}", r.stderr);
    let mut got: Vec<_> = counts.keys().cloned().collect();
    got.sort();
    let mut want: Vec<_> = [0, 2, 3, 4, 9]
        .iter()
        .map(|n| DeviceId(device(*n)).to_string())
        .collect();
    want.sort();
    assert_eq!(got, want, "every whole record is read; {}", r.stderr);
    // The receiver starts on it, reads the same records and warns where the damage is.
    let srv = Server::start(&rx, &[]);
    let v = summary(srv.addr);
    assert_eq!(v["accepted_messages"].as_u64(), Some(5));
    assert!(v["damaged_log_bytes"].as_u64().unwrap() > 700);
    let (code, log) = srv.stop();
    assert_eq!(code, 0);
    assert!(
        log.contains(&format!("damaged record at byte {bad}")),
        "{log}"
    );
}
