//! Host side of the `mcpd:plugin` WIT contract: the generated bindings and
//! the host imports (`host`, `store`) a plugin calls.
//!
//! [`HostState`] is what each plugin instance's store carries: its sandboxed
//! WASI context (no files, no network, no environment, output discarded),
//! its memory limits, and the plugin's shared context (name, config, store).

use super::kv::KvStore;
use crate::metrics;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    exports: { default: async },
});

pub use exports::mcpd::plugin::hooks::{Decision, HttpRequest, McpMessage, PluginInfo};
pub use mcpd::plugin::types::{Changes, Direction, Header, HookSet, MessageKind, Rejection, RpcError};

/// What every instance of one configured plugin shares.
pub struct PluginContext {
    /// The name used in logs, metrics and store keys (from `describe`, or the file name).
    pub name: std::sync::RwLock<String>,
    /// The plugin's `config` table as JSON text.
    pub config_json: String,
    pub kv: Arc<KvStore>,
    pub started: Instant,
}

impl PluginContext {
    fn name(&self) -> String {
        self.name.read().map(|n| n.clone()).unwrap_or_default()
    }

    fn key(&self, key: &str) -> String {
        format!("{}\u{1f}{key}", self.name())
    }
}

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub context: Arc<PluginContext>,
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
        HostState { wasi, table: ResourceTable::new(), limits, context }
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
    }

    fn histogram_observe(&mut self, name: String, labels: Vec<(String, String)>, value: f64) {
        metrics::plugin_histogram(&self.context.name(), &name, &labels, value);
    }
}

impl mcpd::plugin::store::Host for HostState {
    fn incr(&mut self, key: String, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        let key = self.context.key(&key);
        self.context.kv.incr(key, delta, ttl_ms)
    }

    fn get(&mut self, key: String) -> Result<Option<String>, String> {
        Ok(self.context.kv.get(&self.context.key(&key)))
    }

    fn set(&mut self, key: String, value: String, ttl_ms: u64) -> Result<(), String> {
        let key = self.context.key(&key);
        self.context.kv.set(key, value, ttl_ms);
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<(), String> {
        self.context.kv.delete(&self.context.key(&key));
        Ok(())
    }
}
