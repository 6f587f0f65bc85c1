//! The checks on a verified token's claims: `exp` and `nbf` (with clock
//! skew), `iss`, `aud`; then who it is (`sub`) and what it may do (`scope`).

use serde_json::{Map, Value};

use super::TokenError;

/// When a token is valid by its own claims, without the clock-skew leeway:
/// what a decision based on it may be reused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// `nbf` in milliseconds since the epoch, when the token has one.
    pub not_before_ms: Option<u64>,
    /// `exp` in milliseconds since the epoch.
    pub expires_ms: u64,
}

impl Lifetime {
    /// The time left until `exp` at `now_ms`, or `None` when the token is
    /// not valid yet or no longer (it may still be accepted within the
    /// clock skew, but nothing should be kept on the strength of it).
    pub fn remaining(&self, now_ms: u64) -> Option<std::time::Duration> {
        if self.not_before_ms.is_some_and(|nbf| now_ms < nbf) {
            return None;
        }
        let left = self.expires_ms.checked_sub(now_ms).filter(|&left| left > 0)?;
        Some(std::time::Duration::from_millis(left))
    }
}

/// A token whose claims pass every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal: String,
    pub scopes: Vec<String>,
    pub lifetime: Lifetime,
}

/// What a token's claims must say.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    /// Accepted `iss` values (never empty: the config requires one).
    pub issuers: Vec<String>,
    /// Accepted `aud` values; `None`: the route's canonical URI.
    pub audiences: Option<Vec<String>>,
    /// Leeway for `exp` and `nbf`, in seconds.
    pub skew_secs: u64,
    /// The claim naming the principal (default `sub`).
    pub principal_claim: String,
    /// The claim holding scopes; `None`: `scope`, else `scp`.
    pub scope_claim: Option<String>,
}

impl ClaimRules {
    /// The principal, scopes and lifetime, if the claims pass every check.
    pub fn check(
        &self,
        claims: &Map<String, Value>,
        resource_uri: &str,
        now_secs: u64,
    ) -> Result<Verified, TokenError> {
        let now = now_secs as f64;
        let skew = self.skew_secs as f64;
        let exp = number(claims, "exp")?.ok_or_else(|| TokenError::MissingClaim("exp".into()))?;
        if now > exp + skew {
            return Err(TokenError::Expired);
        }
        let nbf = number(claims, "nbf")?;
        if nbf.is_some_and(|nbf| now + skew < nbf) {
            return Err(TokenError::NotYetValid);
        }
        let iss = text(claims, "iss")?.ok_or_else(|| TokenError::MissingClaim("iss".into()))?;
        if !self.issuers.iter().any(|i| same_uri(i, iss)) {
            return Err(TokenError::Issuer);
        }
        self.check_audience(claims, resource_uri)?;
        let principal = match claims.get(&self.principal_claim) {
            Some(Value::String(p)) if !p.is_empty() => p.clone(),
            Some(Value::String(_)) | None => return Err(TokenError::MissingClaim(self.principal_claim.clone())),
            Some(_) => return Err(TokenError::BadClaim(self.principal_claim.clone())),
        };
        // Rounded inwards; the casts saturate, so an odd claim cannot wrap.
        let lifetime =
            Lifetime { not_before_ms: nbf.map(|nbf| (nbf * 1000.0).ceil() as u64), expires_ms: (exp * 1000.0) as u64 };
        Ok(Verified { principal, scopes: self.scopes(claims), lifetime })
    }

    fn check_audience(&self, claims: &Map<String, Value>, resource_uri: &str) -> Result<(), TokenError> {
        let presented: Vec<&str> = match claims.get("aud") {
            None => return Err(TokenError::MissingClaim("aud".into())),
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(TokenError::BadClaim("aud".into())),
        };
        let accepted = |aud: &str| match &self.audiences {
            Some(audiences) => audiences.iter().any(|a| same_uri(a, aud)),
            None => same_uri(resource_uri, aud),
        };
        match presented.into_iter().any(accepted) {
            true => Ok(()),
            false => Err(TokenError::Audience),
        }
    }

    /// Space-separated `scope` (RFC 9068), or `scp` as a list or a string.
    fn scopes(&self, claims: &Map<String, Value>) -> Vec<String> {
        let value = match &self.scope_claim {
            Some(name) => claims.get(name),
            None => claims.get("scope").or_else(|| claims.get("scp")),
        };
        match value {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }
}

fn number(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| TokenError::BadClaim(name.into())),
    }
}

fn text<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or_else(|| TokenError::BadClaim(name.into())),
    }
}

/// URIs equal up to the case of scheme and host and a trailing slash
/// (RFC 3986 §6.2.2 normalisation; an issuer or resource written with or
/// without the slash names the same thing).
pub fn same_uri(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

fn normalise(uri: &str) -> String {
    let uri = uri.trim_end_matches('/');
    match uri.find("://") {
        Some(i) => {
            let authority_end = uri[i + 3..].find('/').map_or(uri.len(), |j| i + 3 + j);
            format!("{}{}", uri[..authority_end].to_ascii_lowercase(), &uri[authority_end..])
        }
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;
    const RESOURCE: &str = "https://mcp.example.com/mcp";

    fn rules() -> ClaimRules {
        ClaimRules {
            issuers: vec!["https://auth.example.com".into()],
            audiences: None,
            skew_secs: 60,
            principal_claim: "sub".into(),
            scope_claim: None,
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut c = json!({"iss": "https://auth.example.com/", "aud": RESOURCE, "sub": "ada", "exp": NOW + 300});
        if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
            c.extend(extra);
        }
        c.as_object().cloned().unwrap_or_default()
    }

    fn check(extra: Value) -> Result<Verified, TokenError> {
        rules().check(&claims(extra), RESOURCE, NOW)
    }

    #[test]
    fn good_claims_give_principal_and_scopes() {
        let lifetime = Lifetime { not_before_ms: None, expires_ms: (NOW + 300) * 1000 };
        let verified = Verified { principal: "ada".into(), scopes: vec!["a".into(), "b".into()], lifetime };
        assert_eq!(check(json!({"scope": "a b"})), Ok(verified));
        assert_eq!(check(json!({"scp": ["x"]})).map(|r| r.scopes), Ok(vec!["x".into()]));
        assert_eq!(check(json!({})).map(|r| r.scopes), Ok(vec![]));
        assert!(check(json!({"aud": ["other", "HTTPS://MCP.example.com/mcp/"]})).is_ok());
    }

    #[test]
    fn time_checks_with_skew() {
        assert_eq!(check(json!({"exp": NOW - 61})), Err(TokenError::Expired));
        assert!(check(json!({"exp": NOW - 59})).is_ok(), "within the skew");
        assert_eq!(check(json!({"nbf": NOW + 61})), Err(TokenError::NotYetValid));
        assert!(check(json!({"nbf": NOW + 59})).is_ok());
        let lifetime = check(json!({"nbf": NOW + 59, "exp": NOW as f64 + 1.5})).map(|r| r.lifetime);
        assert_eq!(lifetime, Ok(Lifetime { not_before_ms: Some((NOW + 59) * 1000), expires_ms: NOW * 1000 + 1500 }));
        assert_eq!(check(json!({"exp": "tomorrow"})), Err(TokenError::BadClaim("exp".into())));
        let mut c = claims(json!({}));
        c.remove("exp");
        assert_eq!(rules().check(&c, RESOURCE, NOW), Err(TokenError::MissingClaim("exp".into())));
    }

    #[test]
    fn the_lifetime_left_ignores_the_skew() {
        let lifetime = Lifetime { not_before_ms: Some(10_000), expires_ms: 20_000 };
        assert_eq!(lifetime.remaining(9_999), None, "not valid yet");
        assert_eq!(lifetime.remaining(10_000), Some(std::time::Duration::from_millis(10_000)));
        assert_eq!(lifetime.remaining(19_999), Some(std::time::Duration::from_millis(1)));
        assert_eq!(lifetime.remaining(20_000), None, "expired");
        assert_eq!(lifetime.remaining(80_000), None);
    }

    #[test]
    fn issuer_and_audience() {
        assert_eq!(check(json!({"iss": "https://evil.example.com"})), Err(TokenError::Issuer));
        assert_eq!(check(json!({"aud": "https://mcp.example.com/other"})), Err(TokenError::Audience));
        assert_eq!(check(json!({"aud": []})), Err(TokenError::Audience));
        assert_eq!(check(json!({"aud": 7})), Err(TokenError::BadClaim("aud".into())));
        let configured = ClaimRules { audiences: Some(vec!["api://mcp".into()]), ..rules() };
        assert!(configured.check(&claims(json!({"aud": "api://mcp"})), RESOURCE, NOW).is_ok());
        assert_eq!(configured.check(&claims(json!({})), RESOURCE, NOW), Err(TokenError::Audience));
    }

    #[test]
    fn principal_claim() {
        assert_eq!(check(json!({"sub": ""})), Err(TokenError::MissingClaim("sub".into())));
        let by_client = ClaimRules { principal_claim: "client_id".into(), ..rules() };
        assert_eq!(
            by_client.check(&claims(json!({"client_id": "app"})), RESOURCE, NOW).map(|r| r.principal),
            Ok("app".into())
        );
    }
}
