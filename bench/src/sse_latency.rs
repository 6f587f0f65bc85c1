//! The `sse-latency` scenario: how long a server-sent event takes from the
//! server to the client, directly and through mcpd, and what mcpd adds.
//!
//! The HTTP fixture's `slow_stream` tool with `stamp: true` sends progress
//! notifications on the request's SSE stream, each carrying the wall clock
//! just before it was written (`sentAtNs`); the client takes the clock
//! again when the event's bytes arrive. Both clocks are this machine's
//! CLOCK_REALTIME. Targets: `direct` (the fixture) and `mcpd-http` (mcpd in
//! front of it), interleaved over rounds; each started fresh and pinned like
//! the gateway benchmark. Not covered: stdio upstreams (the stdio fixture's
//! `progress` tool carries no timestamps).

use crate::client::Http;
use crate::targets::{self, Kind, Paths, Upstream};
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use serde_json::{Value, json};

/// Events at the start of each round that are not measured (connection and
/// allocator warm-up).
const SKIP: u64 = 10;

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// One round against a fresh `kind`: the latency of every event after [`SKIP`], ns.
async fn round(
    kind: Kind,
    events: u64,
    interval_ms: u64,
    paths: &Paths,
    into: &mut Histogram<u64>,
) -> anyhow::Result<()> {
    let running = targets::start(kind, paths).await?;
    let mut http = Http::connect(running.addr).await?;
    let session = http.initialize(running.path).await?;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "slow_stream", "_meta": {"progressToken": "bench"},
        "arguments": {"count": events + SKIP, "interval_ms": interval_ms, "stamp": true}}});
    let mut response = http.send(hyper::Method::POST, running.path, Some(&session), call.to_string()).await?;
    anyhow::ensure!(response.status() == 200, "tools/call slow_stream answered {}", response.status());
    let (mut pending, mut seen, mut answered) = (String::new(), 0u64, false);
    while let Some(frame) = response.body_mut().frame().await {
        let arrived = now_ns();
        let Ok(data) = frame?.into_data() else { continue };
        pending.push_str(&String::from_utf8_lossy(&data));
        // Complete events end with a blank line; keep the rest for the next frame.
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            for line in event.lines() {
                let Some(message) = line.strip_prefix("data:").map(str::trim) else { continue };
                let Ok(message) = serde_json::from_str::<Value>(message) else { continue };
                if message.get("id").is_some() {
                    answered = true;
                }
                let Some(sent) = message.pointer("/params/sentAtNs").and_then(Value::as_u64) else { continue };
                seen += 1;
                if seen > SKIP {
                    into.record(arrived.saturating_sub(sent).max(1))?;
                }
            }
        }
    }
    anyhow::ensure!(answered && seen == events + SKIP, "got {seen} of {} events (answer: {answered})", events + SKIP);
    Ok(())
}

pub async fn run(events: u64, interval_ms: u64, rounds: usize, paths: &Paths) -> anyhow::Result<()> {
    let kinds = [("direct", Kind::Direct), ("mcpd-http", Kind::Mcpd { upstream: Upstream::Http, sessions: true })];
    let mut histograms: Vec<Histogram<u64>> =
        kinds.iter().map(|_| Histogram::new_with_bounds(1, 60_000_000_000, 3)).collect::<Result<_, _>>()?;
    for _ in 0..rounds.max(1) {
        for ((_, kind), histogram) in kinds.iter().zip(histograms.iter_mut()) {
            round(*kind, events, interval_ms, paths, histogram).await?;
        }
    }
    println!(
        "progress notifications on a tools/call SSE answer, one every {interval_ms} ms, {events} per round \
         (after {SKIP} unmeasured), {rounds} interleaved rounds; server send time → client receive time"
    );
    println!();
    println!("| path | events | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    for ((name, _), h) in kinds.iter().zip(&histograms) {
        println!(
            "| {name} | {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs |",
            h.len(),
            us(h, 0.5),
            us(h, 0.9),
            us(h, 0.99),
            us(h, 1.0)
        );
    }
    let (direct, mcpd) = (&histograms[0], &histograms[1]);
    println!(
        "| added by mcpd | | {:+.0} µs | {:+.0} µs | {:+.0} µs | |",
        us(mcpd, 0.5) - us(direct, 0.5),
        us(mcpd, 0.9) - us(direct, 0.9),
        us(mcpd, 0.99) - us(direct, 0.99)
    );
    Ok(())
}
