//! Letting mcpd reuse a hook's decision (`host.reuse-decision`): a hook
//! whose decision depends only on some parts of the message says so, and
//! mcpd answers later messages that agree on those parts with the same
//! decision, without calling the plugin. A call costs a microsecond or
//! more; a reused decision a fraction of that.
//!
//! ```
//! use mcpd_plugin_sdk::prelude::*;
//! use mcpd_plugin_sdk::reuse::{self, Vary};
//! use std::time::Duration;
//!
//! struct Guard;
//!
//! impl Plugin for Guard {
//!     fn info() -> Info {
//!         Info::new("guard", "0.1.0", Hooks::REQUEST).request_methods(["tools/call"])
//!     }
//!
//!     fn new(_config: Config) -> Result<Self, Error> {
//!         Ok(Guard)
//!     }
//!
//!     fn on_request(&mut self, message: &Message) -> Decision {
//!         // The answer depends on who calls which tool, nothing else.
//!         reuse::decision(Duration::from_secs(60), Vary::PRINCIPAL | Vary::NAME, &[]);
//!         match (message.principal.as_deref(), message.tool_name()) {
//!             (None, Some("delete")) => Decision::reject(403, codes::FORBIDDEN, "sign in to delete"),
//!             _ => Decision::proceed(),
//!         }
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! What a reused decision repeats: the decision, the call's metric updates
//! ([`crate::metrics`]) and its [`crate::store::take`]s, taken again in
//! order (if one is refused, mcpd gives back those taken and calls the
//! plugin, so it can refuse in its own words). Not repeated: logs. Not
//! reusable at all (mcpd ignores the request): a call that wrote to the
//! store with `incr`, `set` or `delete`, or whose `take` was refused or
//! failed. What a call read (`store::get`, clocks, `http`) is the plugin's
//! to account for in the time it gives.
//!
//! Ask only for what the decision really depends on: every part named
//! is part of mcpd's key, and a part left out is one the decision must not
//! depend on. The message's hook, route, direction, kind and method (an
//! HTTP request's method) are always part of the key; its id never is.

use std::time::Duration;

pub use crate::bindings::mcpd::plugin::types::Vary;

/// Lets mcpd reuse the decision this hook call returns for `ttl` (capped
/// at an hour by mcpd), for messages equal in `vary` and in the values of
/// `headers` (lower-case names; an absent header counts as a value). Call
/// it during `on_http_request`, `on_request` or `on_response`; the last
/// call in a hook counts.
pub fn decision(ttl: Duration, vary: Vary, headers: &[&str]) {
    let ttl_ms = u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX);
    let headers = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    imp::reuse_decision(&crate::bindings::mcpd::plugin::types::Reuse { ttl_ms, vary, headers });
}

#[cfg(target_arch = "wasm32")]
mod imp {
    pub use crate::bindings::mcpd::plugin::host::reuse_decision;
}

/// Natively (a plugin's unit tests) the last request is kept per thread,
/// so a test can check what its hook asked for.
#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use crate::bindings::mcpd::plugin::types::Reuse;
    use std::cell::RefCell;

    thread_local! {
        pub static LAST: RefCell<Option<Reuse>> = const { RefCell::new(None) };
    }

    pub fn reuse_decision(reuse: &Reuse) {
        LAST.with_borrow_mut(|last| *last = Some(reuse.clone()));
    }
}

/// For unit tests (native builds): what the last hook call on this thread
/// asked to reuse, and clears it.
#[cfg(not(target_arch = "wasm32"))]
pub fn last_requested() -> Option<crate::bindings::mcpd::plugin::types::Reuse> {
    imp::LAST.with_borrow_mut(Option::take)
}
