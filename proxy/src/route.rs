//! A route: one `[server.NAME]` at run time, with its limits, its upstream
//! (a warm pool when sessions are off, shared replicas, HTTP instances, or
//! a process per session) and its health.
//!
//! Health means "can this server serve": for a pool or replicas, at least
//! one process is up and answers `ping`; for HTTP instances, at least one
//! takes new sessions (their own checks run in [`crate::upstream::http::health`]);
//! with per-session processes, a probe process can be started and
//! completes the MCP handshake. Probes run every `health_check_interval`; a
//! failed spawn on the request path marks the route down at once.

use crate::config::ServerSettings;
use crate::plugin::chain::Chain;
use crate::plugin::translator::Translator;
use crate::upstream::INITIALIZE_TIMEOUT;
use crate::upstream::bridge::Bridge;
use crate::upstream::http::HttpUpstream;
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
    /// Shared processes sessions are balanced across (`replicas`, sessions on).
    pub replicas: Option<Arc<Pool>>,
    /// HTTP instances (`url`, `urls`, `upstream_url`).
    pub http: Option<Arc<HttpUpstream>>,
    /// The WebAssembly plugins on this route's path, in order.
    pub plugins: Chain,
    /// The translator plugin that is this route's server, if it has one.
    pub translator: Option<Arc<Translator>>,
    /// What serves stateless-era requests (upstream sessions mcpd keeps).
    pub bridge: Bridge,
    probed: Mutex<Health>,
}

impl Route {
    /// Fails only when an HTTP upstream's client cannot be built (TLS roots).
    pub fn new(
        settings: Arc<ServerSettings>,
        plugins: Chain,
        translator: Option<Arc<Translator>>,
    ) -> Result<Arc<Self>, String> {
        let http = match &settings.http_upstream {
            Some(upstream) => {
                Some(HttpUpstream::new(&settings, upstream).map_err(|e| format!("server {:?}: {e}", settings.name))?)
            }
            None => None,
        };
        let stdio = translator.is_none() && http.is_none();
        let pool = (stdio && !settings.session.enabled).then(|| Pool::new(Arc::clone(&settings), settings.pool_size));
        let replicas = settings.replicas.filter(|_| stdio).map(|n| Pool::new(Arc::clone(&settings), n));
        Ok(Arc::new(Route {
            name: Arc::from(settings.name.as_str()),
            limiter: Arc::new(Semaphore::new(settings.http.max_concurrent_requests)),
            pool,
            replicas,
            http,
            plugins,
            probed: Mutex::new(if stdio { Health::Starting } else { Health::Ok }),
            translator,
            bridge: Bridge::default(),
            settings,
        }))
    }

    /// Whether clients of this route get no sessions: a shared pool, or a
    /// translator (which keeps no per-client state).
    pub fn sessionless(&self) -> bool {
        self.pool.is_some() || self.translator.is_some()
    }

    pub fn health(&self) -> Health {
        if let Some(http) = &self.http {
            // Until every instance had its first check, balancing is not
            // what it will be: report starting (moments, at startup).
            return match http.down_reason() {
                _ if http.is_starting() => Health::Starting,
                None => Health::Ok,
                Some(reason) => Health::Down(reason),
            };
        }
        match self.pool.as_ref().or(self.replicas.as_ref()) {
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
        if let Some(http) = &self.http {
            crate::upstream::http::health::spawn_checks(http, &stop);
            return;
        }
        loop {
            match self.pool.as_ref().or(self.replicas.as_ref()) {
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
