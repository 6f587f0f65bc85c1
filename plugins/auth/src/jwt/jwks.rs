//! The JWKS at `jwks_url`: fetched through mcpd's allow-listed outbound
//! HTTP, shared by all instances through the plugin's store, parsed once
//! per instance.
//!
//! - An instance with no keys fetches at once (at most once a second while
//!   fetches fail).
//! - Keys older than `jwks_cache_ttl` are refreshed by one instance at a
//!   time (a store counter is the lock); the others use the keys they have
//!   until the new ones are in the store.
//! - A token whose `kid` no key has triggers a re-fetch (key rotation), at
//!   most once per `jwks_refetch_interval` across instances, so tokens with
//!   made-up key ids cannot turn mcpd into a JWKS hammer.
//! - A failed fetch keeps the keys there are.

use std::time::Duration;

use mcpd_plugin_sdk::{http, log, store};

use super::keys::{VerifyKey, parse_jwks};

/// How long one instance waits between attempts while it has no keys at all.
const COLD_RETRY_MS: u64 = 1_000;
/// How long the refresh lock is held: about a fetch's worst case.
const REFRESH_LOCK: Duration = Duration::from_secs(10);

pub struct Jwks {
    url: String,
    ttl: Duration,
    refetch_interval: Duration,
    timeout: Duration,
    cache: Option<Cached>,
    /// When this instance last tried a fetch (for the cold-start retry pace).
    last_attempt_ms: Option<u64>,
}

struct Cached {
    fetched_at_ms: u64,
    keys: Vec<VerifyKey>,
}

impl Jwks {
    pub fn new(url: String, ttl: Duration, refetch_interval: Duration, timeout: Duration) -> Jwks {
        Jwks { url, ttl, refetch_interval, timeout, cache: None, last_attempt_ms: None }
    }

    /// How long fetched keys count as fresh (`jwks_cache_ttl`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The keys to try for a token with this `kid`, fetching as the module
    /// doc describes. May be stale or empty when the JWKS cannot be had.
    pub fn keys(&mut self, kid: Option<&str>, now_ms: u64) -> &[VerifyKey] {
        if !(self.fresh(now_ms) && self.knows(kid)) {
            // Another instance may have fetched already.
            self.adopt_stored();
            if !(self.fresh(now_ms) && self.knows(kid)) && self.may_fetch(now_ms) {
                self.fetch(now_ms);
            }
        }
        self.cache.as_ref().map_or(&[], |c| c.keys.as_slice())
    }

    fn store_key(&self) -> String {
        format!("jwks:{}", self.url)
    }

    fn fresh(&self, now_ms: u64) -> bool {
        self.cache.as_ref().is_some_and(|c| now_ms < c.fetched_at_ms.saturating_add(millis(self.ttl)))
    }

    fn knows(&self, kid: Option<&str>) -> bool {
        match kid {
            None => true,
            Some(kid) => self.cache.as_ref().is_some_and(|c| c.keys.iter().any(|k| k.kid.as_deref() == Some(kid))),
        }
    }

    fn may_fetch(&mut self, now_ms: u64) -> bool {
        let Some(cached) = &self.cache else {
            return self.last_attempt_ms.is_none_or(|t| now_ms.saturating_sub(t) >= COLD_RETRY_MS);
        };
        if now_ms >= cached.fetched_at_ms.saturating_add(millis(self.ttl)) {
            return self.claim("refresh", REFRESH_LOCK);
        }
        // Fresh keys, unknown kid: rotation, or a made-up kid.
        self.refetch_interval.is_zero() || self.claim("refetch", self.refetch_interval)
    }

    /// Takes the store lock `name` for `hold`: true for exactly one caller
    /// per period across instances. If the store fails, the instance paces
    /// itself instead.
    fn claim(&self, name: &str, hold: Duration) -> bool {
        match store::incr(&format!("{name}:{}", self.url), 1, hold) {
            Ok(n) => n == 1,
            Err(e) => {
                log::warn!("store unavailable for the JWKS fetch lock: {e}");
                true
            }
        }
    }

    /// Takes the store's copy if it is newer than this instance's.
    fn adopt_stored(&mut self) {
        let stored = match store::get(&self.store_key()) {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(e) => return log::warn!("cannot read the cached JWKS: {e}"),
        };
        let Some((at, body)) = stored.split_once('\n') else { return };
        let Ok(at) = at.parse::<u64>() else { return };
        if self.cache.as_ref().is_some_and(|c| c.fetched_at_ms >= at) {
            return;
        }
        if let Ok(keys) = parse_jwks(body) {
            self.cache = Some(Cached { fetched_at_ms: at, keys });
        }
    }

    fn fetch(&mut self, now_ms: u64) {
        self.last_attempt_ms = Some(now_ms);
        let request = http::Request::new("GET", &self.url).header("accept", "application/json").timeout(self.timeout);
        let body = match request.send() {
            Ok(response) if response.ok() => response.text(),
            Ok(response) => return log::warn!("JWKS {} answered HTTP {}", self.url, response.status),
            Err(e) => return log::warn!("cannot fetch JWKS {}: {e}", self.url),
        };
        let keys = match parse_jwks(&body) {
            Ok(keys) => keys,
            Err(e) => return log::warn!("JWKS {}: {e}", self.url),
        };
        log::info!("fetched JWKS {}: {} signing keys", self.url, keys.len());
        // Stored with its fetch time, so instances can tell newer from older.
        if let Err(e) = store::set(&self.store_key(), &format!("{now_ms}\n{body}"), self.ttl) {
            log::warn!("cannot cache the JWKS: {e}");
        }
        self.cache = Some(Cached { fetched_at_ms: now_ms, keys });
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::support::{JWKS_URL, RSA1, RSA2, jwks, jwks_fetches, rsa, serve, serve_jwks};
    use jsonwebtoken::Algorithm;

    fn kids(keys: &[VerifyKey]) -> Vec<&str> {
        keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }

    #[test]
    fn expired_keys_are_refreshed_by_one_instance_and_kept_if_that_fails() {
        let minute = Duration::from_secs(60);
        let t0 = 1_000_000;
        serve_jwks(&jwks(&[("k1", &rsa(RSA1), Algorithm::RS256)]));
        let mut a = Jwks::new(JWKS_URL.into(), minute, minute, minute);
        assert_eq!(kids(a.keys(Some("k1"), t0)), ["k1"]);
        // A minute on, the endpoint is down: the old keys stay in use.
        serve(503, "down");
        assert_eq!(kids(a.keys(Some("k1"), t0 + 61_000)), ["k1"]);
        assert_eq!(jwks_fetches(), 2);
        // Another instance with expired keys finds the refresh lock taken.
        let mut b = Jwks::new(JWKS_URL.into(), minute, minute, minute);
        assert_eq!(kids(b.keys(None, t0 + 62_000)), ["k1"], "adopted from the store");
        assert_eq!(jwks_fetches(), 2);
    }

    #[test]
    fn a_refresh_replaces_the_keys() {
        let minute = Duration::from_secs(60);
        serve_jwks(&jwks(&[("k1", &rsa(RSA1), Algorithm::RS256)]));
        let mut a = Jwks::new(JWKS_URL.into(), minute, minute, minute);
        assert_eq!(kids(a.keys(None, 0)), ["k1"]);
        serve_jwks(&jwks(&[("k2", &rsa(RSA2), Algorithm::RS256)]));
        assert_eq!(kids(a.keys(None, 30_000)), ["k1"], "still fresh");
        assert_eq!(kids(a.keys(None, 60_000)), ["k2"]);
    }
}
