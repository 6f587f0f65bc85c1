//! `mcpd-bench`: reproducible benchmarks for mcpd.
//!
//! - `hooks`: the cost of one plugin hook call (noop and JSON-inspecting).
//! - `plugins`: end-to-end tool-call throughput through mcpd with plugin
//!   chains of 0, 1 and 3 plugins, in one run (see chains.rs).
//! - `gateways`: the fixture HTTP server directly, mcpd in front of the
//!   stdio fixture server, and other gateways (supergateway, mcp-proxy) in
//!   front of the same server, at 1, 16 and 64 clients, in one run.
//! - `sessions`: mcpd's memory per idle session and per open SSE stream.
//! - `sse-latency`: time from an HTTP server emitting an SSE event to the
//!   client receiving it, directly and through mcpd.
//! - `load`: the load generator alone, against any MCP endpoint.
//!
//! On a machine with two or more cores, mcpd (and the server it runs) is
//! pinned to core 1 and the load generator to core 0.

mod awake;
mod chains;
mod client;
mod gateways;
mod hooks;
mod load;
mod plot;
mod procstat;
mod sessions;
mod sse_latency;
mod targets;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Cost of one plugin hook call.
    Hooks {
        #[arg(long, default_value_t = 200_000)]
        iterations: u64,
    },
    /// Throughput and latency through mcpd with 0, 1 and 3 plugins.
    Plugins {
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Measured seconds per scenario (after one second of warm-up).
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Interleaved rounds (each chain once per round); medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Direct HTTP server vs mcpd vs other gateways (run bench/install-gateways.sh first).
    Gateways(GatewaysArgs),
    /// mcpd's RSS growth per idle session and per open SSE stream.
    Sessions {
        /// Idle sessions, GET streams and legacy SSE connections to open.
        #[arg(long, default_value_t = 10_000)]
        n: usize,
    },
    /// Progress-event latency through mcpd (HTTP upstream) vs directly.
    SseLatency {
        /// Events per round (one every --interval-ms).
        #[arg(long, default_value_t = 500)]
        events: u64,
        #[arg(long, default_value_t = 2)]
        interval_ms: u64,
        /// Interleaved rounds per target.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Load an MCP endpoint: `--addr 127.0.0.1:8080 --path /mcp`.
    Load {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value = "/mcp")]
        path: String,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

#[derive(clap::Args)]
struct GatewaysArgs {
    /// Concurrent clients (sessions), one run per level.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    clients: Vec<usize>,
    /// Measured seconds per run (after one second of warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs per target and level, interleaved; the median of the least disturbed is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Let idle cores halt (default: SCHED_IDLE spinners keep them awake, see awake.rs).
    #[arg(long)]
    no_spin: bool,
    /// A quick check: 200 requests per run at 1 and 16 clients, one round.
    #[arg(long)]
    smoke: bool,
    /// Targets by name, comma-separated (default: all but those marked optional).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    /// Also write an SVG plot of req/s and p50 against clients to FILE.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Where bench/install-gateways.sh installed the other gateways
    /// (default: $MCPD_BENCH_CACHE, else ~/.cache/mcpd-bench).
    #[arg(long)]
    cache: Option<PathBuf>,
}

/// target/release, where this binary, mcpd and the fixture server live.
pub(crate) fn bin_dir() -> PathBuf {
    std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default()
}

pub(crate) fn wasm(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join("../wasm32-wasip2/release").join(name);
    anyhow::ensure!(path.exists(), "{} is missing: run ./dev plugins", path.display());
    Ok(path)
}

fn pin_self_to(core: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; we set one bit and apply it to this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Cores of the machine, read before this process pins itself to one.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts mcpd (pinned to core 1 when there is one) and waits for health.
pub(crate) async fn start_mcpd(config: &str, port: u16) -> anyhow::Result<Gateway> {
    let dir = tempfile::tempdir()?;
    let path = dir.keep().join("mcpd.toml");
    std::fs::write(&path, config)?;
    let mcpd = bin_dir().join("mcpd");
    let mut command = match cores() >= 2 {
        true => {
            let mut c = Command::new("taskset");
            c.args(["-c", "1"]).arg(&mcpd);
            c
        }
        false => Command::new(&mcpd),
    };
    command.args(["run", "--log-level", "warn", "-c"]).arg(&path).stdout(Stdio::null()).stderr(Stdio::null());
    let gateway = Gateway(command.spawn()?);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            if answer.starts_with("HTTP/1.1 200") {
                return Ok(gateway);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "mcpd did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn hooks(iterations: u64) -> anyhow::Result<()> {
    println!("| plugin | instance | p50 | p99 | mean |");
    println!("|---|---|---|---|---|");
    let example = r#"{"deny_tools":["crash"],"redact":"secret","principal_header":"x-user"}"#;
    use hooks::Mode;
    for (label, file, config, mode) in [
        ("empty (noop)", "mcpd_noop_plugin.wasm", "{}", Mode::Warm),
        ("empty (noop), reads no optional part", "mcpd_noop_plugin.wasm", "{}", Mode::WarmLean),
        ("JSON-inspecting (example)", "mcpd_plugin_example.wasm", example, Mode::Warm),
        ("empty (noop), decision reused", "mcpd_noop_plugin.wasm", r#"{"reuse_ms":60000}"#, Mode::DecisionReused),
        ("empty (noop)", "mcpd_noop_plugin.wasm", "{}", Mode::Fresh),
        ("JSON-inspecting (example)", "mcpd_plugin_example.wasm", example, Mode::Fresh),
    ] {
        // Fresh instances are slow enough that fewer calls say as much.
        let n = if mode == Mode::Fresh { iterations / 20 } else { iterations };
        let h = hooks::measure(&wasm(file)?, config, n, mode).await?;
        let us = |ns: f64| ns / 1000.0;
        let instance = match mode {
            Mode::Fresh => "fresh per call",
            Mode::DecisionReused => "none: no call",
            _ => "warm, reused (mcpd)",
        };
        println!(
            "| {label} | {instance} | {:.2} µs | {:.2} µs | {:.2} µs |",
            us(h.value_at_quantile(0.5) as f64),
            us(h.value_at_quantile(0.99) as f64),
            us(h.mean())
        );
    }
    Ok(())
}

fn targets_paths(cache: Option<PathBuf>) -> targets::Paths {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let cache = cache
        .or_else(|| std::env::var_os("MCPD_BENCH_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| home.join(".cache/mcpd-bench"));
    targets::Paths { bin: bin_dir(), cache, pin: cores() >= 2 }
}

async fn gateways(args: GatewaysArgs) -> anyhow::Result<()> {
    let GatewaysArgs { clients: mut levels, seconds, mut rounds, no_spin, smoke, targets: names, cache, plot } = args;
    let spin = match no_spin {
        true => "idle cores may halt",
        false => {
            awake::spin(cores());
            "idle cores kept awake (SCHED_IDLE spinners)"
        }
    };
    let chosen: Vec<&targets::Target> = match names.is_empty() {
        true => targets::TARGETS.iter().filter(|t| t.default).collect(),
        false => names
            .iter()
            .map(|name| {
                let known = || targets::TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ");
                targets::TARGETS
                    .iter()
                    .find(|t| t.name == name)
                    .ok_or_else(|| anyhow::anyhow!("unknown target {name:?} (known: {})", known()))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let paths = targets_paths(cache);
    let budget = match smoke {
        true => {
            levels.retain(|&n| n <= 16);
            rounds = 1;
            load::Budget {
                warmup: Duration::from_millis(100),
                duration: Duration::from_secs(30),
                max_requests: Some(200),
            }
        }
        false => load::Budget::timed(Duration::from_secs(1), Duration::from_secs(seconds)),
    };
    let pinning = match paths.pin {
        true => "load generator on core 0, target (and its servers) on core 1",
        false => "one core: nothing pinned",
    };
    let amount = match budget.max_requests {
        Some(n) => format!("{n} requests per run"),
        None => format!("{seconds} s per run after 1 s warm-up, {rounds} interleaved rounds"),
    };
    let about = format!("tools/call echo; {amount}; {} cores, {pinning}; {spin}", cores());
    println!("{about}");
    println!();
    gateways::run(&chosen, &levels, rounds, budget, &paths, plot.as_deref().map(|p| (p, about.as_str()))).await
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cores() >= 2 {
        pin_self_to(0);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Cmd::Hooks { iterations } => hooks(iterations).await,
            Cmd::Plugins { clients, seconds, rounds } => chains::run(clients, seconds, rounds, cores()).await,
            Cmd::Gateways(args) => gateways(args).await,
            Cmd::Sessions { n } => sessions::run(n).await,
            Cmd::SseLatency { events, interval_ms, rounds } => {
                sse_latency::run(events, interval_ms, rounds, &targets_paths(None)).await
            }
            Cmd::Load { addr, path, clients, seconds } => {
                let budget = load::Budget::timed(Duration::from_secs(1), Duration::from_secs(seconds));
                let r = load::run(addr, &path, clients, budget).await?;
                println!(
                    "{:.0} req/s  p50 {:.0} µs  p90 {:.0} µs  p99 {:.0} µs  max {:.0} µs  errors {}",
                    r.rate(),
                    r.us(0.5),
                    r.us(0.9),
                    r.us(0.99),
                    r.us(1.0),
                    r.errors
                );
                Ok(())
            }
        }
    })
}
