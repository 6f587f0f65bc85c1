//! The `plugins` scenario: tool-call throughput through mcpd with plugin
//! chains of 0, 1 and 3 plugins, in one run so that the ratios are fair on
//! a noisy machine.
//!
//! Two kinds of chain: the SDK's example plugin on every hook (a worst
//! case: each plugin parses every message), and the first-party chain a
//! user would deploy, auth → rate-limit → tool-policy, configured as in
//! `examples/mcpd.toml` (each entry lists only the methods it needs).
//! This module owns the chains' configs; the load is `load.rs`'s.

use crate::load::Phase;
use crate::procstat::{self, Usage};
use crate::{load, start_mcpd, wasm};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// SHA-256 of [`load::API_KEY`], which the load generator always sends.
const API_KEY_SHA256: &str = "a9654ac99fc8468663426b2fa0f5fa41d9cddc3584a47518aceb86683da12ddc";

struct Chain {
    label: &'static str,
    entries: Vec<String>,
}

fn entry(path: &Path, rest: &str) -> String {
    format!("[[server.bench.plugins]]\npath = \"{}\"\n{rest}\n", path.display())
}

fn chains() -> anyhow::Result<Vec<Chain>> {
    let example = wasm("mcpd_plugin_example.wasm")?;
    let example_entry = entry(
        &example,
        "headers = [\"x-user\"]\nconfig = { deny_tools = [\"crash\"], redact = \"secret\", principal_header = \"x-user\" }",
    );
    let auth = entry(
        &wasm("mcpd_auth.wasm")?,
        &format!(
            "methods = [\"tools/call\"]\nconfig = {{ api_keys = [{{ name = \"bench\", sha256 = \"{API_KEY_SHA256}\", scopes = [\"mcp:read\"] }}], tool_scopes = {{ \"crash\" = \"mcp:admin\" }} }}"
        ),
    );
    // A limit the load never reaches: every call still takes a token.
    let rate_limit = entry(
        &wasm("mcpd_rate_limit.wasm")?,
        "methods = [\"tools/call\"]\nconfig = { limits = [{ key = \"principal\", rate = 1000000000, per = \"1s\" }] }",
    );
    let policy = entry(
        &wasm("mcpd_tool_policy.wasm")?,
        "methods = [\"tools/call\", \"tools/list\"]\nconfig = { rules = [{ action = \"deny\", tools = [\"crash\", \"stats\"] }, { action = \"allow\", tools = [\"*\"] }] }",
    );
    let first_party = vec![auth, rate_limit, policy];
    // The same chain with every call made: what it costs without reuse.
    let no_reuse = first_party.iter().map(|e| e.replacen("\n", "\ndecision_cache = 0\n", 1)).collect();
    Ok(vec![
        Chain { label: "none", entries: vec![] },
        Chain { label: "1: example, every hook", entries: vec![example_entry.clone()] },
        Chain { label: "3: example ×3, every hook", entries: vec![example_entry; 3] },
        Chain { label: "3: auth → rate-limit → tool-policy, decisions reused", entries: first_party },
        Chain { label: "3: auth → rate-limit → tool-policy, decision_cache = 0", entries: no_reuse },
    ])
}

/// One chain's run: its load result and mcpd's CPU per request.
struct Measured {
    result: load::LoadResult,
    cpu_us: f64,
}

pub async fn run(clients: usize, seconds: u64, rounds: usize, cores: usize) -> anyhow::Result<()> {
    let chains = chains()?;
    let rounds = rounds.max(1);
    println!(
        "mcpd fronting one pooled stdio echo server; {clients} clients; {seconds} s each; {rounds} interleaved rounds; {cores} cores"
    );
    // Every chain once per round, in order, so a disturbance on the shared
    // machine hits one round of each rather than all rounds of one chain;
    // ratios are taken within a round.
    let mut runs: Vec<Vec<Measured>> = chains.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (chain, runs) in chains.iter().zip(&mut runs) {
            runs.push(measure(chain, clients, seconds).await?);
        }
    }
    println!();
    println!("| plugins | req/s | vs none | mcpd CPU/req | CPU vs none | p50 | p90 | p99 | max | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let baseline = &runs[0];
    for (chain, runs) in chains.iter().zip(&runs) {
        let ratios = |of: &dyn Fn(&Measured, &Measured) -> f64| {
            median(runs.iter().zip(baseline).map(|(run, base)| of(run, base)).collect())
        };
        let rate_ratio = ratios(&|run, base| run.result.rate() / base.result.rate());
        let cpu_ratio = ratios(&|run, base| base.cpu_us / run.cpu_us.max(1e-9));
        // Latencies of the round with the median rate.
        let mut by_rate: Vec<&Measured> = runs.iter().collect();
        by_rate.sort_by(|a, b| a.result.rate().total_cmp(&b.result.rate()));
        let typical = &by_rate[by_rate.len() / 2].result;
        println!(
            "| {} | {:.0} | {:.0}% | {:.1} µs | {:.0}% | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {} |",
            chain.label,
            typical.rate(),
            100.0 * rate_ratio,
            median(runs.iter().map(|run| run.cpu_us).collect()),
            100.0 * cpu_ratio,
            typical.us(0.5),
            typical.us(0.9),
            typical.us(0.99),
            typical.us(1.0),
            runs.iter().map(|run| run.result.errors).sum::<u64>()
        );
    }
    if rounds > 1 {
        println!();
        println!("req/s and latencies: the round with the median rate; ratios and CPU/req: medians over rounds.");
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Starts mcpd with `chain`, loads it, and stops it.
async fn measure(chain: &Chain, clients: usize, seconds: u64) -> anyhow::Result<Measured> {
    let server = crate::bin_dir().join("mcpd-test-server");
    let port = crate::free_port()?;
    let mut config = format!(
        "[gateway]\nthreads = 1\n[server.bench]\ncommand = \"{}\"\nport = {port}\n[server.bench.session]\nenabled = false\n[server.bench.pool]\nsize = 1\n[server.bench.http]\nmax_concurrent_requests = 4096\n",
        server.display()
    );
    config.extend(chain.entries.iter().cloned());
    let gateway = start_mcpd(&config, port).await?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let budget = load::Budget::timed(Duration::from_secs(1), Duration::from_secs(seconds));
    // mcpd's own CPU per request (its stdio server excluded): on a
    // shared machine throughput swings with the neighbours, CPU per
    // request much less, so the ratio of CPU is the steadier figure.
    let root = [gateway.0.id()];
    let (mut start, mut end) = (Usage::default(), Usage::default());
    let result = load::run_observed(addr, "/mcp", clients, budget, &mut |phase| match phase {
        Phase::Measuring => start = procstat::sample(&root),
        Phase::Measured => end = procstat::sample(&root),
    })
    .await?;
    drop(gateway);
    let cpu_us = end.root_cpu.saturating_sub(start.root_cpu).as_secs_f64() * 1e6 / result.requests.max(1) as f64;
    Ok(Measured { result, cpu_us })
}
