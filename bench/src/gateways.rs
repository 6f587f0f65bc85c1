//! The gateway comparison: each target (see [`crate::targets`]) at each
//! concurrency level, started fresh per run, in one run of this program so
//! ratios are fair on a noisy machine. Per run: req/s, latency quantiles,
//! errors, and the target's CPU time per request and peak RSS (the gateway
//! process alone, and with the servers it runs).
//!
//! Other programs on the machine (e.g. a build) distort the figures: each run
//! reports the CPU they used meanwhile ("others' CPU", % of one core), and
//! with `--rounds N` a typical one of the least disturbed of N interleaved
//! runs is kept (the median by req/s).
//!
//! Ends with a summary against `direct`: latency added at one client, and
//! throughput at the other levels.

use crate::load::{self, Budget, LoadResult, Phase};
use crate::procstat::{self, Machine, Usage};
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
    /// CPU that other programs used during the measured window.
    others: Duration,
}

impl Row {
    fn cpu_us_per_request(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / (self.result.requests.max(1) as f64)
    }

    /// Other programs' CPU during the run, in percent of one core.
    fn disturbance(&self) -> f64 {
        100.0 * self.others.as_secs_f64() / self.result.elapsed.as_secs_f64().max(1e-9)
    }

    fn print(&self) {
        let r = &self.result;
        let mib = |kb: u64| kb as f64 / 1024.0;
        // /proc counts CPU in 10 ms ticks: too coarse for short (smoke) runs.
        let (cpu, others) = match r.elapsed >= Duration::from_secs(2) {
            true => (
                format!(
                    "{:.1} / {:.1} µs",
                    self.cpu_us_per_request(self.cpu.root_cpu),
                    self.cpu_us_per_request(self.cpu.tree_cpu)
                ),
                format!("{:.0}%", self.disturbance()),
            ),
            false => ("– (run too short)".to_string(), "–".to_string()),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {} | {cpu} | {:.1} / {:.1} MiB ({}) | {others} |",
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
    let (mut start, mut end) = ((Usage::default(), Machine::default()), (Usage::default(), Machine::default()));
    let result = load::run_observed(running.addr, running.path, clients, budget, &mut |phase| match phase {
        Phase::Measuring => start = (procstat::sample(&roots), Machine::sample()),
        Phase::Measured => end = (procstat::sample(&roots), Machine::sample()),
    })
    .await?;
    drop(running);
    let ((start, machine_start), (end, machine_end)) = (start, end);
    let cpu = Usage {
        root_cpu: end.root_cpu.saturating_sub(start.root_cpu),
        tree_cpu: end.tree_cpu.saturating_sub(start.tree_cpu),
        ..end
    };
    let ours = cpu.tree_cpu + machine_end.own.saturating_sub(machine_start.own);
    let others = machine_end.busy.saturating_sub(machine_start.busy).saturating_sub(ours);
    Ok(Row { target: target.name, clients, result, cpu, end, others })
}

fn print_header() {
    println!(
        "| target | clients | req/s | p50 | p90 | p99 | max | errors | CPU/req gateway / +servers | peak RSS gateway / +servers (processes) | others' CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
}

/// Runs every target at every level, `rounds` times (interleaved); reports,
/// per target and level, a typical round among the least disturbed ([`pick`]).
/// Fails at the end if any run failed.
pub async fn run(
    chosen: &[&Target],
    levels: &[usize],
    rounds: usize,
    budget: Budget,
    paths: &Paths,
    plot: Option<(&std::path::Path, &str)>,
) -> anyhow::Result<()> {
    println!("| target | what it is |");
    println!("|---|---|");
    for target in chosen {
        println!("| {} | {} |", target.name, target.about);
    }
    println!();
    print_header();
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = Vec::new();
    for _ in 0..rounds.max(1) {
        for target in chosen {
            if failed.contains(&target.name) {
                continue;
            }
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
    }
    let best = pick(rows);
    if rounds > 1 {
        println!();
        println!("Per target and level, the median (by req/s) of the rounds least disturbed by other programs:");
        println!();
        print_header();
        for row in &best {
            row.print();
        }
    }
    summary(&best, levels);
    if let Some((path, about)) = plot {
        let points: Vec<crate::plot::Point> = best
            .iter()
            .map(|r| crate::plot::Point {
                target: r.target,
                clients: r.clients,
                rate: r.result.rate(),
                p50_us: r.result.us(0.5),
            })
            .collect();
        std::fs::write(path, crate::plot::svg(&points, levels, about))?;
        println!();
        println!("plot: {}", path.display());
    }
    anyhow::ensure!(failed.is_empty(), "targets that failed: {}", failed.join(", "));
    Ok(())
}

/// Per target and level: of the rounds whose others' CPU is within 5% of a
/// core of the least disturbed one, the median by req/s.
fn pick(rows: Vec<Row>) -> Vec<Row> {
    let mut cells: Vec<Vec<Row>> = Vec::new();
    for row in rows {
        match cells.iter_mut().find(|c| c[0].target == row.target && c[0].clients == row.clients) {
            Some(cell) => cell.push(row),
            None => cells.push(vec![row]),
        }
    }
    cells
        .into_iter()
        .filter_map(|cell| {
            let calmest = cell.iter().map(Row::disturbance).fold(f64::INFINITY, f64::min);
            let mut calm: Vec<Row> = cell.into_iter().filter(|r| r.disturbance() <= calmest + 5.0).collect();
            calm.sort_by(|a, b| a.result.rate().total_cmp(&b.result.rate()));
            let middle = calm.len() / 2;
            calm.into_iter().nth(middle)
        })
        .collect()
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
