//! Write mcpd plugins in Rust: a type implementing [`Plugin`] plus one
//! [`export_plugin!`] (or [`Translator`] plus [`export_translator!`]), built
//! with `cargo build --target wasm32-wasip2`.
//!
//! A plugin sits on a route's request path. mcpd calls its hooks with the
//! HTTP request ([`Plugin::on_http_request`]), each client message
//! ([`Plugin::on_request`]) and each server message ([`Plugin::on_response`]),
//! and each hook returns a [`Decision`]: carry on, carry on with changes,
//! reject, or answer directly.
//!
//! ```
//! use mcpd_plugin_sdk::prelude::*;
//! use serde::Deserialize;
//!
//! /// Refuses calls to the tools listed in its config.
//! struct DenyTools {
//!     deny: Vec<String>,
//! }
//!
//! #[derive(Deserialize)]
//! struct Settings {
//!     deny: Vec<String>,
//! }
//!
//! impl Plugin for DenyTools {
//!     fn info() -> Info {
//!         Info::new("deny-tools", "0.1.0", Hooks::REQUEST)
//!     }
//!
//!     fn new(config: Config) -> Result<Self, Error> {
//!         let settings: Settings = config.parse()?;
//!         Ok(DenyTools { deny: settings.deny })
//!     }
//!
//!     fn on_request(&mut self, message: &Message) -> Decision {
//!         match message.tool_name() {
//!             Some(tool) if self.deny.iter().any(|d| d == tool) => {
//!                 log::info!("denied a call of {tool}");
//!                 Decision::reject(403, codes::FORBIDDEN, format!("tool {tool} is not allowed"))
//!             }
//!             _ => Decision::proceed(),
//!         }
//!     }
//! }
//!
//! mcpd_plugin_sdk::export_plugin!(DenyTools);
//! ```
//!
//! Configure it on a route in mcpd.toml; the `config` table reaches
//! [`Plugin::new`] as [`Config`].
//!
//! A *translator* (world `translator-plugin`) is the other kind of
//! component: not on a route's request path but the route's MCP server
//! itself, e.g. a REST API served as MCP tools. It implements
//! [`Translator`] (`handle` answers each request with a JSON-RPC result or
//! an [`RpcError`]; the SDK answers `initialize` and `ping`) and is
//! exported with [`export_translator!`]; [`ToolResult`], [`tool`] and
//! [`Message::tool_call`] cover the tools side of MCP. See [`translator`].
//!
//! Modules: [`codes`] (JSON-RPC error codes), [`reuse`] (let mcpd reuse a
//! decision without calling the plugin),
//! [`log`], [`metrics`], [`store`] (counters and values with expiry, shared
//! by all instances), [`http`] (outbound requests to allow-listed hosts), [`clock`], [`testing`] (messages for unit tests).
//!
//! Compiled for a native target the crate builds too, with stand-ins for
//! the host (see `host.rs`), so plugins can unit test their hooks with
//! plain `cargo test`; a translator's tests send requests the way mcpd does
//! with [`translator::dispatch`], and answer its outbound HTTP with
//! [`http::testing::respond`].

pub mod bindings;
pub mod clock;
pub mod codes;
mod config;
mod decision;
mod error;
mod export;
mod export_translator;
pub mod glob;
mod host;
pub mod http;
pub mod log;
mod message;
pub mod metrics;
mod plugin;
pub mod reuse;
mod rpc;
pub mod store;
pub mod testing;
mod tool;
pub mod translator;

pub use bindings::mcpd::plugin::types::{
    Changes, Decision, Direction, Header, HookSet as Hooks, HttpReply, HttpRequest, McpMessage as Message, MessageKind,
    MessageParts as Parts, PluginInfo as Info, Rejection, RpcError,
};
pub use config::{Config, ConfigError};
pub use error::Error;
pub use plugin::Plugin;
/// Re-exported so plugins can build JSON (`serde_json::json!`) without
/// pinning their own version.
pub use serde_json;
pub use tool::{ToolCall, ToolResult, tool};
pub use translator::Translator;

/// Everything a plugin usually needs: `use mcpd_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Config, Decision, Error, Header, Hooks, HttpRequest, Info, Message, Parts, Plugin, RpcError, ToolCall,
        ToolResult, Translator, codes, http, log, metrics, store, tool,
    };
}

/// For `export_plugin!` and `export_translator!` only.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::mcpd::plugin::hooks::Guest;
    pub use crate::bindings::translator::exports::mcpd::plugin::translator::Guest as TranslatorGuest;
    pub use crate::export::{Export, State};
    pub use crate::export_translator::TranslatorExport;
}
