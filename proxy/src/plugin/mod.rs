//! The WebAssembly plugin host: loads `.wasm` components built against
//! `wit/plugin.wit`, runs their hooks on the request path under CPU and
//! memory limits, and swaps them when their file changes.
//!
//! - [`engine`]: the wasmtime engine, epoch ticker, compile cache
//! - [`bindings`]: generated WIT bindings and the host imports
//! - [`kv`]: the in-memory store behind the `store` import
//! - [`store`]: memory or Redis behind the `store` import
//! - [`outbound`]: the `http-client` import's allow-list and requests
//! - [`series`]: metric series handles for the `host` import
//! - [`instances`]: a component's pool of warm instances, limits, failures
//! - [`loaded`]: one loaded hook plugin and its hook calls
//! - [`reuse`]: decisions a plugin asked mcpd to reuse, and their effects
//! - [`translator`]: one loaded translator plugin (a route's backend)
//! - [`chain`]: a route's ordered plugins, decisions and `on_error`
//! - [`subscription`]: what each plugin is called for, readable without a lock
//! - [`view`]: what hooks see, borrowed from the request until a call needs it
//!
//! Isolation: each plugin keeps a small pool of warm instances, and a call
//! borrows one for its duration (per-worker isolation, not per-request). A
//! fresh instance per request would cost an instantiation (tens of µs) on
//! every hook; reuse costs nothing, and plugins may keep caches (e.g. a
//! parsed config) between calls. An instance that traps, times out or runs
//! out of memory is thrown away, so a failure never leaks into later calls.

pub mod bindings;
pub mod chain;
pub mod engine;
pub mod instances;
pub mod kv;
pub mod loaded;
pub mod outbound;
pub mod reuse;
pub mod series;
pub mod store;
pub mod subscription;
pub mod translator;
pub mod view;

use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("the WebAssembly engine could not start: {0}")]
    Engine(String),
    #[error("cannot read plugin {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("{} is not a valid mcpd plugin component: {reason}", path.display())]
    Compile { path: PathBuf, reason: String },
    #[error("plugin {plugin} could not be instantiated: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin {plugin} cannot start: {reason}")]
    Refused { plugin: String, reason: String },
    #[error("plugin {plugin} trapped: {reason}")]
    Trap { plugin: String, reason: String },
    #[error("plugin {plugin} exceeded its CPU time limit ({limit_ms} ms)")]
    Timeout { plugin: String, limit_ms: u64 },
    #[error("plugin {plugin} exceeded its memory limit ({limit} bytes)")]
    OutOfMemory { plugin: String, limit: usize },
    #[error("plugin {plugin} returned {size} bytes, more than its limit of {limit}")]
    OutputTooLarge { plugin: String, size: usize, limit: usize },
}

impl PluginError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Engine(_) | PluginError::Read { .. } | PluginError::Compile { .. } => "load",
            PluginError::Instantiate { .. } | PluginError::Refused { .. } => "instantiate",
            PluginError::Trap { .. } => "trap",
            PluginError::Timeout { .. } => "timeout",
            PluginError::OutOfMemory { .. } => "memory",
            PluginError::OutputTooLarge { .. } => "output",
        }
    }
}
