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
        Server::start_on("127.0.0.1:0", data, extra)
    }

    fn start_on(listen: &str, data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                listen,
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
            if let Some(a) = line
                .strip_prefix("listening on http://")
                .or_else(|| line.strip_prefix("listening on https://"))
            {
                let a: SocketAddr = a.parse().unwrap();
                // 0.0.0.0 listens on loopback too.
                break SocketAddr::from(([127, 0, 0, 1], a.port()));
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

    fn stop(self) -> (i32, String) {
        send_signal(self.child.id(), libc::SIGTERM);
        self.stop_signalled()
    }

    /// Waits for the exit after SIGTERM was sent.
    fn stop_signalled(mut self) -> (i32, String) {
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
    http_with(addr, method, path, "", body)
}

/// The request with extra header lines (each ending in CRLF).
fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request(method, path, headers, body).as_bytes());
    let _ = s.write_all(body);
    read_response(&mut s)
}

fn request(method: &str, path: &str, headers: &str, body: &[u8]) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/xml\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
}

/// Reads until the server closes: (status, headers, body); status 0 when nothing came.
fn read_response(s: &mut impl Read) -> (u16, String, String) {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out)
}

fn parse_response(out: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(out).into_owned();
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
    let acked_so_far = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..4u32)
        .map(|c| {
            let stop = stop.clone();
            let acked_so_far = acked_so_far.clone();
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
                        acked_so_far.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else if out.is_empty() {
                        break; // the server died before answering
                    }
                }
                acked
            })
        })
        .collect();
    // Kill mid-load: once a good number of messages were acknowledged (not after a fixed
    // time, which a busy machine would make too short), while the clients keep posting.
    for _ in 0..3000 {
        if acked_so_far.load(std::sync::atomic::Ordering::Relaxed) >= 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// A POST that sends its headers (a body of 1,000,000 bytes announced) and five bytes of body,
/// then nothing: a slow-body slowloris connection.
fn slow_body(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"POST /alerts HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n<?xml")
        .unwrap();
    s
}

/// Waits (bounded) until the server's stderr holds `needle`.
fn wait_for_stderr(srv: &Server, needle: &str) -> String {
    for _ in 0..1000 {
        let log = srv.stderr.lock().unwrap().clone();
        if log.contains(needle) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "the server never said {needle:?}: {}",
        srv.stderr.lock().unwrap()
    );
}

#[test]
fn slow_bodies_take_every_slot_yet_healthz_and_sigterm_answer() {
    let dir = tempfile::tempdir().unwrap();
    // 256 slots (the default), no per-address limit in the way, and a body timeout far longer
    // than the test: only the overflow path and SIGTERM can answer here.
    let srv = Server::start(
        dir.path(),
        &["--max-conns-per-ip", "1000", "--body-timeout", "3600"],
    );
    let slow: Vec<TcpStream> = (0..300).map(|_| slow_body(srv.addr)).collect();
    let (status, _, body) = http(srv.addr, "GET", "/healthz", b"");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, head, body) = http(srv.addr, "POST", "/alerts", unique_doc(1).as_bytes());
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("every connection slot is taken (--max-connections 256)")
            && head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}\n{body}"
    );
    // SIGTERM is acted on while all 256 slots wait for bodies.
    send_signal(srv.child.id(), libc::SIGTERM);
    let mut answers: std::collections::BTreeMap<String, usize> = Default::default();
    for mut c in slow {
        let (status, _, body) = read_response(&mut c);
        let why = if body.contains("shutting down") {
            "shutting down"
        } else if body.contains("every connection slot is taken") {
            "slots taken"
        } else {
            "other"
        };
        *answers.entry(format!("{status} {why}")).or_default() += 1;
    }
    let (code, log) = srv.stop_signalled();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("every acknowledged message is on disk"),
        "{log}"
    );
    // 256 held a slot until SIGTERM; the 44 beyond were answered 503 at once.
    assert_eq!(
        answers.into_iter().collect::<Vec<_>>(),
        vec![
            ("503 shutting down".to_string(), 256),
            ("503 slots taken".to_string(), 44)
        ]
    );
}

#[test]
fn slow_body_gets_408_and_gives_its_slot_back_half_headers_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        &[
            "--max-connections",
            "2",
            "--body-timeout",
            "1",
            "--header-timeout",
            "1",
        ],
    );
    let slow: Vec<TcpStream> = (0..2).map(|_| slow_body(srv.addr)).collect();
    for mut c in slow {
        let (status, head, body) = read_response(&mut c);
        assert_eq!(status, 408, "{head}\n{body}");
        assert!(
            body.contains("--body-timeout")
                && head.to_ascii_lowercase().contains("connection: close"),
            "{head}\n{body}"
        );
    }
    // Both slots are free again: a real message is accepted (the permit is given back just
    // after the connection closes, so a 503 for taken slots may come first, briefly).
    let mut answer = (0, String::new(), String::new());
    for _ in 0..100 {
        answer = http(srv.addr, "POST", "/alerts", unique_doc(7).as_bytes());
        if answer.0 != 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answer.0, 200, "{answer:?}");
    // Half-sent headers: the connection is closed after --header-timeout, with no answer.
    let mut c = TcpStream::connect_timeout(&srv.addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .unwrap();
    let (status, head, _) = read_response(&mut c);
    assert_ne!(status, 200, "{head}");
    // An idle keep-alive connection is closed after --header-timeout too: the answer comes,
    // then the end of the stream (not the client's 60 s read timeout).
    let mut c = TcpStream::connect_timeout(&srv.addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let end = c.read_to_end(&mut out);
    assert!(
        end.is_ok() && out.starts_with(b"HTTP/1.1 200"),
        "{end:?} {}",
        String::from_utf8_lossy(&out)
    );
    let v = summary(srv.addr);
    assert_eq!(v["body_timeouts"].as_u64(), Some(2), "{v}");
    assert_eq!(v["accepted_messages"].as_u64(), Some(1), "{v}");
    assert_eq!(srv.stop().0, 0);
}

#[test]
fn per_address_limit_rejects_the_excess_and_healthz_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        &["--max-conns-per-ip", "3", "--body-timeout", "3600"],
    );
    let slow: Vec<TcpStream> = (0..3).map(|_| slow_body(srv.addr)).collect();
    let (status, _, body) = http(srv.addr, "POST", "/alerts", unique_doc(1).as_bytes());
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("this address already holds 3 connections (--max-conns-per-ip)"),
        "{body}"
    );
    assert_eq!(http(srv.addr, "GET", "/healthz", b"").0, 200);
    send_signal(srv.child.id(), libc::SIGTERM);
    for mut c in slow {
        let (status, _, body) = read_response(&mut c);
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("shutting down"), "{body}");
    }
    let (code, log) = srv.stop_signalled();
    assert_eq!(code, 0, "{log}");
    // Nothing was stored: the log reads back empty.
    let r = run(&["alerts", s(dir.path()), "--by", "code", "-f", "csv"]);
    assert!(r.stderr.contains("records read 0"), "{}", r.stderr);
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn bearer_tokens_401_without_200_with_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    write_private(&tokens, "# operators\n\n  alpha-7f3c  \n# beta-old\n");
    let data_dir = dir.path().join("rx");
    let srv = Server::start(&data_dir, &["--token-file", s(&tokens)]);
    let alpha = "Authorization: Bearer alpha-7f3c\r\n";
    let doc = unique_doc(1);
    let (status, head, body) = http(srv.addr, "POST", "/alerts", doc.as_bytes());
    assert_eq!(status, 401, "{body}");
    assert!(
        head.contains("www-authenticate: Bearer realm=\"fleetwatch\"")
            && !head.contains("invalid_token"),
        "{head}"
    );
    let (status, head, _) = http_with(
        srv.addr,
        "POST",
        "/alerts",
        "Authorization: Bearer alpha-7f3d\r\n",
        doc.as_bytes(),
    );
    assert_eq!(status, 401);
    assert!(head.contains("error=\"invalid_token\""), "{head}");
    // A comment line is not a token.
    let (status, _, _) = http_with(
        srv.addr,
        "POST",
        "/alerts",
        "Authorization: Bearer # beta-old\r\n",
        doc.as_bytes(),
    );
    assert_eq!(status, 401);
    let (status, _, body) = http_with(srv.addr, "POST", "/alerts", alpha, doc.as_bytes());
    assert_eq!(
        (status, body.as_str()),
        (200, "{\"accepted\":1,\"duplicates\":0}")
    );
    // Reading needs the token too; /healthz and the static dashboard page do not.
    assert_eq!(http(srv.addr, "GET", "/api/summary", b"").0, 401);
    assert_eq!(http(srv.addr, "GET", "/metrics", b"").0, 401);
    assert_eq!(http(srv.addr, "GET", "/healthz", b"").0, 200);
    let (status, _, page) = http(srv.addr, "GET", "/", b"");
    assert!(status == 200 && page.contains("Authorization"), "{status}");
    let (status, _, body) = http_with(srv.addr, "GET", "/api/summary", alpha, b"");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            v["accepted_messages"].as_u64(),
            v["unauthorized_requests"].as_u64()
        ),
        (Some(1), Some(5))
    );
    // SIGHUP re-reads the file: the new token works, the old one no longer does.
    write_private(&tokens, "beta-19ae\n");
    send_signal(srv.child.id(), libc::SIGHUP);
    wait_for_stderr(&srv, "1 token(s) in force");
    let beta = "Authorization: Bearer beta-19ae\r\n";
    assert_eq!(http_with(srv.addr, "GET", "/metrics", alpha, b"").0, 401);
    assert_eq!(http_with(srv.addr, "GET", "/metrics", beta, b"").0, 200);
    // A reload that finds no token keeps the tokens in force.
    write_private(&tokens, "# nothing yet\n");
    send_signal(srv.child.id(), libc::SIGHUP);
    wait_for_stderr(&srv, "the tokens in force stay in force");
    assert_eq!(http_with(srv.addr, "GET", "/metrics", beta, b"").0, 200);
    assert_eq!(srv.stop().0, 0);

    // --metrics-public: /metrics open, the rest still closed.
    write_private(&tokens, "beta-19ae\n");
    let srv = Server::start(&data_dir, &["--token-file", s(&tokens), "--metrics-public"]);
    let (status, _, metrics) = http(srv.addr, "GET", "/metrics", b"");
    assert!(
        status == 200 && metrics.contains("fleetwatch_accepted_messages_total 1"),
        "{status} {metrics}"
    );
    assert_eq!(http(srv.addr, "GET", "/api/summary", b"").0, 401);
    assert_eq!(
        http(srv.addr, "POST", "/alerts", unique_doc(2).as_bytes()).0,
        401
    );
    assert_eq!(srv.stop().0, 0);
}

#[test]
fn non_loopback_without_a_token_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("rx");
    let r = run(&["serve", "--listen", "0.0.0.0:0", "--data", s(&data_dir)]);
    assert_ne!(r.status, 0);
    assert!(
        r.stderr
            .contains("refusing to listen on 0.0.0.0:0 without --token-file")
            && r.stderr.contains("--insecure"),
        "{}",
        r.stderr
    );
    assert!(!data_dir.exists(), "nothing is created before the refusal");
    let srv = Server::start_on("0.0.0.0:0", &data_dir, &["--insecure"]);
    assert_eq!(http(srv.addr, "GET", "/api/summary", b"").0, 200);
    assert_eq!(srv.stop().0, 0);
    // With a token file it listens, and warns that tokens travel in clear text without TLS.
    let tokens = dir.path().join("tokens");
    write_private(&tokens, "t-1\n");
    let srv = Server::start_on("0.0.0.0:0", &data_dir, &["--token-file", s(&tokens)]);
    assert_eq!(http(srv.addr, "GET", "/api/summary", b"").0, 401);
    let (code, log) = srv.stop();
    assert_eq!(code, 0);
    assert!(log.contains("tokens travel in clear text"), "{log}");
}

/// A TLS client over a plain TcpStream with the test's self-signed certificate as its root.
fn tls_request(
    addr: SocketAddr,
    root: &rcgen::Certificate,
    versions: &[&'static tokio_rustls::rustls::SupportedProtocolVersion],
    req: &[u8],
) -> (
    u16,
    String,
    String,
    Option<tokio_rustls::rustls::ProtocolVersion>,
) {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.der().clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let (status, head, body) = parse_response(&out);
    (status, head, body, tls.conn.protocol_version())
}

#[test]
fn tls_round_trip_with_a_token() {
    use tokio_rustls::rustls::{ProtocolVersion, version};
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key, tokens) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("tokens"),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    write_private(&key, &ck.key_pair.serialize_pem());
    write_private(&tokens, "tls-token-1\n");
    let srv = Server::start(
        &dir.path().join("rx"),
        &[
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--token-file",
            s(&tokens),
        ],
    );
    assert!(
        srv.stderr.lock().unwrap().contains("listening on https://"),
        "{}",
        srv.stderr.lock().unwrap()
    );
    let doc = unique_doc(3);
    let mut post = request(
        "POST",
        "/alerts",
        "Authorization: Bearer tls-token-1\r\n",
        doc.as_bytes(),
    )
    .into_bytes();
    post.extend_from_slice(doc.as_bytes());
    let (status, _, body, v) = tls_request(srv.addr, &ck.cert, &[&version::TLS13], &post);
    assert_eq!(
        (status, body.as_str()),
        (200, "{\"accepted\":1,\"duplicates\":0}")
    );
    assert_eq!(v, Some(ProtocolVersion::TLSv1_3));
    // TLS 1.2 is served too; without the token the answer is 401 inside TLS.
    let get = request("GET", "/api/summary", "", b"");
    let (status, _, _, v) = tls_request(srv.addr, &ck.cert, &[&version::TLS12], get.as_bytes());
    assert_eq!((status, v), (401, Some(ProtocolVersion::TLSv1_2)));
    let get = request(
        "GET",
        "/api/summary",
        "Authorization: Bearer tls-token-1\r\n",
        b"",
    );
    let (status, _, body, _) = tls_request(srv.addr, &ck.cert, &[&version::TLS12], get.as_bytes());
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["accepted_messages"].as_u64(), Some(1));
    // Plain HTTP to the TLS port gets no HTTP answer, and counts as a failed handshake.
    assert_eq!(http(srv.addr, "GET", "/healthz", b"").0, 0);
    let get = request(
        "GET",
        "/metrics",
        "Authorization: Bearer tls-token-1\r\n",
        b"",
    );
    let (_, _, metrics, _) = tls_request(srv.addr, &ck.cert, &[&version::TLS13], get.as_bytes());
    assert!(
        metrics.contains("fleetwatch_tls_handshake_failures_total 1"),
        "{metrics}"
    );
    assert_eq!(srv.stop().0, 0);
}
