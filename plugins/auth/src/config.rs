//! The plugin's `config` table: its shape (serde, unknown keys refused) and
//! the checks that turn it into a [`Policy`]. Every mistake names the key
//! at fault, so a bad mcpd.toml fails at load with a message to act on.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use mcpd_plugin_sdk::{Config, log};
use serde::Deserialize;

use crate::apikeys::ApiKeys;
use crate::cidr::Cidr;
use crate::duration::ConfigDuration;
use crate::identity::{Identity, Method};
use crate::jwt::{ClaimRules, Jwks, KeySettings, Verifier, parse_algorithm};
use crate::metadata::Metadata;
use crate::origin::{Origins, parse_public_url};
use crate::scopes::{OneOrMany, ToolScopes, is_scope_token};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    api_keys: Vec<ApiKeySettings>,
    jwt: Option<JwtSettings>,
    public_url: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    required_scopes: Vec<String>,
    #[serde(default)]
    tool_scopes: BTreeMap<String, OneOrMany>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    #[serde(default = "default_label_values")]
    metric_label_values: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeySettings {
    name: String,
    sha256: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtSettings {
    issuer: Option<OneOrMany>,
    audience: Option<OneOrMany>,
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    keys: Vec<KeySettings>,
    jwks_url: Option<String>,
    #[serde(default = "default_jwks_cache_ttl")]
    jwks_cache_ttl: ConfigDuration,
    #[serde(default = "default_jwks_refetch_interval")]
    jwks_refetch_interval: ConfigDuration,
    #[serde(default = "default_jwks_timeout")]
    jwks_timeout: ConfigDuration,
    #[serde(default = "default_clock_skew")]
    clock_skew: ConfigDuration,
    #[serde(default = "default_principal_claim")]
    principal_claim: String,
    scope_claim: Option<String>,
}

fn default_label_values() -> u32 {
    100
}
fn default_jwks_cache_ttl() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(600))
}
fn default_jwks_refetch_interval() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30))
}
fn default_jwks_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(5))
}
fn default_clock_skew() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(60))
}
fn default_principal_claim() -> String {
    "sub".into()
}

/// The checked configuration the hooks work from.
pub struct Policy {
    pub api_keys: ApiKeys,
    pub jwt: Option<Verifier>,
    pub origins: Origins,
    /// The RFC 9728 document's contents; `None` without `authorization_servers`
    /// (API keys only: there is no OAuth flow to point clients to).
    pub metadata: Option<Metadata>,
    /// Scopes every request needs (also the `scope` of the 401 challenge).
    pub required_scopes: Vec<String>,
    pub tool_scopes: ToolScopes,
    /// Distinct values each metric label may take before `_other`.
    pub metric_label_values: u32,
}

/// A config mistake: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadConfig {
    pub path: String,
    pub message: String,
}

impl BadConfig {
    fn at(path: impl Into<String>, message: impl Into<String>) -> BadConfig {
        BadConfig { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for BadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.as_str() {
            "." => write!(f, "invalid plugin config: {}", self.message),
            path => write!(f, "invalid plugin config at `{path}`: {}", self.message),
        }
    }
}

impl std::error::Error for BadConfig {}

impl Policy {
    pub fn from_config(config: &Config) -> Result<Policy, BadConfig> {
        let settings: Settings = config.parse().map_err(|e| BadConfig { path: e.path, message: e.message })?;
        build(settings)
    }
}

fn build(s: Settings) -> Result<Policy, BadConfig> {
    if s.api_keys.is_empty() && s.jwt.is_none() {
        return Err(BadConfig::at(".", "configure `api_keys`, `jwt` or both: without them nobody can get in"));
    }
    let public_url =
        s.public_url.as_deref().map(parse_public_url).transpose().map_err(|m| BadConfig::at("public_url", m))?;
    let trusted = s
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, t)| Cidr::parse(t).map_err(|m| BadConfig::at(format!("trusted_proxies[{i}]"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let origins = Origins::new(public_url, trusted);

    check_scopes("required_scopes", &s.required_scopes)?;
    let mut tool_scopes = ToolScopes::default();
    for (pattern, scopes) in s.tool_scopes {
        let scopes = scopes.into_vec();
        let path = format!("tool_scopes.{pattern:?}");
        if pattern.is_empty() || scopes.is_empty() {
            return Err(BadConfig::at(path, "needs a tool-name pattern and at least one scope"));
        }
        check_scopes(&path, &scopes)?;
        tool_scopes.add(pattern, scopes);
    }

    for (i, url) in s.authorization_servers.iter().enumerate() {
        check_url(&format!("authorization_servers[{i}]"), url)?;
    }
    let metadata = match s.authorization_servers.is_empty() {
        true => None,
        false => {
            let scopes_supported = match s.scopes_supported {
                Some(list) => {
                    check_scopes("scopes_supported", &list)?;
                    list
                }
                None => union(&s.required_scopes, tool_scopes.all_scopes()),
            };
            Some(Metadata {
                authorization_servers: s.authorization_servers.clone(),
                scopes_supported,
                resource_name: s.resource_name,
                resource_documentation: s.resource_documentation,
            })
        }
    };

    let mut api_keys = ApiKeys::default();
    for (i, key) in s.api_keys.into_iter().enumerate() {
        if key.name.is_empty() {
            return Err(BadConfig::at(format!("api_keys[{i}].name"), "must not be empty"));
        }
        check_scopes(&format!("api_keys[{i}].scopes"), &key.scopes)?;
        let identity = Identity { principal: key.name, scopes: key.scopes, method: Method::ApiKey, lifetime: None };
        api_keys.add(&key.sha256, identity).map_err(|m| BadConfig::at(format!("api_keys[{i}].sha256"), m))?;
    }

    let jwt = s.jwt.map(|j| build_jwt(j, &s.authorization_servers, origins.is_configured())).transpose()?;
    Ok(Policy {
        api_keys,
        jwt,
        origins,
        metadata,
        required_scopes: s.required_scopes,
        tool_scopes,
        metric_label_values: s.metric_label_values,
    })
}

fn build_jwt(j: JwtSettings, authorization_servers: &[String], public_url: bool) -> Result<Verifier, BadConfig> {
    let issuers = j.issuer.map(OneOrMany::into_vec).unwrap_or_else(|| authorization_servers.to_vec());
    if issuers.is_empty() {
        return Err(BadConfig::at("jwt.issuer", "name the token issuer (or set `authorization_servers`)"));
    }
    if j.keys.is_empty() && j.jwks_url.is_none() {
        return Err(BadConfig::at("jwt", "give `keys`, `jwks_url` or both"));
    }
    let keys = j
        .keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| k.build().map_err(|m| BadConfig::at(format!("jwt.keys[{i}]"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let algorithms = match j.algorithms {
        Some(names) if names.is_empty() => return Err(BadConfig::at("jwt.algorithms", "must not be empty")),
        Some(names) => names
            .iter()
            .enumerate()
            .map(|(i, n)| parse_algorithm(n).map_err(|m| BadConfig::at(format!("jwt.algorithms[{i}]"), m)))
            .collect::<Result<Vec<_>, _>>()?,
        None => default_algorithms(keys.iter().map(|k| k.key.family()), j.jwks_url.is_some()),
    };
    let jwks = match j.jwks_url {
        Some(url) => {
            check_url("jwt.jwks_url", &url)?;
            if j.jwks_cache_ttl.0 < Duration::from_secs(1) {
                return Err(BadConfig::at("jwt.jwks_cache_ttl", "must be at least 1s"));
            }
            Some(Jwks::new(url, j.jwks_cache_ttl.0, j.jwks_refetch_interval.0, j.jwks_timeout.0))
        }
        None => None,
    };
    let audiences = j.audience.map(OneOrMany::into_vec);
    if audiences.as_ref().is_some_and(Vec::is_empty) {
        return Err(BadConfig::at("jwt.audience", "must not be empty"));
    }
    if audiences.is_none() && !public_url {
        // The audience then comes from the Host header (or a trusted
        // proxy's headers), which a direct client controls.
        log::warn!("no `public_url` or `jwt.audience`: the expected token audience follows the request's Host header");
    }
    let rules = ClaimRules {
        issuers,
        audiences,
        skew_secs: j.clock_skew.0.as_secs(),
        principal_claim: j.principal_claim,
        scope_claim: j.scope_claim,
    };
    Ok(Verifier::new(keys, jwks, algorithms, rules))
}

/// The algorithms of the families the keys belong to; a JWKS may publish
/// any asymmetric key, never an HMAC secret.
fn default_algorithms(families: impl Iterator<Item = AlgorithmFamily>, jwks: bool) -> Vec<Algorithm> {
    let mut families: Vec<AlgorithmFamily> = families.collect();
    if jwks {
        families.extend([AlgorithmFamily::Rsa, AlgorithmFamily::Ec, AlgorithmFamily::Ed]);
    }
    let mut algorithms = Vec::new();
    for family in families {
        for alg in family.algorithms() {
            if !algorithms.contains(alg) {
                algorithms.push(*alg);
            }
        }
    }
    algorithms
}

fn check_scopes(path: &str, scopes: &[String]) -> Result<(), BadConfig> {
    match scopes.iter().position(|s| !is_scope_token(s)) {
        Some(i) => Err(BadConfig::at(
            format!("{path}[{i}]"),
            "a scope is printable ASCII without spaces, `\"` or `\\` (RFC 6749 §3.3)",
        )),
        None => Ok(()),
    }
}

fn check_url(path: &str, url: &str) -> Result<(), BadConfig> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\');
    match ok {
        true => Ok(()),
        false => Err(BadConfig::at(path, "must be an http:// or https:// URL")),
    }
}

fn union<'a>(first: &'a [String], rest: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in first.iter().map(String::as_str).chain(rest) {
        if !out.iter().any(|s| s == scope) {
            out.push(scope.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn load(config: Value) -> Result<Policy, String> {
        Policy::from_config(&Config::from_json(config.to_string())).map_err(|e| e.to_string())
    }

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn minimal_configs_load() {
        let p = load(json!({"api_keys": [{"name": "ci", "sha256": HASH}]})).unwrap();
        assert!(p.metadata.is_none() && p.jwt.is_none());
        let p = load(json!({
            "authorization_servers": ["https://auth.example.com"],
            "jwt": {"jwks_url": "http://127.0.0.1:9/jwks.json"},
            "required_scopes": ["mcp:read"],
            "tool_scopes": {"deploy_*": "mcp:deploy", "db_*": ["mcp:db", "mcp:read"]},
        }))
        .unwrap();
        let m = p.metadata.unwrap();
        assert_eq!(m.scopes_supported, ["mcp:read", "mcp:db", "mcp:deploy"]);
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            (json!({}), "invalid plugin config: configure `api_keys`, `jwt` or both"),
            (
                json!({"api_keys": [{"name": "ci", "sha256": "abc"}]}),
                "at `api_keys[0].sha256`: must be the key's SHA-256",
            ),
            (json!({"api_keys": [{"name": "ci", "key": "plain"}]}), "unknown field `key`"),
            (json!({"api_keys": [{"name": "ci", "sha256": HASH, "scopes": ["a b"]}]}), "at `api_keys[0].scopes[0]`"),
            (json!({"jwt": {"jwks_url": "http://x/j"}}), "at `jwt.issuer`: name the token issuer"),
            (json!({"jwt": {"issuer": "https://a"}}), "at `jwt`: give `keys`, `jwks_url` or both"),
            (json!({"jwt": {"issuer": "https://a", "jwks_url": "ftp://x"}}), "at `jwt.jwks_url`: must be an http"),
            (json!({"jwt": {"issuer": "a", "jwks_url": "http://x", "clock_skew": "soon"}}), "at `jwt.clock_skew`"),
            (json!({"jwt": {"issuer": "a", "keys": [{"secret": "s"}]}}), "at `jwt.keys[0]`: an HMAC secret needs"),
            (json!({"jwt": {"issuer": "a", "jwks_url": "http://x", "algorithms": ["none"]}}), "at `jwt.algorithms[0]`"),
            (json!({"api_keys": [], "jwt": null, "trusted_proxies": ["10.0.0.0/99"]}), "configure `api_keys`"),
            (json!({"api_keys": [{"name": "a", "sha256": HASH}], "trusted_proxies": ["x"]}), "at `trusted_proxies[0]`"),
            (json!({"api_keys": [{"name": "a", "sha256": HASH}], "public_url": "mcp.example.com"}), "at `public_url`"),
            (json!({"api_keys": [{"name": "a", "sha256": HASH}], "tool_scopes": {"x": []}}), "at `tool_scopes.\"x\"`"),
            (
                json!({"api_keys": [{"name": "a", "sha256": HASH}], "authorization_servers": ["auth"]}),
                "at `authorization_servers[0]`",
            ),
        ];
        for (config, want) in cases {
            let e = load(config.clone()).err().unwrap_or_else(|| panic!("{config} should not load"));
            assert!(e.contains(want), "{config}: {e}");
        }
    }

    #[test]
    fn default_algorithms_follow_the_keys() {
        let hs = default_algorithms([AlgorithmFamily::Hmac].into_iter(), false);
        assert_eq!(hs, [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]);
        let jwks = default_algorithms(std::iter::empty(), true);
        assert!(jwks.contains(&Algorithm::RS256) && jwks.contains(&Algorithm::ES256));
        assert!(!jwks.contains(&Algorithm::HS256), "a JWKS never makes HMAC acceptable");
    }
}
