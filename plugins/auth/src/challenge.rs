//! The answers that refuse a request: 401 with a `WWW-Authenticate: Bearer`
//! challenge (RFC 6750 §3, with RFC 9728's `resource_metadata`) and 403
//! `insufficient_scope` for step-up authorization, as MCP clients expect.

use mcpd_plugin_sdk::{Decision, codes};

use crate::identity::Refusal;

/// 401: no credential (plain challenge) or a bad one (`error="invalid_token"`).
/// `scopes`: what to ask the authorization server for.
pub fn unauthorized(refusal: &Refusal, scopes: &[&str], metadata_url: Option<&str>) -> Decision {
    let mut params = Vec::new();
    if *refusal != Refusal::Missing {
        params.push(("error", "invalid_token".to_string()));
        params.push(("error_description", refusal.description()));
    }
    if let Some(url) = metadata_url {
        params.push(("resource_metadata", url.to_string()));
    }
    if !scopes.is_empty() {
        params.push(("scope", scopes.join(" ")));
    }
    let message = match refusal {
        Refusal::Missing => "authentication required".to_string(),
        other => format!("invalid credentials: {}", other.description()),
    };
    Decision::reject(401, codes::UNAUTHORIZED, message).header("www-authenticate", bearer(&params))
}

/// 403: authenticated, but the request needs `scopes` the credential lacks.
pub fn insufficient_scope(scopes: &[&str], metadata_url: Option<&str>, message: String) -> Decision {
    let mut params = vec![("error", "insufficient_scope".to_string()), ("scope", scopes.join(" "))];
    if let Some(url) = metadata_url {
        params.push(("resource_metadata", url.to_string()));
    }
    params.push(("error_description", message.clone()));
    Decision::reject(403, codes::FORBIDDEN, message).header("www-authenticate", bearer(&params))
}

/// `Bearer k="v", k2="v2"`; values are cut to the characters RFC 6750
/// allows in them (no `"` or `\`, printable ASCII), so nothing a client
/// sent can break the header.
fn bearer(params: &[(&str, String)]) -> String {
    let params: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            let v: String = v.chars().filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\').collect();
            format!("{k}=\"{v}\"")
        })
        .collect();
    match params.is_empty() {
        true => "Bearer".into(),
        false => format!("Bearer {}", params.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::TokenError;
    use mcpd_plugin_sdk::Rejection;

    const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

    fn parts(d: Decision) -> (u16, i32, String) {
        let Decision::Reject(Rejection { status, error, headers }) = d else { panic!("{d:?}") };
        let h = headers.iter().find(|h| h.name == "www-authenticate").map(|h| h.value.clone()).unwrap_or_default();
        (status, error.code, h)
    }

    #[test]
    fn missing_credentials() {
        let (status, code, h) = parts(unauthorized(&Refusal::Missing, &["mcp:read"], Some(PRM)));
        assert_eq!((status, code), (401, codes::UNAUTHORIZED));
        assert_eq!(h, format!(r#"Bearer resource_metadata="{PRM}", scope="mcp:read""#));
        let (_, _, h) = parts(unauthorized(&Refusal::Missing, &[], None));
        assert_eq!(h, "Bearer");
    }

    #[test]
    fn invalid_token() {
        let (status, _, h) = parts(unauthorized(&Refusal::Token(TokenError::Expired), &[], Some(PRM)));
        assert_eq!(status, 401);
        assert_eq!(
            h,
            format!(
                r#"Bearer error="invalid_token", error_description="the token has expired", resource_metadata="{PRM}""#
            )
        );
        let kid = TokenError::UnknownKey(Some("k\"1\\\n".into()));
        let (_, _, h) = parts(unauthorized(&Refusal::Token(kid), &[], None));
        assert_eq!(h, r#"Bearer error="invalid_token", error_description="no key with id k1 is known""#);
    }

    #[test]
    fn step_up() {
        let (status, code, h) =
            parts(insufficient_scope(&["mcp:deploy"], Some(PRM), "tool deploy needs mcp:deploy".into()));
        assert_eq!((status, code), (403, codes::FORBIDDEN));
        assert_eq!(
            h,
            format!(
                r#"Bearer error="insufficient_scope", scope="mcp:deploy", resource_metadata="{PRM}", error_description="tool deploy needs mcp:deploy""#
            )
        );
    }
}
