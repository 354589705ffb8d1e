//! End-to-end tests of `fleetwatch serve` on loopback: real HTTP over TCP, a real process
//! killed with SIGKILL, the dashboard in headless Chromium. Every request loop is bounded in
//! count and time.

mod common;
use common::*;
use fleetwatch::model::DeviceId;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
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
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data",
                data.to_str().unwrap(),
            ])
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
        send_signal(self.child.id(), libc::SIGTERM);
        let status = wait_bounded(&mut self.child, Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
        (status, self.stderr.lock().unwrap().clone())
    }
}

/// Sends a signal with the libc call (a fresh machine may lack a `kill` program).
fn send_signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a child process this test started.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

fn wait_bounded(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "the server did not stop in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, headers, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
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

/// The hand-counted DUIS fixture, one document per request.
fn hand_docs() -> Vec<String> {
    let s = std::fs::read_to_string(data("hand/alerts.xml")).unwrap();
    s.split("<?xml")
        .skip(1)
        .map(|d| format!("<?xml{d}"))
        .collect()
}

/// A device alert from a device of its own, with a unique message id.
fn unique_doc(n: u32) -> String {
    let device = 0x00DB_1200_0000_0000u64 | n as u64;
    let id = DeviceId(device).to_string();
    format!(
        "<?xml version=\"1.0\"?>\n<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.4\"><sr:Header>\
         <sr:ResponseID>{id}:90-B3-D5-1F-30-01-00-00:{n}</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode>\
         <sr:ResponseDateTime>2024-01-01T01:00:00Z</sr:ResponseDateTime></sr:Header><sr:Body><sr:DeviceAlertMessage>\
         <sr:AlertCode>8F35</sr:AlertCode><sr:GBCSPayload>{}</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body></sr:Response>\n",
        gbcs_alert_b64(device, 0x8F35)
    )
}

#[test]
fn posts_become_counts_and_the_log_reads_back_in_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("rx");
    let inv = data("hand/inventory.csv");
    let srv = Server::start(&data_dir, &["-i", s(&inv)]);
    for d in hand_docs() {
        let (status, _, body) = http(srv.addr, "POST", "/alerts", d.as_bytes());
        assert_eq!(status, 200, "{body}");
    }
    // Nine messages, one of them delivered twice: 8 accepted, 1 duplicate, 10 alerts.
    let v = summary(srv.addr);
    assert_eq!(
        (
            v["accepted_messages"].as_i64(),
            v["duplicates"].as_i64(),
            v["accepted_alerts"].as_i64()
        ),
        (Some(8), Some(1), Some(10))
    );
    let (status, _, metrics) = http(srv.addr, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("fleetwatch_accepted_messages_total 8")
            && metrics.contains("fleetwatch_fsync_seconds_bucket{le=\"+Inf\"}"),
        "{metrics}"
    );
    assert_eq!(http(srv.addr, "GET", "/healthz", b"").0, 200);
    let (code, log) = srv.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("every acknowledged message is on disk"),
        "{log}"
    );
    // The batch command over the log gives the hand-counted answer of the fixture itself.
    let r = run(&["alerts", s(&data_dir), "-i", s(&inv), "-f", "csv"]);
    assert_eq!(
        r.stdout,
        std::fs::read_to_string(data("hand/expected.csv")).unwrap(),
        "{}",
        r.stderr
    );
    // A restart rebuilds the same counts from the log (the redelivery was never stored).
    let srv = Server::start(&data_dir, &["-i", s(&inv)]);
    let v = summary(srv.addr);
    assert_eq!(
        (
            v["accepted_messages"].as_i64(),
            v["accepted_alerts"].as_i64(),
            v["recovered_records"].as_i64()
        ),
        (Some(8), Some(10), Some(8))
    );
    assert_eq!(srv.stop().0, 0);
}

#[test]
fn malformed_oversized_and_duplicate_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &["--max-body", "4000"]);
    let (status, _, body) = http(
        srv.addr,
        "POST",
        "/alerts",
        b"<?xml version=\"1.0\"?><sr:Response xmlns:sr=\"x\"><broken",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("rejected (quarantined, nothing stored)"),
        "{body}"
    );
    let (status, _, body) = http(srv.addr, "POST", "/alerts", &vec![b'<'; 5000]);
    assert_eq!(status, 413, "{body}");
    let doc = unique_doc(1);
    assert_eq!(http(srv.addr, "POST", "/alerts", doc.as_bytes()).0, 200);
    let (status, _, body) = http(srv.addr, "POST", "/alerts", doc.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(body, "{\"accepted\":0,\"duplicates\":1}");
    let v = summary(srv.addr);
    assert_eq!(
        (
            v["accepted_messages"].as_i64(),
            v["duplicates"].as_i64(),
            v["rejected_requests"].as_i64()
        ),
        (Some(1), Some(1), Some(2))
    );
    let q = std::fs::read_to_string(dir.path().join("quarantine.jsonl")).unwrap();
    assert_eq!(q.lines().count(), 1);
    assert!(q.contains("<broken"), "{q}");
    assert_eq!(srv.stop().0, 0);
}

#[test]
fn backpressure_answers_503_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A log bound of 100 bytes: the first message is stored (the log held 4 bytes), the
    // rest get 503.
    let srv = Server::start(dir.path(), &["--max-log-bytes", "100"]);
    let mut statuses = Vec::new();
    for n in 0..5 {
        let (status, head, _) = http(srv.addr, "POST", "/alerts", unique_doc(n).as_bytes());
        if status == 503 {
            assert!(
                head.to_ascii_lowercase().contains("retry-after: 1"),
                "{head}"
            );
        }
        statuses.push(status);
    }
    assert_eq!(statuses, vec![200, 503, 503, 503, 503]);
    let v = summary(srv.addr);
    assert_eq!(
        (
            v["accepted_messages"].as_i64(),
            v["busy_responses"].as_i64()
        ),
        (Some(1), Some(4))
    );
    assert_eq!(srv.stop().0, 0);
    let r = run(&["alerts", s(dir.path()), "--by", "code", "-f", "csv"]);
    assert!(
        r.stderr.contains("records read 1 = accepted 1"),
        "{}",
        r.stderr
    );
}

#[test]
fn sigkill_mid_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[]);
    let addr = srv.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4u32)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..2000u32 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let n = c * 10_000 + i;
                    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { break };
                    let doc = unique_doc(n);
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let sent = write!(s, "POST /alerts HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{doc}", doc.len());
                    let mut out = Vec::new();
                    if sent.is_err() || s.read_to_end(&mut out).is_err() {
                        break;
                    }
                    if out.starts_with(b"HTTP/1.1 200") {
                        acked.push(n);
                    } else if out.is_empty() {
                        break; // the server died before answering
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let mut child = srv.child;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<u32> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        acked.len() > 20,
        "too few requests acknowledged before the kill: {}",
        acked.len()
    );
    // Restart: recovery cuts any torn tail; every acknowledged message is there exactly once.
    let srv = Server::start(dir.path(), &[]);
    let v = summary(srv.addr);
    let recovered = v["accepted_messages"].as_u64().unwrap();
    assert!(
        recovered >= acked.len() as u64,
        "{recovered} < {}",
        acked.len()
    );
    assert_eq!(srv.stop().0, 0);
    let r = run(&[
        "alerts",
        s(dir.path()),
        "--by",
        "device",
        "-f",
        "csv",
        "--no-distinct",
    ]);
    let mut per_device = std::collections::HashMap::new();
    for line in r.stdout.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        per_device.insert(f[0].to_string(), f[1].parse::<u64>().unwrap());
    }
    for n in &acked {
        let device = 0x00DB_1200_0000_0000u64 | *n as u64;
        let id = DeviceId(device).to_string();
        assert_eq!(
            per_device.get(&id),
            Some(&1),
            "acknowledged message {n} must be in the log exactly once"
        );
    }
    println!(
        "acknowledged before SIGKILL: {}, in the log after restart: {recovered}",
        acked.len()
    );
}

#[test]
fn dashboard_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let inv = data("hand/inventory.csv");
    let srv = Server::start(dir.path(), &["-i", s(&inv)]);
    for d in hand_docs() {
        assert_eq!(http(srv.addr, "POST", "/alerts", d.as_bytes()).0, 200);
    }
    let (status, _, html) = http(srv.addr, "GET", "/", b"");
    assert_eq!(status, 200);
    assert!(
        html.contains("/api/summary") && !html.contains("<script src"),
        "self-contained, polling the summary"
    );
    if required_tool(&CHROMIUM, "chromium").is_none() {
        assert_eq!(srv.stop().0, 0);
        return;
    }
    let (dom, _) = browse_url(&format!("http://{}/", srv.addr), &["--dump-dom"]);
    // The fixture's regions: North, South, 4G Central and Unknown.
    assert!(
        dom.contains("data-ready=\"yes\""),
        "{}",
        &dom[..dom.len().min(600)]
    );
    assert!(
        dom.contains("data-region-charts=\"4\""),
        "{}",
        &dom[..dom.len().min(600)]
    );
    assert!(dom.contains("<svg"), "charts drawn");
    assert_eq!(srv.stop().0, 0);
}
