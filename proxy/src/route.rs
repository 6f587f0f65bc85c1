//! A route: one `[server.NAME]` at run time, with its limits, its warm pool
//! (when sessions are off) and its health.
//!
//! Health means "can this server run": for a pool, at least one process is
//! up and answers `ping`; with per-session processes, a probe process can be
//! started and completes the MCP handshake. Probes run every
//! `health_check_interval`; a failed spawn on the request path marks the
//! route down at once.

use crate::config::ServerSettings;
use crate::plugin::chain::Chain;
use crate::plugin::translator::Translator;
use crate::upstream::INITIALIZE_TIMEOUT;
use crate::upstream::pool::Pool;
use crate::upstream::stdio::StdioProcess;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// How long a pooled process may take to answer a health `ping`.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Starting,
    Ok,
    Down(String),
}

pub struct Route {
    pub settings: Arc<ServerSettings>,
    pub name: Arc<str>,
    /// One permit per POST in progress (`http.max_concurrent_requests`).
    pub limiter: Arc<Semaphore>,
    /// Shared processes, present when `session.enabled = false`.
    pub pool: Option<Arc<Pool>>,
    /// The WebAssembly plugins on this route's path, in order.
    pub plugins: Chain,
    /// The translator plugin that is this route's server, if it has one.
    pub translator: Option<Arc<Translator>>,
    probed: Mutex<Health>,
}

impl Route {
    pub fn new(settings: Arc<ServerSettings>, plugins: Chain, translator: Option<Arc<Translator>>) -> Arc<Self> {
        let stdio = translator.is_none();
        let pool = (stdio && !settings.session.enabled).then(|| Pool::new(Arc::clone(&settings)));
        Arc::new(Route {
            name: Arc::from(settings.name.as_str()),
            limiter: Arc::new(Semaphore::new(settings.http.max_concurrent_requests)),
            pool,
            plugins,
            probed: Mutex::new(if stdio { Health::Starting } else { Health::Ok }),
            translator,
            settings,
        })
    }

    /// Whether clients of this route get no sessions: a shared pool, or a
    /// translator (which keeps no per-client state).
    pub fn sessionless(&self) -> bool {
        self.pool.is_some() || self.translator.is_some()
    }

    pub fn health(&self) -> Health {
        match &self.pool {
            Some(pool) if pool.live_count() > 0 => Health::Ok,
            Some(pool) => match pool.last_error() {
                Some(error) => Health::Down(error),
                None => Health::Starting,
            },
            None => self.probed.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    pub fn set_health(&self, health: Health) {
        let mut probed = self.probed.lock().unwrap_or_else(|e| e.into_inner());
        if *probed != health {
            match &health {
                Health::Down(error) => {
                    tracing::warn!(server = %self.name, "server is down: {error}")
                }
                _ => tracing::info!(server = %self.name, "server is {health:?}"),
            }
            *probed = health;
        }
    }

    /// Runs health checks every `health_check_interval` until `stop`.
    pub async fn check_health(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.translator.is_some() {
            return; // loaded means healthy; its calls fail one by one
        }
        loop {
            match &self.pool {
                Some(pool) => ping_pool(pool).await,
                None => self.set_health(probe(&self.settings).await),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.health_interval) => {}
                _ = crate::shutdown::requested(&mut stop) => return,
            }
        }
    }
}

/// Pings every pooled process; one that fails is stopped (and restarted).
async fn ping_pool(pool: &Pool) {
    for process in pool.all() {
        if let Err(error) = process.request("ping", None, PING_TIMEOUT).await {
            tracing::warn!(uid = process.uid, "pooled server failed its health ping: {error}; restarting it");
            process.shutdown();
        }
    }
}

/// Starts a throwaway process and runs the handshake with it.
async fn probe(settings: &ServerSettings) -> Health {
    let process = match StdioProcess::spawn(settings, None) {
        Ok(p) => p,
        Err(e) => return Health::Down(e.to_string()),
    };
    let result = process.initialize(INITIALIZE_TIMEOUT).await;
    process.shutdown();
    match result {
        Ok(_) => Health::Ok,
        Err(e) => Health::Down(e.to_string()),
    }
}
