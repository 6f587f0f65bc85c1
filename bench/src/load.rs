//! The load generator: N concurrent MCP clients on keep-alive HTTP/1.1
//! connections, each initializing once and then calling a tool in a loop
//! until the deadline (or its share of a request budget), then ending its
//! session with DELETE. Latencies go into one HDR histogram.
//!
//! A failed request counts as an error; a broken connection is re-opened
//! (with a new session), so one bad answer does not end the run.

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q`, in microseconds.
    pub fn us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// How long, and how much, to load.
#[derive(Clone, Copy)]
pub struct Budget {
    /// Requests in this first stretch are not measured.
    pub warmup: Duration,
    /// Measured time, at most.
    pub duration: Duration,
    /// Measured requests, at most, over all clients.
    pub max_requests: Option<u64>,
}

impl Budget {
    pub fn timed(warmup: Duration, duration: Duration) -> Self {
        Budget { warmup, duration, max_requests: None }
    }
}

/// Sent with every request, for routes behind the auth plugin (others ignore it).
pub const API_KEY: &str = "mcpd-bench-key";

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpd-bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;

/// One client's connection and MCP session.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    path: String,
    session: Option<String>,
}

impl Conn {
    fn request(&self, method: hyper::Method, body: &'static str) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(method)
            .uri(&self.path)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("x-api-key", API_KEY);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        request.body(Full::new(Bytes::from_static(body.as_bytes()))).expect("valid request")
    }

    /// Connects, initializes and sends `notifications/initialized`.
    async fn open(addr: SocketAddr, path: &str) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut conn = Conn { sender, host: addr.to_string(), path: path.to_string(), session: None };
        let response = conn.sender.send_request(conn.request(hyper::Method::POST, INIT)).await?;
        let status = response.status();
        conn.session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        response.into_body().collect().await?;
        anyhow::ensure!(status == 200, "initialize answered {status}");
        let response = conn.sender.send_request(conn.request(hyper::Method::POST, INITIALIZED)).await?;
        response.into_body().collect().await?;
        Ok(conn)
    }

    /// One `tools/call`; Ok(false) for an answer that is not a result.
    async fn call(&mut self) -> anyhow::Result<bool> {
        let response = self.sender.send_request(self.request(hyper::Method::POST, CALL)).await?;
        let ok = response.status() == 200;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(ok && body.windows(8).any(|w| w == b"\"result\""))
    }

    /// Ends the session (not measured; errors do not matter here).
    async fn close(mut self) {
        if self.session.is_some()
            && let Ok(response) = self.sender.send_request(self.request(hyper::Method::DELETE, "")).await
        {
            let _ = response.into_body().collect().await;
        }
    }
}

/// Moments of a run that an observer (e.g. a CPU sampler) wants to see.
pub enum Phase {
    /// Warm-up is over; measurement starts.
    Measuring,
    /// Every client has stopped measuring; sessions are still open.
    Measured,
}

/// What one client measured.
struct ClientResult {
    histogram: Histogram<u64>,
    errors: u64,
    last_end: Instant,
}

/// One client: calls until `until` or until it made `quota` measured calls.
async fn client(
    addr: SocketAddr,
    path: String,
    warmup: Instant,
    until: Instant,
    quota: u64,
    done: tokio::sync::mpsc::Sender<()>,
    mut release: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<ClientResult> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3)?;
    let (mut errors, mut measured) = (0, 0);
    let mut conn: Option<Conn> = None;
    let mut last_end = Instant::now();
    loop {
        let started = Instant::now();
        if started >= until || measured >= quota {
            break;
        }
        let counted = started >= warmup;
        let current = match conn.as_mut() {
            Some(current) => current,
            None => match Conn::open(addr, &path).await {
                Ok(opened) => conn.insert(opened),
                Err(_) => {
                    errors += u64::from(counted);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let outcome = current.call().await;
        last_end = Instant::now();
        if outcome.is_err() {
            conn = None;
        }
        if counted {
            measured += 1;
            match outcome {
                Ok(true) => histogram.record(last_end.duration_since(started).as_nanos() as u64)?,
                _ => errors += 1,
            }
        }
    }
    // Sessions stay open until the observer has seen the end of measurement.
    drop(done);
    let _ = release.wait_for(|released| *released).await;
    if let Some(conn) = conn {
        conn.close().await;
    }
    Ok(ClientResult { histogram, errors, last_end })
}

/// Runs `clients` clients against `http://addr/path` within `budget`.
pub async fn run(addr: SocketAddr, path: &str, clients: usize, budget: Budget) -> anyhow::Result<LoadResult> {
    run_observed(addr, path, clients, budget, &mut |_| {}).await
}

/// [`run`], calling `observe` when measurement starts and when it has ended.
pub async fn run_observed(
    addr: SocketAddr,
    path: &str,
    clients: usize,
    budget: Budget,
    observe: &mut dyn FnMut(Phase),
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let measured_from = start + budget.warmup;
    let until = measured_from + budget.duration;
    let quota = budget.max_requests.map_or(u64::MAX, |n| n.div_ceil(clients.max(1) as u64));
    let (done, mut all_done) = tokio::sync::mpsc::channel(1);
    let (release, released) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client(addr, path.to_string(), measured_from, until, quota, done.clone(), released.clone());
            tokio::spawn(client)
        })
        .collect();
    drop(done);
    tokio::time::sleep_until(measured_from.into()).await;
    observe(Phase::Measuring);
    // recv() answers None once every client has dropped its sender.
    while all_done.recv().await.is_some() {}
    observe(Phase::Measured);
    let _ = release.send(true);
    let mut latency = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3)?;
    let (mut errors, mut last_end) = (0, measured_from);
    for task in tasks {
        let result = task.await??;
        latency.add(&result.histogram)?;
        errors += result.errors;
        last_end = last_end.max(result.last_end);
    }
    let elapsed = budget.duration.min(last_end.saturating_duration_since(measured_from));
    Ok(LoadResult { requests: latency.len(), errors, elapsed, latency })
}
