//! Prometheus metrics: one registry for the process, the gateway's own
//! metric families, and metrics plugins register under their own names.
//!
//! Served as text at `GET /metrics` on the gateway's listeners.

use dashmap::DashMap;
use prometheus::{CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::sync::LazyLock;

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    if let Err(e) = REGISTRY.register(Box::new(collector.clone())) {
        tracing::warn!("metric registration failed: {e}");
    }
    collector
}

/// Plugin hook calls by plugin, hook and outcome (proceed, modify, reject,
/// respond, error).
pub static PLUGIN_CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("mcpd_plugin_calls_total", "Plugin hook calls by outcome"),
            &["plugin", "hook", "outcome"],
        )
        .expect("valid metric"),
    )
});

/// Messages a plugin's hook answered with a decision it asked to reuse
/// (`host.reuse-decision`), without a call.
pub static PLUGIN_REUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("mcpd_plugin_reused_total", "Messages answered with a reused plugin decision, without a call"),
            &["plugin", "hook"],
        )
        .expect("valid metric"),
    )
});

/// Plugin failures by plugin and kind (trap, timeout, memory, output, instantiate).
pub static PLUGIN_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("mcpd_plugin_failures_total", "Plugin calls that failed, by kind"),
            &["plugin", "kind"],
        )
        .expect("valid metric"),
    )
});

/// Wall time of plugin hook calls.
pub static PLUGIN_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new("mcpd_plugin_call_seconds", "Plugin hook call duration")
                .buckets(vec![1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3, 1e-2, 0.1]),
            &["plugin", "hook"],
        )
        .expect("valid metric"),
    )
});

/// Plugin (re)loads by plugin and result (ok, failed).
pub static PLUGIN_HTTP: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("mcpd_plugin_http_requests_total", "Outbound HTTP requests made by plugins"),
            &["plugin", "result"],
        )
        .expect("valid metric"),
    )
});

pub static PLUGIN_LOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(Opts::new("mcpd_plugin_loads_total", "Plugin loads and hot reloads"), &["plugin", "result"])
            .expect("valid metric"),
    )
});

static PLUGIN_COUNTERS: LazyLock<DashMap<String, CounterVec>> = LazyLock::new(DashMap::new);
static PLUGIN_HISTOGRAMS: LazyLock<DashMap<String, HistogramVec>> = LazyLock::new(DashMap::new);

fn metric_name(plugin: &str, name: &str) -> Option<String> {
    let clean = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect::<String>()
    };
    let ok = !name.is_empty() && name.len() <= 64;
    ok.then(|| format!("mcpd_plugin_{}_{}", clean(plugin), clean(name)))
}

/// The vector for a plugin's metric `name`, created and registered on first
/// use; its label keys are fixed by that first use. `None` (the update is
/// dropped) for a bad name, more than 8 labels, or labels prometheus refuses.
fn plugin_vec<V>(
    vectors: &DashMap<String, V>,
    plugin: &str,
    name: &str,
    labels: &[(String, String)],
    make: impl FnOnce(&str, &[&str]) -> prometheus::Result<V>,
) -> Option<V>
where
    V: prometheus::core::Collector + Clone + 'static,
{
    let full = metric_name(plugin, name)?;
    if labels.len() > 8 {
        return None;
    }
    if let Some(existing) = vectors.get(&full) {
        return Some(existing.clone());
    }
    let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
    match make(&full, &keys) {
        Ok(vector) => Some(vectors.entry(full).or_insert_with(|| register(vector)).clone()),
        Err(error) => {
            tracing::warn!(metric = %full, "plugin metric refused: {error}");
            None
        }
    }
}

fn label_values(labels: &[(String, String)]) -> Vec<&str> {
    labels.iter().map(|(_, v)| v.as_str()).collect()
}

/// Adds `value` to a plugin's own counter.
pub fn plugin_counter(plugin: &str, name: &str, labels: &[(String, String)], value: u64) {
    if let Some(counter) = plugin_counter_series(plugin, name, labels) {
        counter.inc_by(value as f64);
    }
}

/// One series of a plugin's own counter (created on first use).
pub fn plugin_counter_series(plugin: &str, name: &str, labels: &[(String, String)]) -> Option<prometheus::Counter> {
    let make = |full: &str, keys: &[&str]| CounterVec::new(Opts::new(full, format!("Plugin metric {name}")), keys);
    plugin_vec(&PLUGIN_COUNTERS, plugin, name, labels, make)?.get_metric_with_label_values(&label_values(labels)).ok()
}

/// Records `value` in a plugin's own histogram.
pub fn plugin_histogram(plugin: &str, name: &str, labels: &[(String, String)], value: f64) {
    if let Some(histogram) = plugin_histogram_series(plugin, name, labels) {
        histogram.observe(value);
    }
}

/// One series of a plugin's own histogram (created on first use).
pub fn plugin_histogram_series(plugin: &str, name: &str, labels: &[(String, String)]) -> Option<prometheus::Histogram> {
    let make =
        |full: &str, keys: &[&str]| HistogramVec::new(HistogramOpts::new(full, format!("Plugin metric {name}")), keys);
    plugin_vec(&PLUGIN_HISTOGRAMS, plugin, name, labels, make)?.get_metric_with_label_values(&label_values(labels)).ok()
}

/// The registry in Prometheus text format.
pub fn render() -> Vec<u8> {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&REGISTRY.gather(), &mut out);
    out
}
