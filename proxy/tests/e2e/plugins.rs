//! WebAssembly plugins on the request path: a real plugin built with the
//! SDK, hostile plugins that must not hurt mcpd, and hot reload.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

/// One pooled route per plugin behaviour, all on the shared listener.
fn hostile_config() -> String {
    let route = |name: &str, mode: &str, extra: &str| {
        format!(
            r#"
[server.{name}]
command = "{{server}}"
[server.{name}.session]
enabled = false
[server.{name}.pool]
size = 1
[[server.{name}.plugins]]
path = "{{plugins}}/mcpd_hostile_plugin.wasm"
config = {{ mode = "{mode}" }}
{extra}
"#
        )
    };
    let mut config = "[gateway]\nlisten = \"127.0.0.1:{port}\"\n".to_string();
    config += &route("ok", "ok", "");
    config += &route("loop", "loop", "timeout = \"20ms\"");
    config += &route("loopopen", "loop", "timeout = \"20ms\"\non_error = \"open\"");
    config += &route("memory", "memory", "max_memory = \"32MB\"\ntimeout = \"5s\"");
    config += &route("trap", "trap", "");
    config += &route("huge", "huge", "max_memory = \"256MB\"\nmax_output = \"1MB\"\ntimeout = \"5s\"");
    config += "\n[server.plain]\ncommand = \"{server}\"\n[server.plain.session]\nenabled = false\n";
    config
}

/// mcpd with one pooled route whose only plugin is the file `live`, at
/// first a copy of the noop plugin; `gateway` is extra `[gateway]` text.
/// The config denies `echo`, which only the example plugin acts on.
async fn start_with_swappable_plugin(live: &std::path::Path, gateway: &str) -> Mcpd {
    std::fs::copy(plugin_dir().join("mcpd_noop_plugin.wasm"), live).unwrap();
    let config = format!(
        r#"
[gateway]
{gateway}
[server.fx]
command = "{{server}}"
port = {{port}}
[server.fx.session]
enabled = false
[[server.fx.plugins]]
path = "{}"
config = {{ deny_tools = ["echo"] }}
"#,
        live.display()
    );
    Mcpd::start(&config, &["/health"]).await
}

/// Replaces `live` atomically with a copy of the plugin file `name`.
fn swap_in(live: &std::path::Path, name: &str) {
    let next = live.with_extension("next");
    std::fs::copy(plugin_dir().join(name), &next).unwrap();
    std::fs::rename(&next, live).unwrap();
}

async fn echo(raw: &Raw, text: &str) -> (u16, serde_json::Value) {
    let (status, body) = raw.rpc(None, tool_call(1, "echo", json!({"text": text}))).await;
    (status, body.into_iter().next().unwrap_or_default())
}

#[tokio::test]
async fn hostile_plugins_fail_their_calls_not_mcpd() {
    let routes = ["ok", "loop", "loopopen", "memory", "trap", "huge", "plain"];
    let health: Vec<String> = routes.iter().map(|r| format!("/{r}/health")).collect();
    let health: Vec<&str> = health.iter().map(String::as_str).collect();
    let mcpd = Mcpd::start(&hostile_config(), &health).await;
    let raw = |route: &str| Raw::new(mcpd.url(&format!("/{route}/mcp")));

    let (status, body) = echo(&raw("ok"), "fine").await;
    assert_eq!((status, body["result"]["content"][0]["text"].as_str()), (200, Some("fine")));

    let (status, body) = echo(&raw("loop"), "x").await;
    assert_eq!(status, 503, "an endless plugin fails closed: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("CPU time limit"), "{body}");

    let (status, body) = echo(&raw("loopopen"), "open").await;
    assert_eq!(status, 200, "on_error = open carries on: {body}");
    assert_eq!(body["result"]["content"][0]["text"], "open");

    let (status, body) = echo(&raw("memory"), "x").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("memory limit"), "{body}");

    let (status, body) = echo(&raw("trap"), "x").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("trapped"), "{body}");

    let (status, body) = echo(&raw("huge"), "x").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("more than its limit"), "{body}");

    // After all that, mcpd serves every route, the same failures again
    // (fresh instances), and the plugin-free route as before.
    let (status, _) = echo(&raw("plain"), "still up").await;
    assert_eq!(status, 200);
    let (status, _) = echo(&raw("trap"), "again").await;
    assert_eq!(status, 503);
    let (status, _) = echo(&raw("ok"), "fine").await;
    assert_eq!(status, 200);

    let metrics = reqwest::get(mcpd.url("/metrics")).await.unwrap().text().await.unwrap();
    for kind in ["timeout", "memory", "trap", "output"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("mcpd_plugin_failures_total") && l.contains(&format!("kind=\"{kind}\""))),
            "no {kind} failure metric in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_slow_plugin_start_is_waited_for_or_refused() {
    let config = |start: &str| {
        format!(
            r#"
[server.fx]
command = "{{server}}"
port = {{port}}
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_hostile_plugin.wasm"
start_timeout = "{start}"
config = {{ mode = "slow-start" }}
"#
        )
    };
    let mcpd = Mcpd::start(&config("30s"), &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    call(&client, "echo", json!({"text": "after a slow start"})).await.expect("works once loaded");
    drop(mcpd);

    let mut refused = Mcpd::start(&config("50ms"), &[]).await;
    let status = tokio::task::spawn_blocking(move || refused.child.wait()).await.unwrap().unwrap();
    assert!(!status.success(), "mcpd refuses to start with a plugin that cannot load in time");
}

#[tokio::test]
async fn the_example_plugin_denies_and_redacts() {
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[[server.fx.plugins]]
path = "{plugins}/mcpd_plugin_example.wasm"
config = { deny_tools = ["crash"], redact = "secret" }
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;

    let (status, body) = raw.rpc(Some(&session), tool_call(1, "crash", json!({}))).await;
    assert_eq!(status, 403, "a denied tool is refused before the server sees it: {body:?}");
    assert_eq!(body[0]["id"], 1);
    assert!(body[0]["error"]["message"].is_string());

    let (status, body) = raw.rpc(Some(&session), tool_call(2, "echo", json!({"text": "my secret plan"}))).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["result"]["content"][0]["text"], "my [redacted] plan", "the answer was redacted");

    // And a real client sees the same through the whole chain.
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    let result = call(&client, "echo", json!({"text": "no secret here"})).await.unwrap();
    assert_eq!(text_of(&result), "no [redacted] here");
    assert!(call(&client, "crash", json!({})).await.is_err());
}

#[tokio::test]
async fn replacing_the_wasm_file_swaps_the_plugin_and_a_bad_file_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.wasm");
    let mcpd = start_with_swappable_plugin(&live, "").await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let (status, _) = echo(&raw, "allowed by noop").await;
    assert_eq!(status, 200);

    // Swap in the example plugin (which denies echo with this config).
    swap_in(&live, "mcpd_plugin_example.wasm");
    eventually("the new plugin takes over", Duration::from_secs(20), || async {
        (echo(&raw, "x").await.0 == 403).then_some(())
    })
    .await;

    // A broken file is refused; the example plugin stays in place.
    let next = live.with_extension("next");
    std::fs::write(&next, b"not a wasm component").unwrap();
    std::fs::rename(&next, &live).unwrap();
    eventually("the failed reload is logged", Duration::from_secs(20), || async {
        mcpd.log_text().contains("plugin reload failed, keeping the running version").then_some(())
    })
    .await;
    assert_eq!(echo(&raw, "x").await.0, 403, "the running plugin kept working");
}

#[tokio::test]
async fn a_scaffolded_plugin_builds_and_runs_in_mcpd() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(mcpd_bin())
        .args(["plugin", "new", "my-guard", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Exactly the build command the README gives; a cached target dir keeps reruns fast.
    let target = plugin_dir().parent().and_then(|p| p.parent()).unwrap().join("scaffold");
    let built = tokio::task::spawn_blocking({
        let crate_dir = dir.path().join("my-guard");
        move || {
            std::process::Command::new("cargo")
                .args(["build", "--target", "wasm32-wasip2", "--release", "--quiet"])
                .current_dir(crate_dir)
                .env("CARGO_TARGET_DIR", &target)
                .status()
                .map(|s| (s.success(), target))
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert!(built.0, "the scaffolded plugin builds");
    let wasm = built.1.join("wasm32-wasip2/release/my_guard.wasm");
    let config = format!(
        r#"
[server.fx]
command = "{{server}}"
port = {{port}}
[[server.fx.plugins]]
path = "{}"
config = {{ deny_tools = ["crash"] }}
"#,
        wasm.display()
    );
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let (status, _) = raw.rpc(Some(&session), tool_call(1, "crash", json!({}))).await;
    assert_eq!(status, 403);
    let (status, _) = raw.rpc(Some(&session), tool_call(2, "echo", json!({"text": "ok"}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sessions_are_capped_per_principal_a_plugin_names() {
    // The example plugin names the principal from x-user, which it sees
    // only because its entry selects that header.
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[server.fx.session]
max_per_client = 1
[[server.fx.plugins]]
path = "{plugins}/mcpd_plugin_example.wasm"
headers = ["x-user"]
config = { principal_header = "x-user" }
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let init = |user: &'static str| raw.post(None, INIT).header("x-user", user).send();
    assert_eq!(init("ada").await.unwrap().status(), 200);
    assert_eq!(init("grace").await.unwrap().status(), 200, "another principal from the same address");
    assert_eq!(init("ada").await.unwrap().status(), 429, "ada's second session is over max_per_client");
}

#[tokio::test]
async fn plugins_get_no_files_network_or_environment() {
    // Something a plugin could reach on loopback if it had network access.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let config = format!(
        r#"
[server.fx]
command = "{{server}}"
port = {{port}}
[server.fx.session]
enabled = false
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_hostile_plugin.wasm"
config = {{ mode = "escape", escape_to = "{target}" }}
"#
    );
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let (status, body) = raw.rpc(None, tool_call(1, "echo", json!({"text": "x"}))).await;
    assert_eq!(status, 200, "{body:?}");
    let seen = &body[0]["result"];
    for attempt in ["file", "dir", "net"] {
        let outcome = seen[attempt].as_str().unwrap_or_default();
        assert!(outcome.starts_with("denied"), "{attempt}: {outcome}");
    }
    assert_eq!(seen["env"], 0, "no environment variables");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing connected to the loopback listener");
}

#[tokio::test]
async fn mcpd_reload_swaps_plugins_when_file_watching_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.wasm");
    let mcpd = start_with_swappable_plugin(&live, "watch_plugins = false").await;
    let raw = Raw::new(mcpd.url("/mcp"));
    swap_in(&live, "mcpd_plugin_example.wasm");
    assert_eq!(echo(&raw, "x").await.0, 200, "the old plugin runs until the reload");

    // Find the config mcpd runs (Mcpd::start wrote it) from the process's arguments.
    let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", mcpd.child.id())).unwrap();
    let config_path = cmdline.split('\0').skip_while(|a| *a != "-c").nth(1).unwrap().to_string();
    let out = std::process::Command::new(mcpd_bin()).args(["reload", "-c", &config_path]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually("the reloaded plugin takes over", Duration::from_secs(20), || async {
        (echo(&raw, "x").await.0 == 403).then_some(())
    })
    .await;
    assert!(mcpd.log_text().contains("SIGHUP: reloading plugins"));
}

#[tokio::test]
async fn methods_limit_which_messages_a_plugin_sees() {
    // The example plugin denies `echo`, but this entry only sees tools/list.
    let route = |name: &str, methods: &str| {
        format!(
            r#"
[server.{name}]
command = "{{server}}"
[server.{name}.session]
enabled = false
[[server.{name}.plugins]]
path = "{{plugins}}/mcpd_plugin_example.wasm"
config = {{ deny_tools = ["echo"] }}
{methods}
"#
        )
    };
    let mut config = "[gateway]\nlisten = \"127.0.0.1:{port}\"\n".to_string();
    config += &route("listonly", "methods = [\"tools/list\"]");
    config += &route("calls", "methods = [\"tools/call\"]");
    let mcpd = Mcpd::start(&config, &["/listonly/health", "/calls/health"]).await;
    let call = |path: &str| {
        let raw = Raw::new(mcpd.url(path));
        async move { raw.rpc(None, tool_call(1, "echo", json!({"text": "x"}))).await.0 }
    };
    assert_eq!(call("/listonly/mcp").await, 200, "the plugin never saw the tools/call");
    assert_eq!(call("/calls/mcp").await, 403, "the plugin saw it and denied it");
}

#[tokio::test]
async fn a_principal_named_in_on_request_reaches_the_response_hooks() {
    // The hostile plugin names the caller `named-late` in on-request (not in
    // the HTTP hook); tool-policy shows `crash` only to that principal, when
    // it filters the tools/list answer in its response hook.
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[[server.fx.plugins]]
path = "{plugins}/mcpd_hostile_plugin.wasm"
config = { mode = "name" }
[[server.fx.plugins]]
path = "{plugins}/mcpd_tool_policy.wasm"
config = { rules = [{ action = "allow", principals = ["named-late"], tools = ["*"] }, { action = "deny", tools = ["crash"] }, { action = "allow", tools = ["*"] }] }
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "crash"), "the list was filtered as if nobody had been named");
}
