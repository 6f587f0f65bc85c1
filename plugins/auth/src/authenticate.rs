//! From a request's credential to an [`Identity`]: an API key (bearer or
//! `X-API-Key`) is looked up by its hash; any other bearer value must be a
//! JWT that verifies.

use mcpd_plugin_sdk::Header;

use crate::apikeys::ApiKeys;
use crate::credentials::{self, Credential};
use crate::identity::{Identity, Method, Refusal};
use crate::jwt::{Verified, Verifier};

/// Who the request's credential names, or why it does not count.
pub fn authenticate(
    api_keys: &ApiKeys,
    jwt: Option<&mut Verifier>,
    headers: &[Header],
    resource_uri: impl FnOnce() -> String,
    now_ms: impl FnOnce() -> u64,
) -> Result<Identity, Refusal> {
    let (value, bearer) = match credentials::find(headers) {
        None => return Err(Refusal::Missing),
        Some(Credential::ApiKey(key)) => (key, false),
        Some(Credential::Bearer(token)) => (token, true),
    };
    if let Some(identity) = api_keys.lookup(value) {
        return Ok(identity.clone());
    }
    match jwt {
        Some(verifier) if bearer && (looks_like_jwt(value) || api_keys.is_empty()) => {
            let verified = verifier.verify(value, &resource_uri(), now_ms()).map_err(Refusal::Token)?;
            let Verified { principal, scopes, lifetime } = verified;
            Ok(Identity { principal, scopes, method: Method::Jwt, lifetime: Some(lifetime) })
        }
        _ => Err(Refusal::UnknownApiKey),
    }
}

/// A compact JWS has three dot-separated parts; API keys have no dots.
fn looks_like_jwt(value: &str) -> bool {
    value.split('.').count() == 3
}
