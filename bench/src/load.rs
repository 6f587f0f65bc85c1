//! The load generator: N concurrent MCP clients on keep-alive HTTP/1.1
//! connections, each initializing once and then calling a tool in a loop
//! until the deadline. Latencies go into one HDR histogram.

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
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
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency at quantile `q`, in microseconds.
    pub fn us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpd-bench","version":"1"}}}"#;
const CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;

fn post(path: &str, session: Option<&str>, body: &'static str) -> Request<Full<Bytes>> {
    let mut request = Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.body(Full::new(Bytes::from_static(body.as_bytes()))).expect("valid request")
}

/// One client: connect, initialize, call until `until`; returns latencies (ns) and errors.
async fn client(
    addr: SocketAddr,
    path: String,
    warmup: Instant,
    until: Instant,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(post(&path, None, INIT)).await?;
    let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    response.into_body().collect().await?;
    if let Some(session) = &session {
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        sender.send_request(post(&path, Some(session), note)).await?.into_body().collect().await?;
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3)?;
    let mut errors = 0;
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let response = sender.send_request(post(&path, session.as_deref(), CALL)).await?;
        let ok = response.status() == 200;
        let body = response.into_body().collect().await?.to_bytes();
        let ok = ok && body.windows(8).any(|w| w == b"\"result\"");
        if started >= warmup {
            match ok {
                true => histogram.record(started.elapsed().as_nanos() as u64)?,
                false => errors += 1,
            }
        }
    }
    Ok((histogram, errors))
}

/// Runs `clients` clients against `http://addr/path` for `warmup + duration`.
pub async fn run(
    addr: SocketAddr,
    path: &str,
    clients: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let measured_from = start + warmup;
    let until = measured_from + duration;
    let tasks: Vec<_> =
        (0..clients).map(|_| tokio::spawn(client(addr, path.to_string(), measured_from, until))).collect();
    let mut latency = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3)?;
    let mut errors = 0;
    for task in tasks {
        let (histogram, failed) = task.await??;
        latency.add(&histogram)?;
        errors += failed;
    }
    Ok(LoadResult { requests: latency.len(), errors, elapsed: duration, latency })
}
