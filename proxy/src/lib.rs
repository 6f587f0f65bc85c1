//! mcpd: a gateway that puts MCP servers on the network.
//!
//! Data flows `front` (Pingora, Streamable HTTP) → `session` / `route`
//! (which process serves a client) → `upstream` (stdio processes), and back.
//! `config` turns `mcpd.toml` into settings; `gateway` holds the shared state;
//! `serve` wires it all into a running Pingora server.

pub mod body;
pub mod config;
pub mod front;
pub mod gateway;
pub mod logs;
pub mod mcp;
pub mod metrics;
pub mod plugin;
pub mod route;
pub mod scaffold;
pub mod serve;
pub mod session;
pub mod shutdown;
pub mod tls;
pub mod upstream;
