//! The `sessions` scenario: mcpd's memory per idle session and per open
//! SSE stream. Not throughput (gateways.rs) nor latency (sse_latency.rs).
//!
//! The route runs one stdio replica with sessions on (`replicas = 1`): every
//! client session is mcpd's own state bound to that one shared process, so
//! the growth of mcpd's RSS is what a session costs the gateway. (With a
//! process per session the processes would dominate, and 10k of them do not
//! fit a test machine; with `session.enabled = false` there are no sessions.)
//!
//! Three measurements, each mcpd's VmRSS after minus before, divided by N:
//! 1. N sessions (initialize + initialized), then idle; their connections
//!    are reused, so only the sessions remain.
//! 2. A GET stream on each of those sessions (a connection each).
//! 3. In a fresh mcpd, N legacy `GET /sse` connections (each is a session
//!    and its stream).

use crate::client::{Http, open_stream};
use crate::procstat;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections used to create the idle sessions.
const CREATORS: usize = 16;
/// Streams opened at once.
const OPENING: usize = 64;

/// Raises this process's open-file limit towards `wanted` (up to the hard
/// limit); mcpd, started from here, inherits it. Returns the new soft limit.
fn raise_nofile(wanted: u64) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

fn config(port: u16, server: &str, n: usize) -> String {
    let cap = 2 * n + 100;
    format!(
        "[gateway]\nthreads = 1\nmax_sessions = {cap}\n\
         [server.bench]\ncommand = \"{server}\"\nport = {port}\nreplicas = 1\n\
         transport = [\"streamable-http\", \"sse\"]\n\
         [server.bench.session]\nmax_per_client = {cap}\n\
         [server.bench.http]\nmax_concurrent_requests = {cap}\n"
    )
}

/// mcpd's resident set now, KiB, after letting it settle.
async fn rss(pid: u32) -> anyhow::Result<u64> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    procstat::rss_kb(pid).ok_or_else(|| anyhow::anyhow!("cannot read mcpd's RSS (did it exit?)"))
}

struct Line {
    what: &'static str,
    n: usize,
    before_kb: u64,
    after_kb: u64,
    took: Duration,
}

impl Line {
    fn print(&self) {
        let per = (self.after_kb as f64 - self.before_kb as f64) * 1024.0 / self.n.max(1) as f64;
        println!(
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.1} s |",
            self.what,
            self.n,
            self.before_kb as f64 / 1024.0,
            self.after_kb as f64 / 1024.0,
            per / 1024.0,
            self.took.as_secs_f64()
        );
    }
}

/// Creates `n` sessions over [`CREATORS`] reused connections.
async fn create_sessions(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<String>> {
    let mut tasks = Vec::new();
    for c in 0..CREATORS {
        let count = n / CREATORS + usize::from(c < n % CREATORS);
        tasks.push(tokio::spawn(async move {
            let mut http = Http::connect(addr).await?;
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(http.initialize("/mcp").await?);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for task in tasks {
        ids.extend(task.await??);
    }
    Ok(ids)
}

/// Opens a stream per item (a session's GET stream, or with `None` a legacy
/// connection), [`OPENING`] at a time; returns them to be held open.
async fn open_streams(addr: SocketAddr, sessions: Vec<Option<String>>) -> anyhow::Result<Vec<impl Sized>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let mut tasks = Vec::with_capacity(sessions.len());
    for session in sessions {
        let permit = gate.clone().acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            let path = if session.is_some() { "/mcp" } else { "/sse" };
            let stream = open_stream(addr, path, session.as_deref()).await;
            drop(permit);
            stream
        }));
    }
    let mut open = Vec::with_capacity(tasks.len());
    for task in tasks {
        open.push(task.await??);
    }
    Ok(open)
}

pub async fn run(n: usize) -> anyhow::Result<()> {
    let limit = raise_nofile(2 * n as u64 + 1024);
    anyhow::ensure!(
        limit >= n as u64 + 256,
        "open-file limit {limit} is too low for {n} streams (raise the hard limit, or lower --n)"
    );
    let server = crate::bin_dir().join("mcpd-test-server").display().to_string();
    println!(
        "mcpd route: one stdio replica (`replicas = 1`, sessions on) shared by every session, so sessions and \
         streams are mcpd's own state; transport = streamable-http + sse; {n} of each; RSS = VmRSS of mcpd, \
         0.5 s after the last one opened; open-file limit {limit}"
    );
    println!();
    println!("| what | N | mcpd RSS before | after | per item | time to open all |");
    println!("|---|---|---|---|---|---|");

    let port = crate::free_port()?;
    let mcpd = crate::start_mcpd(&config(port, &server, n), port).await?;
    let (pid, addr): (u32, SocketAddr) = (mcpd.0.id(), ([127, 0, 0, 1], port).into());
    // Warm up: the replica's handshake, the first allocations of each kind.
    let warm = create_sessions(addr, 32).await?;
    let _warm_streams = open_streams(addr, warm.into_iter().map(Some).collect()).await?;

    let before = rss(pid).await?;
    let started = Instant::now();
    let sessions = create_sessions(addr, n).await?;
    let took = started.elapsed();
    let idle = rss(pid).await?;
    Line { what: "idle session (initialize + initialized)", n, before_kb: before, after_kb: idle, took }.print();

    let started = Instant::now();
    let streams = open_streams(addr, sessions.into_iter().map(Some).collect()).await?;
    let took = started.elapsed();
    let streaming = rss(pid).await?;
    Line { what: "GET stream on a session", n, before_kb: idle, after_kb: streaming, took }.print();
    drop(streams);
    drop(mcpd);

    let port = crate::free_port()?;
    let mcpd = crate::start_mcpd(&config(port, &server, n), port).await?;
    let (pid, addr): (u32, SocketAddr) = (mcpd.0.id(), ([127, 0, 0, 1], port).into());
    let _warm = open_streams(addr, vec![None; 32]).await?;
    let before = rss(pid).await?;
    let started = Instant::now();
    let legacy = open_streams(addr, vec![None; n]).await?;
    let took = started.elapsed();
    let after = rss(pid).await?;
    Line { what: "legacy `GET /sse` connection (session + stream)", n, before_kb: before, after_kb: after, took }
        .print();
    drop(legacy);
    Ok(())
}
