//! Verification keys: static ones from the config (HS secret, PEM, JWK)
//! and those a JWKS document publishes.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

/// One key a token may be signed with.
// Debug is safe: `DecodingKey` redacts its bytes.
#[derive(Clone, Debug)]
pub struct VerifyKey {
    pub kid: Option<String>,
    /// The one algorithm this key is for, when the config or JWK says.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

impl VerifyKey {
    /// Whether a token with this `kid` and `alg` may be checked with this key:
    /// the key family must match the algorithm (no HS256 over an RSA key's
    /// bytes), and key ids must agree when both sides have one.
    pub fn fits(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        self.key.family() == alg.family()
            && self.alg.is_none_or(|a| a == alg)
            && match (kid, self.kid.as_deref()) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    }
}

/// `jwt.keys[]` in the config: exactly one of `secret`, `secret_base64`, `pem`, `jwk`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub secret: Option<String>,
    pub secret_base64: Option<String>,
    pub pem: Option<String>,
    pub jwk: Option<Value>,
}

/// RFC 7518 §3.2: an HS256 key must have at least as many bits as the hash.
const MIN_SECRET_BYTES: usize = 32;

impl KeySettings {
    /// The key, or what is wrong with it.
    pub fn build(self) -> Result<VerifyKey, String> {
        let alg = self.alg.as_deref().map(parse_algorithm).transpose()?;
        let (key, kid, alg) = match (self.secret, self.secret_base64, self.pem, self.jwk) {
            (Some(secret), None, None, None) => (secret_key(secret.into_bytes())?, self.kid, alg),
            (None, Some(secret), None, None) => {
                let key = DecodingKey::from_base64_secret(&secret).map_err(|_| "`secret_base64` is not base64")?;
                (secret_key(key.try_get_as_bytes().map_err(|e| e.to_string())?.to_vec())?, self.kid, alg)
            }
            (None, None, Some(pem), None) => (pem_key(&pem, alg)?, self.kid, alg),
            (None, None, None, Some(jwk)) => {
                let jwk: Jwk = serde_json::from_value(jwk).map_err(|e| format!("`jwk` is not a JWK: {e}"))?;
                let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("`jwk` is not a usable public key: {e}"))?;
                let kid = self.kid.or(jwk.common.key_id.clone());
                (key, kid, alg.or_else(|| jwk_algorithm(&jwk)))
            }
            _ => return Err("give exactly one of `secret`, `secret_base64`, `pem` or `jwk`".into()),
        };
        if let Some(alg) = alg
            && alg.family() != key.family()
        {
            return Err(format!("`alg` {alg:?} does not fit this kind of key"));
        }
        Ok(VerifyKey { kid, alg, key })
    }
}

pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    name.parse().map_err(|_| format!("unknown algorithm `{name}` (e.g. RS256, ES256, HS256, EdDSA)"))
}

fn secret_key(secret: Vec<u8>) -> Result<DecodingKey, String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!("an HMAC secret needs at least {MIN_SECRET_BYTES} bytes"));
    }
    Ok(DecodingKey::from_secret(&secret))
}

/// A public key in PEM: of the family `alg` names, else whichever parses.
fn pem_key(pem: &str, alg: Option<Algorithm>) -> Result<DecodingKey, String> {
    let pem = pem.as_bytes();
    let parsed = match alg.map(Algorithm::family) {
        Some(AlgorithmFamily::Rsa) => DecodingKey::from_rsa_pem(pem).ok(),
        Some(AlgorithmFamily::Ec) => DecodingKey::from_ec_pem(pem).ok(),
        Some(AlgorithmFamily::Ed) => DecodingKey::from_ed_pem(pem).ok(),
        Some(AlgorithmFamily::Hmac) => return Err("an HMAC key is a `secret`, not a `pem`".into()),
        None => DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .ok(),
    };
    parsed.ok_or_else(|| "`pem` is not an RSA, EC or Ed25519 public key in PEM form".into())
}

fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    jwk.common.key_algorithm.and_then(|a| a.to_string().parse().ok())
}

/// The signing keys of a JWKS document. Keys for encryption, symmetric
/// keys (a published JWKS is public) and key types this plugin cannot use
/// are skipped, so one odd key does not take the others down with it.
pub fn parse_jwks(body: &str) -> Result<Vec<VerifyKey>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_str(body).map_err(|e| format!("not a JWKS document: {e}"))?;
    let keys = set
        .keys
        .into_iter()
        .filter(|k| k.get("use").is_none_or(|u| u == "sig") && k.get("kty").is_some_and(|t| t != "oct"))
        .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some(VerifyKey { kid: jwk.common.key_id.clone(), alg: jwk_algorithm(&jwk), key })
        })
        .collect();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RSA_PUB: &str = include_str!("../../testdata/rsa1.pub.pem");
    const EC_PUB: &str = include_str!("../../testdata/ec1.pub.pem");

    fn settings(v: Value) -> Result<VerifyKey, String> {
        serde_json::from_value::<KeySettings>(v).map_err(|e| e.to_string())?.build()
    }

    #[test]
    fn key_forms() {
        let k = settings(json!({"pem": RSA_PUB, "kid": "r1"})).unwrap();
        assert_eq!(k.key.family(), AlgorithmFamily::Rsa);
        assert!(k.fits(Some("r1"), Algorithm::RS256) && k.fits(None, Algorithm::PS256));
        assert!(!k.fits(Some("r2"), Algorithm::RS256) && !k.fits(Some("r1"), Algorithm::HS256));
        let k = settings(json!({"pem": EC_PUB})).unwrap();
        assert_eq!(k.key.family(), AlgorithmFamily::Ec);
        let k = settings(json!({"secret": "0123456789abcdef0123456789abcdef", "alg": "HS256"})).unwrap();
        assert!(k.fits(Some("any"), Algorithm::HS256) && !k.fits(None, Algorithm::HS512));
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "e1", "alg": "ES256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let k = settings(json!({"jwk": jwk})).unwrap();
        assert_eq!((k.kid.as_deref(), k.alg), (Some("e1"), Some(Algorithm::ES256)));
    }

    #[test]
    fn bad_keys_say_why() {
        let e = settings(json!({"secret": "short"})).err().unwrap();
        assert!(e.contains("at least 32 bytes"), "{e}");
        let e = settings(json!({"pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"})).err().unwrap();
        assert!(e.contains("not an RSA, EC or Ed25519 public key"), "{e}");
        let e = settings(json!({"pem": RSA_PUB, "secret": "x"})).err().unwrap();
        assert!(e.contains("exactly one of"), "{e}");
        let e = settings(json!({"pem": RSA_PUB, "alg": "ES256"})).err().unwrap();
        assert!(e.contains("not an RSA, EC or Ed25519"), "{e}");
        let e = settings(json!({"pem": RSA_PUB, "alg": "none"})).err().unwrap();
        assert!(e.contains("unknown algorithm `none`"), "{e}");
        let e = settings(json!({"jwk": {"kty": "RSA"}})).err().unwrap();
        assert!(e.starts_with("`jwk` is not a"), "{e}");
    }

    #[test]
    fn jwks_keeps_signing_keys_only() {
        let body = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "sig", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "XYZ", "kid": "odd"}
        ]});
        let keys = parse_jwks(&body.to_string()).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("sig")]);
        assert!(parse_jwks("[]").unwrap_err().contains("not a JWKS document"));
    }
}
