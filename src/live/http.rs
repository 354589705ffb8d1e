//! The HTTP side: accepting connections (bounded in total and per address, never blocking the
//! accept loop), timeouts, bearer-token checks, routing, the ingest path, metrics, the
//! summary and the dashboard.

use super::State;
use super::log::{Pending, prometheus_histogram};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;

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

/// Connections beyond a bound that are still read far enough to answer `/healthz` (or 503):
/// a quarter of `--max-connections`, at least 16. Past that a connection is closed at once.
fn overflow_slots(max_connections: usize) -> usize {
    (max_connections / 4).max(16)
}

/// The longest an overflow connection may take to send its headers.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection got no regular slot.
#[derive(Clone, Copy)]
enum Overflow {
    AllSlots,
    PerAddress,
}

/// Connections held per client address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One connection's share of its address's count, given back on drop.
struct IpHold {
    map: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn try_take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpHold> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpHold {
            map: self.clone(),
            ip,
        })
    }
}

impl Drop for IpHold {
    fn drop(&mut self) {
        let mut m = self.map.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until SIGTERM or Ctrl-C, then waits for requests in flight.
///
/// The accept loop never waits for a slot: a connection beyond `--max-connections` or
/// `--max-conns-per-ip` is served by a small overflow handler (headers within 2 s, `/healthz`
/// answered, everything else 503), so liveness checks and the signals are always heard.
pub async fn serve(state: Arc<State>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.cfg.listen).await?;
    let scheme = if state.tls.is_some() { "https" } else { "http" };
    eprintln!("listening on {scheme}://{}", listener.local_addr()?);
    let slots = Arc::new(Semaphore::new(state.cfg.max_connections.max(1)));
    let overflow = Arc::new(Semaphore::new(overflow_slots(state.cfg.max_connections)));
    let per_ip = Arc::new(PerIp::default());
    let max_per_ip = state.cfg.max_conns_per_ip.max(1);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(_) => {
                        // Out of descriptors or a connection reset before it was taken: pause
                        // briefly rather than spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let hold = per_ip.try_take(peer.ip(), max_per_ip);
                let slot = match &hold {
                    Some(_) => slots.clone().try_acquire_owned().ok(),
                    None => None,
                };
                match (hold, slot) {
                    (Some(hold), Some(slot)) => {
                        let (state, stop) = (state.clone(), stop_rx.clone());
                        tokio::spawn(async move {
                            connection(stream, state, None, stop).await;
                            drop((slot, hold));
                        });
                    }
                    (hold, _) => {
                        let why = if hold.is_none() { Overflow::PerAddress } else { Overflow::AllSlots };
                        drop(hold);
                        state.refused_connections.fetch_add(1, Ordering::Relaxed);
                        let Ok(permit) = overflow.clone().try_acquire_owned() else {
                            drop(stream);
                            continue;
                        };
                        let (state, stop) = (state.clone(), stop_rx.clone());
                        tokio::spawn(async move {
                            connection(stream, state, Some(why), stop).await;
                            drop(permit);
                        });
                    }
                }
            }
            _ = hup.recv() => {
                if let Some(t) = &state.tokens {
                    match t.reload() {
                        Ok(n) => eprintln!("SIGHUP: {}: {n} token(s) in force", t.path().display()),
                        Err(e) => eprintln!("SIGHUP: {e}; the tokens in force stay in force"),
                    }
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    state.stopping.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    drop(listener);
    eprintln!("stopping: no new connections; finishing requests in flight");
    // Every connection task gives its permit back when its answer has left (a body still
    // arriving is answered 503 at once; a half-sent header waits at most --header-timeout).
    let overflow_max = overflow_slots(state.cfg.max_connections);
    let max_slots = state.cfg.max_connections.max(1);
    let open = || {
        state.in_flight.load(Ordering::SeqCst) > 0
            || slots.available_permits() < max_slots
            || overflow.available_permits() < overflow_max
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while open() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// One connection: the TLS handshake (within the header timeout) if TLS is on, then HTTP/1.1.
async fn connection(
    stream: tokio::net::TcpStream,
    state: Arc<State>,
    overflow: Option<Overflow>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let handshake_limit = match overflow {
        Some(_) => OVERFLOW_HEADER_TIMEOUT.min(state.cfg.header_timeout),
        None => state.cfg.header_timeout,
    };
    match state.tls.clone() {
        Some(acceptor) => {
            let handshake = acceptor.accept(stream).into_fallible();
            match tokio::time::timeout(handshake_limit, handshake).await {
                Ok(Ok(tls)) => http1(tls, state, overflow, stop).await,
                Ok(Err((_, io))) => {
                    // Counted before the connection closes.
                    state.tls_failures.fetch_add(1, Ordering::Relaxed);
                    drop(io);
                }
                Err(_) => {
                    state.tls_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        None => http1(stream, state, overflow, stop).await,
    }
}

async fn http1<I>(
    io: I,
    state: Arc<State>,
    overflow: Option<Overflow>,
    stop: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new());
    match overflow {
        None => {
            builder.header_read_timeout(state.cfg.header_timeout);
        }
        Some(_) => {
            builder
                .header_read_timeout(OVERFLOW_HEADER_TIMEOUT.min(state.cfg.header_timeout))
                .keep_alive(false);
        }
    }
    let svc_state = state.clone();
    let svc_stop = stop.clone();
    let svc = hyper::service::service_fn(move |req| {
        let state = svc_state.clone();
        let stop = svc_stop.clone();
        async move {
            Ok::<_, std::convert::Infallible>(match overflow {
                None => route(req, state, stop).await,
                Some(why) => overflow_route(&req, &state, why),
            })
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut stop = stop;
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => {}
    }
    // Stopping: an idle connection closes now, a request in flight finishes first.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// A connection beyond a bound: `/healthz` still answers, anything else gets 503.
fn overflow_route(req: &Request<Incoming>, state: &State, why: Overflow) -> Resp {
    if req.method() == Method::GET && req.uri().path() == "/healthz" {
        return reply(StatusCode::OK, "text/plain", "ok\n");
    }
    let why = match why {
        Overflow::AllSlots => format!(
            "every connection slot is taken (--max-connections {})",
            state.cfg.max_connections
        ),
        Overflow::PerAddress => format!(
            "this address already holds {} connections (--max-conns-per-ip)",
            state.cfg.max_conns_per_ip
        ),
    };
    let mut r = busy(state, &why);
    r.headers_mut()
        .insert(CONNECTION, hyper::header::HeaderValue::from_static("close"));
    r
}

/// Whether a route needs the bearer token (when a token file is given).
fn needs_token(method: &Method, path: &str, metrics_public: bool) -> bool {
    match (method, path) {
        // Liveness, and the dashboard page itself: static, it holds no data (it asks for the
        // token and sends it with its requests for /api/summary).
        (&Method::GET, "/healthz" | "/") => false,
        (&Method::GET, "/metrics") => !metrics_public,
        _ => true,
    }
}

/// `None` when the request may go on; else the 401 answer.
fn authorize(req: &Request<Incoming>, state: &State) -> Option<Resp> {
    let tokens = state.tokens.as_ref()?;
    if !needs_token(req.method(), req.uri().path(), state.cfg.metrics_public) {
        return None;
    }
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| super::auth::bearer(v.as_bytes()));
    let challenge = match presented {
        Some(t) if tokens.check(t) => return None,
        Some(_) => "Bearer realm=\"fleetwatch\", error=\"invalid_token\"",
        None => "Bearer realm=\"fleetwatch\"",
    };
    state.unauthorized.fetch_add(1, Ordering::Relaxed);
    Some(
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(WWW_AUTHENTICATE, challenge)
            .header(CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from_static(
                b"unauthorized: send Authorization: Bearer <token> (a token from --token-file); nothing was stored\n",
            )))
            .expect("a valid response"),
    )
}

async fn route(
    req: Request<Incoming>,
    state: Arc<State>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Resp {
    if let Some(denied) = authorize(&req, &state) {
        return denied;
    }
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let r = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/metrics") => {
            reply(StatusCode::OK, "text/plain; version=0.0.4", metrics(&state))
        }
        (&Method::GET, "/api/summary") => json_reply(StatusCode::OK, summary(&state)),
        (&Method::GET, "/") => reply(StatusCode::OK, "text/html; charset=utf-8", DASHBOARD),
        (&Method::POST, "/" | "/alerts" | "/duis") => ingest(req, &state, stop).await,
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

async fn ingest(
    req: Request<Incoming>,
    state: &State,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Resp {
    if state.kafka.is_some() {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "this instance reads its alerts from Kafka (fleetwatch consume): produce them to the topic\n",
        );
    }
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
    let read = tokio::time::timeout(
        state.cfg.body_timeout,
        Limited::new(req.into_body(), max).collect(),
    );
    let read = tokio::select! {
        r = read => r,
        _ = stop.wait_for(|s| *s) => return busy(state, "shutting down"),
    };
    let Ok(read) = read else {
        return body_too_slow(state);
    };
    let body = match read {
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

/// 408: the body did not arrive within `--body-timeout`; the connection is closed, freeing
/// its slot.
fn body_too_slow(state: &State) -> Resp {
    state.body_timeouts.fetch_add(1, Ordering::Relaxed);
    let mut r = reply(
        StatusCode::REQUEST_TIMEOUT,
        "text/plain",
        format!(
            "the body did not arrive within {} s (--body-timeout): not stored\n",
            state.cfg.body_timeout.as_secs()
        ),
    );
    r.headers_mut()
        .insert(CONNECTION, hyper::header::HeaderValue::from_static("close"));
    r
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
        "fleetwatch_refused_connections_total",
        "Connections beyond --max-connections or --max-conns-per-ip (answered 503 or closed).",
        "counter",
        get(&s.refused_connections),
    );
    counter(
        &mut m,
        "fleetwatch_body_timeouts_total",
        "Requests answered 408: the body did not arrive within --body-timeout.",
        "counter",
        get(&s.body_timeouts),
    );
    counter(
        &mut m,
        "fleetwatch_unauthorized_requests_total",
        "Requests answered 401 (no or a wrong bearer token).",
        "counter",
        get(&s.unauthorized),
    );
    counter(
        &mut m,
        "fleetwatch_tls_handshake_failures_total",
        "TLS handshakes that failed or did not finish within --header-timeout.",
        "counter",
        get(&s.tls_failures),
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
    prometheus_histogram(
        &mut m,
        "fleetwatch_fsync_seconds",
        "Time to sync the log (one sync per group of requests).",
        &s.stats.sync_us,
        &s.stats.sync_us_sum,
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
    if let Some(k) = &s.kafka {
        k.prometheus(&mut m);
    }
    m
}

fn summary(s: &State) -> serde_json::Value {
    let l = &s.live;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut v = json!({
        "accepted_messages": get(&l.accepted_messages),
        "accepted_alerts": get(&l.accepted_alerts),
        "duplicates": get(&l.duplicates),
        "rejected_requests": get(&l.rejected),
        "busy_responses": get(&l.busy),
        "non_alert_messages": get(&l.non_alert),
        "unknown_device_alerts": get(&l.unknown_devices),
        "refused_connections": get(&s.refused_connections),
        "body_timeouts": get(&s.body_timeouts),
        "unauthorized_requests": get(&s.unauthorized),
        "tls_handshake_failures": get(&s.tls_failures),
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
    });
    if let Some(k) = &s.kafka {
        v["kafka"] = k.summary();
    }
    v
}

const DASHBOARD: &str = include_str!("dashboard.html");
