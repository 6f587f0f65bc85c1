//! Finding the credential in a request: `Authorization: Bearer <token>`
//! (an API key or a JWT), else `X-API-Key: <key>` (an API key only).

use mcpd_plugin_sdk::Header;

/// What the client presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// `Authorization: Bearer`: an API key or a JWT.
    Bearer(&'a str),
    /// `X-API-Key`: an API key.
    ApiKey(&'a str),
}

/// The credential in these headers, if any. An `Authorization` header with
/// another scheme (`Basic`) is not ours: it counts as no credential, so the
/// client gets the plain challenge telling it what to send.
pub fn find(headers: &[Header]) -> Option<Credential<'_>> {
    let value = |name: &str| headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.trim());
    if let Some(token) = value("authorization").and_then(bearer) {
        return Some(Credential::Bearer(token));
    }
    value("x-api-key").map(Credential::ApiKey)
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Vec<Header> {
        list.iter().map(|(n, v)| Header { name: n.to_string(), value: v.to_string() }).collect()
    }

    #[test]
    fn bearer_first_then_api_key() {
        assert_eq!(find(&headers(&[("authorization", "Bearer abc")])), Some(Credential::Bearer("abc")));
        assert_eq!(find(&headers(&[("Authorization", "bearer  abc ")])), Some(Credential::Bearer("abc")));
        assert_eq!(find(&headers(&[("x-api-key", "k1")])), Some(Credential::ApiKey("k1")));
        let both = headers(&[("x-api-key", "k1"), ("authorization", "Bearer t")]);
        assert_eq!(find(&both), Some(Credential::Bearer("t")));
        let basic = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(find(&basic), None);
        assert_eq!(find(&headers(&[("authorization", "Bearer ")])), None, "no token: no credential");
        assert_eq!(find(&[]), None);
    }
}
