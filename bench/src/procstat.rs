//! CPU time and peak memory of a process tree, read from `/proc`.
//!
//! CPU is `utime + stime + cutime + cstime` of every live process in the
//! tree (`/proc/PID/stat`), so children reaped during a run still count
//! through their parent. Memory is `VmHWM` (peak resident set) from
//! `/proc/PID/status`. [`Machine`] reads the whole machine's CPU time, so a
//! run can tell how much of it went to other programs (a noisy neighbour).

use std::collections::HashMap;
use std::time::Duration;

/// One reading of a process tree.
#[derive(Clone, Copy, Default)]
pub struct Usage {
    /// CPU time of the root process alone.
    pub root_cpu: Duration,
    /// CPU time of the whole tree.
    pub tree_cpu: Duration,
    /// Peak RSS of the root process, KiB.
    pub root_hwm_kb: u64,
    /// Sum of the peak RSS of every live process in the tree, KiB.
    pub tree_hwm_kb: u64,
    pub processes: usize,
}

struct Stat {
    ppid: u32,
    /// utime + stime, clock ticks.
    own: u64,
    /// cutime + cstime, clock ticks.
    children: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = text.get(text.rfind(')')? + 2..)?.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat { ppid: field(4)? as u32, own: field(14)? + field(15)?, children: field(16)? + field(17)? })
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(key))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

fn hwm_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM:").unwrap_or(0)
}

/// The current resident set of `pid` (`VmRSS`), KiB; None if it is gone.
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS:")
}

/// The live processes under `roots`, roots included.
pub fn tree(roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(s) = stat(pid) {
            children.entry(s.ppid).or_default().push(pid);
        }
    }
    let mut found: Vec<u32> = roots.to_vec();
    let mut next = 0;
    while next < found.len() {
        if let Some(kids) = children.get(&found[next]) {
            found.extend(kids.iter().copied().filter(|k| !roots.contains(k)));
        }
        next += 1;
    }
    found
}

fn ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// Reads CPU and peak RSS of the trees under `roots`.
pub fn sample(roots: &[u32]) -> Usage {
    let hz = ticks();
    let to_time = |t: u64| Duration::from_nanos(t * 1_000_000_000 / hz);
    let mut usage = Usage::default();
    for pid in tree(roots) {
        let Some(s) = stat(pid) else { continue };
        let hwm = hwm_kb(pid);
        if roots.first() == Some(&pid) {
            usage.root_cpu = to_time(s.own);
            usage.root_hwm_kb = hwm;
        }
        usage.tree_cpu += to_time(s.own + s.children);
        usage.tree_hwm_kb += hwm;
        usage.processes += 1;
    }
    usage
}

/// CPU time of the whole machine and of this process, to find what others used.
#[derive(Clone, Copy, Default)]
pub struct Machine {
    /// user + nice + system + steal over all cores (interrupt time left out:
    /// loopback traffic is handled there, and it is ours).
    pub busy: Duration,
    /// This process (the load generator).
    pub own: Duration,
}

impl Machine {
    pub fn sample() -> Self {
        let hz = ticks();
        let to_time = |t: u64| Duration::from_nanos(t * 1_000_000_000 / hz);
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("cpu "))
            .map(|l| l.split_whitespace().filter_map(|f| f.parse().ok()).collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n).copied().unwrap_or(0);
        let own = stat_of_self().map_or(0, |s| s.own);
        Machine { busy: to_time(field(0) + field(1) + field(2) + field(7)), own: to_time(own) }
    }
}

fn stat_of_self() -> Option<Stat> {
    stat(std::process::id())
}
