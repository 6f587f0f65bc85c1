//! What a plugin slot's current version is called for, summarised so that
//! the questions the front asks of every message ("does any plugin see this
//! message at this hook, and what does it read?") take no lock and compare
//! no strings: per hook, a bit set over the MCP methods mcpd knows, and the
//! parts its message hooks read. A slot replaces its summary on reload.
//!
//! This module owns the summary and the method bits. What a plugin sees is
//! still decided by the plugin's own method lists and its entry's
//! `methods` ([`super::chain`] computes the summary from them); a method
//! without a bit of its own is asked of them directly.

use super::bindings::MessageParts;
use super::loaded::Hook;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Methods with a bit of their own (MCP 2024-11-05 to 2025-11-25), the
/// ones plugins see most first: a lookup stops at the first match.
const KNOWN: [&str; 30] = [
    "tools/call",
    "tools/list",
    "resources/read",
    "prompts/get",
    "resources/list",
    "prompts/list",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "initialize",
    "ping",
    "logging/setLevel",
    "sampling/createMessage",
    "roots/list",
    "elicitation/create",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/resources/updated",
    "notifications/resources/list_changed",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/roots/list_changed",
    "notifications/tasks/status",
];

/// The bit of a message without a method (an answer mcpd cannot match).
const NO_METHOD: u64 = 1 << 62;
/// Any method not in [`KNOWN`]: a summary cannot answer for it.
const OTHER: u64 = 1 << 63;

/// A message's method, as a bit of a [`Subscription`]'s sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodBit(u64);

impl MethodBit {
    pub fn of(method: Option<&str>) -> MethodBit {
        MethodBit(match method {
            None => NO_METHOD,
            Some(method) => KNOWN.iter().position(|known| *known == method).map_or(OTHER, |at| 1 << at),
        })
    }
}

/// Message parts in the order of their bits in [`Subscription::reads`]
/// (the WIT flags type has no constructor from raw bits).
const PARTS: [MessageParts; 3] = [MessageParts::PARAMS, MessageParts::HEADERS, MessageParts::SESSION];

/// One slot's summary; see the module docs.
#[derive(Debug, Default)]
pub struct Subscription {
    /// Per hook ([`Hook::index`]): the methods it is called for. [`OTHER`]
    /// is set when the hook is there at all (unknown methods are asked).
    methods: [AtomicU64; 3],
    /// What its message hooks read, as positions in [`PARTS`].
    reads: AtomicU32,
}

impl Subscription {
    /// Replaces the summary: `sees(hook, method)` says whether the current
    /// version is called at `hook` for `method`, `has(hook)` whether it
    /// has the hook at all. Between a reload's swap and this store, a
    /// message may be judged by the old summary: it is then shown to the
    /// new version or not, as the old one would have been.
    pub fn update(&self, has: impl Fn(Hook) -> bool, sees: impl Fn(Hook, Option<&str>) -> bool, reads: MessageParts) {
        for hook in Hook::ALL {
            let bits = match (has(hook), hook) {
                (false, _) => 0,
                // The HTTP hook is called for every request, whatever the method.
                (true, Hook::HttpRequest) => u64::MAX,
                (true, _) => {
                    let known = KNOWN.iter().enumerate().filter(|(_, m)| sees(hook, Some(m)));
                    let known = known.fold(0, |bits, (at, _)| bits | 1 << at);
                    known | if sees(hook, None) { NO_METHOD } else { 0 } | OTHER
                }
            };
            self.methods[hook.index()].store(bits, Ordering::Relaxed);
        }
        let reads = PARTS.iter().enumerate().filter(|(_, part)| reads.contains(**part));
        self.reads.store(reads.fold(0, |bits, (at, _)| bits | 1 << at), Ordering::Relaxed);
    }

    /// Whether the plugin has `hook` at all.
    pub fn has(&self, hook: Hook) -> bool {
        self.methods[hook.index()].load(Ordering::Relaxed) != 0
    }

    /// Whether the plugin is called at `hook` for a message with `method`;
    /// `None` when only the plugin can say (a method without a bit).
    pub fn sees(&self, hook: Hook, method: MethodBit) -> Option<bool> {
        let bits = self.methods[hook.index()].load(Ordering::Relaxed);
        match method.0 {
            OTHER if bits != 0 => None,
            bit => Some(bits & bit != 0),
        }
    }

    /// What its message hooks read.
    pub fn reads(&self) -> MessageParts {
        let bits = self.reads.load(Ordering::Relaxed);
        let parts = PARTS.iter().enumerate().filter(|(at, _)| bits & 1 << at != 0);
        parts.fold(MessageParts::empty(), |all, (_, part)| all | *part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(methods: &'static [&'static str], hooks: &'static [Hook], reads: MessageParts) -> Subscription {
        let subscription = Subscription::default();
        subscription.update(
            |hook| hooks.contains(&hook),
            |hook, method| {
                hooks.contains(&hook) && (methods.is_empty() || method.is_some_and(|m| methods.contains(&m)))
            },
            reads,
        );
        subscription
    }

    #[test]
    fn the_summary_answers_as_the_plugin_would() {
        let s = summary(&["tools/call", "x/custom"], &[Hook::Request], MessageParts::SESSION | MessageParts::PARAMS);
        let bit = |m| MethodBit::of(Some(m));
        assert_eq!(s.sees(Hook::Request, bit("tools/call")), Some(true));
        assert_eq!(s.sees(Hook::Request, bit("tools/list")), Some(false));
        assert_eq!(s.sees(Hook::Request, MethodBit::of(None)), Some(false), "a filter admits no method-less message");
        assert_eq!(s.sees(Hook::Request, bit("x/custom")), None, "an unknown method is asked");
        assert_eq!(s.sees(Hook::Response, bit("x/custom")), Some(false), "unless the hook is not there");
        assert_eq!(s.sees(Hook::Response, bit("tools/call")), Some(false));
        assert!(s.has(Hook::Request) && !s.has(Hook::Response) && !s.has(Hook::HttpRequest));
        assert_eq!(s.reads(), MessageParts::SESSION | MessageParts::PARAMS);
    }

    #[test]
    fn every_method_and_none_for_a_plugin_without_filters_and_an_update_replaces_all() {
        let s = summary(&[], &[Hook::Response, Hook::HttpRequest], MessageParts::all());
        for method in KNOWN.iter().map(|m| Some(*m)).chain([None]) {
            assert_eq!(s.sees(Hook::Response, MethodBit::of(method)), Some(true), "{method:?}");
        }
        assert_eq!(s.sees(Hook::HttpRequest, MethodBit::of(Some("x/custom"))), None);
        assert_eq!(s.reads(), MessageParts::all());
        s.update(|_| false, |_, _| false, MessageParts::empty());
        assert!(Hook::ALL.iter().all(|hook| !s.has(*hook)));
        assert_eq!(s.reads(), MessageParts::empty());
    }
}
