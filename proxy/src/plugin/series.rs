//! Metric series handles for the `host` import's `counter-series` /
//! `series-add` (and the histogram pair): a plugin names a series once and
//! then updates it by number, so the hot path copies no strings and looks
//! nothing up by name.
//!
//! One table per configured plugin ([`super::bindings::PluginContext`]),
//! shared by all its instances and kept across hot reloads, so the same
//! name and labels always get the same handle. What a series *is* (its
//! Prometheus name, label checks) stays in [`crate::metrics`].

use std::collections::HashMap;
use std::sync::RwLock;

/// Most series one plugin may name; beyond it `counter-series` says `none`
/// (label values from clients would otherwise grow memory without bound).
pub const MAX_SERIES: usize = 10_000;

#[derive(Default)]
pub struct SeriesTable {
    inner: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    /// `kind name labels…` → handle.
    handles: HashMap<String, u32>,
    counters: Vec<prometheus::Counter>,
    histograms: Vec<prometheus::Histogram>,
}

/// The lookup key of a series: kind, name and labels, separated by a
/// character no metric name or label holds.
fn key(kind: char, name: &str, labels: &[(String, String)]) -> String {
    let mut key = format!("{kind}\u{1f}{name}");
    for (k, v) in labels {
        key.push('\u{1f}');
        key.push_str(k);
        key.push('\u{1e}');
        key.push_str(v);
    }
    key
}

impl SeriesTable {
    /// The handle of the counter series `name{labels}` of `plugin`.
    pub fn counter(&self, plugin: &str, name: &str, labels: &[(String, String)]) -> Option<u32> {
        self.handle('c', name, labels, |table| {
            let series = crate::metrics::plugin_counter_series(plugin, name, labels)?;
            table.counters.push(series);
            u32::try_from(table.counters.len() - 1).ok()
        })
    }

    /// The handle of the histogram series `name{labels}` of `plugin`.
    pub fn histogram(&self, plugin: &str, name: &str, labels: &[(String, String)]) -> Option<u32> {
        self.handle('h', name, labels, |table| {
            let series = crate::metrics::plugin_histogram_series(plugin, name, labels)?;
            table.histograms.push(series);
            u32::try_from(table.histograms.len() - 1).ok()
        })
    }

    fn handle(
        &self,
        kind: char,
        name: &str,
        labels: &[(String, String)],
        make: impl FnOnce(&mut Table) -> Option<u32>,
    ) -> Option<u32> {
        let key = key(kind, name, labels);
        if let Some(handle) = self.inner.read().ok()?.handles.get(&key) {
            return Some(*handle);
        }
        let mut table = self.inner.write().ok()?;
        if let Some(handle) = table.handles.get(&key) {
            return Some(*handle);
        }
        if table.handles.len() >= MAX_SERIES {
            return None;
        }
        let handle = make(&mut table)?;
        table.handles.insert(key, handle);
        Some(handle)
    }

    pub fn add(&self, handle: u32, value: u64) {
        if let Some(counter) = self.inner.read().ok().as_ref().and_then(|t| t.counters.get(handle as usize)) {
            counter.inc_by(value as f64);
        }
    }

    pub fn observe(&self, handle: u32, value: f64) {
        if let Some(histogram) = self.inner.read().ok().as_ref().and_then(|t| t.histograms.get(handle as usize)) {
            histogram.observe(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(route: &str) -> Vec<(String, String)> {
        vec![("route".to_string(), route.to_string())]
    }

    #[test]
    fn a_series_keeps_its_handle_and_counts_by_it() {
        let table = SeriesTable::default();
        let a = table.counter("series-test", "calls_total", &labels("a"));
        let b = table.counter("series-test", "calls_total", &labels("b"));
        assert!(a.is_some() && b.is_some() && a != b);
        assert_eq!(table.counter("series-test", "calls_total", &labels("a")), a);
        table.add(a.unwrap_or(u32::MAX), 3);
        table.add(u32::MAX, 1); // not a handle: ignored
        let text = String::from_utf8(crate::metrics::render()).unwrap_or_default();
        assert!(text.contains(r#"mcpd_plugin_series_test_calls_total{route="a"} 3"#), "{text}");
    }

    #[test]
    fn bad_names_get_no_handle() {
        let table = SeriesTable::default();
        assert_eq!(table.counter("series-test", "", &labels("a")), None);
        let nine: Vec<(String, String)> = (0..9).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert_eq!(table.histogram("series-test", "latency", &nine), None);
    }
}
