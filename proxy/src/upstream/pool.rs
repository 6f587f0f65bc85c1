//! A warm pool of shared stdio processes for servers with sessions off.
//!
//! mcpd starts `pool.size` processes, runs the MCP handshake with each as
//! its own client, and keeps them running: a process that exits is
//! restarted with exponential backoff. Client requests go to the live
//! process with the fewest requests in flight; [`super::stdio`] rewrites
//! ids so that many clients share one process safely. Clients'
//! `initialize` calls are answered from the first process's handshake.

use super::INITIALIZE_TIMEOUT;
use super::stdio::StdioProcess;
use crate::config::ServerSettings;
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
    live: RwLock<Vec<Arc<StdioProcess>>>,
    init_result: OnceLock<Box<RawValue>>,
    last_error: Mutex<Option<String>>,
}

impl Pool {
    pub fn new(settings: Arc<ServerSettings>) -> Arc<Self> {
        Arc::new(Pool {
            settings,
            live: RwLock::new(Vec::new()),
            init_result: OnceLock::new(),
            last_error: Mutex::new(None),
        })
    }

    /// The live process with the fewest requests in flight.
    pub fn pick(&self) -> Option<Arc<StdioProcess>> {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        live.iter().filter(|p| p.is_alive()).min_by_key(|p| p.in_flight()).cloned()
    }

    /// The live process with this uid (the one a server request came from).
    pub fn find(&self, uid: u64) -> Option<Arc<StdioProcess>> {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        live.iter().find(|p| p.uid == uid).cloned()
    }

    pub fn all(&self) -> Vec<Arc<StdioProcess>> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn live_count(&self) -> usize {
        self.live.read().unwrap_or_else(|e| e.into_inner()).iter().filter(|p| p.is_alive()).count()
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
                    self.live.write().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&process));
                    tokio::select! {
                        _ = process.exited() => {}
                        _ = crate::shutdown::requested(&mut stop) => process.shutdown(),
                    }
                    self.live.write().unwrap_or_else(|e| e.into_inner()).retain(|p| p.uid != process.uid);
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
