//! The gateway's shared state and its background work.
//!
//! [`Gateway`] is built once from a validated config and shared by every
//! request handler. [`Gateway::run_background`] keeps pools filled, runs
//! health checks and reaps idle sessions until shutdown. Draining (refusing
//! new work while in-flight requests finish) is tracked here too, so the
//! signal handler and the request path agree on it.

use crate::config::Config;
use crate::plugin::chain::{Chain, PluginSlot};
use crate::plugin::store::PluginStore;
use crate::plugin::translator::Translator;
use crate::route::Route;
use crate::session::SessionTable;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Every route's loaded plugins, by server name.
#[derive(Default)]
pub struct LoadedPlugins {
    pub chains: HashMap<String, Chain>,
    pub translators: HashMap<String, Arc<Translator>>,
}

/// How often plugin files are checked for changes (hot reload).
const PLUGIN_CHECK: Duration = Duration::from_millis(500);

pub struct Gateway {
    pub config: Config,
    pub routes: Vec<Arc<Route>>,
    pub sessions: Arc<SessionTable>,
    /// What plugins' `store` import reads and writes.
    pub plugin_store: Arc<PluginStore>,
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    /// The runtime client requests run on, once the front has started.
    front: std::sync::OnceLock<tokio::runtime::Handle>,
    front_started: Notify,
}

/// Counts one request in flight for draining; released on drop.
pub struct InFlight(Arc<Gateway>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Gateway {
    /// Builds the gateway from a config and the plugins loaded for it (see
    /// [`Gateway::load_plugins`]). Fails when an HTTP upstream's client
    /// cannot be built.
    pub fn new(
        config: Config,
        mut plugins: LoadedPlugins,
        plugin_store: Arc<PluginStore>,
    ) -> Result<Arc<Self>, String> {
        let routes = config
            .servers
            .iter()
            .map(|s| {
                let chain = plugins.chains.remove(&s.name).unwrap_or_default();
                Route::new(Arc::clone(s), chain, plugins.translators.remove(&s.name))
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Gateway {
            sessions: SessionTable::new(config.gateway.max_sessions),
            plugin_store,
            routes,
            config,
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            front: std::sync::OnceLock::new(),
            front_started: Notify::new(),
        }))
    }

    /// Loads every route's plugins and translators; the first that fails
    /// stops startup.
    pub async fn load_plugins(
        config: &Config,
        store: &Arc<PluginStore>,
    ) -> Result<LoadedPlugins, crate::plugin::PluginError> {
        let mut loaded = LoadedPlugins::default();
        let cache = || config.gateway.plugin_cache.clone();
        for server in &config.servers {
            let mut slots = Vec::new();
            for plugin in &server.plugins {
                slots.push(PluginSlot::load(plugin.clone(), Arc::clone(store), cache()).await?);
            }
            loaded.chains.insert(server.name.clone(), Chain::new(slots));
            if let Some(translator) = &server.translator {
                let translator = Translator::load(translator, Arc::clone(store), cache()).await?;
                loaded.translators.insert(server.name.clone(), translator);
            }
        }
        Ok(loaded)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Registers a request in flight, or `None` when draining.
    pub fn begin_request(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(Arc::clone(self));
        (!self.is_draining()).then_some(guard)
    }

    /// Stops taking new requests and waits (up to `timeout`) for those in
    /// flight to finish. Returns how many were still running at the end.
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.draining.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            let running = self.in_flight.load(Ordering::Acquire);
            if running == 0 {
                return 0;
            }
            tracing::info!(running, "draining: waiting for requests in flight");
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight.load(Ordering::Acquire);
            }
        }
    }

    /// Loads every plugin again (`mcpd reload`, SIGHUP); returns how many
    /// failed (those keep their running version).
    pub async fn reload_plugins(&self) -> usize {
        let mut failed = 0;
        for route in &self.routes {
            for slot in route.plugins.slots() {
                if slot.reload().await.is_err() {
                    failed += 1;
                }
            }
        }
        failed
    }

    /// Called by the front as it starts: client requests run on `runtime`.
    pub fn serve_on(&self, runtime: tokio::runtime::Handle) {
        if self.front.set(runtime).is_ok() {
            self.front_started.notify_waiters();
        }
    }

    /// The runtime client requests run on, once the front has started.
    async fn front_runtime(&self) -> tokio::runtime::Handle {
        loop {
            let started = self.front_started.notified();
            if let Some(runtime) = self.front.get() {
                return runtime.clone();
            }
            started.await;
        }
    }

    /// Keeps pools filled, checks health and reaps idle sessions until `shutdown`.
    pub async fn run_background(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        // Pooled processes start on the front's runtime, where the requests
        // that use them run (see `front::service`): their I/O then never
        // crosses threads.
        let front = self.front_runtime().await;
        for route in &self.routes {
            route.bridge.set_stop(stop_rx.clone());
            for pool in route.pool.iter().chain(&route.replicas) {
                for slot in 0..pool.size() {
                    front.spawn(Arc::clone(pool).supervise_slot(slot, stop_rx.clone()));
                }
            }
            if route.settings.http_upstream.as_ref().is_some_and(|h| h.supervised) {
                tokio::spawn(crate::upstream::supervised::supervise(Arc::clone(&route.settings), stop_rx.clone()));
            }
            tokio::spawn(Arc::clone(route).check_health(stop_rx.clone()));
        }
        let reap_every = self
            .routes
            .iter()
            .map(|r| (r.settings.session.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30)))
            .min()
            .unwrap_or(Duration::from_secs(30));
        let mut tick = tokio::time::interval(reap_every);
        let mut plugin_check = tokio::time::interval(PLUGIN_CHECK);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.sessions.reap_idle();
                }
                _ = plugin_check.tick() => {
                    self.plugin_store.sweep();
                    if self.config.gateway.watch_plugins {
                        for route in &self.routes {
                            for slot in route.plugins.slots() {
                                // A failed reload is logged and keeps the old plugin.
                                let _ = slot.reload_if_changed().await;
                            }
                        }
                    }
                }
                _ = crate::shutdown::requested(&mut shutdown) => break,
            }
        }
        let _ = stop_tx.send(true);
        self.sessions.clear();
    }
}
