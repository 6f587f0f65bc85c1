//! The official Python SDK (PyPI `mcp`, pinned in fixtures/python) against
//! mcpd: its client in the default mode (probe the stateless era with
//! `server/discover`, fall back to `initialize` when told to), in legacy
//! mode (session-era Streamable HTTP) and over the 2024-11-05 HTTP+SSE
//! transport (`sse_client`, the same route's `/sse`), in front of the stdio
//! fixture and the Rust HTTP fixture (session era only: mcpd bridges), of a route with
//! `stateless = false` (the client falls back), and of a server on the same
//! SDK that speaks the stateless era itself (mcpd passes requests through).
//! The fixture's tools that ask the client (elicitation, sampling) are
//! answered by the SDK's callbacks in both eras.

use crate::common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The venv `./dev test` installs fixtures/python/requirements.txt into.
fn python() -> PathBuf {
    let venv = std::env::var_os("MCPD_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/mcpd-python"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: create the venv with `python3 -m venv {}` and `pip install -r fixtures/python/requirements.txt` (./dev test does)",
        python.display(),
        venv.display()
    );
    python
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/python").join(name)
}

/// Runs the SDK's client against `url` in `mode` and returns its report.
async fn client(url: &str, mode: &str) -> Value {
    let run =
        tokio::process::Command::new(python()).arg(script("client.py")).args([url, mode]).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the Python client finishes")
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client.py {mode} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("client.py printed {stdout}"))
}

/// The SDK's server (both eras) on a free port; killed on drop.
struct PythonServer {
    child: Child,
    port: u16,
}

impl PythonServer {
    async fn start() -> PythonServer {
        let port = free_port();
        let child = Command::new(python())
            .arg(script("server.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server.py");
        let server = PythonServer { child, port };
        // It says nothing on stdout when ready; its port accepting is the signal.
        let address = format!("127.0.0.1:{port}");
        eventually("server.py to listen", Duration::from_secs(30), || async {
            tokio::net::TcpStream::connect(&address).await.ok().map(|_| ())
        })
        .await;
        server
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_echoed(report: &Value) {
    assert_eq!(report["echo"][0], "hello from python", "{report}");
    assert_eq!(report["echo_error"], false, "{report}");
}

/// The fixture's `elicit` and `sample` tools ask the client; the SDK's
/// callbacks answered (in the stateless era: through InputRequiredResults).
fn assert_asked(report: &Value) {
    assert_eq!(report["elicit"][0], r#"action=accept content={"name":"Ada"}"#, "{report}");
    assert_eq!(report["sample"][0], "client said: sampled", "{report}");
}

#[tokio::test]
async fn default_legacy_and_sse_clients_through_the_bridge() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\ntransport = [\"streamable-http\", \"sse\"]\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let (url, sse_url) = (mcpd.url("/mcp"), mcpd.url("/sse"));
    let (modern, legacy, sse) = tokio::join!(client(&url, "auto"), client(&url, "legacy"), client(&sse_url, "sse"));
    assert_eq!(sse["server"], "mcpd-test-server", "the 2024-11-05 HTTP+SSE transport: {sse}");
    assert_echoed(&sse);
    assert_asked(&sse);
    assert_eq!(modern["protocol_version"], "2026-07-28", "mcpd answers the probe for a session-era server: {modern}");
    assert_eq!(modern["server"], "mcpd-test-server", "the server's identity, from its initialize: {modern}");
    assert!(modern["tools"].as_array().unwrap().iter().any(|t| t == "sleep"), "{modern}");
    assert_echoed(&modern);
    assert_asked(&modern);
    assert_eq!(legacy["protocol_version"], "2025-11-25", "{legacy}");
    assert_echoed(&legacy);
    assert_asked(&legacy);
    drop(mcpd);

    let upstream = crate::http_upstream::Upstream::start("i0", &[]);
    let config = format!("[server.fx]\nurl = {:?}\nport = {{port}}\n", upstream.url("/mcp"));
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let report = client(&mcpd.url("/mcp"), "auto").await;
    assert_eq!(report["protocol_version"], "2026-07-28", "{report}");
    assert_echoed(&report);
}

#[tokio::test]
async fn default_mode_falls_back_to_initialize_where_the_stateless_era_is_off() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\nstateless = false\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let report = client(&mcpd.url("/mcp"), "auto").await;
    assert_eq!(report["protocol_version"], "2025-11-25", "the probe's answer sent it to initialize: {report}");
    assert_echoed(&report);
}

#[tokio::test]
async fn a_server_that_speaks_the_stateless_era_gets_its_requests_passed_through() {
    let server = PythonServer::start().await;
    let config = format!("[server.py]\nurl = \"http://127.0.0.1:{}/mcp\"\nport = {{port}}\n", server.port);
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let url = mcpd.url("/mcp");
    let modern = client(&url, "auto").await;
    assert_eq!(modern["protocol_version"], "2026-07-28", "{modern}");
    assert_eq!(modern["server"], "mcpd-python-server", "{modern}");
    assert_eq!(modern["era"][0], "2026-07-28", "the server itself served the stateless request: {modern}");
    assert_echoed(&modern);
    let legacy = client(&url, "legacy").await;
    assert_eq!(legacy["era"][0], "2025-11-25", "a session-era client gets a session upstream: {legacy}");
    assert_echoed(&legacy);
    let log = mcpd.log_text();
    assert!(log.contains("probed the server's protocol era server=py stateless=true"), "{log}");
    assert!(!log.contains("opened an upstream session for stateless clients"), "{log}");
}
