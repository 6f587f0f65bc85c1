//! The stateless era (protocol 2026-07-28) on the same route as the session
//! era, by raw HTTP: mcpd bridges it to the stdio fixture (which speaks the
//! session era only) over every stdio layout (a process per session, a
//! pool, replicas) and to HTTP fixture instances (Streamable HTTP and
//! SSE-only). Checks the era's answers (`server/discover`, `resultType`,
//! caching hints, the server's identity), its refusals (-32602, -32020,
//! -32021, -32022 with 400; -32601 with 404), server requests turned into
//! `InputRequiredResult`s and resumed, `subscriptions/listen`, that closing
//! the stream cancels upstream, that plugins see stateless requests, and
//! that `stateless = false` makes a probing client fall back.

use crate::common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

pub const MODERN: &str = "2026-07-28";

/// `_meta` of a stateless request, with these client capabilities.
pub fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    })
}

/// A stateless request with its mirrored headers (`Mcp-Name` when the
/// method has one); `extra` headers are added as given.
pub fn modern(raw: &Raw, id: u64, method: &str, mut params: Value, extra: &[(&str, &str)]) -> reqwest::RequestBuilder {
    if params.get("_meta").is_none() {
        params["_meta"] = meta(json!({}));
    }
    let name = params.get("name").or(params.get("uri")).and_then(Value::as_str).map(str::to_owned);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let mut request =
        raw.post(None, body.to_string()).header("mcp-protocol-version", MODERN).header("mcp-method", method);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request
}

/// Status and the JSON-RPC messages of an answer (JSON or SSE).
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, Vec<Value>) {
    let response = request.send().await.expect("POST");
    assert!(response.headers().get("mcp-session-id").is_none(), "the stateless era has no sessions");
    messages_of(response).await
}

async fn call_echo(raw: &Raw, id: u64, text: &str) -> (u16, Vec<Value>) {
    let params = json!({"name": "echo", "arguments": {"text": text}});
    answer(modern(raw, id, "tools/call", params, &[("mcp-param-text", text)])).await
}

/// Discover, list and call through the bridge; the answers are 2026-07-28 shaped.
async fn bridged_basics(raw: &Raw, server_name: &str) {
    let (status, body) = answer(modern(raw, 1, "server/discover", json!({}), &[])).await;
    assert_eq!(status, 200, "{body:?}");
    let result = &body[0]["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["supportedVersions"][0], MODERN, "{result}");
    assert!(result["supportedVersions"].as_array().unwrap().iter().any(|v| v == "2025-11-25"), "mcpd is dual-era");
    assert!(result["capabilities"]["tools"].is_object(), "{result}");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], server_name, "{result}");
    assert!(result["ttlMs"].is_u64() && result["cacheScope"].is_string(), "discover is cacheable: {result}");

    let (status, body) = answer(modern(raw, 2, "tools/list", json!({}), &[])).await;
    assert_eq!(status, 200);
    let result = &body[0]["result"];
    assert_eq!(result["resultType"], "complete");
    assert!(result["ttlMs"].is_u64(), "tools/list carries caching hints: {result}");
    assert!(result["tools"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "echo")), "{result}");
}

#[tokio::test]
async fn per_session_stdio_server_is_bridged_while_sessions_go_on() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    bridged_basics(&raw, "mcpd-test-server").await;

    let (status, body) = call_echo(&raw, 3, "hello").await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(text_of(&body[0]["result"]), "hello");
    assert_eq!(body[0]["result"]["resultType"], "complete");
    assert_eq!(body[0]["id"], 3);

    // Session-era clients on the same route, at the same time.
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    let result = call(&client, "echo", json!({"text": "session"})).await.expect("a session-era call");
    assert_eq!(text_of(&result), "session");
    let (status, body) = call_echo(&raw, 4, "again").await;
    assert_eq!((status, text_of(&body[0]["result"])), (200, "again".to_string()));
    client.cancel().await.expect("close");
    assert!(mcpd.log_text().contains("starting a shared process for stateless clients"));
}

/// The bridge's own process (a route with a process per session) is
/// stopped once idle for `session.timeout`, as a session's process is, and
/// the next stateless request starts another.
#[tokio::test]
async fn the_bridges_own_process_stops_when_idle_and_starts_again_on_demand() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\n[server.fx.session]\ntimeout = \"1s\"\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let pid = |id: u64| {
        let raw = &raw;
        async move {
            let (status, body) = answer(modern(raw, id, "tools/call", json!({"name": "stats"}), &[])).await;
            assert_eq!(status, 200, "{body:?}");
            let stats: Value = serde_json::from_str(&text_of(&body[0]["result"])).expect("stats JSON");
            stats["pid"].as_u64().and_then(|p| u32::try_from(p).ok()).expect("a pid")
        }
    };
    let first = pid(1).await;
    assert!(process_alive(first));
    eventually("the idle shared process stops", Duration::from_secs(15), || async {
        (!process_alive(first)).then_some(())
    })
    .await;
    let second = pid(2).await;
    assert_ne!(first, second, "a new process serves the next request");
    assert!(process_alive(second));
}

#[tokio::test]
async fn the_eras_checks_refuse_what_the_spec_refuses() {
    let mcpd = Mcpd::start("[server.fx]\ncommand = \"{server}\"\nport = {port}\n", &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let code = |body: &[Value]| body[0]["error"]["code"].as_i64();

    // The envelope: -32602.
    let no_meta = json!({"jsonrpc": "2.0", "id": 5, "method": "server/discover", "params": {}});
    let request = raw
        .post(None, no_meta.to_string())
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "server/discover");
    let (status, body) = answer(request).await;
    assert_eq!((status, code(&body), body[0]["id"].as_u64()), (400, Some(-32602), Some(5)), "{body:?}");

    // Mirrored headers: -32020.
    let params = json!({"name": "echo", "arguments": {"text": "x"}});
    let body = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": meta(json!({}))}});
    let request = raw
        .post(None, body.to_string())
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "other")
        .header("mcp-param-text", "x");
    let (status, body) = answer(request).await;
    assert_eq!((status, code(&body)), (400, Some(-32020)), "Mcp-Name differs: {body:?}");
    let (status, body) = answer(modern(&raw, 7, "tools/call", params.clone(), &[("mcp-param-text", "y")])).await;
    assert_eq!((status, code(&body)), (400, Some(-32020)), "Mcp-Param-Text differs: {body:?}");
    let (status, body) = answer(modern(&raw, 8, "tools/call", params.clone(), &[])).await;
    assert_eq!((status, code(&body)), (400, Some(-32020)), "Mcp-Param-Text missing: {body:?}");
    let encoded = ("mcp-param-text", "=?base64?eA==?=");
    let (status, body) = answer(modern(&raw, 9, "tools/call", params, &[encoded])).await;
    assert_eq!((status, text_of(&body[0]["result"])), (200, "x".to_string()), "base64 sentinel decoded: {body:?}");
    let mut lying = meta(json!({}));
    lying["io.modelcontextprotocol/protocolVersion"] = json!("v999");
    let (status, body) = answer(modern(&raw, 10, "tools/list", json!({"_meta": lying}), &[])).await;
    assert_eq!((status, code(&body)), (400, Some(-32020)), "header and _meta versions differ: {body:?}");

    // An unknown version: -32022 with what is supported.
    let mut old = meta(json!({}));
    old["io.modelcontextprotocol/protocolVersion"] = json!("v999");
    let request = raw
        .post(
            None,
            json!({"jsonrpc": "2.0", "id": 11, "method": "server/discover", "params": {"_meta": old}}).to_string(),
        )
        .header("mcp-protocol-version", "v999")
        .header("mcp-method", "server/discover");
    let (status, body) = answer(request).await;
    assert_eq!((status, code(&body)), (400, Some(-32022)), "{body:?}");
    assert_eq!(body[0]["error"]["data"]["requested"], "v999");
    assert_eq!(body[0]["error"]["data"]["supported"][0], MODERN);

    // Removed and unknown methods: 404 with -32601.
    for (id, method) in [(12, "initialize"), (13, "ping"), (14, "logging/setLevel"), (15, "unknown/method")] {
        let (status, body) = answer(modern(&raw, id, method, json!({}), &[])).await;
        assert_eq!((status, code(&body), body[0]["id"].as_u64()), (404, Some(-32601), Some(id)), "{method}: {body:?}");
    }
    // The era has no client notifications over HTTP: accepted and dropped.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    let response = raw.post(None, note.to_string()).header("mcp-protocol-version", MODERN).send().await.expect("POST");
    assert_eq!(response.status(), 202);
    // The gateway is still fine.
    assert_eq!(call_echo(&raw, 16, "ok").await.0, 200);
}

#[tokio::test]
async fn server_requests_logs_and_progress_follow_the_era() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\n[server.fx.session]\nenabled = false\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));

    // The server asks for sampling; the client did not declare it: -32021.
    let (status, body) = answer(modern(&raw, 1, "tools/call", json!({"name": "sample", "arguments": {}}), &[])).await;
    assert_eq!((status, body[0]["error"]["code"].as_i64()), (400, Some(-32021)), "{body:?}");
    assert!(body[0]["error"]["data"]["requiredCapabilities"]["sampling"].is_object(), "{body:?}");

    // Logs only when the request asked for them, at or above its level.
    let log = json!({"name": "log", "arguments": {"message": "m"}});
    let (status, body) = answer(modern(&raw, 2, "tools/call", log.clone(), &[])).await;
    assert_eq!(status, 200);
    assert!(!body.iter().any(|m| m["method"] == "notifications/message"), "no logLevel, no logs: {body:?}");
    let mut asked = log.clone();
    let mut with_level = meta(json!({}));
    with_level["io.modelcontextprotocol/logLevel"] = json!("info");
    asked["_meta"] = with_level.clone();
    let (_, body) = answer(modern(&raw, 3, "tools/call", asked, &[])).await;
    assert!(body.iter().any(|m| m["method"] == "notifications/message"), "logLevel info: {body:?}");
    let mut above = log;
    with_level["io.modelcontextprotocol/logLevel"] = json!("error");
    above["_meta"] = with_level;
    let (_, body) = answer(modern(&raw, 4, "tools/call", above, &[])).await;
    assert!(!body.iter().any(|m| m["method"] == "notifications/message"), "an info log is below error: {body:?}");

    // Progress belongs to its request's stream.
    let mut progress_meta = meta(json!({}));
    progress_meta["progressToken"] = json!("tok");
    let progress = json!({"name": "progress", "arguments": {"steps": 2}, "_meta": progress_meta});
    let (status, body) = answer(modern(&raw, 5, "tools/call", progress, &[])).await;
    assert_eq!(status, 200);
    let steps: Vec<&Value> = body.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(steps.len(), 2, "{body:?}");
    assert_eq!(steps[0]["params"]["progressToken"], "tok");
    assert_eq!(body.last().unwrap()["result"]["resultType"], "complete");
}

#[tokio::test]
async fn closing_the_stream_cancels_the_request_upstream() {
    // One pooled process: the one that sees the cancellation reports it.
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\n[server.fx.session]\nenabled = false\n[server.fx.pool]\nsize = 1\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut progress_meta = meta(json!({}));
    progress_meta["progressToken"] = 1.into();
    let slow = json!({"name": "progress", "arguments": {"steps": 400, "interval_ms": 50}, "_meta": progress_meta});
    let response = modern(&raw, 1, "tools/call", slow, &[]).send().await.expect("POST");
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.expect("a first event").expect("bytes");
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"), "the request is running");
    drop(stream); // the client goes away

    let stats = || async {
        let (_, body) = answer(modern(&raw, 2, "tools/call", json!({"name": "stats", "arguments": {}}), &[])).await;
        let stats: Value = serde_json::from_str(&text_of(&body[0]["result"])).ok()?;
        (stats["cancelled"].as_u64()? >= 1).then_some(())
    };
    eventually("the server to see notifications/cancelled", Duration::from_secs(10), stats).await;
}

#[tokio::test]
async fn replicas_and_http_instances_are_bridged_too() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\nreplicas = 2\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    bridged_basics(&raw, "mcpd-test-server").await;
    assert_eq!(call_echo(&raw, 3, "r").await.0, 200);
    drop(mcpd);

    let upstream = crate::http_upstream::Upstream::start("i0", &[]);
    let upstream_port = upstream.port;
    let config = format!("[server.fx]\nurl = {:?}\nport = {{port}}\n", upstream.url("/mcp"));
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    bridged_basics(&raw, "mcpd-http-test-server").await;
    let whoami = || async {
        let (status, body) =
            answer(modern(&raw, 4, "tools/call", json!({"name": "whoami", "arguments": {}}), &[])).await;
        assert_eq!(status, 200, "{body:?}");
        text_of(&body[0]["result"])
    };
    assert_eq!(whoami().await, "i0");
    let session = || async {
        let (_, body) =
            answer(modern(&raw, 5, "tools/call", json!({"name": "session_info", "arguments": {}}), &[])).await;
        body[0]["result"]["structuredContent"]["session_id"].as_str().map(str::to_owned).expect("an upstream session")
    };
    assert_eq!(session().await, session().await, "stateless requests share the session mcpd keeps upstream");
    // The log reader thread may not have the line yet.
    eventually("the log says the upstream session was opened", Duration::from_secs(5), || async {
        mcpd.log_text().contains("opened an upstream session for stateless clients").then_some(())
    })
    .await;

    // An instance that forgets the session (here: restarted) gets a new one,
    // and the request that found out is sent again: the client sees nothing.
    let (mut upstream, port) = (upstream, upstream_port);
    upstream.kill();
    let _again = crate::http_upstream::Upstream::start_on(port, "i0");
    assert_eq!(whoami().await, "i0");
}

#[tokio::test]
async fn with_stateless_off_a_probing_client_is_told_to_initialize() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\nstateless = false\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let (status, body) = answer(modern(&raw, 1, "server/discover", json!({}), &[])).await;
    assert_eq!(status, 400);
    let code = body[0]["error"]["code"].as_i64().expect("a JSON-RPC error");
    assert!(!(-32099..=-32020).contains(&code), "not a stateless-era error, so clients fall back: {body:?}");
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    assert_eq!(text_of(&call(&client, "echo", json!({"text": "s"})).await.expect("echo")), "s");
}

#[tokio::test]
async fn plugins_see_stateless_requests_without_a_session() {
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[[server.fx.plugins]]
path = "{plugins}/mcpd_plugin_example.wasm"
headers = ["x-user"]
config = { principal_header = "x-user" }
[[server.fx.plugins]]
path = "{plugins}/mcpd_tool_policy.wasm"
[server.fx.plugins.config]
default = "deny"
rules = [{ action = "allow", principals = ["ada"], tools = ["echo"] }]
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let echo = json!({"name": "echo", "arguments": {"text": "p"}});
    let as_ada = [("mcp-param-text", "p"), ("x-user", "ada")];
    let (status, body) = answer(modern(&raw, 1, "tools/call", echo.clone(), &as_ada)).await;
    assert_eq!((status, text_of(&body[0]["result"])), (200, "p".to_string()), "{body:?}");
    let as_bob = [("mcp-param-text", "p"), ("x-user", "bob")];
    let (status, body) = answer(modern(&raw, 2, "tools/call", echo, &as_bob)).await;
    assert_eq!((status, body[0]["error"]["message"].as_str()), (403, Some("tool echo is not allowed")), "{body:?}");
    let (status, body) = answer(modern(&raw, 3, "tools/list", json!({}), &[("x-user", "ada")])).await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        body[0]["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["echo"], "the response hook filtered the stateless answer");
}

#[tokio::test]
async fn server_requests_become_input_required_results_and_retries_resume_the_call() {
    let mcpd = Mcpd::start("[server.fx]\ncommand = \"{server}\"\nport = {port}\n", &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let elicit = |id: u64, extra: Value| {
        let mut params =
            json!({"name": "elicit", "arguments": {"message": "Name?"}, "_meta": meta(json!({"elicitation": {}}))});
        for (key, value) in extra.as_object().unwrap() {
            params[key] = value.clone();
        }
        modern(&raw, id, "tools/call", params, &[])
    };

    let (status, body) = answer(elicit(1, json!({}))).await;
    assert_eq!(status, 200, "{body:?}");
    let result = &body[0]["result"];
    assert_eq!(result["resultType"], "input_required", "{result}");
    assert_eq!(result["inputRequests"]["elicitation"]["method"], "elicitation/create", "{result}");
    assert_eq!(result["inputRequests"]["elicitation"]["params"]["message"], "Name?", "{result}");
    let state = result["requestState"].as_str().expect("a requestState").to_string();

    // A retry without the answer is asked again, under a new state.
    let (_, body) = answer(elicit(2, json!({"requestState": state, "inputResponses": {"wrong": {}}}))).await;
    assert_eq!(body[0]["result"]["resultType"], "input_required", "{body:?}");
    let state = body[0]["result"]["requestState"].as_str().expect("a new requestState").to_string();

    // An altered state is refused.
    let tampered =
        json!({"requestState": format!("{state}-TAMPERED"), "inputResponses": {"elicitation": {"action": "decline"}}});
    let (status, body) = answer(elicit(3, tampered)).await;
    assert_eq!((status, body[0]["error"]["code"].as_i64()), (400, Some(-32602)), "{body:?}");

    // The answer resumes the call the server is still waiting in.
    let input = json!({"elicitation": {"action": "accept", "content": {"name": "Ada"}}});
    let (status, body) = answer(elicit(4, json!({"requestState": state, "inputResponses": input}))).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(body[0]["id"], 4, "the retry's id: {body:?}");
    assert_eq!(body[0]["result"]["resultType"], "complete");
    assert_eq!(text_of(&body[0]["result"]), r#"action=accept content={"name":"Ada"}"#);
    // Each state serves one retry.
    let again = json!({"requestState": state, "inputResponses": input});
    assert_eq!(answer(elicit(5, again)).await.0, 400);
}

/// Reads SSE events' JSON payloads from a response body as they come.
struct Events {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    fn of(response: reqwest::Response) -> Events {
        Events { stream: Box::pin(response.bytes_stream()), buffer: String::new() }
    }

    /// The next event's JSON (comments skipped), within 10 s.
    async fn next(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data.join("\n")).expect("SSE data is JSON");
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next()).await.expect("an event in time");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.expect("the stream goes on").expect("bytes")));
        }
    }
}

#[tokio::test]
async fn subscriptions_listen_carries_the_change_notifications_asked_for() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\n[server.fx.session]\nenabled = false\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let (_, body) = answer(modern(&raw, 1, "server/discover", json!({}), &[])).await;
    assert_eq!(body[0]["result"]["capabilities"]["tools"]["listChanged"], true, "mcpd serves listen here: {body:?}");

    let filter = json!({"notifications": {"toolsListChanged": true, "resourceSubscriptions": ["test://hello"]}});
    let response = modern(&raw, 77, "subscriptions/listen", filter, &[]).send().await.expect("listen");
    assert_eq!(response.status(), 200);
    let mut events = Events::of(response);
    let ack = events.next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{ack}");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 77);
    assert_eq!(ack["params"]["notifications"], json!({"toolsListChanged": true}), "what mcpd honours: {ack}");

    let change = |id: u64, kind: &str| {
        let params = json!({"name": "changed", "arguments": {"kind": kind}});
        answer(modern(&raw, id, "tools/call", params, &[]))
    };
    assert_eq!(change(2, "prompts").await.0, 200);
    assert_eq!(change(3, "tools").await.0, 200);
    let notice = events.next().await;
    assert_eq!(notice["method"], "notifications/tools/list_changed", "prompts were not asked for: {notice}");
    assert_eq!(notice["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 77);
}

#[tokio::test]
async fn subscriptions_listen_through_a_kept_http_session() {
    let upstream = crate::http_upstream::Upstream::start("i0", &[]);
    let config = format!("[server.fx]\nurl = {:?}\nport = {{port}}\n", upstream.url("/mcp"));
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let filter = json!({"notifications": {"toolsListChanged": true}});
    let response = modern(&raw, 9, "subscriptions/listen", filter, &[]).send().await.expect("listen");
    assert_eq!(response.status(), 200);
    let mut events = Events::of(response);
    assert_eq!(events.next().await["method"], "notifications/subscriptions/acknowledged");
    // The instance sends it on the GET stream of the session mcpd keeps,
    // once mcpd has that stream open.
    eventually("the kept session's GET stream", Duration::from_secs(10), || async {
        let (_, body) = answer(modern(&raw, 2, "tools/call", json!({"name": "changed", "arguments": {}}), &[])).await;
        (body[0]["result"]["isError"] != true && body[0]["error"].is_null()).then_some(())
    })
    .await;
    let notice = events.next().await;
    assert_eq!(notice["method"], "notifications/tools/list_changed", "{notice}");
    assert_eq!(notice["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 9);
}

#[tokio::test]
async fn an_sse_only_instance_is_bridged_too() {
    let upstream = crate::http_upstream::Upstream::start("legacy", &[]);
    let config = format!(
        "[server.fx]\nurl = {:?}\nport = {{port}}\n[server.fx.upstream]\ntransport = \"sse\"\n",
        upstream.url("/sse")
    );
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    bridged_basics(&raw, "mcpd-http-test-server").await;
    let (status, body) = answer(modern(&raw, 3, "tools/call", json!({"name": "whoami", "arguments": {}}), &[])).await;
    assert_eq!((status, text_of(&body[0]["result"])), (200, "legacy".to_string()), "{body:?}");
    let mut with_token = meta(json!({}));
    with_token["progressToken"] = json!("p");
    let slow = json!({"name": "slow_stream", "arguments": {"count": 2, "interval_ms": 1}, "_meta": with_token});
    let (status, body) = answer(modern(&raw, 4, "tools/call", slow, &[])).await;
    assert_eq!(status, 200);
    assert_eq!(body.iter().filter(|m| m["method"] == "notifications/progress").count(), 2, "{body:?}");
    assert_eq!(body.last().unwrap()["result"]["resultType"], "complete", "{body:?}");
}
