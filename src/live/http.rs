//! The HTTP side: accepting connections (bounded), routing, the ingest path, metrics, the
//! summary and the dashboard.

use super::State;
use super::log::{Pending, SYNC_BUCKETS};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

type Resp = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("a valid response")
}

fn json_reply(status: StatusCode, v: serde_json::Value) -> Resp {
    reply(status, "application/json", v.to_string())
}

/// Accepts connections until SIGTERM or Ctrl-C, then waits for requests in flight.
pub async fn serve(state: Arc<State>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.cfg.listen).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    let connections = Arc::new(tokio::sync::Semaphore::new(
        state.cfg.max_connections.max(1),
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(permit) = connections.clone().acquire_owned().await else { break };
                let state = state.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(route(req, state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(30))
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    state.stopping.store(true, Ordering::SeqCst);
    drop(listener);
    eprintln!("stopping: no new connections; finishing requests in flight");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while state.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn route(req: Request<Incoming>, state: Arc<State>) -> Resp {
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let r = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/metrics") => {
            reply(StatusCode::OK, "text/plain; version=0.0.4", metrics(&state))
        }
        (&Method::GET, "/api/summary") => json_reply(StatusCode::OK, summary(&state)),
        (&Method::GET, "/") => reply(StatusCode::OK, "text/html; charset=utf-8", DASHBOARD),
        (&Method::POST, "/" | "/alerts" | "/duis") => ingest(req, &state).await,
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: POST DUIS XML to /alerts; GET /, /metrics, /api/summary, /healthz\n",
        ),
    };
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    r
}

fn busy(state: &State, why: &str) -> Resp {
    state.live.busy.fetch_add(1, Ordering::Relaxed);
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(RETRY_AFTER, "1")
        .header(CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from(format!(
            "busy: {why}; nothing was stored, send it again after Retry-After\n"
        ))))
        .expect("a valid response")
}

async fn ingest(req: Request<Incoming>, state: &State) -> Resp {
    if state.stopping.load(Ordering::SeqCst) {
        return busy(state, "shutting down");
    }
    let max = state.cfg.max_body;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return too_large(state, max);
    }
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(state, max),
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("could not read the body: {e}\n"),
            );
        }
    };
    if state.pending.load(Ordering::SeqCst) >= state.cfg.max_pending as u64 {
        return busy(state, "the queue of messages waiting for the disk is full");
    }
    if state.stats.bytes.load(Ordering::Relaxed) >= state.cfg.max_log_bytes {
        return busy(
            state,
            "the log reached its configured size bound (--max-log-bytes)",
        );
    }
    let decoded = super::aggregate::decode(&body);
    if !decoded.rejects.is_empty() || decoded.events.is_empty() {
        let reasons: Vec<String> = if decoded.rejects.is_empty() {
            vec!["no DUIS message in the body".into()]
        } else {
            decoded
                .rejects
                .iter()
                .map(|(line, r)| format!("line {line}: {r}"))
                .collect()
        };
        quarantine(state, &body, &reasons);
        state.live.rejected.fetch_add(1, Ordering::Relaxed);
        return reply(
            StatusCode::BAD_REQUEST,
            "text/plain",
            format!(
                "rejected (quarantined, nothing stored): {}\n",
                reasons.join("; ")
            ),
        );
    }
    if state.live.all_seen(&decoded.events) {
        let n = decoded.events.len() as u64;
        state.live.duplicates.fetch_add(n, Ordering::Relaxed);
        return json_reply(StatusCode::OK, json!({"accepted": 0, "duplicates": n}));
    }
    let (done, wait) = tokio::sync::oneshot::channel();
    state.pending.fetch_add(1, Ordering::SeqCst);
    if state
        .queue
        .try_send(Pending {
            body: body.to_vec(),
            done,
        })
        .is_err()
    {
        state.pending.fetch_sub(1, Ordering::SeqCst);
        return busy(state, "the queue of messages waiting for the disk is full");
    }
    let written = wait.await;
    state.pending.fetch_sub(1, Ordering::SeqCst);
    match written {
        Ok(Ok(())) => {
            let (new, dup) = state.live.add(&decoded.events, &state.inv);
            json_reply(StatusCode::OK, json!({"accepted": new, "duplicates": dup}))
        }
        Ok(Err(e)) if super::log::is_disk_full(&e) => busy(state, "the disk is full"),
        Ok(Err(e)) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("not stored (write failed: {e}); send it again\n"),
        ),
        Err(_) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not stored: the log writer stopped\n",
        ),
    }
}

fn too_large(state: &State, max: usize) -> Resp {
    state.live.rejected.fetch_add(1, Ordering::Relaxed);
    reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        "text/plain",
        format!("body larger than {max} bytes (--max-body): not stored\n"),
    )
}

/// Appends a rejected body to `quarantine.jsonl` with its reasons.
fn quarantine(state: &State, body: &[u8], reasons: &[String]) {
    let line = json!({
        "received_at": crate::model::time::format_timestamp(now_ms()),
        "reasons": reasons,
        "raw": String::from_utf8_lossy(&body[..body.len().min(64 << 10)]),
    });
    let path = state.cfg.data.join("quarantine.jsonl");
    // The quarantine counts against --max-log-bytes with the log: past it, the body is still
    // answered 400 with its reasons, but not kept.
    let line = format!("{line}\n");
    let held = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let log = state.stats.bytes.load(Ordering::Relaxed);
    if log.saturating_add(held).saturating_add(line.len() as u64) > state.cfg.max_log_bytes {
        state.live.quarantine_full.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn counter(out: &mut String, name: &str, help: &str, kind: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
    );
}

fn metrics(s: &State) -> String {
    let l = &s.live;
    let mut m = String::new();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter(
        &mut m,
        "fleetwatch_accepted_messages_total",
        "DUIS messages accepted and on disk (each message id once).",
        "counter",
        get(&l.accepted_messages),
    );
    counter(
        &mut m,
        "fleetwatch_accepted_alerts_total",
        "Alert occurrences accepted (throttled counts included).",
        "counter",
        get(&l.accepted_alerts),
    );
    counter(
        &mut m,
        "fleetwatch_rejected_requests_total",
        "Requests answered 4xx (malformed or too large), quarantined.",
        "counter",
        get(&l.rejected),
    );
    counter(
        &mut m,
        "fleetwatch_duplicate_messages_total",
        "Messages delivered again (same message id): acknowledged, counted once.",
        "counter",
        get(&l.duplicates),
    );
    counter(
        &mut m,
        "fleetwatch_busy_responses_total",
        "Requests answered 503 (backpressure).",
        "counter",
        get(&l.busy),
    );
    counter(
        &mut m,
        "fleetwatch_backlog_messages",
        "Bodies waiting for the disk.",
        "gauge",
        s.pending.load(Ordering::Relaxed),
    );
    counter(
        &mut m,
        "fleetwatch_log_bytes",
        "Bytes in the durable log.",
        "gauge",
        get(&s.stats.bytes),
    );
    counter(
        &mut m,
        "fleetwatch_quarantine_skipped_total",
        "Rejected bodies not kept in quarantine.jsonl: it would pass --max-log-bytes.",
        "counter",
        get(&l.quarantine_full),
    );
    counter(
        &mut m,
        "fleetwatch_disk_full",
        "1 while the last write to the log failed for want of space (answered 503).",
        "gauge",
        s.stats.disk_full.load(Ordering::Relaxed) as u64,
    );
    counter(
        &mut m,
        "fleetwatch_write_failures_total",
        "Batches whose write or sync failed: cut back off the log, answered not stored.",
        "counter",
        get(&s.stats.write_failures),
    );
    counter(
        &mut m,
        "fleetwatch_damaged_log_bytes",
        "Bytes of the log found at start to hold no record (skipped; see the start-up warning).",
        "gauge",
        s.recovered.damaged_bytes(),
    );
    counter(
        &mut m,
        "fleetwatch_torn_records_cut_total",
        "Torn records cut from the log's tail at start (never acknowledged).",
        "counter",
        get(&l.torn_records),
    );
    let _ = writeln!(
        m,
        "# HELP fleetwatch_fsync_seconds Time to sync the log (one sync per group of requests).\n# TYPE fleetwatch_fsync_seconds histogram"
    );
    let mut cum = 0;
    for (i, b) in SYNC_BUCKETS.iter().enumerate() {
        cum += s.stats.sync_us[i].load(Ordering::Relaxed);
        let le = if *b == u64::MAX {
            "+Inf".to_string()
        } else {
            format!("{}", *b as f64 / 1e6)
        };
        let _ = writeln!(m, "fleetwatch_fsync_seconds_bucket{{le=\"{le}\"}} {cum}");
    }
    let _ = writeln!(
        m,
        "fleetwatch_fsync_seconds_sum {}\nfleetwatch_fsync_seconds_count {cum}",
        get(&s.stats.sync_us_sum) as f64 / 1e6
    );
    let _ = writeln!(
        m,
        "# HELP fleetwatch_alerts_per_1000_devices Alerts per 1,000 installed devices on the latest day, per CSP region.\n# TYPE fleetwatch_alerts_per_1000_devices gauge"
    );
    let rows = l.by_region(&s.region_denoms);
    let latest = rows
        .iter()
        .filter_map(|r| r["day"].as_str())
        .max()
        .map(str::to_string);
    for r in rows
        .iter()
        .filter(|r| r["day"].as_str().map(str::to_string) == latest)
    {
        if let Some(v) = r["per_1000"].as_f64() {
            let _ = writeln!(
                m,
                "fleetwatch_alerts_per_1000_devices{{region=\"{}\",day=\"{}\"}} {v}",
                r["region"].as_str().unwrap_or(""),
                r["day"].as_str().unwrap_or("")
            );
        }
    }
    m
}

fn summary(s: &State) -> serde_json::Value {
    let l = &s.live;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    json!({
        "accepted_messages": get(&l.accepted_messages),
        "accepted_alerts": get(&l.accepted_alerts),
        "duplicates": get(&l.duplicates),
        "rejected_requests": get(&l.rejected),
        "busy_responses": get(&l.busy),
        "non_alert_messages": get(&l.non_alert),
        "unknown_device_alerts": get(&l.unknown_devices),
        "backlog": s.pending.load(Ordering::Relaxed),
        "log_bytes": get(&s.stats.bytes),
        "log_segments": get(&s.stats.segments),
        "syncs": get(&s.stats.syncs),
        "recovered_records": s.recovered.records,
        "torn_records_cut": s.recovered.torn,
        "damaged_log_bytes": s.recovered.damaged_bytes(),
        "disk_full": s.stats.disk_full.load(Ordering::Relaxed),
        "uptime_seconds": s.started.elapsed().as_secs(),
        "by_region": l.by_region(&s.region_denoms),
        "rows": l.rows(&s.denoms),
    })
}

const DASHBOARD: &str = include_str!("dashboard.html");
