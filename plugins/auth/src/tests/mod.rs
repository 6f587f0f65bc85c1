//! The plugin through its hooks, natively: the SDK stands in for mcpd
//! (in-memory store per test thread, canned HTTP answers for the JWKS).

pub mod support;

use jsonwebtoken::Algorithm;
use mcpd_plugin_sdk::reuse::{self, Vary};
use mcpd_plugin_sdk::{Config, Decision, Message, Plugin, Rejection, codes, testing};
use serde_json::{Value, json};

use crate::Auth;
use support::*;

/// (status, JSON-RPC code, WWW-Authenticate) of a rejection.
fn rejected(d: &Decision) -> (u16, i32, String) {
    let Decision::Reject(Rejection { status, error, headers }) = d else { panic!("not a rejection: {d:?}") };
    let challenge = headers.iter().find(|h| h.name == "www-authenticate").map(|h| h.value.clone());
    (*status, error.code, challenge.unwrap_or_default())
}

fn accepted(d: &Decision) -> (String, Vec<String>) {
    let Decision::Modify(c) = d else { panic!("not accepted: {d:?}") };
    (c.principal.clone().unwrap_or_default(), c.scopes.clone().unwrap_or_default())
}

/// A fresh plugin whose JWKS publishes `rsa1` as `k1`.
fn with_jwks() -> Auth {
    serve_jwks(&jwks(&[("k1", &rsa(RSA1), Algorithm::RS256)]));
    plugin(config(json!({})))
}

fn invalid_token(d: &Decision, description: &str) {
    let (status, code, challenge) = rejected(d);
    assert_eq!((status, code), (401, codes::UNAUTHORIZED), "{d:?}");
    assert_eq!(
        challenge,
        format!(r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{PRM_URL}""#)
    );
}

#[test]
fn a_valid_token_sets_principal_and_scopes() {
    let mut auth = with_jwks();
    let d = auth.on_http_request(&bearer(&token(json!({"scope": "mcp:read mcp:deploy"}))));
    assert_eq!(accepted(&d), ("ada".into(), vec!["mcp:read".into(), "mcp:deploy".into()]));
    // The keys are cached: a second token needs no fetch.
    accepted(&auth.on_http_request(&bearer(&token(json!({"sub": "bob"})))));
    assert_eq!(jwks_fetches(), 1);
}

#[test]
fn bad_tokens_get_invalid_token() {
    let mut auth = with_jwks();
    let now = now_secs();
    let cases = [
        (token(json!({"exp": now - 120})), "the token has expired"),
        (token(json!({"nbf": now + 600})), "the token is not valid yet"),
        (token(json!({"aud": "http://other.test/mcp"})), "the token audience is not this resource"),
        (token(json!({"iss": "https://evil.test"})), "the token issuer is not trusted"),
        (token(json!({"aud": null})), "the token has no aud claim"),
        (token(json!({"exp": null})), "the token has no exp claim"),
        (token(json!({"sub": null})), "the token has no sub claim"),
        // Signed by another key under k1's id.
        (sign(Algorithm::RS256, &rsa(RSA2), Some("k1"), &claims(json!({}))), "the token signature does not verify"),
        ("not.a.jwt".into(), "the token is not a well-formed JWT"),
        (
            sign(
                Algorithm::HS256,
                &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
                None,
                &claims(json!({})),
            ),
            "token algorithm HS256 is not accepted",
        ),
    ];
    for (token, description) in cases {
        invalid_token(&auth.on_http_request(&bearer(&token)), description);
    }
    // Within the clock skew (60 s by default) a token still counts.
    accepted(&auth.on_http_request(&bearer(&token(json!({"exp": now - 30, "nbf": now + 30})))));
}

#[test]
fn an_unknown_kid_refetches_the_jwks_once_per_interval() {
    let mut auth = with_jwks();
    accepted(&auth.on_http_request(&bearer(&token(json!({})))));
    // The issuer rotates: k2 appears.
    serve_jwks(&jwks(&[("k1", &rsa(RSA1), Algorithm::RS256), ("k2", &rsa(RSA2), Algorithm::RS256)]));
    let rotated = sign(Algorithm::RS256, &rsa(RSA2), Some("k2"), &claims(json!({"sub": "new"})));
    assert_eq!(accepted(&auth.on_http_request(&bearer(&rotated))).0, "new");
    assert_eq!(jwks_fetches(), 2);
    // A made-up kid right after: no fetch (30 s interval), refused.
    let made_up = sign(Algorithm::RS256, &rsa(RSA2), Some("k9"), &claims(json!({})));
    invalid_token(&auth.on_http_request(&bearer(&made_up)), "no key with id k9 is known");
    invalid_token(&auth.on_http_request(&bearer(&made_up)), "no key with id k9 is known");
    assert_eq!(jwks_fetches(), 2);
    // Another instance shares the store: it takes the cached JWKS, and the
    // throttle holds for it as well.
    let mut other = plugin(config(json!({})));
    assert_eq!(accepted(&other.on_http_request(&bearer(&rotated))).0, "new");
    invalid_token(&other.on_http_request(&bearer(&made_up)), "no key with id k9 is known");
    assert_eq!(jwks_fetches(), 2);
}

#[test]
fn refetch_without_throttle_when_configured() {
    serve_jwks(&jwks(&[("k1", &rsa(RSA1), Algorithm::RS256)]));
    let mut auth = plugin(config(json!({"jwt": {"jwks_url": JWKS_URL, "jwks_refetch_interval": "0s"}})));
    let made_up = sign(Algorithm::RS256, &rsa(RSA1), Some("k9"), &claims(json!({})));
    for _ in 0..3 {
        invalid_token(&auth.on_http_request(&bearer(&made_up)), "no key with id k9 is known");
    }
    assert_eq!(jwks_fetches(), 3, "one initial fetch, then one per unknown kid");
}

#[test]
fn a_jwks_that_cannot_be_fetched_refuses_tokens() {
    serve(500, "oops");
    let mut auth = plugin(config(json!({})));
    invalid_token(&auth.on_http_request(&bearer(&token(json!({})))), "no key with id k1 is known");
    // A retry waits a second; nothing is fetched meanwhile.
    invalid_token(&auth.on_http_request(&bearer(&token(json!({})))), "no key with id k1 is known");
    assert_eq!(jwks_fetches(), 1);
}

#[test]
fn static_keys_of_every_kind() {
    let jwk: Value = serde_json::from_str(&jwks(&[("r1", &rsa(RSA1), Algorithm::RS256)])).unwrap();
    let mut auth = plugin(json!({
        "jwt": {"issuer": ISSUER, "audience": "api://mcp", "keys": [
            {"secret": SECRET, "kid": "h1"},
            {"pem": EC1_PUB},
            {"jwk": jwk["keys"][0]},
        ]},
    }));
    let c = claims(json!({"aud": "api://mcp"}));
    let hs = sign(Algorithm::HS256, &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()), Some("h1"), &c);
    let es = sign(Algorithm::ES256, &ec(EC1), None, &c);
    let rs = sign(Algorithm::RS256, &rsa(RSA1), Some("r1"), &c);
    for token in [hs, es, rs] {
        assert_eq!(accepted(&auth.on_http_request(&bearer(&token))).0, "ada");
    }
    // The configured audience replaces the route's URL.
    let d = auth.on_http_request(&bearer(&sign(Algorithm::ES256, &ec(EC1), None, &claims(json!({})))));
    assert_eq!(
        rejected(&d).2,
        r#"Bearer error="invalid_token", error_description="the token audience is not this resource""#
    );
}

#[test]
fn a_public_key_is_never_an_hmac_secret() {
    // The classic `alg` confusion: HS256 keyed with the RSA public key's text.
    let mut auth =
        plugin(json!({"jwt": {"issuer": ISSUER, "keys": [{"pem": RSA1_PUB}], "algorithms": ["RS256", "HS256"]}}));
    let forged =
        sign(Algorithm::HS256, &jsonwebtoken::EncodingKey::from_secret(RSA1_PUB.as_bytes()), None, &claims(json!({})));
    let (status, _, challenge) = rejected(&auth.on_http_request(&bearer(&forged)));
    assert_eq!(status, 401);
    assert!(challenge.contains("no key fits the token"), "{challenge}");
}

#[test]
fn api_keys_by_bearer_or_header() {
    let mut auth = with_jwks();
    let both = ["mcp:read".to_string(), "mcp:deploy".to_string()];
    let d = auth.on_http_request(&bearer("key-123"));
    assert_eq!(accepted(&d), ("ci-bot".into(), both.to_vec()));
    let d = auth.on_http_request(&request("POST", "/mcp", &[("x-api-key", "key-123")]));
    assert_eq!(accepted(&d).0, "ci-bot");
    invalid_token(&auth.on_http_request(&request("POST", "/mcp", &[("x-api-key", "key-124")])), "unknown API key");
    invalid_token(&auth.on_http_request(&bearer("key-124")), "unknown API key");
    assert_eq!(jwks_fetches(), 0, "API keys never touch the JWKS");
}

#[test]
fn no_credentials_get_the_plain_challenge() {
    let mut auth = plugin(config(json!({"required_scopes": ["mcp:read"]})));
    let (status, code, challenge) = rejected(&auth.on_http_request(&request("POST", "/mcp", &[])));
    assert_eq!((status, code), (401, codes::UNAUTHORIZED));
    assert_eq!(challenge, format!(r#"Bearer resource_metadata="{PRM_URL}", scope="mcp:read""#));
    // Basic auth is not a credential this plugin knows.
    let basic = request("POST", "/mcp", &[("authorization", "Basic YTpi")]);
    assert_eq!(rejected(&auth.on_http_request(&basic)).0, 401);
    // A CORS preflight passes.
    assert_eq!(auth.on_http_request(&request("OPTIONS", "/mcp", &[])), Decision::proceed());
}

#[test]
fn api_keys_only_has_no_metadata() {
    let mut auth = plugin(json!({"api_keys": [{"name": "a", "sha256": crate::apikeys::sha256_hex("k")}]}));
    assert_eq!(rejected(&auth.on_http_request(&request("POST", "/mcp", &[]))).2, "Bearer");
    let d = auth.on_http_request(&request("GET", "/.well-known/oauth-protected-resource/mcp", &[]));
    assert!(matches!(d, Decision::Reply(r) if r.status == 404));
}

#[test]
fn required_scopes_are_checked_at_the_door() {
    serve_jwks(&jwks(&[("k1", &rsa(RSA1), Algorithm::RS256)]));
    let mut auth = plugin(config(json!({"required_scopes": ["mcp:read"]})));
    let (status, code, challenge) = rejected(&auth.on_http_request(&bearer(&token(json!({"scope": "other"})))));
    assert_eq!((status, code), (403, codes::FORBIDDEN));
    assert!(challenge.starts_with(r#"Bearer error="insufficient_scope", scope="mcp:read", resource_metadata=""#));
    accepted(&auth.on_http_request(&bearer(&token(json!({"scope": "mcp:read"})))));
}

fn metadata(auth: &mut Auth, client: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = request("GET", "/.well-known/oauth-protected-resource/mcp", headers);
    request.client_address = client.into();
    let Decision::Reply(reply) = auth.on_http_request(&request) else { panic!("no reply") };
    assert_eq!(reply.status, 200);
    assert!(reply.headers.iter().any(|h| h.name == "content-type" && h.value == "application/json"));
    serde_json::from_str(&reply.body).expect("JSON document")
}

#[test]
fn protected_resource_metadata_document() {
    let mut auth = plugin(config(json!({"required_scopes": ["mcp:read"], "resource_name": "Test tools"})));
    let doc = metadata(&mut auth, "192.0.2.10", &[]);
    assert_eq!(
        doc,
        json!({
            "resource": RESOURCE,
            "authorization_servers": [ISSUER],
            "scopes_supported": ["mcp:read", "mcp:deploy"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Test tools",
        })
    );
    assert_eq!(jwks_fetches(), 0, "the document needs no credentials and no keys");
    let post = request("POST", "/.well-known/oauth-protected-resource/mcp", &[]);
    assert!(matches!(auth.on_http_request(&post), Decision::Reply(r) if r.status == 405));
}

#[test]
fn tls_terminating_proxy_makes_urls_https() {
    let mut auth = with_jwks();
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "mcp.example.com")];
    // From a trusted proxy (10.0.0.0/8 in the config): https.
    let doc = metadata(&mut auth, "10.1.2.3", &forwarded);
    assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
    let doc = metadata(&mut auth, "10.1.2.3", &[("forwarded", "for=198.51.100.7;proto=https;host=mcp.example.com")]);
    assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
    // The same headers from anyone else: ignored.
    let doc = metadata(&mut auth, "192.0.2.10", &forwarded);
    assert_eq!(doc["resource"], RESOURCE);
    // The audience follows: a token for the public https URL is accepted
    // through the proxy, and a direct client cannot claim that URL.
    let https_token = token(json!({"aud": "https://mcp.example.com/mcp"}));
    let mut via_proxy = request("POST", "/mcp", &[("authorization", &format!("Bearer {https_token}"))]);
    via_proxy
        .headers
        .extend(forwarded.iter().map(|(n, v)| mcpd_plugin_sdk::Header { name: n.to_string(), value: v.to_string() }));
    let mut direct = via_proxy.clone();
    via_proxy.client_address = "10.1.2.3".into();
    accepted(&auth.on_http_request(&via_proxy));
    invalid_token(&auth.on_http_request(&direct), "the token audience is not this resource");
    // And the challenge points at the https metadata URL.
    direct.headers.retain(|h| h.name != "authorization");
    direct.client_address = "10.1.2.3".into();
    let challenge = rejected(&auth.on_http_request(&direct)).2;
    assert!(
        challenge.contains(r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#)
    );
}

#[test]
fn public_url_wins() {
    let mut auth = plugin(config(json!({"public_url": "https://gw.example.com/tools/mcp"})));
    let doc = metadata(&mut auth, "10.1.2.3", &[("x-forwarded-host", "other")]);
    assert_eq!(doc["resource"], "https://gw.example.com/tools/mcp");
}

/// A `tools/call` as mcpd hands it over after the HTTP hook let it in.
fn call(tool: &str, principal: Option<&str>, scopes: &[&str]) -> Message {
    let mut m = testing::tool_call(tool, json!({}));
    m.principal = principal.map(str::to_string);
    m.scopes = scopes.iter().map(|s| s.to_string()).collect();
    m.headers = vec![mcpd_plugin_sdk::Header { name: "host".into(), value: "mcp.test".into() }];
    m
}

#[test]
fn tool_scopes_step_up() {
    let mut auth = with_jwks();
    // The HTTP hook records the route's path for the challenge's URL.
    auth.on_http_request(&bearer("key-123"));
    let d = auth.on_request(&call("deploy_prod", Some("ada"), &["mcp:read"]));
    let (status, code, challenge) = rejected(&d);
    assert_eq!((status, code), (403, codes::FORBIDDEN));
    assert_eq!(
        challenge,
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:deploy", resource_metadata="{PRM_URL}", error_description="tool deploy_prod needs scope mcp:deploy""#
        )
    );
    assert_eq!(auth.on_request(&call("deploy_prod", Some("ada"), &["mcp:read", "mcp:deploy"])), Decision::proceed());
    assert_eq!(auth.on_request(&call("echo", Some("ada"), &[])), Decision::proceed());
    // Another instance finds the route's path in the store.
    let mut other = plugin(config(json!({})));
    assert!(rejected(&other.on_request(&call("deploy_x", Some("ada"), &[]))).2.contains(PRM_URL));
}

#[test]
fn a_message_without_principal_is_refused() {
    let mut auth = with_jwks();
    let (status, _, _) = rejected(&auth.on_request(&call("echo", None, &[])));
    assert_eq!(status, 401);
    let mut list = testing::request("tools/list", json!({}));
    list.principal = Some("ada".into());
    assert_eq!(auth.on_request(&list), Decision::proceed());
}

#[test]
fn bad_config_fails_at_load() {
    let e = Auth::new(Config::from_json(r#"{"api_keys":[{"name":"x","sha256":"nope"}]}"#)).err().expect("refused");
    assert_eq!(
        e.to_string(),
        "invalid plugin config at `api_keys[0].sha256`: must be the key's SHA-256 as 64 hex digits"
    );
    let e = Auth::new(Config::from_json(r#"{"api_key":[]}"#)).err().expect("refused");
    assert!(e.to_string().contains("unknown field `api_key`"), "{e}");
}

#[test]
fn an_api_key_decision_may_be_reused_by_its_headers_and_path_a_refusal_not() {
    let mut keys_only = plugin(json!({"api_keys": [{"name": "a", "sha256": crate::apikeys::sha256_hex("k")}]}));
    accepted(&keys_only.on_http_request(&request("POST", "/mcp", &[("x-api-key", "k")])));
    let asked = reuse::last_requested().expect("an API key's identity is reusable");
    assert_eq!((asked.vary, asked.headers), (Vary::PATH, vec!["authorization".into(), "x-api-key".into()]));
    rejected(&keys_only.on_http_request(&request("POST", "/mcp", &[("x-api-key", "wrong")])));
    assert_eq!(reuse::last_requested(), None, "refusals are not reused");
    let mut auth = with_jwks();
    accepted(&auth.on_http_request(&bearer("key-123")));
    assert!(reuse::last_requested().is_some(), "on a route with OAuth metadata too");
    invalid_token(&auth.on_http_request(&bearer(&token(json!({"aud": "http://other.test/mcp"})))), AUDIENCE);
    assert_eq!(reuse::last_requested(), None, "a refused token neither");
}

const AUDIENCE: &str = "the token audience is not this resource";

/// The forwarding headers `origin.rs` reads for a trusted proxy.
const FORWARDING: [&str; 4] = ["host", "forwarded", "x-forwarded-proto", "x-forwarded-host"];

/// What the last hook call asked to reuse: (vary, headers, ttl in ms).
fn asked() -> (Vary, Vec<String>, u32) {
    let asked = reuse::last_requested().expect("the decision should be reusable");
    (asked.vary, asked.headers, asked.ttl_ms)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_token_verdict_is_keyed_by_the_token_the_path_and_what_the_audience_comes_from() {
    // The test config trusts 10.0.0.0/8 as proxies: the audience comes from
    // Host, and from a proxy's forwarding headers, so the client address
    // (is it a proxy?) and those headers are part of the key.
    let mut auth = with_jwks();
    accepted(&auth.on_http_request(&bearer(&token(json!({})))));
    let with_proxies = (Vary::PATH | Vary::CLIENT_ADDRESS, names(&[&["authorization"][..], &FORWARDING].concat()));
    let (vary, headers, ttl) = asked();
    assert_eq!((vary, headers), with_proxies);
    assert_eq!(ttl, 60_000, "a token valid for 5 more minutes: the usual minute");
    // Through a trusted proxy: the same key, the proxy's headers in it.
    let proxied_token = token(json!({"aud": "https://mcp.example.com/mcp"}));
    let mut via_proxy = request(
        "POST",
        "/mcp",
        &[
            ("authorization", &format!("Bearer {proxied_token}")),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "mcp.example.com"),
        ],
    );
    via_proxy.client_address = "10.1.2.3".into();
    accepted(&auth.on_http_request(&via_proxy));
    let (vary, headers, _) = asked();
    assert_eq!((vary, headers), with_proxies);

    // No trusted proxies: Host alone picks the audience.
    let mut direct_only = plugin(config(json!({"trusted_proxies": []})));
    accepted(&direct_only.on_http_request(&bearer(&token(json!({})))));
    assert_eq!(asked(), (Vary::PATH, names(&["authorization", "host"]), 60_000));

    // `public_url` fixes the audience, and so does `jwt.audience`: the token
    // (and path, method) alone.
    let mut public = plugin(config(json!({"public_url": "https://gw.example.com/mcp"})));
    accepted(&public.on_http_request(&bearer(&token(json!({"aud": "https://gw.example.com/mcp"})))));
    assert_eq!(asked(), (Vary::PATH, names(&["authorization"]), 60_000));
    let mut audience = plugin(config(json!({"jwt": {"jwks_url": JWKS_URL, "audience": "api://mcp"}})));
    accepted(&audience.on_http_request(&bearer(&token(json!({"aud": "api://mcp"})))));
    assert_eq!(asked(), (Vary::PATH, names(&["authorization"]), 60_000));
}

#[test]
fn a_token_verdict_is_reused_no_longer_than_the_token_is_valid() {
    let mut auth = with_jwks();
    let now = now_secs();
    accepted(&auth.on_http_request(&bearer(&token(json!({"exp": now + 10})))));
    // exp is 9–10 s away (now is truncated to the second), less the 1 s margin.
    let ttl = asked().2;
    assert!((7_000..=9_000).contains(&ttl), "{ttl} ms for a token expiring in ≤ 10 s");
    // Within a second of exp, or past it but within the clock skew (60 s):
    // still accepted, nothing kept.
    for exp in [now + 1, now, now - 30] {
        accepted(&auth.on_http_request(&bearer(&token(json!({"exp": exp})))));
        assert_eq!(reuse::last_requested(), None, "exp {}s from now", exp - now);
    }
    // Not valid yet but within the skew: accepted, not kept; once valid, kept.
    accepted(&auth.on_http_request(&bearer(&token(json!({"nbf": now + 30})))));
    assert_eq!(reuse::last_requested(), None, "not valid yet");
    accepted(&auth.on_http_request(&bearer(&token(json!({"nbf": now - 1})))));
    assert_eq!(asked().2, 60_000);
    // Refused outright: nothing either.
    invalid_token(&auth.on_http_request(&bearer(&token(json!({"exp": now - 120})))), "the token has expired");
    invalid_token(&auth.on_http_request(&bearer(&token(json!({"nbf": now + 120})))), "the token is not valid yet");
    assert_eq!(reuse::last_requested(), None);
}

#[test]
fn a_short_jwks_cache_period_shortens_the_reuse() {
    serve_jwks(&jwks(&[("k1", &rsa(RSA1), Algorithm::RS256)]));
    let mut auth = plugin(config(json!({"jwt": {"jwks_url": JWKS_URL, "jwks_cache_ttl": "5s"}})));
    accepted(&auth.on_http_request(&bearer(&token(json!({})))));
    assert_eq!(asked().2, 5_000);
}

#[test]
fn a_granted_tool_call_may_be_reused_by_principal_name_and_scopes() {
    let mut auth = with_jwks();
    let mut call = testing::tool_call("deploy_prod", json!({}));
    call.principal = Some("ada".into());
    call.scopes = vec!["mcp:deploy".into()];
    assert_eq!(auth.on_request(&call), Decision::proceed());
    let asked = reuse::last_requested().expect("reusable");
    assert_eq!(asked.vary, Vary::NAME | Vary::PRINCIPAL | Vary::SCOPES);
    call.scopes.clear();
    rejected(&auth.on_request(&call));
    assert_eq!(reuse::last_requested(), None, "a refusal names the metadata URL: not reused");
    call.principal = None;
    rejected(&auth.on_request(&call));
    assert_eq!(reuse::last_requested(), None);
}
