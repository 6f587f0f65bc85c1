//! The official TypeScript SDK's client (`@modelcontextprotocol/sdk`,
//! pinned in fixtures/ts-client) driving mcpd over Streamable HTTP
//! (`StreamableHTTPClientTransport`) and legacy HTTP+SSE
//! (`SSEClientTransport`): initialize, tools/list, tools/call with progress
//! notifications, twice on one session, in front of a stdio server (a
//! process per session, and a pool), an HTTP instance (our fixture) and an
//! HTTP instance built on the same SDK.

use crate::common::*;
use crate::http_upstream::{Upstream, start_ts};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

/// fixtures/ts-client/client.mjs, once `npm ci` ran there (./dev test does).
fn client_script() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ts-client");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "the TypeScript client is not installed: run `npm ci --prefix fixtures/ts-client` (./dev test does)"
    );
    dir.join("client.mjs")
}

/// Runs the client against `url`; its report.
fn run(url: &str, transport: &str, tool: &str, arguments: Value) -> Value {
    let out = Command::new("node")
        .arg(client_script())
        .args(["--url", url, "--transport", transport, "--tool", tool, "--arguments", &arguments.to_string()])
        .output()
        .expect("run node (the TypeScript SDK client)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "TypeScript client ({transport} → {url}) failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("client report is not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn the_typescript_client_works_over_streamable_http_and_legacy_sse() {
    let instance = Upstream::start("ts-client-http", &[]);
    let ts_instance = start_ts("ts-client-ts");
    let config = format!(
        r#"
[gateway]
listen = "127.0.0.1:{{port}}"
[server.fx]
command = "{{server}}"
transport = ["streamable-http", "sse"]
[server.pool]
command = "{{server}}"
transport = ["streamable-http", "sse"]
session = {{ enabled = false }}
[server.remote]
url = "{}"
transport = ["streamable-http", "sse"]
[server.ts]
url = "{}"
transport = ["streamable-http", "sse"]
"#,
        instance.url("/mcp"),
        ts_instance.url("/mcp"),
    );
    let mcpd = Mcpd::start(&config, &["/fx/health", "/pool/health", "/remote/health", "/ts/health"]).await;
    let cases = [
        ("fx", "progress", json!({"steps": 3}), 3, "done after 3 steps"),
        ("pool", "progress", json!({"steps": 3}), 3, "done after 3 steps"),
        ("remote", "slow_stream", json!({"count": 3, "interval_ms": 5}), 3, "sent 3 notifications"),
        ("ts", "echo", json!({"text": "via the SDK twice"}), 0, "via the SDK twice"),
    ];
    for (route, tool, arguments, steps, answer) in cases {
        for (transport, path) in [("streamable-http", "mcp"), ("sse", "sse")] {
            let url = mcpd.url(&format!("/{route}/{path}"));
            let report = tokio::task::spawn_blocking({
                let (url, arguments) = (url.clone(), arguments.clone());
                move || run(&url, transport, tool, arguments)
            })
            .await
            .expect("the client ran");
            let what = format!("{route} over {transport}: {report}");
            assert!(report["tools"].as_array().is_some_and(|t| t.iter().any(|t| t == tool)), "{what}");
            let progress = report["progress"].as_array().expect("progress list");
            assert_eq!(progress.len(), steps, "every progress notification reached the SDK: {what}");
            if steps > 0 {
                assert_eq!(progress[steps - 1]["progress"], steps as u64, "{what}");
            }
            assert_eq!(text_of(&report["result"]), answer, "{what}");
            assert_eq!(text_of(&report["again"]), answer, "the session served a second call: {what}");
        }
    }
}
