//! Who a request's credential says the client is, and why a credential
//! was refused: the two outcomes of authentication.

use crate::jwt::{Lifetime, TokenError};

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ApiKey,
    Jwt,
}

impl Method {
    /// The `method` label of the `authentications_total` metric.
    pub fn label(self) -> &'static str {
        match self {
            Method::ApiKey => "api_key",
            Method::Jwt => "jwt",
        }
    }
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The API key's `name`, or the JWT's subject.
    pub principal: String,
    pub scopes: Vec<String>,
    pub method: Method,
    /// A token's `nbf` and `exp`; `None` for an API key, which holds
    /// until the config changes.
    pub lifetime: Option<Lifetime>,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential at all: the client gets the plain challenge.
    Missing,
    /// An `X-API-Key`, or a bearer value that is not a JWT, that matches no key.
    UnknownApiKey,
    /// A JWT that does not check out.
    Token(TokenError),
}

impl Refusal {
    /// The `result` label of `authentications_total` (a fixed set).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::UnknownApiKey => "unknown_api_key",
            Refusal::Token(e) => e.label(),
        }
    }

    /// The `method` label: what kind of credential was refused.
    pub fn method_label(&self) -> &'static str {
        match self {
            Refusal::Missing => "none",
            Refusal::UnknownApiKey => Method::ApiKey.label(),
            Refusal::Token(_) => Method::Jwt.label(),
        }
    }

    /// The text for the client (`error_description`, the JSON-RPC message).
    /// It names the check that failed, never key material.
    pub fn description(&self) -> String {
        match self {
            Refusal::Missing => "authentication required".into(),
            Refusal::UnknownApiKey => "unknown API key".into(),
            Refusal::Token(e) => e.to_string(),
        }
    }
}
