//! The first-party rate-limit and tool-policy plugins in the real mcpd, in
//! front of the fixture server. The SDK's example plugin goes first in each
//! chain: it names the principal from the `x-user` header, as an auth plugin
//! would from a credential.

use crate::common::*;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

/// A route `fx` on its own port whose chain is the example plugin (principal
/// from `x-user`) followed by `plugin` with this `config` table body.
fn chain(plugin: &str, config: &str) -> String {
    format!(
        r#"
[server.fx]
command = "{{server}}"
port = {{port}}
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_plugin_example.wasm"
headers = ["x-user"]
config = {{ principal_header = "x-user" }}
[[server.fx.plugins]]
path = "{{plugins}}/{plugin}"
[server.fx.plugins.config]
{config}
"#
    )
}

/// The answer to one POST: status, `Retry-After`, and the JSON-RPC message.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// Posts `body` in `session`, as `user` when given.
async fn post_as(raw: &Raw, session: &str, user: Option<&str>, body: Value) -> Answer {
    let mut request = raw.post(Some(session), body.to_string());
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let retry_after = header("retry-after");
    let sse = header("content-type").is_some_and(|c| c.starts_with("text/event-stream"));
    let text = response.text().await.unwrap_or_default();
    let body = match sse {
        true => sse_data(&text).into_iter().last().unwrap_or_default(),
        false => serde_json::from_str(&text).unwrap_or_default(),
    };
    Answer { status, retry_after, body }
}

/// A session opened with this header on both initialize messages.
async fn initialize_with(raw: &Raw, header: &str, value: &str) -> String {
    let response = raw.post(None, INIT).header(header, value).send().await.expect("initialize");
    assert_eq!(response.status(), 200);
    let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).expect("a session id");
    let session = session.to_string();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let response = raw.post(Some(&session), initialized).header(header, value).send().await.expect("initialized");
    assert_eq!(response.status(), 202);
    session
}

async fn echo_as(raw: &Raw, session: &str, user: Option<&str>, id: u64) -> Answer {
    post_as(raw, session, user, tool_call(id, "echo", json!({"text": "hi"}))).await
}

/// An rmcp client that sends `x-user: user` with every request.
async fn connect_as(url: &str, user: &str) -> Client {
    connect_with(url, "x-user", user).await
}

/// An rmcp client that sends this header with every request.
async fn connect_with(url: &str, header: &'static str, value: &str) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    config.custom_headers.insert(HeaderName::from_static(header), HeaderValue::from_str(value).expect("header"));
    let transport = StreamableHttpClientTransport::from_config(config);
    TestClient::default().serve(transport).await.expect("MCP client connects through mcpd")
}

async fn tool_names(client: &Client) -> Vec<String> {
    let tools = client.list_all_tools().await.expect("tools/list");
    tools.into_iter().map(|t| t.name.to_string()).collect()
}

#[tokio::test]
async fn rate_limit_refuses_the_call_after_the_rate_with_429_and_retry_after() {
    let config = chain(
        "mcpd_rate_limit.wasm",
        r#"metric_identities = ["ada"]
limits = [{ key = "principal", rate = 3, per = "1h" }]"#,
    );
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;

    for id in 1..=3 {
        let answer = echo_as(&raw, &session, Some("ada"), id).await;
        assert_eq!(answer.status, 200, "call {id} is within the rate: {}", answer.body);
    }
    let refused = echo_as(&raw, &session, Some("ada"), 4).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    // One token of 3 an hour is back in 20 minutes.
    assert_eq!(refused.retry_after.as_deref(), Some("1200"));
    let error = &refused.body["error"];
    assert_eq!((refused.body["id"].as_u64(), error["code"].as_i64()), (Some(4), Some(-32002)), "{}", refused.body);
    assert_eq!(error["data"]["limit"], "principal 3/1h");
    assert!(error["data"]["retry_after_ms"].as_u64().is_some_and(|ms| ms > 1_190_000), "{error}");

    // Another principal has a bucket of its own; a caller without one is
    // counted by its address; and tools/list is not counted at all.
    assert_eq!(echo_as(&raw, &session, Some("grace"), 5).await.status, 200);
    for id in 6..=8 {
        assert_eq!(echo_as(&raw, &session, None, id).await.status, 200);
    }
    assert_eq!(echo_as(&raw, &session, None, 9).await.status, 429, "the address's bucket is spent too");
    let list = post_as(&raw, &session, Some("ada"), json!({"jsonrpc": "2.0", "id": 10, "method": "tools/list"})).await;
    assert_eq!(list.status, 200, "{}", list.body);

    let metrics = metrics(&mcpd).await;
    let limited =
        metrics.lines().find(|l| l.starts_with("mcpd_plugin_rate_limit_limited_total") && l.contains("who=\"ada\""));
    assert!(limited.is_some_and(|l| l.ends_with(" 1")), "no limited count for ada in:\n{metrics}");
    let anonymous =
        metrics.lines().find(|l| l.starts_with("mcpd_plugin_rate_limit_hits_total") && l.contains("via=\"client\""));
    assert!(anonymous.is_some_and(|l| l.contains("who=\"other\"") && l.ends_with(" 4")), "{metrics}");
}

#[tokio::test]
async fn rate_limit_tool_globs_and_bursts_per_client_address() {
    let config = chain(
        "mcpd_rate_limit.wasm",
        r#"limits = [
  { key = "client", tools = ["ec*"], rate = 2, per = "1h" },
  { key = "client", rate = 1, per = "1h", burst = 4 },
]"#,
    );
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let log = |id| tool_call(id, "log", json!({"message": "m"}));

    assert_eq!(echo_as(&raw, &session, Some("ada"), 1).await.status, 200);
    assert_eq!(echo_as(&raw, &session, Some("grace"), 2).await.status, 200, "client keys ignore principals");
    let refused = echo_as(&raw, &session, None, 3).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["error"]["data"]["limit"], "client 2/1h tools=ec*");
    // The refused echo spent nothing of the burst of 4, so 2 more calls fit.
    assert_eq!(post_as(&raw, &session, None, log(4)).await.status, 200);
    assert_eq!(post_as(&raw, &session, None, log(5)).await.status, 200);
    let refused = post_as(&raw, &session, None, log(6)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.retry_after.as_deref(), Some("3600"), "1 an hour, whatever the burst");
}

/// Tools for `admin`; echo, log and one resource for anyone authenticated;
/// nothing for anonymous callers.
const POLICY: &str = r#"default = "deny"
rules = [
  { action = "allow", principals = ["admin"], tools = ["*"], resources = ["*"], prompts = ["*"] },
  { action = "allow", principals = ["*"], tools = ["echo", "log"], resources = ["test://hello"] },
]"#;

#[tokio::test]
async fn tool_policy_lists_only_what_a_caller_may_use_and_refuses_the_rest() {
    let mcpd = Mcpd::start(&chain("mcpd_tool_policy.wasm", POLICY), &["/health"]).await;
    let url = mcpd.url("/mcp");

    let ada = connect_as(&url, "ada").await;
    assert_eq!(tool_names(&ada).await, ["echo", "log"]);
    assert!(ada.list_all_prompts().await.expect("prompts/list").is_empty(), "no rule allows ada prompts");
    let resources = ada.list_all_resources().await.expect("resources/list");
    assert_eq!(resources.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(), ["test://hello"]);
    let result = call(&ada, "echo", json!({"text": "allowed"})).await.expect("echo is allowed");
    assert_eq!(text_of(&result), "allowed");
    assert!(call(&ada, "sleep", json!({"ms": 1})).await.is_err(), "sleep is not ada's");

    let admin = connect_as(&url, "admin").await;
    assert_eq!(tool_names(&admin).await.len(), 11, "admin sees every fixture tool");
    assert_eq!(admin.list_all_prompts().await.expect("prompts/list").len(), 1);

    let (anonymous, _) = connect(&url).await;
    assert!(tool_names(&anonymous).await.is_empty());

    // What a refusal looks like on the wire.
    let raw = Raw::new(url);
    let session = raw.initialize().await;
    let denied = post_as(&raw, &session, Some("ada"), tool_call(7, "sleep", json!({"ms": 1}))).await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!((denied.body["id"].as_u64(), denied.body["error"]["code"].as_i64()), (Some(7), Some(-32011)));
    assert_eq!(denied.body["error"]["message"], "tool sleep is not allowed");
    let read = json!({"jsonrpc": "2.0", "id": 8, "method": "resources/read", "params": {"uri": "test://hello"}});
    assert_eq!(post_as(&raw, &session, None, read).await.status, 403, "anonymous callers read nothing");

    let metrics = metrics(&mcpd).await;
    assert!(metrics.lines().any(|l| l.starts_with("mcpd_plugin_tool_policy_hidden_total")), "{metrics}");
}

/// `mcpd_plugin_calls_total` of `plugin`'s `hook`, all outcomes summed.
fn calls(metrics: &str, plugin: &str, hook: &str) -> u64 {
    metric(metrics, "mcpd_plugin_calls_total", &[("plugin", plugin), ("hook", hook)])
}

/// tool-policy declares (contract 0.2.0) that its request hook wants only
/// requests naming a tool, prompt or resource and its response hook only
/// list answers: mcpd calls it for nothing else.
#[tokio::test]
async fn a_plugin_is_called_only_for_the_methods_it_declares() {
    let mcpd = Mcpd::start(&chain("mcpd_tool_policy.wasm", POLICY), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    assert_eq!(post_as(&raw, &session, Some("ada"), list).await.status, 200);
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    assert_eq!(post_as(&raw, &session, Some("ada"), ping).await.status, 200);
    let echo = post_as(&raw, &session, Some("ada"), tool_call(4, "echo", json!({"text": "hi"}))).await;
    assert_eq!(echo.status, 200, "{}", echo.body);

    let metrics = metrics(&mcpd).await;
    // initialize, tools/list and ping requests and every answer but the
    // list's never reach it; the example plugin before it sees them all.
    assert_eq!(calls(&metrics, "tool-policy", "request"), 1, "only the tools/call\n{metrics}");
    assert_eq!(calls(&metrics, "tool-policy", "response"), 1, "only the tools/list answer\n{metrics}");
    assert!(calls(&metrics, "mcpd-plugin-example", "response") >= 4, "{metrics}");
}

#[tokio::test]
async fn tool_policy_renames_tools_in_lists_and_maps_calls_back() {
    let config = r#"default = "allow"
prefix = "fx_"
rename = { echo = "say" }
rules = [{ action = "deny", tools = ["crash"] }]"#;
    let mcpd = Mcpd::start(&chain("mcpd_tool_policy.wasm", config), &["/health"]).await;
    let url = mcpd.url("/mcp");

    let client = connect_as(&url, "ada").await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"say".to_string()) && names.contains(&"fx_log".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n == "echo" || n == "fx_echo" || n.ends_with("crash")), "{names:?}");
    assert_eq!(names.len(), 10, "every fixture tool but crash: {names:?}");

    let result = call(&client, "say", json!({"text": "renamed"})).await.expect("say reaches echo");
    assert_eq!(text_of(&result), "renamed");
    let result = call(&client, "fx_log", json!({"message": "m"})).await.expect("fx_log reaches log");
    assert_eq!(text_of(&result), "logged");

    let raw = Raw::new(url);
    let session = raw.initialize().await;
    let unknown = post_as(&raw, &session, None, tool_call(3, "echo", json!({"text": "x"}))).await;
    assert_eq!((unknown.status, unknown.body["error"]["code"].as_i64()), (400, Some(-32602)), "{}", unknown.body);
    let denied = post_as(&raw, &session, None, tool_call(4, "fx_crash", json!({}))).await;
    assert_eq!(denied.status, 403, "rules use the server's names: {}", denied.body);
}

/// The whole chain as it is meant to run: auth names the principal and its
/// scopes, rate-limit counts per principal, tool-policy decides by scope.
#[tokio::test]
async fn auth_rate_limit_and_tool_policy_in_one_chain() {
    // API keys `key-reader` and `key-writer`, as their SHA-256.
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[[server.fx.plugins]]
path = "{plugins}/mcpd_auth.wasm"
[server.fx.plugins.config]
public_url = "http://127.0.0.1:{port}/mcp"
api_keys = [
  { name = "reader", sha256 = "67ab43ac87e38e66cdba75bd8fbf29456cd4b3423274a12710afa509ebf8a1c6", scopes = ["read"] },
  { name = "writer", sha256 = "64e0075bff581d0d7eb785d43b1d4f85a4dc75243e2bc07eab3ee8dfbfe0fd91", scopes = ["read", "write"] },
]
[[server.fx.plugins]]
path = "{plugins}/mcpd_rate_limit.wasm"
[server.fx.plugins.config]
limits = [{ key = "principal", rate = 2, per = "1h" }]
[[server.fx.plugins]]
path = "{plugins}/mcpd_tool_policy.wasm"
[server.fx.plugins.config]
rules = [
  { action = "allow", scopes = ["write"], tools = ["sleep", "log"] },
  { action = "allow", scopes = ["read"], tools = ["echo"] },
]
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let url = mcpd.url("/mcp");

    let reader = connect_with(&url, "x-api-key", "key-reader").await;
    let writer = connect_with(&url, "x-api-key", "key-writer").await;
    assert_eq!(tool_names(&reader).await, ["echo"], "scopes from auth reach the list filter");
    assert_eq!(tool_names(&writer).await, ["echo", "sleep", "log"]);

    let raw = Raw::new(url);
    let session = initialize_with(&raw, "x-api-key", "key-reader").await;
    let as_reader = |body: Value| {
        let request = raw.post(Some(&session), body.to_string()).header("x-api-key", "key-reader");
        async move { request.send().await.expect("POST").status().as_u16() }
    };
    assert_eq!(as_reader(tool_call(1, "echo", json!({"text": "x"}))).await, 200);
    assert_eq!(as_reader(tool_call(2, "log", json!({"message": "m"}))).await, 403, "log needs scope write");
    // rate-limit runs before tool-policy, so the refused call counted too.
    assert_eq!(as_reader(tool_call(3, "echo", json!({"text": "x"}))).await, 429);
    let result = call(&writer, "log", json!({"message": "m"})).await.expect("the writer has its own bucket");
    assert_eq!(text_of(&result), "logged");
}
