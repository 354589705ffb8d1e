//! `fleetwatch serve`: a live DUIS alert receiver that never loses what it acknowledged.
//!
//! A POST body (one DUIS message, or several back to back) is decoded by the batch DUIS
//! decoder; if every document reads, the body is appended to the durable log (`log.rs`) and
//! synced (group commit), and only then answered 200. A body with a bad document is answered
//! 400 with the reasons and quarantined (`quarantine.jsonl`); nothing of it is stored. When the
//! queue of bodies waiting for the disk, or the log, reaches its bound, the answer is 503 with
//! Retry-After: the sender keeps the message and tries again (backpressure, never deletion).
//! Live aggregates (`live.rs`) are updated after the sync and rebuilt from the log on restart.
//! SIGTERM (or Ctrl-C) stops accepting, lets requests in flight finish, syncs and exits 0.
//!
//! Hostile clients: headers and bodies have read timeouts (a slow body gets 408 and frees its
//! slot), connections are bounded in total and per client address, and a connection beyond a
//! bound is still read far enough to answer `/healthz` (or 503), so liveness checks and SIGTERM
//! work while every slot is taken. With `--token-file` every route but `/healthz` and the static
//! dashboard page needs a bearer token (`auth.rs`); `--tls-cert/--tls-key` serve HTTPS.

pub mod aggregate;
mod auth;
mod error;
mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod kafka_metrics;
pub mod log;

use crate::inventory::{Denominators, Inventory};
pub use error::LiveError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data: PathBuf,
    /// Largest POST body accepted (bytes).
    pub max_body: usize,
    pub max_connections: usize,
    /// Bodies waiting for the disk before new ones get 503.
    pub max_pending: usize,
    /// Log size at which new bodies get 503 (the log is never trimmed by fleetwatch).
    pub max_log_bytes: u64,
    pub segment_bytes: u64,
    pub sync: log::SyncMode,
    pub threads: usize,
    /// Longest wait for a request's headers (and for the TLS handshake).
    pub header_timeout: std::time::Duration,
    /// Longest wait for a request's whole body; a slower one gets 408.
    pub body_timeout: std::time::Duration,
    /// Connections one client address may hold at once.
    pub max_conns_per_ip: usize,
    /// Bearer tokens, one per line (`None`: no authentication).
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `/metrics` open without a token.
    pub metrics_public: bool,
    /// Listen on a non-loopback address without a token file.
    pub insecure: bool,
}

/// What every request handler shares.
pub struct State {
    pub cfg: ServeConfig,
    pub inv: Inventory,
    pub denoms: Denominators,
    pub region_denoms: Denominators,
    pub live: aggregate::Live,
    pub stats: Arc<log::WriterStats>,
    pub queue: crossbeam_channel::Sender<log::Pending>,
    pub pending: AtomicU64,
    pub in_flight: AtomicU64,
    pub stopping: AtomicBool,
    pub started: std::time::Instant,
    pub recovered: log::Recovered,
    pub tokens: Option<auth::Tokens>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Connections beyond a bound: answered 503 (or `/healthz`), or closed when even the
    /// overflow is full.
    pub refused_connections: AtomicU64,
    /// Requests answered 408 (body too slow).
    pub body_timeouts: AtomicU64,
    /// Requests answered 401.
    pub unauthorized: AtomicU64,
    /// TLS handshakes that failed or did not finish within the header timeout.
    pub tls_failures: AtomicU64,
    /// Set when the records come from Kafka (`consume`): its counters join the metrics, and
    /// POST is refused.
    pub kafka: Option<Arc<kafka_metrics::KafkaMetrics>>,
}

impl ServeConfig {
    /// Refuses a non-loopback address without a token file (unless `insecure`); called by
    /// `run`, and by a caller that wants to refuse before loading anything.
    pub fn check(&self) -> Result<(), LiveError> {
        if !self.listen.ip().is_loopback() && self.token_file.is_none() && !self.insecure {
            return Err(LiveError::Insecure {
                listen: self.listen,
            });
        }
        Ok(())
    }
}

pub fn run(cfg: ServeConfig, inv: Inventory) -> Result<(), LiveError> {
    cfg.check()?;
    let tokens = match &cfg.token_file {
        Some(path) => {
            let t = auth::Tokens::load(path)?;
            if auth::readable_by_others(path) {
                eprintln!(
                    "warning: {}: the token file can be read by other users (chmod 600 it)",
                    path.display()
                );
            }
            Some(t)
        }
        None => None,
    };
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(auth::tls_config(
            cert, key,
        )?)),
        None => None,
    };
    if tokens.is_some() && tls.is_none() && !cfg.listen.ip().is_loopback() {
        eprintln!(
            "warning: tokens travel in clear text on {}: give --tls-cert/--tls-key",
            cfg.listen
        );
    }
    std::fs::create_dir_all(&cfg.data).map_err(LiveError::io(&cfg.data, "create"))?;
    let (denoms, region_denoms) = aggregate::denominators(&inv);
    let live = aggregate::Live::default();
    let recovered = log::recover(&cfg.data, |body| {
        live.add(&aggregate::decode(body).events, &inv);
    })?;
    live.torn_records.store(recovered.torn, Ordering::Relaxed);
    eprintln!(
        "log {}: {} records recovered ({} messages, {} duplicates){}",
        cfg.data.display(),
        recovered.records,
        live.accepted_messages.load(Ordering::Relaxed),
        live.duplicates.load(Ordering::Relaxed),
        if recovered.torn > 0 {
            format!(
                "; cut {} torn record(s) ({} bytes) from the tail: a write the crash interrupted, never acknowledged",
                recovered.torn, recovered.torn_bytes
            )
        } else {
            String::new()
        }
    );
    for (path, d) in &recovered.damaged {
        eprintln!(
            "warning: {}: damaged record at byte {} ({} bytes hold no record): skipped, every whole record after it was read; the batch commands will report it too",
            path.display(),
            d.offset,
            d.bytes
        );
    }
    let stats = Arc::new(log::WriterStats::default());
    let writer = log::Writer::open(&cfg.data, cfg.segment_bytes, cfg.sync, stats.clone())?;
    let (tx, rx) = crossbeam_channel::bounded(cfg.max_pending.max(1));
    let writer_thread = std::thread::Builder::new()
        .name("fleetwatch-log".into())
        .spawn(move || writer.run(rx))?;
    let state = Arc::new(State {
        inv,
        denoms,
        region_denoms,
        live,
        stats,
        queue: tx,
        pending: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        started: std::time::Instant::now(),
        recovered,
        tokens,
        tls,
        refused_connections: AtomicU64::new(0),
        body_timeouts: AtomicU64::new(0),
        unauthorized: AtomicU64::new(0),
        tls_failures: AtomicU64::new(0),
        cfg,
        kafka: None,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if state.cfg.threads == 0 {
            crate::source::pipeline::default_threads()
        } else {
            state.cfg.threads
        })
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(http::serve(state.clone()))?;
    drop(rt);
    // Every request has had its answer; closing the queue lets the writer sync and stop.
    let State { queue, .. } = Arc::into_inner(state).ok_or(LiveError::StateInUse)?;
    drop(queue);
    writer_thread.join().map_err(|_| LiveError::WriterLost)?;
    eprintln!("stopped: every acknowledged message is on disk");
    Ok(())
}
