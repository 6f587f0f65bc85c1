//! Decisions the first-party plugins ask mcpd to reuse (`reuse-decision`):
//! mcpd answers repeated messages without calling the plugin, yet every
//! limit still holds, every metric still counts, and no caller ever gets
//! another's decision.

use crate::auth::{ISSUER, JwksServer, RSA1, rsa};
use crate::common::*;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// A stateless route behind auth, checking JWTs from `jwks` without clock
/// skew (a token is refused as soon as its `exp` second is over), in one
/// instance (so the first call's store writes, JWKS and route path, are
/// behind every later call), and tool-policy, which lets only `ada` call
/// echo: a principal handed to the wrong token shows as a wrong status.
fn jwt_route(jwks: &JwksServer) -> String {
    format!(
        r#"
[server.fx]
command = "{{server}}"
port = {{port}}
[server.fx.session]
enabled = false
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_auth.wasm"
instances = 1
allow_hosts = ["{jwks_host}"]
[server.fx.plugins.config]
authorization_servers = ["{ISSUER}"]
jwt = {{ jwks_url = "{jwks_url}", clock_skew = "0s" }}
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_tool_policy.wasm"
[server.fx.plugins.config]
rules = [{{ action = "allow", principals = ["ada"], tools = ["echo"] }}]
"#,
        jwks_host = jwks.address,
        jwks_url = jwks.url(),
    )
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// An RS256 token (key `k1`) for mcpd's route, for `sub`, expiring at `exp`.
fn jwt(mcpd: &Mcpd, sub: &str, exp: u64) -> String {
    let claims = json!({"iss": ISSUER, "aud": mcpd.url("/mcp"), "sub": sub, "exp": exp});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, &claims, &rsa(RSA1)).expect("sign")
}

/// Status and JSON-RPC answer of an echo call with this bearer token.
async fn echo_with(raw: &Raw, token: &str) -> (u16, Value) {
    let response = raw.post(None, tool_call(1, "echo", json!({"text": "x"})).to_string()).bearer_auth(token);
    let (status, messages) = messages_of(response.send().await.expect("POST")).await;
    (status, messages.into_iter().last().unwrap_or_default())
}

#[tokio::test]
async fn a_jwt_verdict_is_reused_for_that_token_only_and_never_past_its_expiry() {
    let jwks = JwksServer::start(&[("k1", RSA1)]).await;
    let mcpd = Mcpd::start(&jwt_route(&jwks), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let now = unix_ms() / 1000;
    let ada = jwt(&mcpd, "ada", now + 300);
    let bob = jwt(&mcpd, "bob", now + 300);

    // Bob's first request fetches the JWKS and records the route's path
    // (store writes: not reused); tool-policy refuses him echo.
    assert_eq!(echo_with(&raw, &bob).await.0, 403);
    // Ada's first request is a call whose verdict mcpd keeps; her second
    // is answered with it.
    assert_eq!(echo_with(&raw, &ada).await.0, 200);
    let calls = hook_calls(&metrics(&mcpd).await, "auth", "http_request");
    let (status, answer) = echo_with(&raw, &ada).await;
    assert_eq!(status, 200, "{answer}");
    let metrics_text = metrics(&mcpd).await;
    assert_eq!(hook_calls(&metrics_text, "auth", "http_request"), (calls.0, calls.1 + 1), "{metrics_text}");

    // Another token is not answered with ada's verdict: bob is still bob
    // (kept too, by his own token), and a tampered copy of ada's is refused.
    assert_eq!(echo_with(&raw, &bob).await.0, 403);
    // One signature character changed (not the last, whose low bits are padding).
    let at = ada.len() - 10;
    let swapped = if &ada[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swapped}{}", &ada[..at], &ada[at + 1..]);
    let (status, answer) = echo_with(&raw, &tampered).await;
    assert_eq!(status, 401, "{answer}");

    // A token that expires in 3 s: kept for less than that, and refused as
    // soon as the verifier's second is over, not a minute later.
    let exp = unix_ms() / 1000 + 3;
    let short = jwt(&mcpd, "ada", exp);
    let reused_before = hook_calls(&metrics(&mcpd).await, "auth", "http_request").1;
    let last_accepted = Mutex::new(None::<u64>);
    let (status, answer) = eventually("the expired token is refused", Duration::from_secs(10), || async {
        let sent = unix_ms();
        let (status, answer) = echo_with(&raw, &short).await;
        if status != 200 {
            return Some((status, answer));
        }
        *last_accepted.lock().unwrap() = Some(sent);
        None
    })
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.to_string().contains("the token has expired"), "{answer}");
    let last_accepted = last_accepted.lock().unwrap().expect("accepted before it expired");
    assert!(last_accepted < (exp + 1) * 1000, "accepted {} ms after exp", last_accepted as i64 - (exp * 1000) as i64);
    let reused_after = hook_calls(&metrics(&mcpd).await, "auth", "http_request").1;
    assert!(reused_after > reused_before, "the short-lived token's verdict was kept while it lasted");
}
