//! `fleetwatch consume`: a Kafka consumer in a consumer group that writes what it reads to the
//! same durable log as `serve`, and commits a partition's offset only after the records before
//! it are on disk.
//!
//! One thread polls a librdkafka `BaseConsumer` and works in batches: up to `batch_max`
//! messages or `batch_ms` milliseconds, each message decoded (DUIS XML, a JSON line, or a CSV
//! line read with `--csv-header`), the good ones handed to the log writer (`log.rs`), the bad
//! ones written to `quarantine.jsonl` with topic, partition and offset; then the log is synced,
//! the quarantine file too, and only then the next offset of every partition in the batch is
//! committed (synchronously). A crash between the sync and the commit delivers the tail again;
//! the message-id dedup (here at start from the log, and in every batch command) counts it
//! once. Before partitions are taken away (a rebalance) the batch in hand is synced and
//! committed the same way, so the next owner starts exactly after what this instance stored.
//! SIGTERM stops fetching, syncs, commits and returns.

use super::aggregate::{self, Live};
pub use super::kafka_metrics::{KafkaMetrics, PartitionView};
use super::log::{self, Pending, SyncMode, WriterStats};
use super::{LiveError, ServeConfig, State};
use crate::decode::{Collect, ColumnMap, csv, jsonl};
use crate::inventory::Inventory;
use crate::model::Event;
use crate::source::{Format, sniff_format};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What `consume` needs; the command line resolves its arguments into this.
#[derive(Clone, Debug)]
pub struct ConsumeConfig {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub data: PathBuf,
    /// Serve `/metrics`, `/api/summary` and the dashboard here.
    pub listen: Option<SocketAddr>,
    /// The header of a CSV topic (its messages are header-less lines).
    pub csv_header: Option<String>,
    /// A batch ends after this many messages...
    pub batch_max: usize,
    /// ... or this long after its first message.
    pub batch_ms: u64,
    pub session_timeout_ms: u32,
    pub heartbeat_ms: u32,
    /// How often librdkafka reports statistics (the consumer lag comes from them).
    pub stats_ms: u32,
    /// Stop (as on SIGTERM) after this long without a message or a partition assignment.
    pub exit_when_idle: Option<Duration>,
    pub segment_bytes: u64,
    /// Further librdkafka properties (`security.protocol`, `client.id`, ...), set last.
    pub kafka_options: Vec<(String, String)>,
}

impl ConsumeConfig {
    /// The defaults the command line uses.
    pub fn new(brokers: &str, topic: &str, group: &str, data: PathBuf) -> ConsumeConfig {
        ConsumeConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            group: group.into(),
            data,
            listen: None,
            csv_header: None,
            batch_max: 1000,
            batch_ms: 100,
            session_timeout_ms: 10_000,
            heartbeat_ms: 3_000,
            stats_ms: 1_000,
            exit_when_idle: None,
            segment_bytes: 64 << 20,
            kafka_options: Vec::new(),
        }
    }
}

/// The messages of the batch in hand: waiting for the sync, then to be counted and committed.
#[derive(Default)]
struct Batch {
    waits: Vec<tokio::sync::oneshot::Receiver<std::io::Result<()>>>,
    events: Vec<Event>,
    /// The message ids of `events`.
    ids: rustc_hash::FxHashSet<u64>,
    /// Messages stored in this batch, and the number of events each holds.
    stored: Vec<usize>,
    /// Partition -> the offset after the batch's last message.
    next: BTreeMap<i32, i64>,
    quarantined: bool,
}

/// How records are read: the log holds one format (its first record's).
struct Formats {
    /// The format of the log, once it holds a record.
    log: Option<Format>,
    csv: Option<csv::CsvLayout>,
    csv_scratch: csv::CsvScratch,
    json_scratch: jsonl::JsonScratch,
}

impl Formats {
    /// Decodes one message value in the format it starts with.
    fn decode(&mut self, value: &[u8]) -> (Format, Collect) {
        let mut c = Collect::default();
        let format = sniff_format(value);
        match format {
            Format::DuisXml => {
                let d = aggregate::decode(value);
                c.events = d.events;
                c.rejects = d.rejects;
            }
            Format::JsonLines => jsonl::decode(value, 1, 0, &mut self.json_scratch, &mut c),
            Format::Csv => match &self.csv {
                Some(layout) => csv::decode(layout, value, 1, 0, &mut self.csv_scratch, &mut c),
                None => c.rejects.push((
                    1,
                    "not DUIS XML or a JSON line; a CSV line needs --csv-header to name its columns"
                        .into(),
                )),
            },
        }
        (format, c)
    }
}

/// What the polling thread, the rebalance callbacks and the statistics callback share.
struct Shared {
    cfg: ConsumeConfig,
    state: Arc<State>,
    metrics: Arc<KafkaMetrics>,
    batch: Mutex<Batch>,
    formats: Mutex<Formats>,
    quarantine: Mutex<Option<File>>,
    /// A failure that must stop the consumer without committing (the log could not be written).
    fatal: Mutex<Option<String>>,
    stop: AtomicBool,
    /// The last message taken or partition assignment received (for `exit_when_idle`).
    active: Mutex<Instant>,
}

impl Shared {
    fn fail(&self, why: String) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(why);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    fn touch(&self) {
        if let Ok(mut t) = self.active.lock() {
            *t = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        self.active.lock().map(|t| t.elapsed()).unwrap_or_default()
    }

    fn failed(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    /// Takes one message into the batch in hand.
    fn take(&self, partition: i32, offset: i64, value: Option<&[u8]>) {
        let m = &self.metrics;
        if m.consumed.fetch_add(1, Ordering::Relaxed) == 0
            && let Ok(mut span) = m.span.lock()
        {
            let now = Instant::now();
            span.get_or_insert((now, now));
        }
        let value = value.unwrap_or(b"");
        let decoded = match self.formats.lock() {
            Ok(mut f) => {
                let (format, mut d) = f.decode(value);
                if d.rejects.is_empty() && d.events.is_empty() {
                    d.rejects.push((1, "an empty message".into()));
                }
                if d.rejects.is_empty()
                    && let Some(held) = f.log.filter(|&l| l != format)
                {
                    d.rejects.push((
                        1,
                        format!(
                            "a {} message, but the log in {} holds {}: one format per data directory",
                            format.name(),
                            self.cfg.data.display(),
                            held.name()
                        ),
                    ));
                }
                if d.rejects.is_empty() {
                    f.log = Some(format);
                }
                d
            }
            Err(_) => return self.fail("the format state was poisoned".into()),
        };
        let Ok(mut b) = self.batch.lock() else {
            return self.fail("the batch state was poisoned".into());
        };
        b.next.insert(partition, offset + 1);
        if !decoded.rejects.is_empty() {
            m.rejected.fetch_add(1, Ordering::Relaxed);
            self.state.live.rejected.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.quarantine(partition, offset, value, &decoded.rejects) {
                return self.fail(e);
            }
            b.quarantined = true;
            return;
        }
        // Seen before (stored earlier, or earlier in this batch): counted once, not stored again.
        let ids = &b.ids;
        if self.state.live.all_seen(&decoded.events)
            || decoded
                .events
                .iter()
                .all(|e| e.message_id != 0 && ids.contains(&e.message_id))
        {
            let n = decoded.events.len() as u64;
            m.duplicates.fetch_add(1, Ordering::Relaxed);
            self.state.live.duplicates.fetch_add(n, Ordering::Relaxed);
            return;
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        if self
            .state
            .queue
            .send(Pending {
                body: value.to_vec(),
                done,
            })
            .is_err()
        {
            return self.fail("the log writer stopped".into());
        }
        b.waits.push(wait);
        b.ids.extend(decoded.events.iter().map(|e| e.message_id));
        b.stored.push(decoded.events.len());
        b.events.extend_from_slice(&decoded.events);
    }

    /// Appends a rejected message to `quarantine.jsonl` (synced before its offset is committed).
    fn quarantine(
        &self,
        partition: i32,
        offset: i64,
        value: &[u8],
        reasons: &[(u64, String)],
    ) -> Result<(), String> {
        let path = self.cfg.data.join("quarantine.jsonl");
        let mut q = self.quarantine.lock().map_err(|_| "quarantine lock")?;
        if q.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
            *q = Some(f);
        }
        let line = json!({
            "received_at": crate::model::time::format_timestamp(now_ms()),
            "topic": self.cfg.topic,
            "partition": partition,
            "offset": offset,
            "reasons": reasons.iter().map(|(l, r)| format!("line {l}: {r}")).collect::<Vec<_>>(),
            "raw": String::from_utf8_lossy(&value[..value.len().min(64 << 10)]),
        });
        let f = q.as_mut().expect("opened above");
        writeln!(f, "{line}").map_err(|e| format!("{}: cannot write: {e}", path.display()))
    }

    /// Waits for the batch's records to be synced (and the quarantine file), counts them, then
    /// commits the next offset of every partition in the batch (unless `commit` is false: the
    /// assignment was lost, another member owns the partitions now).
    fn flush(&self, consumer: &BaseConsumer<Ctx>, commit: bool) {
        let Ok(mut guard) = self.batch.lock() else {
            return self.fail("the batch state was poisoned".into());
        };
        let b = std::mem::take(&mut *guard);
        drop(guard);
        if b.next.is_empty() {
            return;
        }
        for w in b.waits {
            match w.blocking_recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return self.fail(format!(
                        "{}: the log could not be written ({e}); nothing after the last commit is acknowledged",
                        self.cfg.data.display()
                    ));
                }
                Err(_) => return self.fail("the log writer stopped".into()),
            }
        }
        if b.quarantined {
            let synced = self
                .quarantine
                .lock()
                .ok()
                .and_then(|q| q.as_ref().map(|f| f.sync_data()));
            if let Some(Err(e)) = synced {
                return self.fail(format!("quarantine.jsonl: cannot sync: {e}"));
            }
        }
        let m = &self.metrics;
        m.batches.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut span) = m.span.lock()
            && let Some((_, end)) = span.as_mut()
        {
            *end = Instant::now();
        }
        let mut at = 0;
        for n in b.stored {
            let (new, dup) = self.state.live.add(&b.events[at..at + n], &self.state.inv);
            at += n;
            if new > 0 {
                m.accepted.fetch_add(1, Ordering::Relaxed);
            } else if dup > 0 {
                m.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !commit {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in &b.next {
            if tpl
                .add_partition_offset(&self.cfg.topic, p, Offset::Offset(o))
                .is_err()
            {
                return self.fail(format!("partition {p}: offset {o} not representable"));
            }
        }
        let t0 = Instant::now();
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                m.commit_took(t0.elapsed().as_micros() as u64);
                if let Ok(mut parts) = m.partitions.lock() {
                    for (&p, &o) in &b.next {
                        parts.entry(p).or_insert(UNKNOWN).committed = o;
                    }
                }
            }
            Err(e) => {
                // Not fatal: the records are stored; the next owner reads them again and the
                // message-id dedup counts them once.
                m.commit_failures.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "warning: commit of {} failed ({e}); those messages will be delivered again",
                    offsets_text(&b.next)
                );
            }
        }
    }

    /// Reads the consumer lag of the assigned partitions from a statistics report.
    fn statistics(&self, raw: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(raw) else {
            return;
        };
        let Some(ps) = v["topics"][&self.cfg.topic]["partitions"].as_object() else {
            return;
        };
        let Ok(mut parts) = self.metrics.partitions.lock() else {
            return;
        };
        for (p, view) in parts.iter_mut() {
            if let Some(s) = ps.get(&p.to_string()) {
                view.lag = s["consumer_lag"].as_i64().unwrap_or(-1);
                view.hi_offset = s["hi_offset"].as_i64().unwrap_or(-1);
            }
        }
    }
}

const UNKNOWN: PartitionView = PartitionView {
    lag: -1,
    hi_offset: -1,
    committed: -1,
};

fn offsets_text(next: &BTreeMap<i32, i64>) -> String {
    next.iter()
        .map(|(p, o)| format!("{p}@{o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn partitions_text(tpl: &TopicPartitionList) -> String {
    let mut ps: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    ps.sort();
    ps.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The librdkafka context: rebalances and statistics.
struct Ctx {
    shared: Arc<Shared>,
}

impl ClientContext for Ctx {
    fn stats_raw(&self, statistics: &[u8]) {
        self.shared.statistics(statistics);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        eprintln!("kafka: {error}: {reason}");
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error) {
            eprintln!("kafka {fac}: {log_message}");
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // Store and commit what was read from the partitions before they go.
            let lost = consumer.assignment_lost();
            self.shared.flush(consumer, !lost);
            eprintln!(
                "revoked: {} partition(s) {}{}",
                self.shared.cfg.topic,
                partitions_text(tpl),
                if lost {
                    " (assignment lost: not committed)"
                } else {
                    " (stored and committed)"
                }
            );
            if let Ok(mut parts) = self.shared.metrics.partitions.lock() {
                parts.clear();
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.shared.touch();
                self.shared
                    .metrics
                    .rebalances
                    .fetch_add(1, Ordering::Relaxed);
                if let Ok(mut parts) = self.shared.metrics.partitions.lock() {
                    parts.clear();
                    for e in tpl.elements() {
                        parts.insert(e.partition(), UNKNOWN);
                    }
                }
                eprintln!(
                    "assigned: {} partition(s) {}",
                    self.shared.cfg.topic,
                    partitions_text(tpl)
                );
            }
            Rebalance::Error(e) => eprintln!("warning: rebalance error: {e}"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// What a consumer run did, for the command's last words.
#[derive(Debug, Default, Clone)]
pub struct ConsumeSummary {
    pub consumed: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub commits: u64,
    pub commit_failures: u64,
    /// Why the run stopped: "SIGTERM", "idle", ...
    pub stopped_by: String,
    /// From the first message taken to the last batch committed.
    pub busy: Duration,
}

/// Runs the consumer until SIGTERM/Ctrl-C, `exit_when_idle`, or a failure to write the log.
pub fn run(cfg: ConsumeConfig, inv: Inventory) -> Result<ConsumeSummary, LiveError> {
    std::fs::create_dir_all(&cfg.data).map_err(LiveError::io(&cfg.data, "create"))?;
    let csv_layout = match &cfg.csv_header {
        Some(h) => Some(
            csv::CsvLayout::from_header(h.as_bytes(), &ColumnMap::default())
                .map_err(|e| LiveError::Kafka(format!("--csv-header: {e}")))?,
        ),
        None => None,
    };
    let mut formats = Formats {
        log: None,
        csv: csv_layout,
        csv_scratch: Default::default(),
        json_scratch: Default::default(),
    };
    // Rebuild the live view and the seen message ids from the log.
    let (denoms, region_denoms) = aggregate::denominators(&inv);
    let live = Live::default();
    let mut first = true;
    let mut header_mismatch = None;
    let recovered = log::recover(&cfg.data, |body| {
        if first && formats.csv.is_some() && sniff_format(body) == Format::Csv {
            // A CSV log starts with its header record.
            formats.log = Some(Format::Csv);
            if cfg.csv_header.as_deref().map(str::as_bytes) != Some(body) {
                header_mismatch = Some(String::from_utf8_lossy(body).into_owned());
            }
            first = false;
            return;
        }
        let (format, d) = formats.decode(body);
        if first {
            formats.log = Some(format);
            first = false;
        }
        live.add(&d.events, &inv);
    })?;
    if let Some(h) = header_mismatch {
        return Err(LiveError::Kafka(format!(
            "{}: the log's CSV header `{h}` differs from --csv-header",
            cfg.data.display()
        )));
    }
    live.torn_records.store(recovered.torn, Ordering::Relaxed);
    eprintln!(
        "log {}: {} records recovered ({} messages, {} duplicates){}",
        cfg.data.display(),
        recovered.records,
        live.accepted_messages.load(Ordering::Relaxed),
        live.duplicates.load(Ordering::Relaxed),
        if recovered.torn > 0 {
            format!(
                "; cut {} torn record(s) from the tail (written, never committed: they will be delivered again)",
                recovered.torn
            )
        } else {
            String::new()
        }
    );
    // A CSV log is one segment that starts with the header (the batch commands read a segment
    // as one file); the header is written before any line.
    let csv_log = cfg.csv_header.is_some() && formats.log.is_none_or(|f| f == Format::Csv);
    let segment_bytes = if csv_log { u64::MAX } else { cfg.segment_bytes };
    let stats = Arc::new(WriterStats::default());
    let writer = log::Writer::open(&cfg.data, segment_bytes, SyncMode::Group, stats.clone())?;
    let (tx, rx) = crossbeam_channel::bounded(cfg.batch_max.max(1) * 2);
    let writer_thread = std::thread::Builder::new()
        .name("fleetwatch-log".into())
        .spawn(move || writer.run(rx))?;
    if csv_log && formats.log.is_none() {
        let (done, wait) = tokio::sync::oneshot::channel();
        let header = cfg.csv_header.clone().unwrap_or_default().into_bytes();
        tx.send(Pending { body: header, done })
            .map_err(|_| LiveError::WriterLost)?;
        wait.blocking_recv()
            .map_err(|_| LiveError::WriterLost)?
            .map_err(LiveError::io(
                &cfg.data,
                "write the CSV header to the log in",
            ))?;
        formats.log = Some(Format::Csv);
    }
    let metrics = Arc::new(KafkaMetrics {
        topic: cfg.topic.clone(),
        ..Default::default()
    });
    let state = Arc::new(State {
        cfg: ServeConfig {
            listen: cfg.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            data: cfg.data.clone(),
            max_body: 0,
            max_connections: 64,
            max_pending: 0,
            max_log_bytes: u64::MAX,
            segment_bytes,
            sync: SyncMode::Group,
            threads: 1,
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(30),
            max_conns_per_ip: 32,
            token_file: None,
            tls: None,
            metrics_public: true,
            insecure: false,
        },
        inv,
        denoms,
        region_denoms,
        live,
        stats,
        queue: tx,
        pending: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        started: Instant::now(),
        recovered,
        tokens: None,
        tls: None,
        refused_connections: AtomicU64::new(0),
        body_timeouts: AtomicU64::new(0),
        unauthorized: AtomicU64::new(0),
        tls_failures: AtomicU64::new(0),
        kafka: Some(metrics.clone()),
    });
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        state: state.clone(),
        metrics: metrics.clone(),
        batch: Mutex::new(Batch::default()),
        formats: Mutex::new(formats),
        quarantine: Mutex::new(None),
        fatal: Mutex::new(None),
        stop: AtomicBool::new(false),
        active: Mutex::new(Instant::now()),
    });
    let consumer = client(&cfg, shared.clone())?;

    // Signals (and the HTTP view) on a small runtime; polling on a thread of its own.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_io()
        .enable_time()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let signals = {
        let shared = shared.clone();
        let state = state.clone();
        let listen = cfg.listen.is_some();
        rt.spawn(async move {
            let r = if listen {
                tokio::select! {
                    r = super::http::serve(state) => r.map(|_| "SIGTERM"),
                    _ = done_rx => Ok(""),
                }
            } else {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut term) => tokio::select! {
                        _ = term.recv() => Ok("SIGTERM"),
                        _ = tokio::signal::ctrl_c() => Ok("interrupt"),
                        _ = done_rx => Ok(""),
                    },
                    Err(e) => Err(e),
                }
            };
            match r {
                Ok(why) if !why.is_empty() => {
                    eprintln!("{why}: stop fetching; syncing and committing");
                    shared.stop.store(true, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(e) => shared.fail(format!("signals or --listen: {e}")),
            }
        })
    };
    let poller = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("fleetwatch-kafka".into())
            .spawn(move || poll_loop(consumer, &shared))?
    };
    let stopped_by = poller.join().map_err(|_| LiveError::WriterLost)?;
    let _ = done_tx.send(());
    let _ = rt.block_on(signals);
    drop(rt);
    // Closing the queue lets the writer sync and stop.
    let failed = shared.failed();
    drop(shared);
    let State { queue, .. } = Arc::into_inner(state).ok_or(LiveError::StateInUse)?;
    drop(queue);
    writer_thread.join().map_err(|_| LiveError::WriterLost)?;
    if let Some(why) = failed {
        return Err(LiveError::Kafka(why));
    }
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(ConsumeSummary {
        consumed: get(&metrics.consumed),
        accepted: get(&metrics.accepted),
        duplicates: get(&metrics.duplicates),
        rejected: get(&metrics.rejected),
        commits: get(&metrics.commits),
        commit_failures: get(&metrics.commit_failures),
        stopped_by,
        busy: metrics
            .span
            .lock()
            .ok()
            .and_then(|s| s.map(|(a, b)| b - a))
            .unwrap_or_default(),
    })
}

fn client(cfg: &ConsumeConfig, shared: Arc<Shared>) -> Result<BaseConsumer<Ctx>, LiveError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", cfg.heartbeat_ms.to_string())
        .set("statistics.interval.ms", cfg.stats_ms.to_string())
        .set("client.id", "fleetwatch");
    for (k, v) in &cfg.kafka_options {
        c.set(k, v);
    }
    let consumer: BaseConsumer<Ctx> = c
        .create_with_context(Ctx { shared })
        .map_err(|e| LiveError::Kafka(format!("cannot create the consumer: {e}")))?;
    consumer
        .subscribe(&[&cfg.topic])
        .map_err(|e| LiveError::Kafka(format!("cannot subscribe to {}: {e}", cfg.topic)))?;
    Ok(consumer)
}

/// Polls in batches until told to stop; returns why it stopped.
fn poll_loop(consumer: BaseConsumer<Ctx>, shared: &Shared) -> String {
    let cfg = &shared.cfg;
    let stopped_by = loop {
        if shared.stop.load(Ordering::SeqCst) {
            break "signal".to_string();
        }
        let mut n = 0;
        let mut first_at = None;
        while n < cfg.batch_max && !shared.stop.load(Ordering::SeqCst) {
            let wait = match first_at {
                None => Duration::from_millis(100),
                Some(t) => {
                    let left =
                        Duration::from_millis(cfg.batch_ms).saturating_sub(Instant::elapsed(&t));
                    if left.is_zero() {
                        break;
                    }
                    left
                }
            };
            match consumer.poll(wait) {
                None if first_at.is_none() => break,
                None => continue,
                Some(Err(e)) => {
                    eprintln!("kafka: {e}");
                }
                Some(Ok(msg)) => {
                    shared.take(msg.partition(), msg.offset(), msg.payload());
                    n += 1;
                    first_at.get_or_insert_with(Instant::now);
                }
            }
        }
        if n > 0 {
            shared.flush(&consumer, true);
            shared.touch();
        } else if let Some(idle) = cfg.exit_when_idle
            && shared.idle_for() >= idle
        {
            break "idle".to_string();
        }
    };
    // Whatever is in hand is stored and committed before the consumer leaves the group (closing
    // it revokes the partitions, which flushes again: nothing left by then).
    if shared.failed().is_none() {
        shared.flush(&consumer, true);
    }
    drop(consumer);
    stopped_by
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats(csv_header: Option<&str>) -> Formats {
        Formats {
            log: None,
            csv: csv_header
                .map(|h| csv::CsvLayout::from_header(h.as_bytes(), &ColumnMap::default()).unwrap()),
            csv_scratch: Default::default(),
            json_scratch: Default::default(),
        }
    }

    #[test]
    fn a_message_is_read_in_the_format_it_starts_with() {
        let mut f = formats(Some("timestamp,device_id,alert_code,message_id"));
        let (fmt, d) = f.decode(
            br#"{"timestamp":"2024-01-01T01:26:40Z","device_id":"00-12-4B-EA-42-6F-78-6C","alert_code":"8F84","message_id":"17"}"#,
        );
        assert_eq!(
            (fmt, d.events.len(), d.rejects.len()),
            (Format::JsonLines, 1, 0)
        );
        let (fmt, d) = f.decode(b"2024-01-01T01:42:59Z,00-12-4B-EA-42-6F-78-6C,8F84,18");
        assert_eq!((fmt, d.events.len(), d.rejects.len()), (Format::Csv, 1, 0));
        assert_eq!(
            d.events[0].code.map(|c| c.to_string()).as_deref(),
            Some("8F84")
        );
        let (fmt, d) = f.decode(b"2024-01-01T01:42:59Z,not-a-device,8F84,19");
        assert_eq!((fmt, d.events.len(), d.rejects.len()), (Format::Csv, 0, 1));
        let (fmt, d) = f.decode(b"<sr:Response>cut");
        assert_eq!(fmt, Format::DuisXml);
        assert!(d.events.is_empty() && !d.rejects.is_empty());
    }

    #[test]
    fn a_csv_line_without_a_header_is_rejected_with_the_reason() {
        let mut f = formats(None);
        let (_, d) = f.decode(b"2024-01-01T01:42:59Z,00-12-4B-EA-42-6F-78-6C,8F84,18");
        assert!(d.events.is_empty());
        assert!(d.rejects[0].1.contains("--csv-header"), "{:?}", d.rejects);
    }
}
