//! `export_plugin!` and the glue behind it: the hooks mcpd calls, routed to
//! one lazily built instance of the plugin's type. (`export_translator!`
//! reuses the instance keeping, see `export_translator.rs`.)

use crate::bindings::exports::mcpd::plugin::hooks::Guest;
use crate::{Config, Decision, Error, HttpRequest, Info, Message, Plugin, codes, log};

/// Exports a type implementing [`Plugin`] as the component's hooks. Use it
/// once, at the top level of the plugin crate's `lib.rs`:
///
/// ```ignore
/// mcpd_plugin_sdk::export_plugin!(MyPlugin);
/// ```
#[macro_export]
#[rustfmt::skip] // rustfmt misplaces the `with_types_in` line
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct McpdPluginExport;

            impl $crate::__private::Export for McpdPluginExport {
                type Plugin = $plugin;

                fn with_state<R>(f: impl FnOnce(&mut $crate::__private::State<$plugin>) -> R) -> R {
                    // One instance per component instance. Wasm here is
                    // single threaded; a thread local needs no `Sync`.
                    ::std::thread_local! {
                        static STATE: ::core::cell::RefCell<$crate::__private::State<$plugin>> =
                            const { ::core::cell::RefCell::new($crate::__private::State::Empty) };
                    }
                    STATE.with_borrow_mut(f)
                }
            }

            // Only wasm has a use for the exports. A native build (the
            // plugin's unit tests) must not emit them: native linkers
            // reject names like `mcpd:plugin/hooks@0.2.1#describe`.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::__export_hooks!(McpdPluginExport with_types_in $crate::bindings);
            // Natively, refer to the hooks so the plugin's code does not
            // look dead to the compiler.
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn() -> ::core::result::Result<$crate::Info, ::std::string::String> =
                <McpdPluginExport as $crate::__private::Guest>::describe;
        };
    };
}

/// The instance, as `export_plugin!` keeps it.
#[doc(hidden)]
pub enum State<P> {
    /// Not built yet.
    Empty,
    Ready(P),
    /// `Plugin::new` failed; it is not retried, since the config it would
    /// read again cannot have changed within this instance.
    Broken,
}

/// What `export_plugin!` implements for its hidden type; the hooks are then
/// the blanket `Guest` impl below, written once here rather than in the macro.
#[doc(hidden)]
pub trait Export {
    type Plugin: Plugin;
    fn with_state<R>(f: impl FnOnce(&mut State<Self::Plugin>) -> R) -> R;
}

impl<P> State<P> {
    /// Builds the instance for `describe`: the error is why it cannot run.
    pub(crate) fn start(&mut self, new: impl FnOnce(Config) -> Result<P, Error>) -> Result<(), String> {
        if let State::Empty = self {
            match new(Config::from_host()) {
                Ok(plugin) => *self = State::Ready(plugin),
                Err(e) => {
                    *self = State::Broken;
                    return Err(e.to_string());
                }
            }
        }
        match self {
            State::Broken => Err("its config was refused before".into()),
            _ => Ok(()),
        }
    }

    /// The instance, built with `new` from the host's config on first use.
    pub(crate) fn ready_with(&mut self, new: impl FnOnce(Config) -> Result<P, Error>) -> Option<&mut P> {
        if let State::Empty = self {
            *self = match new(Config::from_host()) {
                Ok(plugin) => State::Ready(plugin),
                Err(e) => {
                    log::error!("cannot start, every call will be rejected: {e}");
                    State::Broken
                }
            };
        }
        match self {
            State::Ready(plugin) => Some(plugin),
            _ => None,
        }
    }
}

impl<P: Plugin> State<P> {
    fn ready(&mut self) -> Option<&mut P> {
        self.ready_with(P::new)
    }
}

impl<E: Export> Guest for E {
    fn describe() -> Result<Info, String> {
        // Build the instance now, so a bad config or a slow start stops the
        // load rather than showing on the first request.
        E::with_state(|state| {
            state.start(E::Plugin::new)?;
            Ok(state.ready().map_or_else(E::Plugin::info, |plugin| plugin.describe()))
        })
    }

    fn on_http_request(request: HttpRequest) -> Decision {
        E::with_state(|state| match state.ready() {
            Some(plugin) => plugin.on_http_request(&request),
            None => broken::<E::Plugin>(),
        })
    }

    fn on_request(message: Message) -> Decision {
        E::with_state(|state| match state.ready() {
            Some(plugin) => plugin.on_request(&message),
            None => broken::<E::Plugin>(),
        })
    }

    fn on_response(message: Message) -> Decision {
        E::with_state(|state| match state.ready() {
            Some(plugin) => plugin.on_response(&message),
            None => broken::<E::Plugin>(),
        })
    }
}

// The details are in mcpd's log; the client only learns that the gateway
// cannot serve it, as with a plugin failure under `on_error = "closed"`.
fn broken<P: Plugin>() -> Decision {
    Decision::reject(503, codes::INTERNAL_ERROR, format!("plugin {} is misconfigured", P::info().name))
}
