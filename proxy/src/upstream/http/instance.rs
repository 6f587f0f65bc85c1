//! One HTTP instance of a server: its URL, whether it takes new sessions,
//! and the counts balancing looks at.
//!
//! An instance takes no sessions until its first health check passes. It
//! is ejected (takes no new sessions) when a connection to it fails, after [`EJECT_AFTER`] failures in a row of requests already under
//! way, or when an active health check fails; a passing health check brings
//! it back. Sessions already on an ejected instance keep trying it: if it
//! really is gone their next request fails and they end (404).

use super::super::balance::Candidate;
use super::super::metrics::InstanceMetrics;
use http::Uri;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Transport failures in a row (after connecting) that eject an instance.
const EJECT_AFTER: u32 = 3;

pub struct Instance {
    pub url: Uri,
    /// The URL as written, for logs and metric labels.
    pub label: String,
    server: Arc<str>,
    up: AtomicBool,
    /// A health check has run at least once.
    checked: AtomicBool,
    why_down: Mutex<Option<String>>,
    failures: AtomicU32,
    /// Live client sessions on this instance.
    pub sessions: Arc<AtomicUsize>,
    in_flight: AtomicUsize,
    pub metrics: InstanceMetrics,
    /// Speaks the 2024-11-05 SSE transport (configured, or found by `auto`).
    legacy: AtomicBool,
}

/// Counts a request in flight on an instance until dropped.
pub struct InFlight(Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Instance {
    pub fn new(server: &Arc<str>, url: Uri, legacy: bool) -> Arc<Instance> {
        let label = url.to_string();
        let metrics = InstanceMetrics::new(server, &label);
        metrics.up.set(0);
        Arc::new(Instance {
            url,
            server: Arc::clone(server),
            up: AtomicBool::new(false),
            checked: AtomicBool::new(false),
            why_down: Mutex::new(Some("not checked yet".into())),
            failures: AtomicU32::new(0),
            sessions: Arc::default(),
            in_flight: AtomicUsize::new(0),
            metrics,
            legacy: AtomicBool::new(legacy),
            label,
        })
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Why the instance is out of balancing, while it is.
    pub fn why_down(&self) -> Option<String> {
        self.why_down.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_legacy(&self) -> bool {
        self.legacy.load(Ordering::Relaxed)
    }

    pub fn set_legacy(&self, legacy: bool) {
        self.legacy.store(legacy, Ordering::Relaxed);
    }

    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Whether a health check has run yet.
    pub fn is_checked(&self) -> bool {
        self.checked.load(Ordering::Relaxed)
    }

    /// Takes the instance out of balancing (until a health check passes).
    pub fn eject(&self, reason: &str, by_health_check: bool) {
        *self.why_down.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_string());
        let first_check = by_health_check && !self.checked.swap(true, Ordering::Relaxed);
        if first_check {
            tracing::warn!(server = %self.server, instance = %self.label, "instance is not ready: {reason}");
        }
        if self.up.swap(false, Ordering::Relaxed) {
            let counter = if by_health_check { &self.metrics.ejected_health } else { &self.metrics.ejected_connect };
            counter.inc();
            self.metrics.up.set(0);
            tracing::warn!(server = %self.server, instance = %self.label, "instance ejected: {reason}");
        }
    }

    /// Puts the instance back into balancing.
    pub fn restore(&self) {
        self.failures.store(0, Ordering::Relaxed);
        let first_check = !self.checked.swap(true, Ordering::Relaxed);
        if !self.up.swap(true, Ordering::Relaxed) {
            self.metrics.up.set(1);
            *self.why_down.lock().unwrap_or_else(|e| e.into_inner()) = None;
            match first_check {
                true => tracing::info!(server = %self.server, instance = %self.label, "instance is healthy"),
                false => tracing::info!(server = %self.server, instance = %self.label, "instance is healthy again"),
            }
        }
    }

    pub fn note_success(&self) {
        self.metrics.ok.inc();
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A connection to the instance could not be made: eject it now.
    pub fn note_unreachable(&self, reason: &str) {
        self.metrics.failed.inc();
        self.eject(reason, false);
    }

    /// A request failed after connecting; several in a row eject.
    pub fn note_failure(&self, reason: &str) {
        self.metrics.failed.inc();
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= EJECT_AFTER {
            self.eject(&format!("{EJECT_AFTER} requests in a row failed, the last: {reason}"), false);
        }
    }
}

impl Candidate for Arc<Instance> {
    fn available(&self) -> bool {
        self.is_up()
    }

    fn load(&self) -> (usize, usize) {
        (self.sessions.load(Ordering::Relaxed), self.in_flight.load(Ordering::Relaxed))
    }
}
