//! The plugin's metrics, with label values drawn from bounded sets only:
//! route (from mcpd.toml), limit name (from the config), `via`
//! (`principal` or `client`) and `who`, which is the identity only when the
//! config's `metric_identities` lists it, else `other`. Principals and
//! addresses come from clients, so labelling every one would grow the
//! metrics without bound.

use std::collections::HashSet;

use mcpd_plugin_sdk::metrics;

use crate::key::Who;

pub struct Metrics {
    identities: HashSet<String>,
}

impl Metrics {
    pub fn new(identities: HashSet<String>) -> Metrics {
        Metrics { identities }
    }

    /// The `who` label for an identity.
    pub fn who<'a>(&self, who: &Who<'a>) -> &'a str {
        if self.identities.contains(who.id) { who.id } else { "other" }
    }

    /// A request that at least one limit counted.
    pub fn hit(&self, route: &str, who: &Who) {
        metrics::counter("hits_total", &[("route", route), ("via", who.via), ("who", self.who(who))], 1);
    }

    /// A request a limit refused.
    pub fn limited(&self, route: &str, limit: &str, who: &Who) {
        let labels = [("route", route), ("limit", limit), ("via", who.via), ("who", self.who(who))];
        metrics::counter("limited_total", &labels, 1);
    }

    /// A store call that failed (the request went on or was refused per `on_store_error`).
    pub fn store_error(&self, route: &str) {
        metrics::counter("store_errors_total", &[("route", route)], 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_identities_are_labels() {
        let m = Metrics::new(["ada".to_string()].into());
        assert_eq!(m.who(&Who { via: "principal", id: "ada" }), "ada");
        assert_eq!(m.who(&Who { via: "principal", id: "mallory" }), "other");
        assert_eq!(m.who(&Who { via: "client", id: "10.0.0.1" }), "other");
    }
}
