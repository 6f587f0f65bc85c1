//! API keys: the config holds each key's SHA-256 (hex), never the key, so
//! a leaked mcpd.toml or keys file does not leak working credentials.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::identity::Identity;

/// The configured keys, by the SHA-256 of the key.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], Identity>,
}

impl ApiKeys {
    /// Adds a key given as 64 hex digits; the message says what is wrong.
    pub fn add(&mut self, sha256_hex: &str, identity: Identity) -> Result<(), String> {
        let hash = parse_hex(sha256_hex).ok_or("must be the key's SHA-256 as 64 hex digits")?;
        if self.by_hash.contains_key(&hash) {
            return Err("the same key is configured twice".into());
        }
        self.by_hash.insert(hash, identity);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Who `key` belongs to. The lookup compares digests, not keys: timing
    /// can at most reveal how a guess's digest relates to a stored one,
    /// which does not help find a key.
    pub fn lookup(&self, key: &str) -> Option<&Identity> {
        self.by_hash.get(&sha256(key))
    }
}

pub fn sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `sha256` as lower-case hex: what an operator puts in the config.
#[cfg(test)]
pub fn sha256_hex(key: &str) -> String {
    sha256(key).iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(name: &str) -> Identity {
        Identity {
            principal: name.into(),
            scopes: vec!["mcp:read".into()],
            method: crate::identity::Method::ApiKey,
            lifetime: None,
        }
    }

    #[test]
    fn keys_are_found_by_their_hash() {
        // Some other key's digest.
        let hash = "2b3bb5b8ea5ed1b5ef0ec3d4e1bd1f4b7b1ab9f5e23f7a3b3a22a3cbdbd5f5b5";
        let mut keys = ApiKeys::default();
        keys.add(&sha256_hex("secret-1").to_uppercase(), who("ci")).unwrap();
        assert_eq!(keys.lookup("secret-1").map(|i| i.principal.as_str()), Some("ci"));
        assert!(keys.lookup("secret-2").is_none());
        assert!(keys.lookup("").is_none());
        assert!(keys.add(hash, who("other")).is_ok());
        assert!(keys.add(&sha256_hex("secret-1"), who("again")).unwrap_err().contains("twice"));
    }

    #[test]
    fn known_digest() {
        // Checked with `printf %s abc | sha256sum`.
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bad_hashes_say_what_is_expected() {
        let mut keys = ApiKeys::default();
        for bad in ["", "abc", &"g".repeat(64), &"é".repeat(32)] {
            assert!(keys.add(bad, who("x")).unwrap_err().contains("64 hex digits"), "{bad}");
        }
        assert!(keys.is_empty());
    }
}
