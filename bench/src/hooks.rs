//! Cost of one plugin hook call, measured in-process through mcpd's own
//! plugin host (load, instance pool, limits: the same path a request takes).

use hdrhistogram::Histogram;
use mcpd::config::{OnError, PluginSettings};
use mcpd::plugin::bindings::{Direction, Header, McpMessage, MessageKind};
use mcpd::plugin::chain::PluginSlot;
use mcpd::plugin::loaded::Hook;
use mcpd::plugin::store::PluginStore;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tools_call() -> McpMessage {
    let header = |name: &str, value: &str| Header { name: name.into(), value: value.into() };
    McpMessage {
        direction: Direction::ClientToServer,
        kind: MessageKind::Request,
        method: Some("tools/call".into()),
        id: Some("7".into()),
        name: Some("echo".into()),
        params: Some(r#"{"name":"echo","arguments":{"text":"hello, this is a secret"}}"#.into()),
        error: None,
        session: Some("0123456789abcdef0123456789abcdef".into()),
        principal: None,
        scopes: Vec::new(),
        client_address: "127.0.0.1".into(),
        headers: vec![
            header("host", "127.0.0.1:8080"),
            header("content-type", "application/json"),
            header("accept", "application/json, text/event-stream"),
            header("mcp-protocol-version", "2025-11-25"),
            header("x-user", "ada"),
        ],
        route: "bench".into(),
    }
}

/// How the plugin is called.
#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// A warm instance, reused (what mcpd does), with the whole message.
    Warm,
    /// As `Warm`, with only what is always there: what mcpd passes a
    /// plugin whose `reads` names no optional part.
    WarmLean,
    /// A decision the plugin asked mcpd to reuse (`reuse-decision`): the
    /// lookup and its effects, no call.
    DecisionReused,
    /// A brand-new instance per call (isolation per request).
    Fresh,
}

/// Nanoseconds per `on_request` call of the plugin at `wasm`.
pub async fn measure(wasm: &Path, config_json: &str, iterations: u64, mode: Mode) -> anyhow::Result<Histogram<u64>> {
    let settings = PluginSettings {
        path: wasm.to_path_buf(),
        on_error: OnError::Closed,
        timeout: Duration::from_secs(1),
        start_timeout: Duration::from_secs(10),
        max_memory: 64 << 20,
        max_output: 4 << 20,
        instances: 1,
        decision_cache: 10_000,
        headers: Vec::new(),
        config_json: config_json.to_string(),
        allow_hosts: Vec::new(),
        methods: Vec::new(),
    };
    let slot = PluginSlot::load(settings, Arc::new(PluginStore::memory()), None).await?;
    let plugin = slot.current();
    let mut message = tools_call();
    if mode == Mode::WarmLean {
        (message.params, message.session) = (None, None);
        message.headers.clear();
    }
    for _ in 0..iterations / 10 {
        let (decision, reusable) = plugin.call(Hook::Request, None, Some(&message)).await?;
        if let Some(reusable) = reusable {
            plugin.keep(Hook::Request, &message, &decision, reusable);
        }
    }
    if mode == Mode::DecisionReused {
        anyhow::ensure!(
            plugin.reused(Hook::Request, &message, Instant::now()).await.is_some(),
            "the plugin asked for no reuse"
        );
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)?;
    for _ in 0..iterations {
        let started = Instant::now();
        match mode {
            Mode::Fresh => drop(plugin.call_fresh(Hook::Request, &message).await?),
            Mode::DecisionReused => drop(plugin.reused(Hook::Request, &message, Instant::now()).await),
            _ => drop(plugin.call(Hook::Request, None, Some(&message)).await?),
        };
        histogram.record(started.elapsed().as_nanos() as u64)?;
    }
    Ok(histogram)
}
