//! The `mcpd.toml` schema exactly as users write it, before validation.
//!
//! These types mirror the file: serde fills them, rejecting unknown keys and
//! wrong types. Values that need checks serde cannot do keep their `Spanned`
//! position so that [`super::validate`] can point at the offending line. The
//! runtime never sees these types; it gets the resolved [`super::Config`].

use super::units::{ByteSize, HumanDuration};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub gateway: RawGateway,
    #[serde(default)]
    pub server: BTreeMap<String, Spanned<RawServer>>,
}

/// `[gateway]`: settings for the whole process.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// Shared listener for servers without their own `port` (`/NAME/mcp`).
    pub listen: Option<Spanned<String>>,
    /// Address that per-server `port`s bind to.
    pub bind: Option<Spanned<String>>,
    /// Cap on live client sessions across all servers.
    pub max_sessions: Option<usize>,
    /// Worker threads for the front (Pingora) runtime.
    pub threads: Option<usize>,
    /// How long a SIGTERM waits for in-flight requests before exiting.
    pub shutdown_timeout: Option<HumanDuration>,
    /// Where compiled plugins are cached.
    pub plugin_cache: Option<PathBuf>,
    /// Reload a plugin when its file changes (else only on `mcpd reload`).
    pub watch_plugins: Option<bool>,
    /// Where `mcpd run` writes its pid, for `mcpd reload`.
    pub pid_file: Option<PathBuf>,
    /// Where plugins' counters and values live: "memory" or "redis://…".
    pub store: Option<Spanned<String>>,
}

/// `[server.NAME]`: one MCP server mcpd fronts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub command: Option<Spanned<String>>,
    /// A translator plugin that is this server (instead of `command`).
    pub translator: Option<Spanned<RawPlugin>>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub transport: Option<Spanned<toml::Value>>,
    pub port: Option<Spanned<i64>>,
    pub health_check: Option<Spanned<String>>,
    pub health_check_interval: Option<HumanDuration>,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub sse: RawSse,
    #[serde(default)]
    pub session: RawSession,
    #[serde(default)]
    pub pool: RawPool,
    /// One HTTP MCP server instance to proxy to (instead of `command`).
    pub url: Option<Spanned<String>>,
    /// Several instances of one HTTP MCP server, load balanced.
    pub urls: Option<Spanned<Vec<Spanned<String>>>>,
    /// With `command`: the supervised process listens here itself.
    pub upstream_url: Option<Spanned<String>>,
    /// Copies of a stdio server to run and balance sessions across.
    pub replicas: Option<Spanned<i64>>,
    /// Serve the stateless era (protocol 2026-07-28) too (default true).
    pub stateless: Option<bool>,
    /// `[server.NAME.upstream]`: balancing, health and connections upstream.
    #[serde(default)]
    pub upstream: RawUpstream,
    // Planned keys: accepted by the parser only so that validation can say
    // "not supported yet" at the right line instead of "unknown key".
    pub tls: Option<Spanned<toml::Value>>,
    /// The plugin chain, in order: `[[server.NAME.plugins]]`.
    #[serde(default)]
    pub plugins: Vec<Spanned<RawPlugin>>,
}

/// `[[server.NAME.plugins]]`: one WebAssembly plugin on this server's path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    /// The `.wasm` component, relative to the configuration file.
    pub path: Spanned<String>,
    /// "closed" (default) or "open".
    pub on_error: Option<Spanned<String>>,
    /// CPU time per hook call.
    pub timeout: Option<HumanDuration>,
    /// CPU time for loading the plugin.
    pub start_timeout: Option<HumanDuration>,
    pub max_memory: Option<ByteSize>,
    pub max_output: Option<ByteSize>,
    /// Instances kept warm.
    pub instances: Option<Spanned<i64>>,
    /// Decisions kept for reuse per hook (`host.reuse-decision`); 0: none.
    pub decision_cache: Option<Spanned<i64>>,
    /// Request headers the plugin sees besides the default set; `["*"]`: all.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Handed to the plugin as JSON (`get-config`).
    #[serde(default)]
    pub config: toml::Table,
    /// A TOML or JSON file whose table is the base of `config` (keys in
    /// `config` win): for secrets such as API key hashes.
    pub config_file: Option<Spanned<String>>,
    /// Hosts (`host` or `host:port`) the plugin may reach over HTTP.
    #[serde(default)]
    pub allow_hosts: Vec<Spanned<String>>,
    /// Only messages with these methods reach the request and response
    /// hooks (a response counts by its request's method); default: all.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// `[server.NAME.http]`: limits on the client-facing HTTP side.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub chunked_encoding: Option<bool>,
    pub max_request_size: Option<ByteSize>,
    pub request_timeout: Option<HumanDuration>,
    pub keepalive_timeout: Option<HumanDuration>,
    pub max_concurrent_requests: Option<Spanned<i64>>,
    pub sse_keepalive: Option<HumanDuration>,
    /// Events kept per SSE stream for `Last-Event-ID` replay (0: off).
    pub sse_replay_buffer: Option<Spanned<i64>>,
    /// The `retry` (reconnect delay) mcpd's SSE streams advertise.
    pub sse_retry: Option<HumanDuration>,
    /// `Host` values the MCP endpoint accepts (DNS-rebinding protection).
    pub allowed_hosts: Option<Spanned<Vec<Spanned<String>>>>,
    /// `Origin` values the MCP endpoint accepts (DNS-rebinding protection).
    pub allowed_origins: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[server.NAME.sse]`: the legacy HTTP+SSE endpoints (with `transport` listing "sse").
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSse {
    pub path: Option<Spanned<String>>,
    pub message_path: Option<Spanned<String>>,
}

/// `[server.NAME.session]`: client sessions and per-session processes.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    pub enabled: Option<bool>,
    pub timeout: Option<HumanDuration>,
    pub max_per_client: Option<Spanned<i64>>,
    pub storage: Option<Spanned<String>>,
}

/// `[server.NAME.pool]`: the shared warm pool used when sessions are off.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub size: Option<Spanned<i64>>,
}

/// `[server.NAME.upstream]`: how mcpd reaches the server's instances.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// "streamable-http", "sse" (2024-11-05) or "auto".
    pub transport: Option<Spanned<String>>,
    /// "round_robin", "least_connections" or "consistent_hash".
    pub lb: Option<Spanned<String>>,
    /// For `consistent_hash`: the request header to hash (default: the session).
    pub hash_header: Option<Spanned<String>>,
    /// Path probed with GET on each instance; absent: an MCP `ping`.
    pub health_check: Option<Spanned<String>>,
    pub health_check_interval: Option<HumanDuration>,
    /// Client request headers passed upstream (`authorization` only if listed).
    #[serde(default)]
    pub forward_headers: Vec<Spanned<String>>,
    /// Headers mcpd adds to every upstream request (e.g. its own credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Idle keep-alive connections kept per instance.
    pub pool_max_idle: Option<Spanned<i64>>,
    pub pool_idle_timeout: Option<HumanDuration>,
    /// Speak HTTP/2 to the instances (h2c for `http://`, ALPN for `https://`).
    pub http2: Option<Spanned<bool>>,
    /// Connections older than this are not reused (default: no limit).
    pub pool_max_lifetime: Option<HumanDuration>,
    pub connect_timeout: Option<HumanDuration>,
    /// PEM file with the CA certificates that sign the instances' certificates.
    pub ca_file: Option<Spanned<String>>,
}
