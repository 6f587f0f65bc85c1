//! Configuration: `mcpd.toml` read, checked and resolved into the settings
//! the runtime uses.
//!
//! [`load`] is the only entry point. It returns either a fully valid
//! [`Config`] with every default filled in, or a [`ConfigError`] that names the
//! file, line, column and key. The raw file layout lives in [`schema`], unit
//! parsing in [`units`], and the checks in [`validate`].

mod edge;
mod error;
mod schema;
mod transport;
pub mod units;
mod upstream;
mod validate;

pub use edge::EdgeSettings;
pub use error::ConfigError;
pub use transport::{SsePaths, Transports};
pub use upstream::{Balance, HttpUpstreamSettings, UpstreamTransport};

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A validated configuration, every default resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub gateway: GatewaySettings,
    pub servers: Vec<Arc<ServerSettings>>,
}

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The shared listener, present when at least one server has no `port`.
    pub listen: Option<SocketAddr>,
    pub bind: IpAddr,
    pub max_sessions: usize,
    pub threads: usize,
    pub shutdown_timeout: Duration,
    /// Where compiled plugins are cached (none: compile at every start).
    pub plugin_cache: Option<PathBuf>,
    /// Reload plugins when their files change.
    pub watch_plugins: bool,
    /// Where `mcpd run` writes its pid and `mcpd reload` looks for it.
    pub pid_file: PathBuf,
    /// Where plugins' counters and values live.
    pub store: StoreSettings,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// Where this server is served: its own port, or the shared listener.
    pub listen: SocketAddr,
    /// Path prefix on the listener: empty on an own port, `/NAME` on the shared one.
    pub mount: String,
    pub health_path: String,
    /// Client-facing transports: Streamable HTTP and/or legacy HTTP+SSE.
    pub transports: Transports,
    pub health_interval: Duration,
    pub http: HttpSettings,
    pub session: SessionSettings,
    pub pool_size: usize,
    /// With sessions on: this many shared copies of the stdio server, each
    /// session kept on one of them (`replicas`); `None`: a process per session.
    pub replicas: Option<usize>,
    /// The HTTP instances to proxy to; `None` for stdio servers and translators.
    pub http_upstream: Option<HttpUpstreamSettings>,
    /// How new sessions pick an instance or replica.
    pub balance: Balance,
    /// The plugin chain, in order.
    pub plugins: Vec<PluginSettings>,
    /// When set, this plugin is the server (`command` and friends are unused).
    pub translator: Option<PluginSettings>,
    /// Stateless-era (2026-07-28) requests are served, bridged when the
    /// server speaks only the session era (`stateless`, default true).
    pub stateless: bool,
}

/// The backend of the plugins' `store` import (and, later, sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    Memory,
    /// A `redis://` URL.
    Redis(String),
}

/// What a route does when a plugin fails (trap, timeout, memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Refuse the request (503): the default, right for auth.
    Closed,
    /// Carry on as if the plugin had said "proceed".
    Open,
}

#[derive(Debug, Clone)]
pub struct PluginSettings {
    pub path: PathBuf,
    pub on_error: OnError,
    pub timeout: Duration,
    pub start_timeout: Duration,
    pub max_memory: usize,
    pub max_output: usize,
    pub instances: usize,
    /// Decisions kept for reuse per hook (the plugin asks with
    /// `host.reuse-decision`); 0 turns reuse off.
    pub decision_cache: usize,
    /// Request headers (lower case) the plugin sees besides [`PLUGIN_HEADERS`]; `*` means all.
    pub headers: Vec<String>,
    /// The plugin's `config` table as JSON text.
    pub config_json: String,
    /// Hosts (`host` or `host:port`, lower case) it may reach over HTTP.
    pub allow_hosts: Vec<String>,
    /// Methods whose messages its request/response hooks see; empty: all.
    pub methods: Vec<String>,
}

/// Request headers every plugin sees (each header handed to a plugin costs
/// a copy into its memory, so hooks get a selection, not all of them).
pub const PLUGIN_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "host",
    "user-agent",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "mcp-protocol-version",
];

impl ServerSettings {
    /// The MCP endpoint path, e.g. `/mcp` or `/api-tools/mcp`.
    pub fn mcp_path(&self) -> String {
        format!("{}/mcp", self.mount)
    }

    /// What serves this server, for people: `` `command` ``, its URLs, or
    /// its translator plugin.
    pub fn upstream_label(&self) -> String {
        match (&self.http_upstream, &self.translator) {
            (Some(http), _) if http.supervised => format!("`{}` listening at {}", self.command, http.urls[0]),
            (Some(http), _) => {
                let urls: Vec<String> = http.urls.iter().map(ToString::to_string).collect();
                format!("HTTP {}", urls.join(", "))
            }
            (None, Some(translator)) => format!("translator {}", translator.path.display()),
            (None, None) => match self.replicas {
                Some(n) => format!("`{}` ×{n}", self.command),
                None => format!("`{}`", self.command),
            },
        }
    }

    /// The health endpoint path, e.g. `/health` or `/api-tools/health`.
    pub fn health_route(&self) -> String {
        format!("{}{}", self.mount, self.health_path)
    }
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// When false, POST answers are always one JSON body, never an SSE stream.
    pub chunked_encoding: bool,
    pub max_request_size: u64,
    pub request_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub sse_keepalive: Duration,
    /// Events kept per session SSE stream for `Last-Event-ID` replay; 0:
    /// streams carry no event ids and cannot be resumed.
    pub sse_replay_buffer: usize,
    /// The reconnect delay (`retry`) sent in priming events.
    pub sse_retry: Duration,
    /// Which `Host` and `Origin` headers the MCP endpoint accepts.
    pub edge: EdgeSettings,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub enabled: bool,
    pub idle_timeout: Duration,
    pub max_per_client: usize,
}

/// Reads, parses and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
    parse(path, &text)
}

/// Parses and validates configuration text; `path` is used in messages only.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw = validate::deserialize(path, text)?;
    validate::resolve(path, text, raw)
}
