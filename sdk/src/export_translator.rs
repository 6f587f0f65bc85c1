//! `export_translator!` and the glue behind it: the `translator` interface
//! mcpd calls, routed to one lazily built instance of the translator's type
//! (kept the way `export_plugin!` keeps a plugin's, see `export.rs`).

use crate::bindings::translator::exports::mcpd::plugin::translator::Guest;
use crate::export::State;
use crate::translator::{Translator, dispatch};
use crate::{Info, Message, RpcError};

/// Exports a type implementing [`Translator`] as the component's
/// `translator` (world `translator-plugin`). Use it once, at the top level
/// of the translator crate's `lib.rs`:
///
/// ```ignore
/// mcpd_plugin_sdk::export_translator!(MyTranslator);
/// ```
///
/// A crate exports either a plugin or a translator, not both: mcpd loads a
/// component as one or the other.
#[macro_export]
#[rustfmt::skip] // rustfmt misplaces the `with_types_in` line
macro_rules! export_translator {
    ($translator:ty) => {
        const _: () = {
            struct McpdTranslatorExport;

            impl $crate::__private::TranslatorExport for McpdTranslatorExport {
                type Translator = $translator;

                fn with_state<R>(f: impl FnOnce(&mut $crate::__private::State<$translator>) -> R) -> R {
                    // One instance per component instance, as for plugins.
                    ::std::thread_local! {
                        static STATE: ::core::cell::RefCell<$crate::__private::State<$translator>> =
                            const { ::core::cell::RefCell::new($crate::__private::State::Empty) };
                    }
                    STATE.with_borrow_mut(f)
                }
            }

            // As in `export_plugin!`: wasm only, since native linkers reject
            // the component export names.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::translator::__export_translator!(
                McpdTranslatorExport with_types_in $crate::bindings::translator);
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn() -> ::core::result::Result<$crate::Info, ::std::string::String> =
                <McpdTranslatorExport as $crate::__private::TranslatorGuest>::describe;
        };
    };
}

/// What `export_translator!` implements for its hidden type; `translator`'s
/// functions are the blanket `Guest` impl below.
#[doc(hidden)]
pub trait TranslatorExport {
    type Translator: Translator;
    fn with_state<R>(f: impl FnOnce(&mut State<Self::Translator>) -> R) -> R;
}

impl<E: TranslatorExport> Guest for E {
    fn describe() -> Result<Info, String> {
        // Build now, so a bad config stops the load (see `hooks.describe`).
        E::with_state(|state| state.start(E::Translator::new))?;
        Ok(E::Translator::info())
    }

    fn handle(message: Message) -> Result<String, RpcError> {
        E::with_state(|state| match state.ready_with(E::Translator::new) {
            Some(translator) => dispatch(translator, &message).map(|result| result.to_string()),
            // The details are in mcpd's log (see `State::ready_with`).
            None => Err(RpcError::internal(format!("translator {} is misconfigured", E::Translator::info().name))),
        })
    }
}
