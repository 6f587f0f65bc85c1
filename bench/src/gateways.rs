//! The gateway comparison: each target (see [`crate::targets`]) at each
//! concurrency level, started fresh per run, in one run of this program so
//! ratios are fair on a noisy machine. Per run: req/s, latency quantiles,
//! errors, and the target's CPU time per request and peak RSS (the gateway
//! process alone, and with the servers it runs).
//!
//! Ends with a summary against `direct`: latency added at one client, and
//! throughput at the other levels.

use crate::load::{self, Budget, LoadResult, Phase};
use crate::procstat::{self, Usage};
use crate::targets::{self, Paths, Target};
use std::time::Duration;

/// One measured run.
struct Row {
    target: &'static str,
    clients: usize,
    result: LoadResult,
    /// CPU used during the measured window.
    cpu: Usage,
    /// At the end of the measured window (peak RSS since start).
    end: Usage,
}

impl Row {
    fn cpu_us_per_request(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / (self.result.requests.max(1) as f64)
    }

    fn print(&self) {
        let r = &self.result;
        let mib = |kb: u64| kb as f64 / 1024.0;
        // /proc counts CPU in 10 ms ticks: too coarse for short (smoke) runs.
        let cpu = match r.elapsed >= Duration::from_secs(2) {
            true => format!(
                "{:.1} / {:.1} µs",
                self.cpu_us_per_request(self.cpu.root_cpu),
                self.cpu_us_per_request(self.cpu.tree_cpu)
            ),
            false => "– (run too short)".to_string(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {} | {cpu} | {:.1} / {:.1} MiB ({}) |",
            self.target,
            self.clients,
            r.rate(),
            r.us(0.5),
            r.us(0.9),
            r.us(0.99),
            r.us(1.0),
            r.errors,
            mib(self.end.root_hwm_kb),
            mib(self.end.tree_hwm_kb),
            self.end.processes,
        );
    }
}

/// Starts `target`, loads it with `clients` clients, stops it.
async fn measure(target: &Target, clients: usize, budget: Budget, paths: &Paths) -> anyhow::Result<Row> {
    let running = targets::start(target.kind, paths).await?;
    let roots = running.roots();
    let (mut start, mut end) = (Usage::default(), Usage::default());
    let result = load::run_observed(running.addr, running.path, clients, budget, &mut |phase| match phase {
        Phase::Measuring => start = procstat::sample(&roots),
        Phase::Measured => end = procstat::sample(&roots),
    })
    .await?;
    drop(running);
    let cpu = Usage {
        root_cpu: end.root_cpu.saturating_sub(start.root_cpu),
        tree_cpu: end.tree_cpu.saturating_sub(start.tree_cpu),
        ..end
    };
    Ok(Row { target: target.name, clients, result, cpu, end })
}

/// Runs every target at every level; fails at the end if any run failed.
pub async fn run(chosen: &[&Target], levels: &[usize], budget: Budget, paths: &Paths) -> anyhow::Result<()> {
    println!("| target | what it is |");
    println!("|---|---|");
    for target in chosen {
        println!("| {} | {} |", target.name, target.about);
    }
    println!();
    println!(
        "| target | clients | req/s | p50 | p90 | p99 | max | errors | CPU/req gateway / +servers | peak RSS gateway / +servers (processes) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for target in chosen {
        for &clients in levels {
            match measure(target, clients, budget, paths).await {
                Ok(row) => {
                    row.print();
                    rows.push(row);
                }
                Err(e) => {
                    let reason = format!("{e:#}").replace('\n', " ");
                    println!("| {} | {clients} | failed: {reason} |", target.name);
                    failed.push(target.name);
                    break;
                }
            }
        }
    }
    summary(&rows, levels);
    anyhow::ensure!(failed.is_empty(), "targets that failed: {}", failed.join(", "));
    Ok(())
}

/// Latency added at the first level and throughput at the others, against `direct`.
fn summary(rows: &[Row], levels: &[usize]) {
    let find = |target: &str, clients: usize| rows.iter().find(|r| r.target == target && r.clients == clients);
    let Some((&first, rest)) = levels.split_first() else { return };
    println!();
    let mut header = format!("| target | p50 at {first} | added vs direct |");
    for level in rest {
        header += &format!(" req/s at {level} | vs direct |");
    }
    println!("{header}");
    println!("|---|---|---|{}", "---|---|".repeat(rest.len()));
    let mut names: Vec<&str> = rows.iter().map(|r| r.target).collect();
    names.dedup();
    for name in names {
        let mut line = format!("| {name} |");
        match (find(name, first), find("direct", first)) {
            (Some(row), Some(direct)) => {
                let p50 = row.result.us(0.5);
                line += &format!(" {p50:.0} µs | {:+.0} µs |", p50 - direct.result.us(0.5));
            }
            (Some(row), None) => line += &format!(" {:.0} µs | – |", row.result.us(0.5)),
            _ => line += " – | – |",
        }
        for &level in rest {
            match (find(name, level), find("direct", level)) {
                (Some(row), Some(direct)) => {
                    let rate = row.result.rate();
                    line += &format!(" {rate:.0} | {:.0}% |", 100.0 * rate / direct.result.rate().max(1e-9));
                }
                (Some(row), None) => line += &format!(" {:.0} | – |", row.result.rate()),
                _ => line += " – | – |",
            }
        }
        println!("{line}");
    }
}
