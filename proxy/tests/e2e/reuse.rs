//! Decisions the first-party plugins ask mcpd to reuse (`reuse-decision`):
//! mcpd answers repeated messages without calling the plugin, yet every
//! limit still holds, every metric still counts, and no caller ever gets
//! another's decision.

use crate::common::*;
use serde_json::{Value, json};

/// API keys `key-reader` (scope read) and `key-writer` (read, write), as
/// their SHA-256; rate-limit at `rate` an hour per principal; tool-policy
/// lets `read` call echo and `write` call log.
fn chain(rate: u32, decision_cache: Option<u32>) -> String {
    let cache = decision_cache.map(|n| format!("decision_cache = {n}")).unwrap_or_default();
    format!(
        r#"
[server.fx]
command = "{{server}}"
port = {{port}}
[server.fx.session]
enabled = false
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_auth.wasm"
[server.fx.plugins.config]
api_keys = [
  {{ name = "reader", sha256 = "67ab43ac87e38e66cdba75bd8fbf29456cd4b3423274a12710afa509ebf8a1c6", scopes = ["read"] }},
  {{ name = "writer", sha256 = "64e0075bff581d0d7eb785d43b1d4f85a4dc75243e2bc07eab3ee8dfbfe0fd91", scopes = ["read", "write"] }},
]
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_rate_limit.wasm"
{cache}
[server.fx.plugins.config]
limits = [{{ key = "principal", rate = {rate}, per = "1h" }}]
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_tool_policy.wasm"
[server.fx.plugins.config]
rules = [
  {{ action = "allow", scopes = ["write"], tools = ["log"] }},
  {{ action = "allow", scopes = ["read"], tools = ["echo"] }},
]
"#
    )
}

/// Status and JSON-RPC answer (the last message: `log` notifies first) of
/// one stateless POST with an API key.
async fn call_with_key(raw: &Raw, key: &str, tool: &str) -> (u16, Value) {
    let arguments = if tool == "log" { json!({"message": "m"}) } else { json!({"text": "x"}) };
    let response = raw.post(None, tool_call(1, tool, arguments).to_string()).header("x-api-key", key);
    let (status, messages) = messages_of(response.send().await.expect("POST")).await;
    (status, messages.into_iter().last().unwrap_or_default())
}

async fn metrics(mcpd: &Mcpd) -> String {
    reqwest::get(mcpd.url("/metrics")).await.expect("GET /metrics").text().await.expect("metrics text")
}

/// The sum of the series of `name` whose labels include all of `labels`.
fn metric(metrics: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|label| l.contains(label.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn hook_calls(metrics: &str, plugin: &str, hook: &str) -> (u64, u64) {
    let labels = [("plugin", plugin), ("hook", hook)];
    (metric(metrics, "mcpd_plugin_calls_total", &labels), metric(metrics, "mcpd_plugin_reused_total", &labels))
}

#[tokio::test]
async fn the_first_party_chain_reuses_decisions_and_still_limits_counts_and_tells_callers_apart() {
    let mcpd = Mcpd::start(&chain(3, None), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut statuses = Vec::new();
    for (key, tool) in [
        ("key-reader", "log"),
        ("key-reader", "log"),
        ("key-reader", "echo"),
        ("key-reader", "echo"),
        ("key-writer", "log"),
    ] {
        let (status, answer) = call_with_key(&raw, key, tool).await;
        statuses.push(status);
        if key == "key-writer" {
            assert_eq!(answer["result"]["content"][0]["text"], "logged", "{answer}");
        }
    }
    // The second log is refused again from the kept verdict; the fourth
    // call is over the reader's 3 an hour although rate-limit's verdict
    // for echo was kept: mcpd takes the token again each time, and asks the
    // plugin once the bucket is dry. The writer is not the reader.
    assert_eq!(statuses, [403, 403, 200, 429, 200]);

    let metrics = metrics(&mcpd).await;
    // (calls, reused) per hook. auth's first call records the route's path
    // in the store, a write no reuse could repeat, so its second call is a
    // call too (sequential requests get the same warm instance); then one
    // call per key.
    assert_eq!(hook_calls(&metrics, "auth", "http_request"), (3, 2), "{metrics}");
    assert_eq!(hook_calls(&metrics, "rate-limit", "request"), (4, 1), "{metrics}");
    assert_eq!(hook_calls(&metrics, "tool-policy", "request"), (3, 1), "{metrics}");
    // A reused decision repeats the plugin's own metric updates.
    let ok = [("method", "api_key"), ("result", "ok")];
    assert_eq!(metric(&metrics, "mcpd_plugin_auth_authentications_total", &ok), 5, "{metrics}");
    let denied = [("kind", "tool"), ("outcome", "denied")];
    assert_eq!(metric(&metrics, "mcpd_plugin_tool_policy_decisions_total", &denied), 2, "{metrics}");
    assert_eq!(metric(&metrics, "mcpd_plugin_rate_limit_hits_total", &[]), 5, "{metrics}");
}

#[tokio::test]
async fn decision_cache_zero_turns_reuse_off() {
    let mcpd = Mcpd::start(&chain(100, Some(0)), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    for _ in 0..3 {
        assert_eq!(call_with_key(&raw, "key-reader", "echo").await.0, 200);
    }
    let metrics = metrics(&mcpd).await;
    assert_eq!(hook_calls(&metrics, "rate-limit", "request"), (3, 0), "{metrics}");
    assert_eq!(hook_calls(&metrics, "tool-policy", "request"), (1, 2), "only rate-limit's entry says 0\n{metrics}");
}

/// A route with two limits for rate-limit, the narrow one first, in front
/// of `store` (`[gateway] store = …`, or nothing for memory).
pub fn two_limits(store: &str) -> String {
    format!(
        r#"
[gateway]
{store}
[server.fx]
command = "{{server}}"
port = {{port}}
[server.fx.session]
enabled = false
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_rate_limit.wasm"
[server.fx.plugins.config]
limits = [
  {{ name = "echo", key = "client", tools = ["echo"], rate = 3, per = "1h" }},
  {{ name = "all", key = "client", rate = 2, per = "1h" }},
]
"#
    )
}

/// The third echo: mcpd's repeat of the kept verdict takes the narrow
/// limit's token, finds the broad bucket dry, gives the token back and asks
/// the plugin, which refuses by the broad limit. Without the give-back the
/// narrow bucket would be dry too and the refusal would name it.
pub async fn a_refused_repeat_gives_back_the_tokens_it_took(store: &str) {
    let mcpd = Mcpd::start(&two_limits(store), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(raw.rpc(None, tool_call(1, "echo", json!({"text": "x"}))).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 429]);
    let refusal = &answers[2].1[0];
    assert_eq!(refusal["error"]["data"]["limit"], "all", "{refusal}");
    let metrics = metrics(&mcpd).await;
    assert_eq!(hook_calls(&metrics, "rate-limit", "request"), (2, 1), "{metrics}");
}

#[tokio::test]
async fn a_refused_repeat_gives_back_the_tokens_it_took_in_memory() {
    a_refused_repeat_gives_back_the_tokens_it_took("").await;
}
