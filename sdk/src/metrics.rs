//! Metrics over `host::counter-add` and `host::histogram-observe`. mcpd
//! exports them as `mcpd_plugin_<plugin>_<name>`; names and label keys use
//! `[a-z0-9_]`, at most 8 labels.

use crate::host;

/// Adds `value` to the counter `name` with these labels.
pub fn counter(name: &str, labels: &[(&str, &str)], value: u64) {
    host::counter_add(name, &owned(labels), value);
}

/// Records `value` in the histogram `name` with these labels.
pub fn histogram(name: &str, labels: &[(&str, &str)], value: f64) {
    host::histogram_observe(name, &owned(labels), value);
}

// The generated import takes owned strings.
fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
