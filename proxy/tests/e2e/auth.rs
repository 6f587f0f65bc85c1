//! The first-party auth plugin in the real mcpd: OAuth challenges and
//! protected-resource metadata, JWTs checked against a JWKS that a loopback
//! server publishes (fetched through the plugin's allow-listed HTTP), API
//! keys, tool scopes with step-up, and signing-key rotation.

use crate::common::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// Test keys of the plugin's own unit tests.
pub const RSA1: &str = include_str!("../../../plugins/auth/testdata/rsa1.pem");
const RSA2: &str = include_str!("../../../plugins/auth/testdata/rsa2.pem");
pub const ISSUER: &str = "https://auth.test";
const API_KEY: &str = "e2e-api-key";
/// `printf %s e2e-api-key | sha256sum`: what the config holds instead of the key.
const API_KEY_SHA256: &str = "4ef78803d8fc2e82a84b91cf3080df3142474ed2864ba0e7b7b890ead8b811c0";

/// A loopback JWKS endpoint whose document a test can replace; counts fetches.
pub struct JwksServer {
    pub address: SocketAddr,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(keys: &[(&str, &str)]) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let document = Arc::new(Mutex::new(jwks(keys)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (Arc::clone(&document), Arc::clone(&fetches));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (doc, count) = (Arc::clone(&doc), Arc::clone(&count));
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let body = doc.lock().unwrap().clone();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        JwksServer { address, document, fetches }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.address)
    }

    fn publish(&self, keys: &[(&str, &str)]) {
        *self.document.lock().unwrap() = jwks(keys);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A JWKS publishing the public halves of these (kid, RSA private key PEM).
fn jwks(keys: &[(&str, &str)]) -> String {
    let keys = keys
        .iter()
        .map(|(kid, pem)| {
            let mut jwk = Jwk::from_encoding_key(&rsa(pem), Algorithm::RS256).expect("public JWK");
            jwk.common.key_id = Some(kid.to_string());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).expect("JWKS")
}

pub fn rsa(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test key")
}

/// An RS256 token for mcpd's route, signed with `pem` under `kid`.
fn token(mcpd: &Mcpd, pem: &str, kid: &str, sub: &str, scope: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let claims = json!({"iss": ISSUER, "aud": mcpd.url("/mcp"), "sub": sub, "scope": scope, "exp": now + 300});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, &claims, &rsa(pem)).expect("sign")
}

/// mcpd with route `fx` (own port) behind the auth plugin, trusting
/// 127.0.0.1 as a proxy and fetching keys from `jwks`.
async fn start(jwks: &JwksServer) -> Mcpd {
    let config = format!(
        r#"
[server.fx]
command = "{{server}}"
port = {{port}}
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_auth.wasm"
headers = ["host"]
allow_hosts = ["{jwks_host}"]
[server.fx.plugins.config]
authorization_servers = ["{ISSUER}"]
required_scopes = ["mcp:read"]
tool_scopes = {{ "l*" = "mcp:logs" }}
trusted_proxies = ["127.0.0.1"]
api_keys = [{{ name = "ci-bot", sha256 = "{API_KEY_SHA256}", scopes = ["mcp:read"] }}]
jwt = {{ jwks_url = "{jwks_url}" }}
"#,
        jwks_host = jwks.address,
        jwks_url = jwks.url(),
    );
    Mcpd::start(&config, &["/health"]).await
}

/// An rmcp client sending `Authorization: Bearer <credential>`.
async fn connect_with(url: &str, credential: &str) -> Result<Client, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).auth_header(credential.to_string());
    let transport = StreamableHttpClientTransport::from_config(config);
    TestClient::default().serve(transport).await.map_err(|e| e.to_string())
}

/// Posts `initialize` with these extra headers: (status, WWW-Authenticate, body).
async fn initialize_with(mcpd: &Mcpd, headers: &[(&str, &str)]) -> (u16, String, Value) {
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut request = raw.post(None, INIT.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let challenge =
        response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = response.json().await.unwrap_or_default();
    (status, challenge, body)
}

#[tokio::test]
async fn challenges_and_protected_resource_metadata() {
    let jwks = JwksServer::start(&[("k1", RSA1)]).await;
    let mcpd = start(&jwks).await;
    let metadata_url = mcpd.url("/.well-known/oauth-protected-resource/mcp");

    let (status, challenge, body) = initialize_with(&mcpd, &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(challenge, format!(r#"Bearer resource_metadata="{metadata_url}", scope="mcp:read""#));
    assert_eq!(body["error"]["code"], -32010);

    let expired = {
        let claims = json!({"iss": ISSUER, "aud": mcpd.url("/mcp"), "sub": "ada", "scope": "mcp:read", "exp": 1000});
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &rsa(RSA1)).expect("sign")
    };
    let (status, challenge, _) = initialize_with(&mcpd, &[("authorization", &format!("Bearer {expired}"))]).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!(
            r#"Bearer error="invalid_token", error_description="the token has expired", resource_metadata="{metadata_url}", scope="mcp:read""#
        )
    );

    let document: Value = reqwest::get(&metadata_url).await.expect("GET metadata").json().await.expect("JSON");
    assert_eq!(
        document,
        json!({
            "resource": mcpd.url("/mcp"),
            "authorization_servers": [ISSUER],
            "scopes_supported": ["mcp:read", "mcp:logs"],
            "bearer_methods_supported": ["header"],
        })
    );

    // Behind a TLS-terminating proxy (127.0.0.1 is trusted here) every URL
    // the plugin writes is the public https one.
    let proxied: Value = reqwest::Client::new()
        .get(&metadata_url)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "mcp.example.com")
        .send()
        .await
        .expect("GET metadata")
        .json()
        .await
        .expect("JSON");
    assert_eq!(proxied["resource"], "https://mcp.example.com/mcp");
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "mcp.example.com")];
    let (status, challenge, _) = initialize_with(&mcpd, &forwarded).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains(r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn jwt_clients_call_tools_and_step_up_for_scoped_ones() {
    let jwks = JwksServer::start(&[("k1", RSA1)]).await;
    let mcpd = start(&jwks).await;
    let url = mcpd.url("/mcp");

    let reader = connect_with(&url, &token(&mcpd, RSA1, "k1", "ada", "mcp:read")).await.expect("connects");
    let echoed = call(&reader, "echo", json!({"text": "signed in"})).await.expect("echo needs no extra scope");
    assert_eq!(text_of(&echoed), "signed in");
    let refused = call(&reader, "log", json!({"message": "x"})).await.expect_err("log needs mcp:logs").to_string();
    assert!(refused.contains("Insufficient scope"), "rmcp reads the step-up challenge: {refused}");

    // What a client sees on the wire: 403 with the step-up challenge.
    let raw = Raw::new(url.clone());
    let reader_token = token(&mcpd, RSA1, "k1", "ada", "mcp:read");
    let response = raw
        .post(None, tool_call(1, "log", json!({})).to_string())
        .bearer_auth(&reader_token)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);
    let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let metadata_url = mcpd.url("/.well-known/oauth-protected-resource/mcp");
    assert!(
        challenge.starts_with(&format!(
            r#"Bearer error="insufficient_scope", scope="mcp:logs", resource_metadata="{metadata_url}""#
        )),
        "{challenge}"
    );

    // With the scope, the same call goes through.
    let logger = connect_with(&url, &token(&mcpd, RSA1, "k1", "ada", "mcp:read mcp:logs")).await.expect("connects");
    assert_eq!(text_of(&call(&logger, "log", json!({"message": "hi"})).await.expect("log")), "logged");

    // API keys work too (principal and scopes from the config).
    let bot = connect_with(&url, API_KEY).await.expect("an API key connects");
    call(&bot, "echo", json!({"text": "bot"})).await.expect("echo");

    let metrics = reqwest::get(mcpd.url("/metrics")).await.expect("metrics").text().await.expect("text");
    let has = |needle: &[&str]| metrics.lines().any(|l| needle.iter().all(|n| l.contains(n)));
    assert!(has(&["mcpd_plugin_auth_authentications_total", r#"method="jwt""#, r#"result="ok""#]), "{metrics}");
    assert!(has(&["mcpd_plugin_auth_authentications_total", r#"method="api_key""#]), "{metrics}");
    assert!(has(&["mcpd_plugin_auth_scope_checks_total", r#"outcome="missing""#, r#"tool="log""#]), "{metrics}");
    assert!(has(&["mcpd_plugin_auth_denials_total", r#"principal="ada""#]), "{metrics}");
    assert_eq!(jwks.fetches(), 1, "one fetch serves every token");
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_when_first_seen() {
    let jwks = JwksServer::start(&[("k1", RSA1)]).await;
    let mcpd = start(&jwks).await;
    let url = mcpd.url("/mcp");
    let first = connect_with(&url, &token(&mcpd, RSA1, "k1", "ada", "mcp:read")).await.expect("k1 works");
    call(&first, "echo", json!({"text": "k1"})).await.expect("echo");
    assert_eq!(jwks.fetches(), 1);

    // A token from a key the plugin has not seen yet, before the issuer publishes it.
    let early = token(&mcpd, RSA2, "k2", "bob", "mcp:read");
    assert!(connect_with(&url, &early).await.is_err(), "unknown kid and not in the JWKS");
    assert_eq!(jwks.fetches(), 2, "an unknown kid triggers a re-fetch");

    // The issuer rotates; re-fetches are throttled (30 s by default), so a
    // fresh route would see k2 at once, but this one waits out the interval.
    jwks.publish(&[("k1", RSA1), ("k2", RSA2)]);
    assert!(connect_with(&url, &early).await.is_err(), "throttled: no third fetch yet");
    assert_eq!(jwks.fetches(), 2);
}

#[tokio::test]
async fn a_new_kid_in_the_jwks_is_picked_up() {
    let jwks = JwksServer::start(&[("k1", RSA1)]).await;
    let mcpd = start(&jwks).await;
    let url = mcpd.url("/mcp");
    let first = connect_with(&url, &token(&mcpd, RSA1, "k1", "ada", "mcp:read")).await.expect("k1 works");
    call(&first, "echo", json!({"text": "k1"})).await.expect("echo");

    jwks.publish(&[("k1", RSA1), ("k2", RSA2)]);
    let rotated = connect_with(&url, &token(&mcpd, RSA2, "k2", "bob", "mcp:read")).await.expect("k2 after rotation");
    call(&rotated, "echo", json!({"text": "k2"})).await.expect("echo");
    assert_eq!(jwks.fetches(), 2, "one initial fetch, one on the new kid");
    // Old tokens keep working.
    call(&first, "echo", json!({"text": "k1 again"})).await.expect("echo");
}

#[tokio::test]
async fn a_bad_config_stops_mcpd_from_starting_and_says_why() {
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[[server.fx.plugins]]
path = "{plugins}/mcpd_auth.wasm"
config = { api_keys = [{ name = "ci-bot", sha256 = "not-a-hash" }] }
"#;
    let mut refused = Mcpd::start(config, &[]).await;
    let log = Arc::clone(&refused.log);
    let status = tokio::task::spawn_blocking(move || refused.child.wait()).await.unwrap().unwrap();
    assert!(!status.success(), "mcpd must not serve with a plugin that refuses its config");
    let why = "cannot start: invalid plugin config at `api_keys[0].sha256`: must be the key's SHA-256";
    // The log reader may still be draining stderr after the exit.
    eventually(why, std::time::Duration::from_secs(5), || async {
        log.lock().unwrap().iter().any(|line| line.contains(why)).then_some(())
    })
    .await;
}
