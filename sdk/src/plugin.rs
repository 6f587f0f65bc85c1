//! The `Plugin` trait a plugin implements, and `Info`, what it says about
//! itself when mcpd loads it.

use crate::{Config, Decision, Error, Hooks, HttpRequest, Info, Message, Parts};

/// A plugin: one value per instance, built once from the config and then
/// called for every message of the routes that use it. Calls never overlap
/// (an instance is single threaded), so hooks take `&mut self` and may keep
/// state; state in the instance is lost when mcpd discards it (after a trap,
/// and at will), so anything that must last goes in [`crate::store`].
///
/// Only the hooks named in [`Plugin::info`] are called; the others may keep
/// their default, which lets the message through.
pub trait Plugin: Sized + 'static {
    /// Name, version and the hooks mcpd should call. Usually
    /// `Info::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), Hooks::REQUEST)`,
    /// narrowed with [`Info::request_methods`], [`Info::response_methods`]
    /// and [`Info::reads`] so that mcpd calls and copies less.
    fn info() -> Info;

    /// What this instance tells mcpd when it is loaded: [`Plugin::info`]
    /// unless the config changes what the plugin needs (e.g. a plugin that
    /// only looks at some methods when configured so).
    fn describe(&self) -> Info {
        Self::info()
    }

    /// Builds the instance from the plugin's config, once per instance,
    /// when mcpd makes the instance (`describe`), so keep it quick. An error
    /// fails the load with its message: mcpd does not start (or a reload
    /// keeps the running version) and logs why, e.g. ``plugin guard cannot
    /// start: invalid plugin config at `deny_tools`: …``.
    fn new(config: Config) -> Result<Self, Error>;

    /// The HTTP request, before MCP parsing: set a principal or headers, or
    /// reject (auth). `respond` and `params` make no sense here.
    fn on_http_request(&mut self, request: &HttpRequest) -> Decision {
        let _ = request;
        Decision::Proceed
    }

    /// A message from the client, before it reaches the server.
    fn on_request(&mut self, message: &Message) -> Decision {
        let _ = message;
        Decision::Proceed
    }

    /// A message from the server (a response, a notification or a server
    /// request), before it reaches the client.
    fn on_response(&mut self, message: &Message) -> Decision {
        let _ = message;
        Decision::Proceed
    }
}

impl Info {
    /// `hooks`: e.g. `Hooks::REQUEST | Hooks::RESPONSE`. The hooks are
    /// called for every message and read all of it, until narrowed.
    pub fn new(name: impl Into<String>, version: impl Into<String>, hooks: Hooks) -> Self {
        Info {
            name: name.into(),
            version: version.into(),
            hooks,
            request_methods: Vec::new(),
            response_methods: Vec::new(),
            reads: Parts::all(),
        }
    }

    /// Call `on_request` only for messages with these methods (e.g.
    /// `["tools/call"]`); empty: all.
    pub fn request_methods<S: Into<String>>(mut self, methods: impl IntoIterator<Item = S>) -> Self {
        self.request_methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Call `on_response` only for messages with these methods; a response
    /// counts as the method of the request it answers (`["tools/list"]` to
    /// filter tool lists). Empty: all.
    pub fn response_methods<S: Into<String>>(mut self, methods: impl IntoIterator<Item = S>) -> Self {
        self.response_methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// The optional parts of a [`Message`] the hooks read: `Parts::PARAMS`
    /// (params or result, and error), `Parts::HEADERS`, `Parts::SESSION`.
    /// The others arrive empty. Default: all of them.
    pub fn reads(mut self, parts: Parts) -> Self {
        self.reads = parts;
        self
    }
}
