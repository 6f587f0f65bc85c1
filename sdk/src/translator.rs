//! The `Translator` trait: a component that *is* a route's MCP server
//! (world `translator-plugin`). mcpd hands it every client request of the
//! route, `initialize` and `ping` included, and sends what it answers back
//! to the client; the route's hook plugins run as for any other server.
//! A translator keeps no per-client state: its routes have no sessions, and
//! client notifications are acknowledged by mcpd, not passed on.
//!
//! The SDK answers `initialize` and `ping` (see [`Translator::initialize`]),
//! so a translator usually only serves `tools/list` and `tools/call`:
//!
//! ```
//! use mcpd_plugin_sdk::prelude::*;
//! use mcpd_plugin_sdk::serde_json::{Value, json};
//!
//! struct Echo;
//!
//! impl Translator for Echo {
//!     fn info() -> Info {
//!         Info::translator("echo", "0.1.0")
//!     }
//!
//!     fn new(_config: Config) -> Result<Self, Error> {
//!         Ok(Echo)
//!     }
//!
//!     fn handle(&mut self, request: &Message) -> Result<Value, RpcError> {
//!         match request.method().unwrap_or_default() {
//!             "tools/list" => Ok(json!({"tools": [tool("echo", "Echoes its text", json!({"type": "object"}))]})),
//!             "tools/call" => {
//!                 let call = request.tool_call()?;
//!                 match call.name.as_str() {
//!                     "echo" => Ok(ToolResult::text(call.arguments["text"].to_string()).into()),
//!                     other => Err(RpcError::invalid_params(format!("unknown tool: {other}"))),
//!                 }
//!             }
//!             method => Err(RpcError::method_not_found(method)),
//!         }
//!     }
//! }
//!
//! mcpd_plugin_sdk::export_translator!(Echo);
//! ```

use serde_json::{Value, json};

use crate::{Config, Error, Hooks, Info, Message, RpcError};

/// Protocol versions the SDK's `initialize` accepts from a client, oldest
/// first. (The gateway speaks the transports; these are what the answer's
/// `protocolVersion` may say.)
pub const PROTOCOL_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// What `initialize` answers to a client asking for a version not in
/// [`PROTOCOL_VERSIONS`]; the client then decides whether it can go on.
pub const DEFAULT_PROTOCOL_VERSION: &str = "2025-06-18";

/// A translator: one value per instance, built once from the config, then
/// asked for every request of the route. Calls never overlap, so `handle`
/// takes `&mut self`; mcpd may drop an instance at any time (always after a
/// trap), so state that must last goes in [`crate::store`].
pub trait Translator: Sized + 'static {
    /// Name and version, e.g. `Info::translator(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))`.
    /// They are also the `serverInfo` that `initialize` answers with.
    fn info() -> Info;

    /// Builds the instance from the route's `translator.config`, once per
    /// instance. On error mcpd's log gets the message and every request is
    /// answered with -32603 until the config is fixed.
    fn new(config: Config) -> Result<Self, Error>;

    /// Answers a request other than `initialize` and `ping` (unless those are
    /// overridden below): the JSON-RPC `result`, or an error. Answer methods
    /// it does not serve with [`RpcError::method_not_found`], a tool it does
    /// not have with [`RpcError::invalid_params`], and a tool that ran and
    /// failed with a [`crate::ToolResult::error`] result.
    fn handle(&mut self, request: &Message) -> Result<Value, RpcError>;

    /// The `capabilities` that `initialize` announces: tools by default.
    fn capabilities(&self) -> Value {
        json!({"tools": {}})
    }

    /// `instructions` for the client's model, sent with `initialize`.
    fn instructions(&self) -> Option<String> {
        None
    }

    /// Answers `initialize`: the client's protocol version if the SDK knows
    /// it (else [`DEFAULT_PROTOCOL_VERSION`]), [`Translator::capabilities`],
    /// `serverInfo` from [`Translator::info`], [`Translator::instructions`].
    fn initialize(&mut self, request: &Message) -> Result<Value, RpcError> {
        Ok(initialize_result(self, request))
    }

    /// Answers `ping`: `{}`.
    fn ping(&mut self, request: &Message) -> Result<Value, RpcError> {
        let _ = request;
        Ok(json!({}))
    }
}

/// What mcpd's call reaches: `initialize` and `ping` to their methods, the
/// rest to [`Translator::handle`]. Public so that a translator's unit tests
/// can send requests the way mcpd does.
pub fn dispatch<T: Translator>(translator: &mut T, request: &Message) -> Result<Value, RpcError> {
    match request.method() {
        Some("initialize") => translator.initialize(request),
        Some("ping") => translator.ping(request),
        _ => translator.handle(request),
    }
}

/// The default `initialize` result, for a translator that overrides
/// [`Translator::initialize`] only to add to it.
pub fn initialize_result<T: Translator>(translator: &T, request: &Message) -> Value {
    // Malformed params get the default version, not an error: the client
    // learns what this server speaks and decides for itself.
    let params = request.params_json().unwrap_or(Value::Null);
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = match asked {
        Some(v) if PROTOCOL_VERSIONS.contains(&v) => v,
        _ => DEFAULT_PROTOCOL_VERSION,
    };
    let info = T::info();
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": translator.capabilities(),
        "serverInfo": {"name": info.name, "version": info.version},
    });
    if let Some(instructions) = translator.instructions() {
        result["instructions"] = Value::String(instructions);
    }
    result
}

impl Info {
    /// A translator's info: name and version (translators have no hooks).
    pub fn translator(name: impl Into<String>, version: impl Into<String>) -> Self {
        Info::new(name, version, Hooks::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ToolResult, codes, testing};

    struct Tiny {
        calls: u32,
    }

    impl Translator for Tiny {
        fn info() -> Info {
            Info::translator("tiny", "1.2.3")
        }

        fn new(_config: Config) -> Result<Self, Error> {
            Ok(Tiny { calls: 0 })
        }

        fn handle(&mut self, request: &Message) -> Result<Value, RpcError> {
            self.calls += 1;
            match request.method().unwrap_or_default() {
                "tools/call" => Ok(ToolResult::text(request.tool_call()?.name).into()),
                method => Err(RpcError::method_not_found(method)),
            }
        }
    }

    fn tiny() -> Tiny {
        Tiny::new(Config::from_json("{}")).unwrap()
    }

    #[test]
    fn initialize_echoes_a_known_version() {
        let mut t = tiny();
        let init = testing::request("initialize", json!({"protocolVersion": "2025-03-26", "capabilities": {}}));
        let result = dispatch(&mut t, &init).unwrap();
        assert_eq!(result["protocolVersion"], "2025-03-26");
        assert_eq!(result["serverInfo"], json!({"name": "tiny", "version": "1.2.3"}));
        assert_eq!(result["capabilities"], json!({"tools": {}}));
        assert!(result.get("instructions").is_none());
        assert_eq!(t.calls, 0, "initialize must not reach handle");
    }

    #[test]
    fn initialize_offers_the_default_for_unknown_versions() {
        let mut t = tiny();
        for params in [json!({"protocolVersion": "1999-01-01"}), json!({}), json!(null)] {
            let result = dispatch(&mut t, &testing::request("initialize", params)).unwrap();
            assert_eq!(result["protocolVersion"], DEFAULT_PROTOCOL_VERSION);
        }
    }

    #[test]
    fn ping_and_the_rest() {
        let mut t = tiny();
        assert_eq!(dispatch(&mut t, &testing::request("ping", json!({}))).unwrap(), json!({}));
        let result = dispatch(&mut t, &testing::tool_call("x", json!({}))).unwrap();
        assert_eq!(result["content"][0]["text"], "x");
        let e = dispatch(&mut t, &testing::request("resources/list", json!({}))).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (codes::METHOD_NOT_FOUND, "method not found: resources/list"));
        assert_eq!(t.calls, 2);
    }

    #[test]
    fn capabilities_and_instructions_are_overridable() {
        struct Rich;
        impl Translator for Rich {
            fn info() -> Info {
                Info::translator("rich", "0")
            }
            fn new(_config: Config) -> Result<Self, Error> {
                Ok(Rich)
            }
            fn handle(&mut self, _request: &Message) -> Result<Value, RpcError> {
                Ok(json!({}))
            }
            fn capabilities(&self) -> Value {
                json!({"tools": {"listChanged": false}, "resources": {}})
            }
            fn instructions(&self) -> Option<String> {
                Some("be nice".into())
            }
        }
        let result = dispatch(&mut Rich, &testing::request("initialize", json!({}))).unwrap();
        assert_eq!(result["capabilities"]["resources"], json!({}));
        assert_eq!(result["instructions"], "be nice");
    }
}
