//! JWT bearer tokens: the signature against static keys or a JWKS, then
//! the claims. Only the algorithms the config accepts are tried, and only
//! with keys of the matching family, so `alg` cannot be used to confuse a
//! public key with an HMAC secret; `none` is never accepted.

mod claims;
mod error;
mod jwks;
mod keys;

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

pub use claims::{ClaimRules, Lifetime, Verified};
pub use error::TokenError;
pub use jwks::Jwks;
pub use keys::{KeySettings, VerifyKey, parse_algorithm};

/// Checks tokens for one route.
pub struct Verifier {
    static_keys: Vec<VerifyKey>,
    jwks: Option<Jwks>,
    /// One per accepted algorithm (the library wants a single key family
    /// per `Validation`). Signature checks only: the claims are checked by
    /// `rules`, against mcpd's clock rather than the library's.
    validations: Vec<(Algorithm, Validation)>,
    rules: ClaimRules,
}

impl Verifier {
    pub fn new(static_keys: Vec<VerifyKey>, jwks: Option<Jwks>, algorithms: Vec<Algorithm>, rules: ClaimRules) -> Self {
        let validations = algorithms
            .into_iter()
            .map(|alg| {
                let mut validation = Validation::new(alg);
                validation.required_spec_claims.clear();
                validation.validate_exp = false;
                validation.validate_nbf = false;
                validation.validate_aud = false;
                (alg, validation)
            })
            .collect();
        Verifier { static_keys, jwks, validations, rules }
    }

    /// Whether the audience is configured (`jwt.audience`), so that the
    /// resource URI passed to [`Verifier::verify`] does not matter.
    pub fn fixed_audience(&self) -> bool {
        self.rules.audiences.is_some()
    }

    /// How long fetched JWKS keys count as fresh, when there is a JWKS.
    pub fn key_cache_ttl(&self) -> Option<Duration> {
        self.jwks.as_ref().map(Jwks::ttl)
    }

    /// The principal, scopes and lifetime (the `exp` and `nbf` it checked)
    /// of a valid token for `resource_uri`.
    pub fn verify(&mut self, token: &str, resource_uri: &str, now_ms: u64) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let Verifier { static_keys, jwks, validations, rules } = self;
        let Some((_, validation)) = validations.iter().find(|(alg, _)| *alg == header.alg) else {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        };
        let kid = header.kid.as_deref();
        let claims = signed_claims(static_keys, jwks.as_mut(), validation, token, header.alg, kid, now_ms)?;
        rules.check(&claims, resource_uri, now_ms / 1000)
    }
}

/// The claims, once a fitting key has verified the signature.
fn signed_claims(
    static_keys: &[VerifyKey],
    jwks: Option<&mut Jwks>,
    validation: &Validation,
    token: &str,
    alg: Algorithm,
    kid: Option<&str>,
    now_ms: u64,
) -> Result<Map<String, Value>, TokenError> {
    let mut tried = false;
    for key in static_keys.iter().filter(|k| k.fits(kid, alg)) {
        tried = true;
        if let Some(claims) = try_key(token, key, validation)? {
            return Ok(claims);
        }
    }
    // A kid the static keys name is theirs: asking the JWKS about it
    // would only trigger a pointless re-fetch.
    let static_kid = kid.is_some_and(|kid| static_keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
    if let (Some(jwks), false) = (jwks, static_kid) {
        for key in jwks.keys(kid, now_ms).iter().filter(|k| k.fits(kid, alg)) {
            tried = true;
            if let Some(claims) = try_key(token, key, validation)? {
                return Ok(claims);
            }
        }
    }
    match tried {
        true => Err(TokenError::Signature),
        false => Err(TokenError::UnknownKey(kid.map(str::to_string))),
    }
}

/// `Ok(None)` when this key's signature check fails (another may fit).
fn try_key(token: &str, key: &VerifyKey, validation: &Validation) -> Result<Option<Map<String, Value>>, TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
        Ok(data) => Ok(Some(data.claims)),
        Err(e) => match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_) => Ok(None),
            _ => Err(TokenError::Malformed),
        },
    }
}
