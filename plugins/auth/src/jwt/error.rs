//! `TokenError`: why a JWT was refused. Its text goes to the client (in
//! `error_description` and the JSON-RPC message), so it names the check
//! that failed and nothing from the token beyond a sanitised key id.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts with a JSON header and claims.
    Malformed,
    /// The header's `alg` is not one the config accepts.
    Algorithm(String),
    /// No configured or published key fits the token (its `kid`, if any).
    UnknownKey(Option<String>),
    /// A key fits but the signature does not verify.
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    /// A claim the plugin needs is absent.
    MissingClaim(String),
    /// A claim has the wrong type (e.g. `exp` as text).
    BadClaim(String),
}

impl TokenError {
    /// The `result` label of `authentications_total` (a fixed set).
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Algorithm(_) => "algorithm",
            TokenError::UnknownKey(_) => "unknown_key",
            TokenError::Signature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Issuer => "wrong_issuer",
            TokenError::Audience => "wrong_audience",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::BadClaim(_) => "bad_claim",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed => f.write_str("the token is not a well-formed JWT"),
            TokenError::Algorithm(alg) => write!(f, "token algorithm {alg} is not accepted"),
            TokenError::UnknownKey(Some(kid)) => write!(f, "no key with id {} is known", printable(kid)),
            TokenError::UnknownKey(None) => f.write_str("no key fits the token"),
            TokenError::Signature => f.write_str("the token signature does not verify"),
            TokenError::Expired => f.write_str("the token has expired"),
            TokenError::NotYetValid => f.write_str("the token is not valid yet"),
            TokenError::Issuer => f.write_str("the token issuer is not trusted"),
            TokenError::Audience => f.write_str("the token audience is not this resource"),
            TokenError::MissingClaim(claim) => write!(f, "the token has no {claim} claim"),
            TokenError::BadClaim(claim) => write!(f, "the token's {claim} claim is malformed"),
        }
    }
}

/// The key id as the client sent it, cut to what can go in a header.
fn printable(kid: &str) -> String {
    kid.chars().filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\').take(64).collect()
}
