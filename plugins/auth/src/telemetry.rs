//! The plugin's metrics (mcpd exports them as `mcpd_plugin_auth_<name>`):
//!
//! - `authentications_total{method, result}`: every authentication on the
//!   MCP endpoint. `method` is `api_key`, `jwt` or `none`; `result` is `ok`
//!   or why it failed (`missing`, `expired`, `wrong_audience`, …): fixed sets.
//! - `scope_checks_total{principal, tool, scope, outcome}`: per `tools/call`
//!   that needs scopes, one per scope needed, `outcome` = `granted` or
//!   `missing`: scope usage.
//! - `denials_total{principal, tool, reason}`: calls refused for a missing
//!   scope (`insufficient_scope`).
//!
//! `scope` values come from the config, so they are bounded. Principals
//! (JWT subjects) and tool names are not: each of these labels takes at most
//! `metric_label_values` distinct values (counted across instances in the
//! store); later newcomers are reported as `_other`.

use std::collections::HashMap;

use mcpd_plugin_sdk::{metrics, store};

/// What a label reports once its budget of distinct values is spent.
pub const OTHER: &str = "_other";
/// Longer values are cut: a label is for telling apart, not for storing.
const MAX_LABEL_LEN: usize = 64;
/// Remembered per instance, so the store is asked once per value.
const LOCAL_MEMORY: usize = 1024;

pub fn authentication(method: &str, result: &str) {
    metrics::counter("authentications_total", &[("method", method), ("result", result)], 1);
}

/// Bounded label values, as the module doc describes.
pub struct Labels {
    limit: u32,
    known: HashMap<(&'static str, String), bool>,
}

impl Labels {
    pub fn new(limit: u32) -> Labels {
        Labels { limit, known: HashMap::new() }
    }

    /// `value` as the `kind` label, or `_other` once the budget is spent.
    pub fn value(&mut self, kind: &'static str, value: &str) -> String {
        let value: String = value.chars().take(MAX_LABEL_LEN).collect();
        let key = (kind, value);
        let admitted = match self.known.get(&key) {
            Some(admitted) => *admitted,
            None => {
                let admitted = self.admit(kind, &key.1);
                if self.known.len() < LOCAL_MEMORY {
                    self.known.insert(key.clone(), admitted);
                }
                admitted
            }
        };
        if admitted { key.1 } else { OTHER.to_string() }
    }

    fn admit(&self, kind: &str, value: &str) -> bool {
        let marker = format!("label:{kind}:{value}");
        if let Ok(Some(_)) = store::get(&marker) {
            return true;
        }
        match store::incr(&format!("labels:{kind}"), 1, store::NEVER) {
            Ok(n) if n <= i64::from(self.limit) => {
                // A lost marker only means the value is counted twice.
                let _ = store::set(&marker, "1", store::NEVER);
                true
            }
            _ => false,
        }
    }

    pub fn scope_check(&mut self, principal: &str, tool: &str, scope: &str, granted: bool) {
        let (principal, tool) = (self.value("principal", principal), self.value("tool", tool));
        let outcome = if granted { "granted" } else { "missing" };
        let labels =
            [("principal", principal.as_str()), ("tool", tool.as_str()), ("scope", scope), ("outcome", outcome)];
        metrics::counter("scope_checks_total", &labels, 1);
    }

    pub fn denial(&mut self, principal: &str, tool: &str, reason: &str) {
        let (principal, tool) = (self.value("principal", principal), self.value("tool", tool));
        let labels = [("principal", principal.as_str()), ("tool", tool.as_str()), ("reason", reason)];
        metrics::counter("denials_total", &labels, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_across_instances() {
        let mut a = Labels::new(2);
        assert_eq!(a.value("principal", "ada"), "ada");
        assert_eq!(a.value("principal", "bob"), "bob");
        assert_eq!(a.value("principal", "eve"), OTHER);
        assert_eq!(a.value("principal", "ada"), "ada");
        assert_eq!(a.value("tool", "echo"), "echo", "each label has its own budget");
        // Another instance sees the same store.
        let mut b = Labels::new(2);
        assert_eq!(b.value("principal", "bob"), "bob");
        assert_eq!(b.value("principal", "mallory"), OTHER);
        assert_eq!(a.value("principal", &"x".repeat(100)).len(), OTHER.len());
    }
}
