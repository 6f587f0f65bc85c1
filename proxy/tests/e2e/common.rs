//! Test harness: start the real `mcpd` binary on free ports with a config
//! that fronts the fixture server, talk to it with real clients, stop it.

use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, ErrorData, ServiceExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// The directory holding the workspace's built binaries (target/debug).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/e2e-xxxx → target/debug
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

pub fn mcpd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcpd"))
}

/// The fixture MCP server; `./dev test` (or `cargo build -p mcpd-test-server`) builds it.
pub fn fixture_server() -> PathBuf {
    let path = bin_dir().join("mcpd-test-server");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p mcpd-test-server` (./dev test does)",
        path.display()
    );
    path
}

/// Where `./dev plugins` puts the WebAssembly plugins.
pub fn plugin_dir() -> PathBuf {
    let dir = bin_dir().parent().expect("target dir").join("wasm32-wasip2/release");
    assert!(
        dir.join("mcpd_noop_plugin.wasm").exists(),
        "no plugins in {}: build them with ./dev plugins",
        dir.display()
    );
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn plugin_dir_if_used(config: &str) -> String {
    match config.contains("{plugins}") {
        true => plugin_dir().display().to_string(),
        false => String::new(),
    }
}

/// A running mcpd. Killed on drop.
pub struct Mcpd {
    pub child: Child,
    pub port: u16,
    /// Holds the config file for as long as mcpd runs.
    _dir: tempfile::TempDir,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Mcpd {
    /// Starts mcpd with `config`, where `{server}` is replaced by the fixture
    /// server's path and `{port}` by a free port. Waits until every health
    /// endpoint in `ready` answers 200.
    pub async fn start(config: &str, ready: &[&str]) -> Mcpd {
        let port = free_port();
        let config = config
            .replace("{server}", &fixture_server().display().to_string())
            .replace("{port}", &port.to_string())
            .replace("{plugins}", &plugin_dir_if_used(config));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mcpd.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(mcpd_bin())
            .args(["run", "-c"])
            .arg(&path)
            .args(["--log-format", "text"])
            .env("RUST_LOG", "info,mcpd=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mcpd");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("MCPD_TEST_LOG").is_some() {
                    eprintln!("mcpd: {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mcpd = Mcpd { child, port, _dir: dir, log };
        for path in ready {
            mcpd.wait_healthy(path).await;
        }
        mcpd
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Polls a health endpoint until it answers 200 (mcpd has no other
    /// readiness signal a client can observe).
    pub async fn wait_healthy(&self, path: &str) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client.get(self.url(path)).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{path} never became healthy; log:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }
}

impl Drop for Mcpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `text` as a config file and runs `mcpd check` on it.
pub fn check_config(text: &str) -> (bool, String, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.keep().join("mcpd.toml");
    std::fs::write(&path, text).expect("write config");
    let out = Command::new(mcpd_bin()).arg("check").arg("-c").arg(&path).output().expect("run mcpd check");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text, path)
}

/// An MCP client (rmcp) that answers server requests and records notifications.
#[derive(Clone, Default)]
pub struct TestClient {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub logs: Arc<Mutex<Vec<Value>>>,
    pub changed: Arc<Notify>,
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientInfo {
        let capabilities: ClientCapabilities =
            serde_json::from_value(json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}}))
                .expect("capabilities JSON");
        InitializeRequestParams::new(capabilities, Implementation::new("mcpd-e2e", "0.1"))
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let asked = serde_json::to_value(&params.messages).unwrap_or_default();
        let prompt = asked.pointer("/0/content/text").and_then(Value::as_str).unwrap_or("?").to_string();
        Ok(CreateMessageResult::new(SamplingMessage::assistant_text(format!("sampled {prompt}")), "test-model".into()))
    }

    async fn create_elicitation(
        &self,
        _: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({"name": "Ada"})))
    }

    async fn list_roots(&self, _: RequestContext<RoleClient>) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![Root::new("file:///tmp/project")]))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(params);
        self.changed.notify_waiters();
    }

    async fn on_logging_message(&self, params: LoggingMessageNotificationParam, _: NotificationContext<RoleClient>) {
        self.logs.lock().unwrap().push(serde_json::to_value(params).unwrap_or_default());
        self.changed.notify_waiters();
    }
}

pub type Client = RunningService<RoleClient, TestClient>;

pub async fn connect(url: &str) -> (Client, TestClient) {
    let handler = TestClient::default();
    let transport = StreamableHttpClientTransport::from_uri(url.to_string());
    let client = handler.clone().serve(transport).await.expect("MCP client connects through mcpd");
    (client, handler)
}

/// Calls a tool and returns the result as JSON.
pub async fn call(client: &Client, tool: &str, arguments: Value) -> Result<Value, rmcp::ServiceError> {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
    client.call_tool(params).await.map(|r| serde_json::to_value(r).unwrap_or_default())
}

pub fn text_of(result: &Value) -> String {
    result.pointer("/content/0/text").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// A raw HTTP view of the endpoint, for the checks a polite SDK never triggers.
pub struct Raw {
    pub http: reqwest::Client,
    pub url: String,
}

impl Raw {
    pub fn new(url: String) -> Raw {
        Raw { http: reqwest::Client::new(), url }
    }

    pub fn post(&self, session: Option<&str>, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .body(body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request
    }

    /// Initializes a session and returns its id.
    pub async fn initialize(&self) -> String {
        let response = self.post(None, INIT.to_string()).send().await.expect("initialize");
        assert_eq!(response.status(), 200);
        let id = response
            .headers()
            .get("mcp-session-id")
            .expect("initialize answer carries Mcp-Session-Id")
            .to_str()
            .unwrap()
            .to_string();
        let _ = response.bytes().await;
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let response = self.post(Some(&id), initialized).send().await.expect("initialized");
        assert_eq!(response.status(), 202);
        id
    }

    /// Sends one request and returns (status, JSON body or SSE events' JSON).
    pub async fn rpc(&self, session: Option<&str>, body: Value) -> (u16, Vec<Value>) {
        let response = self.post(session, body.to_string()).send().await.expect("POST");
        messages_of(response).await
    }
}

/// Status and the JSON-RPC messages of an answer (one JSON body or SSE events).
pub async fn messages_of(response: reqwest::Response) -> (u16, Vec<Value>) {
    let status = response.status().as_u16();
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|c| c.to_str().unwrap_or("").starts_with("text/event-stream"));
    let text = response.text().await.unwrap_or_default();
    let messages = match sse {
        true => sse_data(&text),
        false if text.is_empty() => vec![],
        false => vec![serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"))],
    };
    (status, messages)
}

pub const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// The JSON `data:` payloads of an SSE body.
pub fn sse_data(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| !d.is_empty())
        .map(|d| serde_json::from_str(d).expect("SSE data is JSON"))
        .collect()
}

pub fn tool_call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

/// Polls `probe` until it returns `Some`, for state that only changes
/// through time passing (idle timeouts) or another process's work.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn process_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; check its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.split_whitespace().nth(2).is_some_and(|state| state == "Z"))
        .unwrap_or(false)
}

/// mcpd's `/metrics` text.
pub async fn metrics(mcpd: &Mcpd) -> String {
    reqwest::get(mcpd.url("/metrics")).await.expect("GET /metrics").text().await.expect("metrics text")
}

/// The sum of the series of `name` whose labels include all of `labels`.
pub fn metric(metrics: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|label| l.contains(label.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}
