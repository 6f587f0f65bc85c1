//! Test fixtures: keys (generated once with openssl, in `testdata/`),
//! token signing, JWKS documents, canned JWKS answers and requests.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header as JwtHeader};
use mcpd_plugin_sdk::http::{self, testing};
use mcpd_plugin_sdk::{Config, Header, HttpRequest, Plugin, clock};
use serde_json::{Value, json};

use crate::Auth;

pub const RSA1: &str = include_str!("../../testdata/rsa1.pem");
pub const RSA1_PUB: &str = include_str!("../../testdata/rsa1.pub.pem");
pub const RSA2: &str = include_str!("../../testdata/rsa2.pem");
pub const EC1: &str = include_str!("../../testdata/ec1.pem");
pub const EC1_PUB: &str = include_str!("../../testdata/ec1.pub.pem");
pub const SECRET: &str = "a-test-secret-of-at-least-32-bytes!";

pub const ISSUER: &str = "https://auth.test";
pub const JWKS_URL: &str = "http://127.0.0.1:9/jwks.json";
pub const RESOURCE: &str = "http://mcp.test/mcp";
pub const PRM_URL: &str = "http://mcp.test/.well-known/oauth-protected-resource/mcp";

pub fn rsa(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test RSA key")
}

pub fn ec(pem: &str) -> EncodingKey {
    EncodingKey::from_ec_pem(pem.as_bytes()).expect("test EC key")
}

pub fn now_secs() -> i64 {
    (clock::now_millis() / 1000) as i64
}

/// Claims that pass every check, with `extra` merged in (a `null` removes one).
pub fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": ISSUER, "aud": RESOURCE, "sub": "ada", "exp": now_secs() + 300, "scope": "mcp:read"});
    if let (Some(map), Value::Object(extra)) = (c.as_object_mut(), extra) {
        for (k, v) in extra {
            match v {
                Value::Null => map.remove(&k),
                v => map.insert(k, v),
            };
        }
    }
    c
}

pub fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = JwtHeader::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).expect("sign test token")
}

/// An RS256 token from key `rsa1` with kid `k1` and these extra claims.
pub fn token(extra: Value) -> String {
    sign(Algorithm::RS256, &rsa(RSA1), Some("k1"), &claims(extra))
}

/// A JWKS document publishing these keys.
pub fn jwks(keys: &[(&str, &EncodingKey, Algorithm)]) -> String {
    let keys = keys
        .iter()
        .map(|(kid, key, alg)| {
            let mut jwk = Jwk::from_encoding_key(key, *alg).expect("public JWK");
            jwk.common.key_id = Some(kid.to_string());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).expect("JWKS JSON")
}

/// Makes the (native stand-in) HTTP client answer `JWKS_URL` with `body`.
pub fn serve_jwks(body: &str) {
    serve(200, body);
}

pub fn serve(status: u16, body: &str) {
    testing::respond(JWKS_URL, http::Response { status, headers: vec![], body: body.as_bytes().to_vec() });
}

pub fn jwks_fetches() -> usize {
    testing::requests_seen().iter().filter(|r| r.url == JWKS_URL).count()
}

/// The usual config: JWKS, an API key, OAuth metadata and tool scopes.
pub fn config(extra: Value) -> Value {
    let mut c = json!({
        "authorization_servers": [ISSUER],
        "jwt": {"jwks_url": JWKS_URL},
        "api_keys": [{"name": "ci-bot", "sha256": crate::apikeys::sha256_hex("key-123"), "scopes": ["mcp:read", "mcp:deploy"]}],
        "tool_scopes": {"deploy_*": "mcp:deploy"},
        "trusted_proxies": ["10.0.0.0/8"],
    });
    if let (Some(map), Value::Object(extra)) = (c.as_object_mut(), extra) {
        map.extend(extra);
    }
    c
}

pub fn plugin(config: Value) -> Auth {
    match Auth::new(Config::from_json(config.to_string())) {
        Ok(auth) => auth,
        Err(e) => panic!("config should load: {e}"),
    }
}

pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    let mut all = vec![Header { name: "host".into(), value: "mcp.test".into() }];
    all.extend(headers.iter().map(|(n, v)| Header { name: n.to_ascii_lowercase(), value: v.to_string() }));
    HttpRequest {
        method: method.into(),
        path: path.into(),
        headers: all,
        client_address: "192.0.2.10".into(),
        route: "test".into(),
    }
}

pub fn bearer(token: &str) -> HttpRequest {
    request("POST", "/mcp", &[("authorization", &format!("Bearer {token}"))])
}
