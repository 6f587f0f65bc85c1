//! Where a new session goes: one of a server's HTTP instances or stdio
//! replicas, by round robin, least connections or a consistent-hash ring.
//!
//! Only new sessions are balanced; a session's later requests follow it to
//! the instance that created it (affinity lives in the session). Candidates
//! that are unavailable (unhealthy, ejected, not running) are skipped, and so
//! are those the caller already tried. Picking takes no lock: a counter for
//! round robin, a ring built once for hashing.

use crate::config::Balance;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Points per candidate on the hash ring: enough for an even spread.
const VNODES: u64 = 160;

/// What the balancer needs to know about a candidate.
pub trait Candidate {
    /// Healthy and running: may take new sessions.
    fn available(&self) -> bool;
    /// Live sessions, then requests in flight (for least connections).
    fn load(&self) -> (usize, usize);
}

pub struct Balancer {
    balance: Balance,
    next: AtomicUsize,
    /// (point, candidate index), sorted by point.
    ring: Vec<(u64, usize)>,
}

impl Balancer {
    /// A balancer over candidates named `labels` (their URLs, or slot
    /// numbers): the ring depends on names, not on their order.
    pub fn new(balance: &Balance, labels: &[String]) -> Balancer {
        let mut ring = Vec::new();
        if matches!(balance, Balance::ConsistentHash { .. }) {
            for (index, label) in labels.iter().enumerate() {
                let base = fnv1a(label.as_bytes());
                ring.extend((0..VNODES).map(|v| (mix(base ^ mix(v + 1)), index)));
            }
            ring.sort_unstable();
        }
        Balancer { balance: balance.clone(), next: AtomicUsize::new(0), ring }
    }

    /// The candidate for a new session, skipping unavailable ones and those
    /// in `skip`. `key` is what consistent hashing hashes (without one it
    /// falls back to round robin).
    pub fn pick<C: Candidate>(&self, candidates: &[C], key: Option<&[u8]>, skip: &[usize]) -> Option<usize> {
        let usable = |i: usize| !skip.contains(&i) && candidates[i].available();
        let n = candidates.len();
        if n == 0 {
            return None;
        }
        match (&self.balance, key) {
            (Balance::ConsistentHash { .. }, Some(key)) if !self.ring.is_empty() => {
                let point = mix(fnv1a(key));
                let start = self.ring.partition_point(|(p, _)| *p < point);
                (0..self.ring.len()).map(|k| self.ring[(start + k) % self.ring.len()].1).find(|&i| usable(i))
            }
            (Balance::LeastConnections, _) => {
                // Rotate the starting point so that ties spread out.
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).filter(|&i| usable(i)).min_by_key(|&i| candidates[i].load())
            }
            _ => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).find(|&i| usable(i))
            }
        }
    }
}

/// Counts a session on the candidate that holds it, until released (when
/// the session ends) or dropped.
pub struct Lease {
    counter: Arc<AtomicUsize>,
    gauge: Option<prometheus::IntGauge>,
    held: AtomicBool,
}

impl Lease {
    pub fn new(counter: &Arc<AtomicUsize>, gauge: Option<&prometheus::IntGauge>) -> Lease {
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(gauge) = gauge {
            gauge.inc();
        }
        Lease { counter: Arc::clone(counter), gauge: gauge.cloned(), held: AtomicBool::new(true) }
    }

    /// Stops counting the session (once; dropping afterwards does nothing).
    pub fn release(&self) {
        if self.held.swap(false, Ordering::Relaxed) {
            self.counter.fetch_sub(1, Ordering::Relaxed);
            if let Some(gauge) = &self.gauge {
                gauge.dec();
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}

/// FNV-1a: stable across builds and platforms (std's hasher is not promised to be).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// splitmix64's finalizer: spreads FNV's weak low bits over the ring.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct C(bool, usize);
    impl Candidate for C {
        fn available(&self) -> bool {
            self.0
        }
        fn load(&self) -> (usize, usize) {
            (self.1, 0)
        }
    }

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("http://127.0.0.1:{}/mcp", 9000 + i)).collect()
    }

    #[test]
    fn round_robin_skips_unavailable_and_tried() {
        let b = Balancer::new(&Balance::RoundRobin, &labels(3));
        let c = [C(true, 0), C(false, 0), C(true, 0)];
        let picks: Vec<_> = (0..4).map(|_| b.pick(&c, None, &[]).unwrap()).collect();
        assert_eq!(picks, [0, 2, 2, 0]);
        assert_eq!(b.pick(&c, None, &[0, 2]), None);
    }

    #[test]
    fn least_connections_takes_the_emptiest() {
        let b = Balancer::new(&Balance::LeastConnections, &labels(3));
        let c = [C(true, 3), C(true, 1), C(true, 2)];
        assert_eq!(b.pick(&c, None, &[]), Some(1));
        assert_eq!(b.pick(&c, None, &[1]), Some(2));
    }

    #[test]
    fn consistent_hash_is_stable_spreads_and_moves_only_the_lost_share() {
        let b = Balancer::new(&Balance::ConsistentHash { header: None }, &labels(4));
        let all = [C(true, 0), C(true, 0), C(true, 0), C(true, 0)];
        let keys: Vec<String> = (0..4000).map(|i| format!("user-{i}")).collect();
        let before: Vec<usize> = keys.iter().map(|k| b.pick(&all, Some(k.as_bytes()), &[]).unwrap()).collect();
        let mut counts = [0; 4];
        before.iter().for_each(|&i| counts[i] += 1);
        assert!(counts.iter().all(|&c| c > 600), "spread: {counts:?}");
        let again: Vec<usize> = keys.iter().map(|k| b.pick(&all, Some(k.as_bytes()), &[]).unwrap()).collect();
        assert_eq!(before, again);
        let three = [C(true, 0), C(false, 0), C(true, 0), C(true, 0)];
        for (key, &was) in keys.iter().zip(&before) {
            let now = b.pick(&three, Some(key.as_bytes()), &[]).unwrap();
            assert!(now == was || was == 1, "{key} moved from {was} to {now} though {was} is up");
        }
    }
}
