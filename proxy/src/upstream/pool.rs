//! Shared stdio processes: the warm pool of a server with sessions off, or
//! the `replicas` of one with sessions on.
//!
//! mcpd starts one process per slot (`pool.size` or `replicas`), runs the
//! MCP handshake with each as its own client, and keeps them running: a
//! process that exits is restarted in its slot with exponential backoff.
//! Without sessions, each client request goes to the live process with the
//! fewest requests in flight; with replicas, each new session is placed by
//! the server's balancer ([`Pool::place`]) and stays on that process.
//! [`super::stdio`] rewrites ids so that many clients share one process
//! safely. Clients' `initialize` calls are answered from the first
//! process's handshake.

use super::INITIALIZE_TIMEOUT;
use super::balance::{Balancer, Candidate, Lease};
use super::routing::{self, Owner, RefusedAnswer};
use super::session::CancelParams;
use super::stdio::{StdioProcess, parse_gateway_id};
use crate::config::ServerSettings;
use crate::mcp::jsonrpc::Message;
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before exiting resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);

pub struct Pool {
    settings: Arc<ServerSettings>,
    /// One entry per slot: the slot's running process, if any.
    live: RwLock<Vec<Option<Arc<StdioProcess>>>>,
    init_result: OnceLock<Box<RawValue>>,
    last_error: Mutex<Option<String>>,
    balancer: Balancer,
    /// Sessions per slot (`mcpd_upstream_sessions`).
    gauges: Vec<prometheus::IntGauge>,
}

/// A slot as the balancer sees it.
struct Slot(Option<Arc<StdioProcess>>);

impl Candidate for Slot {
    fn available(&self) -> bool {
        self.0.as_ref().is_some_and(|p| p.is_alive())
    }

    fn load(&self) -> (usize, usize) {
        self.0.as_ref().map_or((0, 0), |p| (p.sessions.load(std::sync::atomic::Ordering::Relaxed), p.in_flight()))
    }
}

impl Pool {
    /// A pool of `size` slots.
    pub fn new(settings: Arc<ServerSettings>, size: usize) -> Arc<Self> {
        let labels: Vec<String> = (0..size).map(|slot| format!("replica-{slot}")).collect();
        Arc::new(Pool {
            balancer: Balancer::new(&settings.balance, &labels),
            gauges: (0..size).map(|slot| super::metrics::replica_sessions(&settings.name, slot)).collect(),
            live: RwLock::new(vec![None; size]),
            init_result: OnceLock::new(),
            last_error: Mutex::new(None),
            settings,
        })
    }

    /// The server's name, for logs.
    pub fn server_name(&self) -> &str {
        &self.settings.name
    }

    pub fn size(&self) -> usize {
        self.gauges.len()
    }

    /// The live process with the fewest requests in flight.
    pub fn pick(&self) -> Option<Arc<StdioProcess>> {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        live.iter().flatten().filter(|p| p.is_alive()).min_by_key(|p| p.in_flight()).cloned()
    }

    /// The replica for a new session (`key`: what consistent hashing
    /// hashes), with the lease that counts the session on it.
    pub fn place(&self, key: Option<&[u8]>) -> Option<(Arc<StdioProcess>, Lease)> {
        let slots: Vec<Slot> = self.live.read().unwrap_or_else(|e| e.into_inner()).iter().cloned().map(Slot).collect();
        let slot = self.balancer.pick(&slots, key, &[])?;
        let process = slots[slot].0.clone()?;
        let lease = Lease::new(&process.sessions, Some(&self.gauges[slot]));
        Some((process, lease))
    }

    /// The live process with this uid (the one a server request came from).
    pub fn find(&self, uid: u64) -> Option<Arc<StdioProcess>> {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        live.iter().flatten().find(|p| p.uid == uid).cloned()
    }

    /// Passes `from`'s answer to a server request on to the process that
    /// sent the request; `false` (counted) when none of them waits for it
    /// from `from`.
    pub async fn answer(&self, answer: &Message<'_>, from: &Owner) -> bool {
        match parse_gateway_id(answer.id).and_then(|id| self.find(id.uid)) {
            Some(process) => process.answer(answer, from).await.unwrap_or(false),
            None => {
                routing::count_refused_answer(&self.settings.name, answer.id_text(), RefusedAnswer::Unknown);
                false
            }
        }
    }

    /// Cancels `from`'s request that the cancellation names, on whichever
    /// process has it; `false` when none has.
    pub fn cancel(&self, cancel: &CancelParams<'_>, from: &Owner) -> bool {
        self.all().iter().any(|p| p.cancel_by_client_id(cancel.request_id, cancel.reason, from))
    }

    pub fn all(&self) -> Vec<Arc<StdioProcess>> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).iter().flatten().cloned().collect()
    }

    pub fn live_count(&self) -> usize {
        self.live.read().unwrap_or_else(|e| e.into_inner()).iter().flatten().filter(|p| p.is_alive()).count()
    }

    /// The server's `initialize` result, once a process has started.
    pub fn init_result(&self) -> Option<&RawValue> {
        self.init_result.get().map(|r| &**r)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps one pool slot filled until `stop` turns true.
    pub async fn supervise_slot(self: Arc<Self>, slot: usize, mut stop: watch::Receiver<bool>) {
        let mut backoff = FIRST_BACKOFF;
        while !*stop.borrow() {
            let started = Instant::now();
            match self.start_one().await {
                Ok(process) => {
                    *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    self.live.write().unwrap_or_else(|e| e.into_inner())[slot] = Some(Arc::clone(&process));
                    tokio::select! {
                        _ = process.exited() => {}
                        _ = crate::shutdown::requested(&mut stop) => process.shutdown(),
                    }
                    self.live.write().unwrap_or_else(|e| e.into_inner())[slot] = None;
                    if started.elapsed() > STABLE_AFTER {
                        backoff = FIRST_BACKOFF;
                    }
                }
                Err(error) => {
                    tracing::warn!(server = %self.settings.name, slot, "pool process failed to start: {error}");
                    *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                }
            }
            if *stop.borrow() {
                break;
            }
            if backoff == MAX_BACKOFF {
                tracing::error!(server = %self.settings.name, slot, "server keeps failing; retrying every {MAX_BACKOFF:?}");
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = crate::shutdown::requested(&mut stop) => break,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn start_one(&self) -> Result<Arc<StdioProcess>, String> {
        let process = StdioProcess::spawn(&self.settings, None).map_err(|e| e.to_string())?;
        match process.initialize(INITIALIZE_TIMEOUT).await {
            Ok(result) => {
                let _ = self.init_result.set(result);
                Ok(process)
            }
            Err(e) => {
                process.shutdown();
                Err(e.to_string())
            }
        }
    }
}
