//! Host side of the `mcpd:plugin` WIT contract: the generated bindings and
//! the host imports (`host`, `store`, `http-client`) a plugin calls.
//!
//! [`HostState`] is what each plugin instance's store carries: its sandboxed
//! WASI context (no files, no network, no environment, output discarded),
//! its memory limits, and the plugin's shared context (name, config, store,
//! allowed hosts). The `translator-plugin` world's bindings live in
//! [`translator`] and reuse these imports.

use super::outbound;
use super::reuse::{Recording, Take};
use super::store::PluginStore;
use crate::metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: {
        // These wait on the network (Redis, HTTP); the rest answer at once.
        "mcpd:plugin/store.incr": async,
        "mcpd:plugin/store.get": async,
        "mcpd:plugin/store.set": async,
        "mcpd:plugin/store.delete": async,
        "mcpd:plugin/store.take": async,
        "mcpd:plugin/http-client.send": async,
    },
    exports: { default: async },
});

/// Bindings of the `translator-plugin` world, sharing the imports above.
pub mod translator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "translator-plugin",
        exports: { default: async },
        with: {
            "mcpd:plugin/types": super::mcpd::plugin::types,
            "mcpd:plugin/host": super::mcpd::plugin::host,
            "mcpd:plugin/store": super::mcpd::plugin::store,
            "mcpd:plugin/http-client": super::mcpd::plugin::http_client,
        },
    });
}

pub use exports::mcpd::plugin::hooks::{Decision, HttpRequest, McpMessage, PluginInfo};
pub use mcpd::plugin::types::{
    Changes, Direction, Header, HookSet, HttpReply, MessageKind, MessageParts, Rejection, Reuse, RpcError, Vary,
};

/// What every instance of one configured plugin shares.
pub struct PluginContext {
    /// The name used in logs, metrics and store keys (from `describe`, or the file name).
    pub name: std::sync::RwLock<String>,
    /// The plugin's `config` table as JSON text.
    pub config_json: String,
    pub store: Arc<PluginStore>,
    /// Hosts the `http-client` import may reach.
    pub allow_hosts: Vec<String>,
    /// Largest HTTP answer the plugin may read (its `max_output`).
    pub max_answer: usize,
    pub started: Instant,
    /// The plugin's metric series handles.
    pub series: super::series::SeriesTable,
}

impl PluginContext {
    /// The context for one configured plugin; its name is the file until
    /// the plugin describes itself.
    pub fn new(settings: &crate::config::PluginSettings, store: Arc<PluginStore>) -> Arc<PluginContext> {
        Arc::new(PluginContext {
            name: std::sync::RwLock::new(settings.path.display().to_string()),
            config_json: settings.config_json.clone(),
            store,
            allow_hosts: settings.allow_hosts.clone(),
            max_answer: settings.max_output,
            started: Instant::now(),
            series: Default::default(),
        })
    }

    pub fn name(&self) -> String {
        self.name.read().map(|n| n.clone()).unwrap_or_default()
    }

    pub fn key(&self, key: &str) -> String {
        match self.name.read() {
            Ok(name) => format!("{}\u{1f}{key}", *name),
            Err(_) => format!("\u{1f}{key}"),
        }
    }
}

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub context: Arc<PluginContext>,
    /// Time this call spent waiting on the network; the CPU deadline is
    /// extended by it (see `loaded::instantiate`), since waiting is not CPU.
    pub waited: Duration,
    /// What the current hook call asked to reuse and did that a reuse
    /// must repeat (see `reuse`); cleared as each call starts.
    pub recording: Recording,
}

impl HostState {
    pub fn new(context: Arc<PluginContext>, limits: StoreLimits) -> HostState {
        let sink = || wasmtime_wasi::p2::pipe::SinkOutputStream;
        let wasi = WasiCtx::builder()
            .stdout(sink())
            .stderr(sink())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            context,
            waited: Duration::ZERO,
            recording: Recording::default(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl mcpd::plugin::types::Host for HostState {}

impl mcpd::plugin::host::Host for HostState {
    fn get_config(&mut self) -> String {
        self.context.config_json.clone()
    }

    fn now_millis(&mut self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn monotonic_nanos(&mut self) -> u64 {
        self.context.started.elapsed().as_nanos() as u64
    }

    fn log(&mut self, level: mcpd::plugin::host::Level, message: String) {
        use mcpd::plugin::host::Level;
        let plugin = self.context.name();
        let message: String = message.chars().take(4096).collect();
        match level {
            Level::Trace => tracing::trace!(target: "mcpd::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "mcpd::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "mcpd::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "mcpd::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "mcpd::plugin", plugin, "{message}"),
        }
    }

    fn counter_add(&mut self, name: String, labels: Vec<(String, String)>, value: u64) {
        metrics::plugin_counter(&self.context.name(), &name, &labels, value);
        self.recording.effects.counters.push((name, labels, value));
    }

    fn histogram_observe(&mut self, name: String, labels: Vec<(String, String)>, value: f64) {
        metrics::plugin_histogram(&self.context.name(), &name, &labels, value);
        self.recording.effects.histograms.push((name, labels, value));
    }

    fn counter_series(&mut self, name: String, labels: Vec<(String, String)>) -> Option<u32> {
        self.context.series.counter(&self.context.name(), &name, &labels)
    }

    fn series_add(&mut self, handle: u32, value: u64) {
        self.context.series.add(handle, value);
        self.recording.effects.series_adds.push((handle, value));
    }

    fn histogram_series(&mut self, name: String, labels: Vec<(String, String)>) -> Option<u32> {
        self.context.series.histogram(&self.context.name(), &name, &labels)
    }

    fn series_observe(&mut self, handle: u32, value: f64) {
        self.context.series.observe(handle, value);
        self.recording.effects.series_observes.push((handle, value));
    }

    fn reuse_decision(&mut self, reuse: mcpd::plugin::types::Reuse) {
        self.recording.reuse = Some(reuse);
    }
}

impl HostState {
    /// Runs a network wait, counting its time as waited rather than CPU.
    async fn waiting<T>(&mut self, wait: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let result = wait.await;
        self.waited += started.elapsed();
        result
    }
}

// Writes other than `take` cannot be repeated by a reused decision: a call
// that makes one is not reused (`Effects::unrepeatable`).
impl mcpd::plugin::store::Host for HostState {
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        self.recording.effects.unrepeatable = true;
        let (store, key) = (Arc::clone(&self.context.store), self.context.key(&key));
        self.waiting(store.incr(key, delta, ttl_ms)).await
    }

    async fn get(&mut self, key: String) -> Result<Option<String>, String> {
        let (store, key) = (Arc::clone(&self.context.store), self.context.key(&key));
        self.waiting(store.get(key)).await
    }

    async fn set(&mut self, key: String, value: String, ttl_ms: u64) -> Result<(), String> {
        self.recording.effects.unrepeatable = true;
        let (store, key) = (Arc::clone(&self.context.store), self.context.key(&key));
        self.waiting(store.set(key, value, ttl_ms)).await
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        self.recording.effects.unrepeatable = true;
        let (store, key) = (Arc::clone(&self.context.store), self.context.key(&key));
        self.waiting(store.delete(key)).await
    }

    async fn take(
        &mut self,
        key: String,
        capacity: u64,
        period_ms: u64,
        cost: u64,
    ) -> Result<mcpd::plugin::store::Bucket, String> {
        let (store, key) = (Arc::clone(&self.context.store), self.context.key(&key));
        let state = self.waiting(store.take(&key, capacity, period_ms, cost)).await;
        match &state {
            Ok(state) if state.allowed => {
                self.recording.effects.takes.push(Take { key, capacity, period_ms, cost });
            }
            _ => self.recording.effects.unrepeatable = true,
        }
        let state = state?;
        Ok(mcpd::plugin::store::Bucket {
            allowed: state.allowed,
            remaining: state.remaining,
            retry_after_ms: state.retry_after_ms,
        })
    }
}

impl mcpd::plugin::http_client::Host for HostState {
    async fn send(
        &mut self,
        request: mcpd::plugin::http_client::Request,
    ) -> Result<mcpd::plugin::http_client::Response, String> {
        let outbound = outbound::Outbound {
            method: request.method,
            url: request.url,
            headers: request.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: request.body,
            timeout: Duration::from_millis(u64::from(request.timeout_ms.max(1))),
        };
        let context = Arc::clone(&self.context);
        let url = outbound.url.clone();
        let answer = self.waiting(outbound::send(outbound, &context.allow_hosts, context.max_answer)).await;
        let plugin = context.name();
        match &answer {
            Ok(a) => tracing::debug!(plugin, url, status = a.status, "plugin HTTP request"),
            Err(e) => tracing::info!(plugin, url, "plugin HTTP request failed: {e}"),
        }
        metrics::PLUGIN_HTTP.with_label_values(&[plugin.as_str(), if answer.is_ok() { "ok" } else { "error" }]).inc();
        let answer = answer?;
        Ok(mcpd::plugin::http_client::Response {
            status: answer.status,
            headers: answer.headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
            body: answer.body,
        })
    }
}
